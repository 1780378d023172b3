//! The cibadmin operations on a realistic CIB: each operation's effect and
//! version bump, XPath queries, merges with `++`/`+=`, refusals that leave
//! the CIB as it was, determinism, and the scheduler corpus
//! (`../shared/cts/scheduler` or `$VIGIL_CTS_DIR`; without it the corpus
//! test says so and passes).

use std::path::PathBuf;

use vigil_cib::ops::{
    Change, Context, MAX_XML_BYTES, MAX_XML_DEPTH, NEWEST_SCHEMA, Op, OpError, Outcome, Section,
    apply, version,
};
use vigil_cib::validate::validate;
use vigil_cib::xml::{Document, Element};
use vigil_cib::xpath;

const CIB: &str = r#"<cib crm_feature_set="3.19.0" validate-with="pacemaker-3.9" epoch="12" num_updates="4" admin_epoch="1" cib-last-written="Mon Jan  5 10:00:00 2026" update-origin="n1" update-client="crmd" update-user="hacluster" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-fencing" name="fencing-enabled" value="false"/>
        <nvpair id="opt-nqp" name="no-quorum-policy" value="stop"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="n1"/>
      <node id="2" uname="n2"/>
    </nodes>
    <resources>
      <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="ip-params">
          <nvpair id="ip-addr" name="ip" value="192.0.2.10"/>
        </instance_attributes>
        <meta_attributes id="ip-meta">
          <nvpair id="ip-stickiness" name="resource-stickiness" value="10"/>
        </meta_attributes>
        <operations>
          <op id="ip-monitor" name="monitor" interval="10s"/>
        </operations>
      </primitive>
      <group id="web">
        <primitive id="fs" class="ocf" provider="heartbeat" type="Filesystem"/>
        <primitive id="httpd" class="ocf" provider="heartbeat" type="apache"/>
      </group>
      <clone id="ping-clone">
        <primitive id="ping" class="ocf" provider="pacemaker" type="ping"/>
      </clone>
    </resources>
    <constraints>
      <rsc_location id="loc-ip" rsc="ip" node="n1" score="100"/>
      <rsc_colocation id="col-web-ip" rsc="web" with-rsc="ip" score="INFINITY"/>
      <rsc_order id="ord-ip-web" first="ip" then="web" kind="Mandatory"/>
    </constraints>
  </configuration>
  <status>
    <node_state id="1" uname="n1" in_ccm="true" crmd="online" join="member" expected="member">
      <lrm id="1">
        <lrm_resources>
          <lrm_resource id="ip" class="ocf" provider="heartbeat" type="IPaddr2">
            <lrm_rsc_op id="ip_last_0" operation_key="ip_start_0" operation="start" crm_feature_set="3.19.0" transition-key="1:1:0:6b9e5c4e-0000-4000-8000-000000000001" transition-magic="0:0;1:1:0:6b9e5c4e-0000-4000-8000-000000000001" call-id="5" rc-code="0" op-status="0" interval="0" last-rc-change="1700000000" exec-time="10" queue-time="0"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
      <transient_attributes id="1">
        <instance_attributes id="status-1">
          <nvpair id="status-1-ping" name="pingd" value="100"/>
        </instance_attributes>
      </transient_attributes>
    </node_state>
  </status>
</cib>
"#;

const NOW: &str = "Tue Jan  6 12:00:00 2026";

fn ctx() -> Context {
    Context {
        now: NOW.into(),
        origin: Some("n2".into()),
        client: Some("cibadmin".into()),
        user: Some("root".into()),
    }
}

fn cib() -> Document {
    Document::parse(CIB).unwrap()
}

#[track_caller]
fn run(d: &mut Document, op: Op) -> Outcome {
    apply(d, &op, &ctx()).unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// Applies `op`, expects a refusal, and checks the CIB did not change.
#[track_caller]
fn refuse(d: &mut Document, op: Op) -> OpError {
    let before = d.to_xml();
    let e = match apply(d, &op, &ctx()) {
        Ok(o) => panic!("{op:?} was accepted: {o:?}"),
        Err(e) => e,
    };
    assert_eq!(
        d.to_xml(),
        before,
        "{op:?} was refused ({e}) but changed the CIB"
    );
    e
}

fn q(xpath: &str) -> Op {
    Op::Query {
        xpath: Some(xpath.into()),
        section: None,
    }
}

/// The ids (or names) of what `xpath` selects in `d`.
#[track_caller]
fn ids(d: &Document, xpath: &str) -> Vec<String> {
    let mut copy = d.clone();
    match apply(&mut copy, &q(xpath), &ctx()) {
        Ok(o) => o
            .result
            .iter()
            .map(|e| e.attr("id").map_or_else(|| e.name.clone(), str::to_string))
            .collect(),
        Err(OpError::NoMatch { .. }) => Vec::new(),
        Err(e) => panic!("{xpath}: {e}"),
    }
}

#[track_caller]
fn attr(d: &Document, xpath: &str, name: &str) -> Option<String> {
    let x = xpath::compile(xpath).unwrap();
    let found = x.select_elements(&d.root).unwrap();
    assert_eq!(found.len(), 1, "{xpath}");
    found[0].attr(name).map(str::to_string)
}

fn ver(d: &Document) -> String {
    version(&d.root).to_string()
}

fn xml_op(section: Section, xml: &str) -> Op {
    Op::Create {
        section,
        xml: xml.into(),
    }
}

fn modify(section: Option<Section>, xml: &str) -> Op {
    Op::Modify {
        section,
        xml: xml.into(),
        create_if_missing: false,
    }
}

fn errors(d: &Document) -> Vec<String> {
    validate(d)
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn the_test_cib_is_valid() {
    assert_eq!(errors(&cib()), Vec::<String>::new());
    assert_eq!(ver(&cib()), "1.12.4");
}

// ---------------------------------------------------------------------------
// Query and XPath.

#[test]
fn query_whole_cib_section_and_xpath() {
    let mut d = cib();
    let o = run(
        &mut d,
        Op::Query {
            xpath: None,
            section: None,
        },
    );
    assert_eq!(o.change, Change::None);
    assert_eq!(
        (o.before.to_string(), o.version.to_string()),
        ("1.12.4".into(), "1.12.4".into())
    );
    assert_eq!(o.result.len(), 1);
    assert_eq!(o.result[0], d.root);

    let o = run(
        &mut d,
        Op::Query {
            xpath: None,
            section: Some(Section::Resources),
        },
    );
    assert_eq!(o.result[0].name, "resources");
    assert_eq!(o.result[0].elements().count(), 3);
    let o = run(
        &mut d,
        Op::Query {
            xpath: None,
            section: Some(Section::Status),
        },
    );
    assert_eq!(o.result[0].name, "status");

    let e = refuse(
        &mut d,
        Op::Query {
            xpath: None,
            section: Some(Section::Tags),
        },
    );
    assert_eq!(e.to_string(), "the CIB has no <tags> section");

    let e = refuse(&mut d, q("//primitive[@id='nope']"));
    assert_eq!(
        e.to_string(),
        "no element matches the xpath '//primitive[@id='nope']'"
    );
    let e = refuse(
        &mut d,
        Op::Query {
            xpath: Some("//node".into()),
            section: Some(Section::Nodes),
        },
    );
    assert!(e.to_string().contains("not both"), "{e}");
    let e = refuse(&mut d, q("//primitive/text()"));
    assert!(
        matches!(&e, OpError::XPath(x) if x.column == Some(13)),
        "{e:?}"
    );
    assert!(e.to_string().contains("text() is not supported"), "{e}");
    assert_eq!(
        CIB,
        Document::parse(CIB).unwrap().to_xml(),
        "queries change nothing"
    );
}

#[test]
fn xpath_queries_cover_every_supported_construct() {
    let d = cib();
    let cases: &[(&str, &[&str])] = &[
        // Absolute, relative, descendant, wildcard, parent, self.
        ("/cib/configuration/nodes/node", &["1", "2"]),
        ("cib/configuration/nodes", &["nodes"]),
        ("//group/primitive", &["fs", "httpd"]),
        (
            "/cib/configuration/resources/*",
            &["ip", "web", "ping-clone"],
        ),
        ("//primitive[@id='ping']/..", &["ping-clone"]),
        ("//nodes/./node[2]", &["2"]),
        ("/cib//lrm_rsc_op", &["ip_last_0"]),
        // Attribute predicates, both quotes, !=.
        ("//primitive[@provider]", &["ip", "fs", "httpd", "ping"]),
        ("//primitive[@type='apache']", &["httpd"]),
        ("//primitive[@type=\"apache\"]", &["httpd"]),
        ("//clone/primitive[@type!='Dummy']", &["ping"]),
        // and, or, not(), parentheses.
        (
            "//primitive[@provider='heartbeat' and @type!='IPaddr2']",
            &["fs", "httpd"],
        ),
        ("//primitive[@id='fs' or @id='ping']", &["fs", "ping"]),
        ("//primitive[not(@provider='heartbeat')]", &["ping"]),
        (
            "//primitive[(@id='fs' or @id='ip') and not(operations)]",
            &["fs"],
        ),
        // Positions.
        ("//group/primitive[1]", &["fs"]),
        ("//group/primitive[last()]", &["httpd"]),
        (
            "//constraints/*[position() >= 2]",
            &["col-web-ip", "ord-ip-web"],
        ),
        // Functions.
        ("//nvpair[contains(@name, 'quorum')]", &["opt-nqp"]),
        (
            "//nvpair[starts-with(@name, 'resource-')]",
            &["ip-stickiness"],
        ),
        ("//*[count(primitive) = 2]", &["web"]),
        // Nested paths in predicates.
        (
            "//primitive[meta_attributes/nvpair/@name='resource-stickiness']",
            &["ip"],
        ),
        (
            "//primitive[instance_attributes/nvpair[@name='ip']/@value='192.0.2.10']",
            &["ip"],
        ),
        ("//node_state[@uname='n1']//lrm_resource[@id='ip']", &["ip"]),
        ("//rsc_location[@rsc=//primitive/@id]", &["loc-ip"]),
        // Axes and unions.
        (
            "//primitive[@id='httpd']/preceding-sibling::primitive",
            &["fs"],
        ),
        ("//primitive[@id='httpd']/ancestor::*[@id]", &["web"]),
        ("//rsc_order | //rsc_location", &["loc-ip", "ord-ip-web"]),
        // Nothing.
        ("//primitive[@id='nope']", &[]),
    ];
    for (xpath, want) in cases {
        assert_eq!(ids(&d, xpath), *want, "{xpath}");
    }
}

#[test]
fn unsupported_xpath_is_refused_by_name() {
    let mut d = cib();
    let cases: &[(&str, &str)] = &[
        ("//nvpair/@value", "selects attributes"),
        ("//primitive/following::*", "following:: is not supported"),
        ("//primitive/comment()", "comment() is not supported"),
        ("//pcmk:primitive", "namespace prefixes"),
        ("//primitive[@id=$rsc]", "variables"),
        ("//op[@interval + 1 > 2]", "arithmetic"),
        (
            "//primitive[matches(@id, 'x')]",
            "not an XPath 1.0 function",
        ),
        (
            "//primitive[translate(@id, 'a', 'b')='x']",
            "translate() is not supported",
        ),
        ("count(//primitive)", "must select elements"),
        ("//primitive[", "expected a location path"),
    ];
    for (xpath, needle) in cases {
        for op in [
            q(xpath),
            Op::DeleteXpath {
                xpath: (*xpath).into(),
                all_matches: true,
            },
        ] {
            let e = refuse(&mut d, op);
            assert!(matches!(e, OpError::XPath(_)), "{xpath}: {e:?}");
            assert!(e.to_string().contains(needle), "{xpath}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------
// Create.

#[test]
fn create_adds_to_the_section_and_bumps_the_epoch() {
    let mut d = cib();
    let o = run(
        &mut d,
        xml_op(
            Section::Resources,
            r#"<primitive id="db" class="ocf" provider="heartbeat" type="pgsql">
                 <operations><op id="db-monitor" name="monitor" interval="30s"/></operations>
               </primitive>"#,
        ),
    );
    assert_eq!(o.change, Change::Configuration);
    assert_eq!(
        (o.before.to_string(), o.version.to_string()),
        ("1.12.4".into(), "1.13.0".into())
    );
    assert_eq!(ver(&d), "1.13.0");
    assert_eq!(
        ids(&d, "/cib/configuration/resources/*"),
        ["ip", "web", "ping-clone", "db"]
    );
    assert_eq!(
        ids(&d, "//primitive[@id='db']/operations/op"),
        ["db-monitor"]
    );
    let root = &d.root;
    assert_eq!(root.attr("cib-last-written"), Some(NOW));
    assert_eq!(root.attr("update-origin"), Some("n2"));
    assert_eq!(root.attr("update-client"), Some("cibadmin"));
    assert_eq!(root.attr("update-user"), Some("root"));
    assert_eq!(root.attr("admin_epoch"), Some("1"));

    // Several at once, as the section element.
    run(
        &mut d,
        xml_op(
            Section::Constraints,
            r#"<constraints>
                 <rsc_location id="loc-db" rsc="db" node="n2" score="50"/>
                 <rsc_order id="ord-ip-db" first="ip" then="db"/>
               </constraints>"#,
        ),
    );
    assert_eq!(
        ids(&d, "//constraints/*"),
        ["loc-ip", "col-web-ip", "ord-ip-web", "loc-db", "ord-ip-db"]
    );
    assert_eq!(ver(&d), "1.14.0");

    // A section that does not exist yet is created.
    run(
        &mut d,
        xml_op(Section::Tags, r#"<tag id="t-db"><obj_ref id="db"/></tag>"#),
    );
    assert_eq!(ids(&d, "/cib/configuration/tags/tag"), ["t-db"]);

    // From a whole <cib>, the section is taken.
    run(
        &mut d,
        xml_op(
            Section::Nodes,
            r#"<cib><configuration><nodes><node id="3" uname="n3"/></nodes></configuration></cib>"#,
        ),
    );
    assert_eq!(ids(&d, "//nodes/node"), ["1", "2", "3"]);
    assert_eq!(errors(&d), Vec::<String>::new());
}

#[test]
fn create_in_status_bumps_num_updates_only() {
    let mut d = cib();
    let o = run(
        &mut d,
        xml_op(
            Section::Status,
            r#"<node_state id="2" uname="n2" in_ccm="true" crmd="online" join="member" expected="member"/>"#,
        ),
    );
    assert_eq!(o.change, Change::Status);
    assert_eq!(ver(&d), "1.12.5");
    assert_eq!(
        d.root.attr("cib-last-written"),
        Some("Mon Jan  5 10:00:00 2026")
    );
    assert_eq!(d.root.attr("update-origin"), Some("n1"));
    assert_eq!(ids(&d, "//node_state"), ["1", "2"]);
}

#[test]
fn create_of_an_existing_id_is_refused() {
    let mut d = cib();
    let e = refuse(
        &mut d,
        xml_op(
            Section::Resources,
            r#"<primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2"/>"#,
        ),
    );
    assert!(matches!(e, OpError::AlreadyExists { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "<primitive id=\"ip\"> already exists in the resources section; use modify or replace \
         to change it"
    );

    // The same id on another kind of element: the validation names it.
    let e = refuse(
        &mut d,
        xml_op(
            Section::Constraints,
            r#"<rsc_location id="ip-monitor" rsc="ip" node="n2" score="5"/>"#,
        ),
    );
    let OpError::Invalid { diagnostics } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(diagnostics.len(), 1, "{e}");
    assert_eq!(diagnostics[0].id.as_deref(), Some("ip-monitor"));
    assert!(
        e.to_string()
            .contains("id 'ip-monitor' is already used by <op>"),
        "{e}"
    );

    // All or nothing: the second child is a duplicate, so the first is not
    // added either.
    let e = refuse(
        &mut d,
        xml_op(
            Section::Constraints,
            r#"<constraints><rsc_location id="new" rsc="ip" node="n2" score="5"/>
               <rsc_order id="ord-ip-web" first="ip" then="web"/></constraints>"#,
        ),
    );
    assert!(
        e.to_string()
            .starts_with("<rsc_order id=\"ord-ip-web\"> already exists"),
        "{e}"
    );
}

#[test]
fn a_change_introducing_a_dangling_reference_is_refused() {
    let mut d = cib();
    let e = refuse(
        &mut d,
        xml_op(
            Section::Constraints,
            r#"<rsc_colocation id="col-db" rsc="db" with-rsc="ip" score="INFINITY"/>"#,
        ),
    );
    assert_eq!(
        e.to_string(),
        "the change was refused: it would introduce 1 error: <rsc_colocation id=\"col-db\">: \
         resource 'db' does not exist (rsc); Pacemaker ignores this constraint"
    );

    // Deleting a resource that three constraints name.
    let e = refuse(
        &mut d,
        Op::Delete {
            section: Some(Section::Resources),
            xml: r#"<primitive id="ip"/>"#.into(),
        },
    );
    let OpError::Invalid { diagnostics } = &e else {
        panic!("{e:?}")
    };
    let named: Vec<&str> = diagnostics.iter().filter_map(|d| d.id.as_deref()).collect();
    assert_eq!(named, ["loc-ip", "col-web-ip", "ord-ip-web"], "{e}");
    assert!(
        e.to_string().contains("resource 'ip' does not exist"),
        "{e}"
    );
    assert_eq!(d.to_xml(), CIB, "the CIB is exactly as it was");

    // The same through an XPath.
    refuse(
        &mut d,
        Op::DeleteXpath {
            xpath: "//primitive[@id='ip']".into(),
            all_matches: false,
        },
    );
    assert_eq!(d.to_xml(), CIB);
}

// ---------------------------------------------------------------------------
// Modify.

#[test]
fn modify_merges_attributes_and_children() {
    let mut d = cib();
    let o = run(
        &mut d,
        modify(
            Some(Section::Resources),
            r#"<primitive id="ip" description="service address">
                 <meta_attributes id="ip-meta">
                   <nvpair id="ip-stickiness" value="20"/>
                   <nvpair id="ip-target-role" name="target-role" value="Stopped"/>
                 </meta_attributes>
               </primitive>"#,
        ),
    );
    assert_eq!(o.change, Change::Configuration);
    assert_eq!(ver(&d), "1.13.0");
    assert_eq!(
        attr(&d, "//primitive[@id='ip']", "description").as_deref(),
        Some("service address")
    );
    assert_eq!(
        attr(&d, "//primitive[@id='ip']", "type").as_deref(),
        Some("IPaddr2")
    );
    assert_eq!(
        attr(&d, "//nvpair[@id='ip-stickiness']", "value").as_deref(),
        Some("20")
    );
    assert_eq!(
        attr(&d, "//nvpair[@id='ip-stickiness']", "name").as_deref(),
        Some("resource-stickiness"),
        "attributes not given are kept"
    );
    assert_eq!(
        ids(&d, "//primitive[@id='ip']/meta_attributes/nvpair"),
        ["ip-stickiness", "ip-target-role"]
    );
    assert_eq!(
        ids(&d, "//primitive[@id='ip']/*"),
        ["ip-params", "ip-meta", "operations"]
    );

    // Without a section, anywhere in the CIB; in the status only
    // num_updates moves.
    let o = run(
        &mut d,
        modify(None, r#"<nvpair id="status-1-ping" value="200"/>"#),
    );
    assert_eq!(o.change, Change::Status);
    assert_eq!(ver(&d), "1.13.1");
    assert_eq!(
        attr(&d, "//nvpair[@id='status-1-ping']", "value").as_deref(),
        Some("200")
    );

    // The section element itself is merged into the section.
    run(
        &mut d,
        modify(
            Some(Section::CrmConfig),
            r#"<crm_config><cluster_property_set id="cib-bootstrap-options">
                 <nvpair id="opt-nqp" name="no-quorum-policy" value="ignore"/>
                 <nvpair id="opt-maint" name="maintenance-mode" value="true"/>
               </cluster_property_set></crm_config>"#,
        ),
    );
    assert_eq!(
        attr(&d, "//nvpair[@id='opt-nqp']", "value").as_deref(),
        Some("ignore")
    );
    assert_eq!(
        ids(&d, "//cluster_property_set/nvpair"),
        ["opt-fencing", "opt-nqp", "opt-maint"]
    );

    // A <cib> argument with a section: that section of it.
    run(
        &mut d,
        modify(
            Some(Section::Nodes),
            r#"<cib><configuration><nodes><node id="2" uname="n2" score="5"/></nodes></configuration></cib>"#,
        ),
    );
    assert_eq!(attr(&d, "//node[@id='2']", "score").as_deref(), Some("5"));

    // A missing section is created.
    run(
        &mut d,
        modify(
            Some(Section::RscDefaults),
            r#"<rsc_defaults><meta_attributes id="rsc-options">
                 <nvpair id="rsc-options-stickiness" name="resource-stickiness" value="1"/>
               </meta_attributes></rsc_defaults>"#,
        ),
    );
    assert_eq!(
        ids(&d, "//rsc_defaults/meta_attributes/nvpair"),
        ["rsc-options-stickiness"]
    );
    assert_eq!(errors(&d), Vec::<String>::new());
}

#[test]
fn modify_expands_increments() {
    let mut d = cib();
    run(
        &mut d,
        modify(None, r#"<nvpair id="ip-stickiness" value="value++"/>"#),
    );
    assert_eq!(
        attr(&d, "//nvpair[@id='ip-stickiness']", "value").as_deref(),
        Some("11")
    );
    run(
        &mut d,
        modify(None, r#"<nvpair id="ip-stickiness" value="value+=5"/>"#),
    );
    assert_eq!(
        attr(&d, "//nvpair[@id='ip-stickiness']", "value").as_deref(),
        Some("16")
    );
    run(
        &mut d,
        modify(
            None,
            r#"<rsc_location id="loc-ip" score="score+=INFINITY"/>"#,
        ),
    );
    assert_eq!(
        attr(&d, "//rsc_location", "score").as_deref(),
        Some("1000000")
    );
    run(
        &mut d,
        modify(None, r#"<rsc_location id="loc-ip" score="score+=-5"/>"#),
    );
    assert_eq!(
        attr(&d, "//rsc_location", "score").as_deref(),
        Some("1000000"),
        "INFINITY absorbs"
    );
    assert_eq!(ver(&d), "1.15.0", "the last modify changed nothing");

    // cibadmin's own example: raise admin_epoch. Only the caller changes
    // it, and a change to the <cib> attributes alone is not a
    // configuration change.
    let o = run(
        &mut d,
        modify(None, r#"<cib admin_epoch="admin_epoch++"/>"#),
    );
    assert_eq!(o.change, Change::Status);
    assert_eq!(ver(&d), "2.15.1");
    assert_eq!(
        d.root.attr("update-origin"),
        Some("n2"),
        "as set by the last configuration change"
    );
}

#[test]
fn modify_refusals() {
    let mut d = cib();
    let e = refuse(
        &mut d,
        modify(
            Some(Section::Resources),
            r#"<primitive id="nope" type="x"/>"#,
        ),
    );
    assert_eq!(
        e.to_string(),
        "there is no <primitive id=\"nope\"> in the resources section to modify; create it \
         first, or allow modify to create it"
    );
    // An invalid value is named.
    let e = refuse(
        &mut d,
        modify(None, r#"<rsc_location id="loc-ip" score="lots"/>"#),
    );
    assert!(
        e.to_string()
            .contains("<rsc_location id=\"loc-ip\">: 'lots' is not a valid score"),
        "{e}"
    );
    // Versions never go backwards.
    let e = refuse(&mut d, modify(None, r#"<cib epoch="3"/>"#));
    assert_eq!(
        e.to_string(),
        "the change would move the CIB's epoch backwards (version 1.12.4 to 1.3.4); versions \
         only grow"
    );
    let e = refuse(&mut d, modify(None, r#"<cib admin_epoch="0" epoch="99"/>"#));
    assert!(e.to_string().contains("admin_epoch backwards"), "{e}");
    // A <cib> without the section asked for.
    let e = refuse(
        &mut d,
        modify(Some(Section::Tags), "<cib><configuration/></cib>"),
    );
    assert!(e.to_string().contains("has no <tags> section"), "{e}");

    // Allowed to create: added to the section.
    run(
        &mut d,
        Op::Modify {
            section: Some(Section::Resources),
            xml: r#"<primitive id="extra" class="ocf" provider="pacemaker" type="Dummy"/>"#.into(),
            create_if_missing: true,
        },
    );
    assert_eq!(
        ids(&d, "/cib/configuration/resources/*"),
        ["ip", "web", "ping-clone", "extra"]
    );
}

#[test]
fn an_operation_that_changes_nothing_keeps_the_version() {
    let mut d = cib();
    let o = run(
        &mut d,
        modify(None, r#"<nvpair id="ip-stickiness" value="10"/>"#),
    );
    assert_eq!(o.change, Change::None);
    assert_eq!(
        (o.before, o.version),
        (version(&cib().root), version(&cib().root))
    );
    assert_eq!(d.to_xml(), CIB);
}

// ---------------------------------------------------------------------------
// Replace.

#[test]
fn replace_a_section_an_element_and_an_xpath_match() {
    let mut d = cib();
    let o = run(
        &mut d,
        Op::Replace {
            section: Some(Section::Constraints),
            xpath: None,
            xml: r#"<constraints><rsc_location id="loc-ip" rsc="ip" node="n2" score="50"/></constraints>"#
                .into(),
        },
    );
    assert_eq!(o.change, Change::Configuration);
    assert_eq!(ver(&d), "1.13.0");
    assert_eq!(ids(&d, "//constraints/*"), ["loc-ip"]);
    assert_eq!(attr(&d, "//rsc_location", "node").as_deref(), Some("n2"));

    // By tag and id, in place: the group keeps its order.
    run(
        &mut d,
        Op::Replace {
            section: Some(Section::Resources),
            xpath: None,
            xml: r#"<primitive id="fs" class="ocf" provider="heartbeat" type="LVM-activate"/>"#
                .into(),
        },
    );
    assert_eq!(ids(&d, "//group/primitive"), ["fs", "httpd"]);
    assert_eq!(
        attr(&d, "//primitive[@id='fs']", "type").as_deref(),
        Some("LVM-activate")
    );

    // By XPath.
    run(
        &mut d,
        Op::Replace {
            section: None,
            xpath: Some("//clone[@id='ping-clone']/primitive".into()),
            xml: r#"<primitive id="ping" class="ocf" provider="pacemaker" type="ping">
                      <instance_attributes id="ping-params"><nvpair id="ping-host" name="host_list" value="192.0.2.1"/></instance_attributes>
                    </primitive>"#
                .into(),
        },
    );
    assert_eq!(
        ids(&d, "//clone/primitive/instance_attributes/nvpair"),
        ["ping-host"]
    );
    assert_eq!(ver(&d), "1.15.0");

    let e = refuse(
        &mut d,
        Op::Replace {
            section: None,
            xpath: Some("//primitive[@id='nope']".into()),
            xml: "<primitive id=\"nope\"/>".into(),
        },
    );
    assert!(matches!(e, OpError::NoMatch { .. }), "{e:?}");
    let e = refuse(
        &mut d,
        Op::Replace {
            section: Some(Section::Resources),
            xpath: None,
            xml: r#"<primitive id="nope" class="ocf" provider="pacemaker" type="Dummy"/>"#.into(),
        },
    );
    assert_eq!(
        e.to_string(),
        "there is no <primitive id=\"nope\"> in the resources section to replace"
    );
    let e = refuse(
        &mut d,
        Op::Replace {
            section: Some(Section::Resources),
            xpath: Some("//x".into()),
            xml: "<x/>".into(),
        },
    );
    assert!(matches!(e, OpError::BadRequest(_)), "{e:?}");
}

#[test]
fn replace_the_whole_cib() {
    let mut d = cib();
    // An older CIB is refused.
    let older = CIB.replace("epoch=\"12\"", "epoch=\"11\"");
    let e = refuse(
        &mut d,
        Op::Replace {
            section: None,
            xpath: None,
            xml: older,
        },
    );
    assert_eq!(
        e.to_string(),
        "the replacement CIB (version 1.11.4) is older than the current one (1.12.4): its epoch \
         is lower; raise its epoch or admin_epoch to replace the CIB with it"
    );
    let fewer_updates = CIB.replace("num_updates=\"4\"", "num_updates=\"3\"");
    let e = refuse(
        &mut d,
        Op::Replace {
            section: None,
            xpath: None,
            xml: fewer_updates,
        },
    );
    assert!(
        matches!(
            e,
            OpError::OlderReplacement {
                field: "num_updates",
                ..
            }
        ),
        "{e:?}"
    );

    // A newer one replaces it, and the usual bump applies on top of its
    // version.
    let newer = CIB.replace("epoch=\"12\"", "epoch=\"20\"").replace(
        r#"<rsc_order id="ord-ip-web" first="ip" then="web" kind="Mandatory"/>"#,
        "",
    );
    let o = run(
        &mut d,
        Op::Replace {
            section: None,
            xpath: Some("/cib".into()),
            xml: newer,
        },
    );
    assert_eq!(o.change, Change::Configuration);
    assert_eq!(ver(&d), "1.21.0");
    assert_eq!(ids(&d, "//constraints/*"), ["loc-ip", "col-web-ip"]);
    assert_eq!(d.root.attr("update-client"), Some("cibadmin"));
}

// ---------------------------------------------------------------------------
// Delete.

#[test]
fn delete_by_tag_id_and_attributes() {
    let mut d = cib();
    let o = run(
        &mut d,
        Op::Delete {
            section: Some(Section::Constraints),
            xml: r#"<rsc_order id="ord-ip-web"/>"#.into(),
        },
    );
    assert_eq!(o.change, Change::Configuration);
    assert_eq!(ver(&d), "1.13.0");
    assert_eq!(ids(&d, "//constraints/*"), ["loc-ip", "col-web-ip"]);

    // Every attribute given must match (values ignoring case); children of
    // the argument do not matter.
    run(
        &mut d,
        Op::Delete {
            section: Some(Section::Resources),
            xml: r#"<op name="MONITOR" interval="10s"><ignored/></op>"#.into(),
        },
    );
    assert_eq!(ids(&d, "//op"), Vec::<String>::new());

    // No match: nothing happens, and the outcome says so.
    let o = run(
        &mut d,
        Op::Delete {
            section: Some(Section::Resources),
            xml: r#"<nvpair name="ip" value="192.0.2.99"/>"#.into(),
        },
    );
    assert_eq!(o.change, Change::None);
    assert_eq!(
        o.notes,
        [
            "nothing in the resources section matches <nvpair name=\"ip\" value=\"192.0.2.99\"/>; \
          nothing was deleted"
        ]
    );
    assert_eq!(ver(&d), "1.14.0");

    // Several, as the section element.
    run(
        &mut d,
        Op::Delete {
            section: Some(Section::Constraints),
            xml: r#"<constraints><rsc_location id="loc-ip"/><rsc_colocation id="col-web-ip"/></constraints>"#
                .into(),
        },
    );
    assert_eq!(ids(&d, "//constraints/*"), Vec::<String>::new());

    // In the status: num_updates only.
    let o = run(
        &mut d,
        Op::Delete {
            section: None,
            xml: r#"<nvpair id="status-1-ping"/>"#.into(),
        },
    );
    assert_eq!(o.change, Change::Status);
    assert_eq!(ver(&d), "1.15.1");

    // A section the CIB does not have.
    let o = run(
        &mut d,
        Op::Delete {
            section: Some(Section::Alerts),
            xml: r#"<alert id="a"/>"#.into(),
        },
    );
    assert_eq!(o.change, Change::None);
    assert!(o.notes[0].contains("no <alerts> section"), "{:?}", o.notes);
    assert_eq!(errors(&d), Vec::<String>::new());
}

#[test]
fn delete_by_xpath_first_or_all() {
    let mut d = cib();
    run(
        &mut d,
        Op::DeleteXpath {
            xpath: "//constraints/*".into(),
            all_matches: false,
        },
    );
    assert_eq!(ids(&d, "//constraints/*"), ["col-web-ip", "ord-ip-web"]);
    run(
        &mut d,
        Op::DeleteXpath {
            xpath: "//constraints/*".into(),
            all_matches: true,
        },
    );
    assert_eq!(ids(&d, "//constraints/*"), Vec::<String>::new());
    assert_eq!(ver(&d), "1.14.0");

    // Matches nested in one another.
    let o = run(
        &mut d,
        Op::DeleteXpath {
            xpath: "//lrm | //lrm_rsc_op | //transient_attributes//nvpair".into(),
            all_matches: true,
        },
    );
    assert_eq!(o.change, Change::Status);
    assert_eq!(ids(&d, "//node_state/*"), ["1"]);
    assert_eq!(ids(&d, "//transient_attributes/*"), ["status-1"]);
    assert_eq!(ver(&d), "1.14.1");

    let o = run(
        &mut d,
        Op::DeleteXpath {
            xpath: "//primitive[@id='nope']".into(),
            all_matches: true,
        },
    );
    assert_eq!(o.change, Change::None);
    assert_eq!(
        o.notes,
        ["nothing matches the xpath '//primitive[@id='nope']'; nothing was deleted"]
    );

    let e = refuse(
        &mut d,
        Op::DeleteXpath {
            xpath: "/cib".into(),
            all_matches: false,
        },
    );
    assert!(matches!(e, OpError::WholeCib { .. }), "{e:?}");
    let e = refuse(
        &mut d,
        Op::DeleteXpath {
            xpath: "//*[@epoch] | //node".into(),
            all_matches: true,
        },
    );
    assert!(e.to_string().contains("cannot be deleted"), "{e}");
    let e = refuse(
        &mut d,
        Op::DeleteXpath {
            xpath: "/cib/configuration".into(),
            all_matches: false,
        },
    );
    assert!(
        e.to_string()
            .contains("there is no <configuration> section"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------
// Erase, bump, upgrade.

#[test]
fn erase_bump_and_admin_epoch() {
    let mut d = cib();
    let o = run(&mut d, Op::Bump);
    assert_eq!(o.change, Change::Status);
    assert_eq!(
        ver(&d),
        "1.13.5",
        "Pacemaker's bump: epoch + 1, then num_updates + 1"
    );
    assert_eq!(
        d.root.attr("cib-last-written"),
        Some("Mon Jan  5 10:00:00 2026")
    );

    let o = run(&mut d, Op::Erase);
    assert_eq!(o.change, Change::Configuration);
    assert_eq!(ver(&d), "2.14.0");
    assert_eq!(
        d.root.elements().map(|e| e.to_xml()).collect::<Vec<_>>(),
        [
            "<configuration><crm_config/><nodes/><resources/><constraints/></configuration>",
            "<status/>"
        ]
    );
    assert_eq!(d.root.attr("validate-with"), Some("pacemaker-3.9"));
    assert_eq!(d.root.attr("cib-last-written"), Some(NOW));
    assert_eq!(errors(&d), Vec::<String>::new());
    // Erasing again still counts (Pacemaker raises admin_epoch every time).
    run(&mut d, Op::Erase);
    assert_eq!(ver(&d), "3.15.0");
}

#[test]
fn upgrade_to_the_newest_schema() {
    let mut d = cib();
    let o = run(&mut d, Op::Upgrade);
    assert_eq!(d.root.attr("validate-with"), Some(NEWEST_SCHEMA));
    // admin_epoch + 1, epoch and num_updates reset to 1, then the usual
    // rule: only a <cib> attribute changed, so num_updates + 1.
    assert_eq!(ver(&d), "2.1.2");
    assert_eq!(o.change, Change::Status);
    let o = run(&mut d, Op::Upgrade);
    assert_eq!(o.change, Change::None);
    assert!(
        o.notes[0].contains("already uses pacemaker-3.10"),
        "{:?}",
        o.notes
    );

    let mut none = Document::parse(&CIB.replace("pacemaker-3.9", "none")).unwrap();
    let e = refuse(&mut none, Op::Upgrade);
    assert!(
        e.to_string()
            .starts_with("cannot upgrade: validate-with is 'none'"),
        "{e}"
    );
    let mut odd = Document::parse(&CIB.replace("pacemaker-3.9", "transitional-0.6")).unwrap();
    refuse(&mut odd, Op::Upgrade);
}

const LEGACY: &str = r#"<cib validate-with="pacemaker-1.2" admin_epoch="0" epoch="7" num_updates="3">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="o-stonith" name="stonith_enabled" value="false"/>
        <nvpair id="o-votes" name="expected-quorum-votes" value="2"/>
        <nvpair id="o-stick" name="default-resource-stickiness" value="100"/>
        <nvpair id="o-timeout" name="default-action-timeout" value="60s"/>
        <nvpair id="o-nqp" name="no_quorum_policy" value="ignore"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="n1" uname="n1" type="normal"/>
    </nodes>
    <resources>
      <primitive id="fence" class="stonith" type="fence_xvm">
        <instance_attributes id="fence-params">
          <nvpair id="fence-map" name="pcmk_arg_map" value="port:domain"/>
          <nvpair id="fence-reboot" name="pcmk_reboot_cmd" value="reboot"/>
        </instance_attributes>
      </primitive>
      <primitive id="d" class="ocf" provider="pacemaker" type="Dummy">
        <operations>
          <op id="d-start" name="start" interval="0" requires="quorum"/>
        </operations>
      </primitive>
    </resources>
    <constraints>
      <rsc_colocation id="c" rsc="d" with-rsc="fence" score="INFINITY" score-attribute="x"/>
    </constraints>
    <acls>
      <acl_role id="readers"><read id="r-all" xpath="/cib"/></acl_role>
      <acl_user id="alice"><role_ref id="readers"/></acl_user>
      <acl_user id="bob"><write id="bob-w" tag="nvpair" attribute="value"/><deny id="bob-d" ref="d"/></acl_user>
    </acls>
  </configuration>
  <status/>
</cib>
"#;

#[test]
fn upgrade_from_pacemaker_1() {
    let mut d = Document::parse(LEGACY).unwrap();
    let before_errors = errors(&d);
    assert!(
        before_errors
            .iter()
            .any(|e| e.contains("node type 'normal'")),
        "{before_errors:?}"
    );
    let o = run(&mut d, Op::Upgrade);
    assert_eq!(o.change, Change::Configuration);
    // admin_epoch + 1, epoch reset to 1 and then raised by the
    // configuration change.
    assert_eq!(ver(&d), "1.2.0");
    assert_eq!(errors(&d), Vec::<String>::new(), "{:#?}", o.notes);
    assert_eq!(d.root.attr("validate-with"), Some("pacemaker-3.10"));

    let set = |xpath: &str| -> Vec<String> {
        let x = xpath::compile(xpath).unwrap();
        x.select_elements(&d.root)
            .unwrap()
            .iter()
            .map(|e| {
                let mut e: Element = (*e).clone();
                e.children
                    .retain(|c| matches!(c, vigil_cib::xml::Node::Element(_)));
                e.to_xml()
            })
            .collect()
    };
    assert_eq!(
        set("//crm_config/cluster_property_set/nvpair"),
        [
            r#"<nvpair id="o-stonith" name="stonith-enabled" value="false"/>"#,
            r#"<nvpair id="o-nqp" name="no-quorum-policy" value="ignore"/>"#,
        ]
    );
    assert_eq!(
        set("//rsc_defaults"),
        [
            r#"<rsc_defaults><meta_attributes id="rsc_defaults-options"><nvpair id="o-stick" name="resource-stickiness" value="100"/></meta_attributes></rsc_defaults>"#
        ]
    );
    assert_eq!(
        set("//op_defaults"),
        [
            r#"<op_defaults><meta_attributes id="op_defaults-options"><nvpair id="o-timeout" name="timeout" value="60s"/></meta_attributes></op_defaults>"#
        ]
    );
    assert_eq!(attr(&d, "//node", "type").as_deref(), Some("member"));
    assert_eq!(
        set("//primitive[@id='fence']/instance_attributes/nvpair"),
        [
            r#"<nvpair id="fence-map" name="pcmk_host_argument" value="domain"/>"#,
            r#"<nvpair id="fence-reboot" name="pcmk_reboot_action" value="reboot"/>"#,
        ]
    );
    assert_eq!(
        set("//primitive[@id='d']/*"),
        [
            r#"<operations><op id="d-start" name="start" interval="0"/></operations>"#,
            r#"<meta_attributes id="d-meta_attributes"><nvpair id="d-start-requires" name="requires" value="quorum"/></meta_attributes>"#,
        ]
    );
    assert_eq!(attr(&d, "//rsc_colocation", "score-attribute"), None);
    assert_eq!(
        set("//acls/*"),
        [
            r#"<acl_role id="readers"><acl_permission id="r-all" kind="read" xpath="/cib"/></acl_role>"#,
            r#"<acl_target id="alice"><role id="readers"/></acl_target>"#,
            r#"<acl_target id="bob"><role id="auto-bob"/></acl_target>"#,
            r#"<acl_role id="auto-bob"><acl_permission id="bob-w" kind="write" object-type="nvpair" attribute="value"/><acl_permission id="bob-d" kind="deny" reference="d"/></acl_role>"#,
        ]
    );
    assert!(
        o.notes.iter().any(|n| n == "dropped cluster option 'expected-quorum-votes': corosync tracks quorum votes itself"),
        "{:#?}",
        o.notes
    );
    assert_eq!(
        o.notes.last().map(String::as_str),
        Some("validate-with pacemaker-1.2 is now pacemaker-3.10")
    );
}

// ---------------------------------------------------------------------------
// Existing problems, determinism, bounds.

#[test]
fn a_broken_cib_accepts_unrelated_changes_and_fixes() {
    let broken = CIB.replace(
        "</constraints>",
        r#"  <rsc_order id="bad" first="ip" then="ghost"/>
    </constraints>"#,
    );
    let mut d = Document::parse(&broken).unwrap();
    assert_eq!(errors(&d).len(), 1);
    run(
        &mut d,
        modify(None, r#"<nvpair id="ip-stickiness" value="30"/>"#),
    );
    run(&mut d, Op::Bump);
    // A second broken constraint is refused, naming only the new problem.
    let e = refuse(
        &mut d,
        xml_op(
            Section::Constraints,
            r#"<rsc_order id="worse" first="ghost2" then="ip"/>"#,
        ),
    );
    let OpError::Invalid { diagnostics } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(diagnostics.len(), 1, "{e}");
    assert_eq!(diagnostics[0].id.as_deref(), Some("worse"));
    // The fix.
    run(
        &mut d,
        Op::Delete {
            section: Some(Section::Constraints),
            xml: r#"<rsc_order id="bad"/>"#.into(),
        },
    );
    assert_eq!(errors(&d), Vec::<String>::new());
}

#[test]
fn same_operations_give_the_same_bytes() {
    let ops = vec![
        xml_op(
            Section::Resources,
            r#"<primitive id="db" class="ocf" provider="heartbeat" type="pgsql"/>"#,
        ),
        modify(None, r#"<nvpair id="ip-stickiness" value="value+=7"/>"#),
        xml_op(
            Section::Constraints,
            r#"<rsc_colocation id="col-db" rsc="db" with-rsc="ip" score="-INFINITY"/>"#,
        ),
        xml_op(
            Section::Constraints,
            r#"<rsc_order id="bad" first="nope" then="ip"/>"#,
        ),
        Op::DeleteXpath {
            xpath: "//lrm_rsc_op".into(),
            all_matches: true,
        },
        Op::Replace {
            section: Some(Section::Resources),
            xpath: None,
            xml: r#"<primitive id="httpd" class="ocf" provider="heartbeat" type="nginx"/>"#.into(),
        },
        Op::Bump,
        Op::Upgrade,
        modify(None, r#"<cib admin_epoch="admin_epoch++"/>"#),
    ];
    let original = cib();
    let mut a = original.clone();
    let mut b = original.clone();
    let results_a: Vec<_> = ops.iter().map(|op| apply(&mut a, op, &ctx())).collect();
    let results_b: Vec<_> = ops.iter().map(|op| apply(&mut b, op, &ctx())).collect();
    assert_eq!(results_a, results_b);
    assert_eq!(a.to_xml(), b.to_xml());
    assert!(
        results_a[3].is_err(),
        "the dangling order is refused on both"
    );
    // 1.12.4, create 1.13.0, modify 1.14.0, create 1.15.0, (refused),
    // status delete 1.15.1, replace 1.16.0, bump 1.17.1, upgrade 2.1.2,
    // admin_epoch++ 3.1.3.
    assert_eq!(ver(&a), "3.1.3");
    assert_ne!(a.to_xml(), original.to_xml());
}

#[test]
fn absurd_inputs_are_refused() {
    let mut d = cib();
    let big = format!(
        "<primitive id=\"x\" description=\"{}\"/>",
        "x".repeat(MAX_XML_BYTES)
    );
    let e = refuse(&mut d, xml_op(Section::Resources, &big));
    assert!(matches!(e, OpError::TooLarge { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("more than the limit of 16777216 bytes"),
        "{e}"
    );

    let deep = format!(
        "{}{}",
        "<a>".repeat(MAX_XML_DEPTH + 1),
        "</a>".repeat(MAX_XML_DEPTH + 1)
    );
    let e = refuse(&mut d, xml_op(Section::Resources, &deep));
    assert_eq!(
        e.to_string(),
        "the XML argument nests elements more than 64 levels deep"
    );
    // Just within the limit is fine (unknown elements are kept).
    let ok_depth = format!(
        "{}{}",
        "<a>".repeat(MAX_XML_DEPTH),
        "</a>".repeat(MAX_XML_DEPTH)
    );
    let mut copy = d.clone();
    run(&mut copy, xml_op(Section::Resources, &ok_depth));
    assert_eq!(
        ids(&copy, "/cib/configuration/resources/a//a").len(),
        MAX_XML_DEPTH - 1
    );

    let e = refuse(
        &mut d,
        xml_op(
            Section::Resources,
            "<primitive id=\"x\">\n<oops></primitive>",
        ),
    );
    assert!(matches!(e, OpError::BadXml(_)), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("the XML argument is not well-formed: 2:"),
        "{e}"
    );

    let long = format!("//{}", "a".repeat(5000));
    let e = refuse(&mut d, q(&long));
    assert!(e.to_string().contains("characters long"), "{e}");
}

// ---------------------------------------------------------------------------
// The corpus.

fn corpus_dir() -> Option<PathBuf> {
    vigil_testkit::corpus_dir()
}

#[test]
fn corpus_cibs_answer_queries_bump_and_upgrade() {
    let Some(dir) = corpus_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("xml"))
        .expect("the corpus xml directory is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CIBs in {}", dir.display());
    let context = ctx();
    let mut failures = Vec::new();
    let mut upgraded = 0;
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let Ok(doc) = Document::parse(&text) else {
            failures.push(format!("{name}: not well-formed"));
            continue;
        };
        let mut fail = |m: String| failures.push(format!("{name}: {m}"));

        // XPath agrees with a walk of the tree.
        let primitives = doc
            .root
            .descendants()
            .filter(|e| e.name == "primitive")
            .count();
        let with_id = doc
            .root
            .descendants()
            .filter(|e| e.attr("id").is_some())
            .count();
        for (xpath, want) in [("//primitive", primitives), ("//*[@id]", with_id)] {
            let mut copy = doc.clone();
            let got = match apply(&mut copy, &q(xpath), &context) {
                Ok(o) => o.result.len(),
                Err(OpError::NoMatch { .. }) => 0,
                Err(e) => {
                    fail(format!("{xpath}: {e}"));
                    continue;
                }
            };
            if got != want {
                fail(format!(
                    "{xpath} selects {got} elements, the tree has {want}"
                ));
            }
        }

        // Bump works on every CIB, broken ones included, identically twice.
        let mut a = doc.clone();
        let mut b = doc.clone();
        let before = version(&doc.root);
        match (
            apply(&mut a, &Op::Bump, &context),
            apply(&mut b, &Op::Bump, &context),
        ) {
            (Ok(o), Ok(_)) => {
                if o.version.epoch != before.epoch + 1 || a.to_xml() != b.to_xml() {
                    fail(format!("bump gave {} from {before}", o.version));
                }
            }
            (Err(e), _) | (_, Err(e)) => fail(format!("bump: {e}")),
        }

        // Clearing the status history is a status change.
        let mut c = doc.clone();
        match apply(
            &mut c,
            &Op::DeleteXpath {
                xpath: "/cib/status/node_state/lrm".into(),
                all_matches: true,
            },
            &context,
        ) {
            Ok(o) if o.change == Change::Configuration => {
                fail("clearing lrm changed the configuration".into())
            }
            Ok(_) => {}
            Err(e) => fail(format!("clearing lrm: {e}")),
        }

        // Older schemas upgrade without new errors.
        let schema = doc.root.attr("validate-with").unwrap_or_default();
        if schema.starts_with("pacemaker-1.") || schema.starts_with("pacemaker-2.") {
            let mut u = doc.clone();
            match apply(&mut u, &Op::Upgrade, &context) {
                Ok(_) if u.root.attr("validate-with") == Some(NEWEST_SCHEMA) => upgraded += 1,
                Ok(o) => fail(format!("upgrade left validate-with: {:?}", o.notes)),
                Err(e) => fail(format!("upgrade: {e}")),
            }
        }
    }
    eprintln!(
        "{} corpus CIBs, {upgraded} upgraded from 1.x/2.x",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_batch_applies_all_or_nothing_with_one_version_step() {
    let mut cib = Document::parse(
        "<cib admin_epoch=\"0\" epoch=\"3\" num_updates=\"7\"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>",
    )
    .unwrap();
    let state = |id: &str, v: &str| Op::Modify {
        section: Some(Section::Status),
        xml: format!("<node_state id=\"{id}\" uname=\"n{id}\" in_ccm=\"{v}\"/>"),
        create_if_missing: true,
    };
    let out = apply(
        &mut cib,
        &Op::Batch {
            ops: vec![state("1", "true"), state("2", "true"), state("1", "false")],
        },
        &Context::default(),
    )
    .unwrap();
    assert_eq!(out.change, Change::Status);
    assert_eq!(out.version.to_string(), "0.3.8");
    let xml = cib.root.to_xml();
    assert!(
        xml.contains("id=\"1\" uname=\"n1\" in_ccm=\"false\""),
        "{xml}"
    );
    assert!(xml.contains("id=\"2\""), "{xml}");
    // One bad change refuses the whole batch.
    let before = cib.clone();
    let err = apply(
        &mut cib,
        &Op::Batch {
            ops: vec![
                state("3", "true"),
                Op::Create {
                    section: Section::Status,
                    xml: "<node_state id=\"1\" uname=\"n1\"/>".into(),
                },
            ],
        },
        &Context::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(cib, before);
    let err = apply(
        &mut cib,
        &Op::Batch {
            ops: vec![Op::Query {
                xpath: None,
                section: None,
            }],
        },
        &Context::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("batch"), "{err}");
}
