//! `recheck_by`: when the scheduler's answer changes with nothing else
//! changing — a ban with a lifetime ends, a failure expires — so that the
//! controller schedules again at that moment.

use vigil_cib::xml::Document;
use vigil_scheduler::{Options, Scheduler};

const NOW: i64 = 1_700_000_000;

fn cib(constraints: &str, web_meta: &str, n1_attrs: &str, web_history: &str) -> String {
    format!(
        r#"<cib crm_feature_set="3.20.5" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config><cluster_property_set id="o">
      <nvpair id="o1" name="stonith-enabled" value="false"/>
    </cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
    <resources>
      <primitive id="web" class="ocf" provider="heartbeat" type="Dummy">
        <meta_attributes id="web-m">{web_meta}</meta_attributes>
      </primitive>
    </resources>
    <constraints>{constraints}</constraints>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1"><instance_attributes id="status-1">{n1_attrs}</instance_attributes></transient_attributes>
      <lrm id="1"><lrm_resources>
        <lrm_resource id="web" class="ocf" provider="heartbeat" type="Dummy">{web_history}</lrm_resource>
      </lrm_resources></lrm>
    </node_state>
    <node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>"#
    )
}

fn run(xml: &str) -> Scheduler {
    let doc = Document::parse(xml).unwrap();
    Scheduler::run(&doc, &Options { now: Some(NOW) })
}

fn iso(t: i64) -> String {
    vigil_cib::time::DateTime::from_epoch_seconds(t).to_string_with_offset()
}

#[test]
fn a_ban_with_a_lifetime_is_looked_at_again_when_it_ends() {
    let end = NOW + 3600;
    let ban = format!(
        r##"<rsc_location id="ban-web" rsc="web">
             <rule id="ban-web-rule" score="-INFINITY" boolean-op="and">
               <expression id="ban-web-e" attribute="#uname" operation="eq" value="n1"/>
               <date_expression id="ban-web-life" operation="lt" end="{}"/>
             </rule>
           </rsc_location>"##,
        iso(end)
    );
    let s = run(&cib(&ban, "", "", ""));
    let when = s.recheck_by.expect("a recheck time");
    assert!(
        (end..=end + 1).contains(&when),
        "recheck at {when}, the ban ends at {end}"
    );
    // Without the lifetime there is nothing to wait for.
    let s = run(&cib("", "", "", ""));
    assert_eq!(s.recheck_by, None);
}

#[test]
fn a_failure_is_looked_at_again_when_it_expires() {
    let failed_at = NOW - 20;
    let attrs = format!(
        r#"<nvpair id="a1" name="fail-count-web#monitor_10000" value="1"/>
           <nvpair id="a2" name="last-failure-web#monitor_10000" value="{failed_at}"/>"#
    );
    let history = format!(
        r#"<lrm_rsc_op id="web_last_0" operation_key="web_start_0" operation="start" transition-key="1:1:0:x" transition-magic="0:0;1:1:0:x" call-id="2" rc-code="0" op-status="0" interval="0" on_node="n1" last-rc-change="{a}" last-run="{a}"/>
           <lrm_rsc_op id="web_last_failure_0" operation_key="web_monitor_10000" operation="monitor" transition-key="2:1:0:x" transition-magic="0:7;2:1:0:x" call-id="3" rc-code="7" op-status="0" interval="10000" on_node="n1" last-rc-change="{failed_at}"/>"#,
        a = NOW - 100
    );
    let meta = r#"<nvpair id="ft" name="failure-timeout" value="60s"/>"#;
    let s = run(&cib("", meta, &attrs, &history));
    assert_eq!(s.recheck_by, Some(failed_at + 60 + 1));
    // Once expired, nothing is left to wait for.
    let attrs_old = attrs.replace(&failed_at.to_string(), &(NOW - 120).to_string());
    let history_old = history.replace(&failed_at.to_string(), &(NOW - 120).to_string());
    let s = run(&cib("", meta, &attrs_old, &history_old));
    assert_eq!(s.recheck_by, None);
}
