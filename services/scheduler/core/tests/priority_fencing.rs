//! priority-fencing-delay: in a split where this partition does not hold
//! the majority, fencing the lost node that ran the more important
//! resources waits, so that in a fencing race it survives.

use vigil_cib::xml::Document;
use vigil_scheduler::{Options, Scheduler};

fn cib(lost_priority: i32, kept_priority: i32) -> String {
    format!(
        r#"<cib crm_feature_set="3.20.5" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="2">
  <configuration>
    <crm_config><cluster_property_set id="o">
      <nvpair id="o1" name="stonith-enabled" value="true"/>
      <nvpair id="o2" name="priority-fencing-delay" value="15s"/>
      <nvpair id="o3" name="no-quorum-policy" value="ignore"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
    <resources>
      <primitive id="fence" class="stonith" type="fence_dummy"/>
      <primitive id="db" class="ocf" provider="heartbeat" type="Dummy">
        <meta_attributes id="db-m"><nvpair id="db-p" name="priority" value="{lost_priority}"/></meta_attributes>
      </primitive>
      <primitive id="web" class="ocf" provider="heartbeat" type="Dummy">
        <meta_attributes id="web-m"><nvpair id="web-p" name="priority" value="{kept_priority}"/></meta_attributes>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="false" crmd="offline" join="member" expected="member">
      <lrm id="1"><lrm_resources>
        <lrm_resource id="db" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="db_last_0" operation_key="db_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" on_node="n1"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="2"><lrm_resources>
        <lrm_resource id="web" class="ocf" provider="heartbeat" type="Dummy">
          <lrm_rsc_op id="web_last_0" operation_key="web_start_0" operation="start" transition-key="2:1:0:x" transition-magic="0:0;2:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" on_node="n2"/>
        </lrm_resource>
        <lrm_resource id="fence" class="stonith" type="fence_dummy">
          <lrm_rsc_op id="fence_last_0" operation_key="fence_start_0" operation="start" transition-key="3:1:0:x" transition-magic="0:0;3:1:0:x" call-id="3" rc-code="0" op-status="0" interval="0" on_node="n2"/>
        </lrm_resource>
      </lrm_resources></lrm>
    </node_state>
  </status>
</cib>"#
    )
}

fn delay(lost: i32, kept: i32) -> Option<String> {
    let doc = Document::parse(&cib(lost, kept)).unwrap();
    let s = Scheduler::run(
        &doc,
        &Options {
            now: Some(1_700_000_000),
        },
    );
    let graph = s.graph_xml();
    assert!(
        graph.contains("stonith-n1-reboot"),
        "n1 is fenced:\n{graph}"
    );
    graph
        .split("CRM_meta_priority_fencing_delay=\"")
        .nth(1)
        .map(|r| r.split('"').next().unwrap_or_default().to_string())
}

#[test]
fn the_more_important_lost_node_is_fenced_later() {
    assert_eq!(
        delay(10, 0).as_deref(),
        Some("15"),
        "n1 ran the more important resource"
    );
    assert_eq!(
        delay(0, 10).as_deref(),
        Some("0"),
        "n2 runs the more important one"
    );
    assert_eq!(
        delay(5, 5).as_deref(),
        Some("0"),
        "equal priorities: the devices' own delays"
    );
}
