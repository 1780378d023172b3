//! ACLs on a realistic CIB: what each user reads, which changes each may
//! make, and (when Pacemaker's `cibadmin` is installed) the same answers from
//! Pacemaker itself, which filters and checks a CIB file offline with
//! `CIB_file=... CIB_user=... cibadmin --query` / `--replace`.
//!
//! The users:
//! - alice: reads everything but passwords and failed operations with an
//!   exit reason (a deny by `object-type` and `attribute`); writes nothing;
//! - bob: reads everything, writes only the `web-server` resource (by
//!   `reference`);
//! - carol: no `acl_target`; reads everything but the status through the
//!   `acl_group` auditors;
//! - dave (`acl_target` with `name`): writes everything but the ACLs, which
//!   he may not even read;
//! - erin: writes the resources, but not the fencing device's parameters;
//! - frank: reads only `web-server`;
//! - hank: reads everything, and has both write and deny on `web-server`;
//! - olga: reads everything, writes the `target-role` meta-attributes (an
//!   XPath testing an attribute);
//! - mallory: nothing at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use vigil_cib::acl::{AclError, Acls, Refused};
use vigil_cib::ops::{self, Context, Op, Section};
use vigil_cib::xml::{Document, Element, Node};
use vigil_cib::xpath;

const CIB: &str = r#"<cib validate-with="pacemaker-3.9" crm_feature_set="3.11.0" epoch="42" num_updates="7" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-enable-acl" name="enable-acl" value="true"/>
        <nvpair id="cib-bootstrap-options-cluster-name" name="cluster-name" value="prod"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="node1">
        <instance_attributes id="node1-attrs">
          <nvpair id="node1-standby" name="standby" value="off"/>
        </instance_attributes>
      </node>
      <node id="2" uname="node2"/>
    </nodes>
    <resources>
      <primitive id="fence-ipmi" class="stonith" type="fence_ipmilan">
        <instance_attributes id="fence-ipmi-params">
          <nvpair id="fence-ipmi-ip" name="ip" value="10.0.0.100"/>
          <nvpair id="fence-ipmi-password" name="password" value="s3cret"/>
        </instance_attributes>
      </primitive>
      <group id="web">
        <primitive id="web-ip" class="ocf" provider="heartbeat" type="IPaddr2">
          <instance_attributes id="web-ip-params">
            <nvpair id="web-ip-ip" name="ip" value="192.168.1.10"/>
          </instance_attributes>
          <operations>
            <op id="web-ip-monitor" name="monitor" interval="10s"/>
          </operations>
        </primitive>
        <primitive id="web-server" class="ocf" provider="heartbeat" type="apache">
          <instance_attributes id="web-server-params">
            <nvpair id="web-server-config" name="configfile" value="/etc/httpd/conf/httpd.conf"/>
          </instance_attributes>
          <meta_attributes id="web-server-meta">
            <nvpair id="web-server-target-role" name="target-role" value="Started"/>
          </meta_attributes>
          <operations>
            <op id="web-server-monitor" name="monitor" interval="30s"/>
          </operations>
        </primitive>
      </group>
      <primitive id="db" class="ocf" provider="heartbeat" type="pgsql">
        <instance_attributes id="db-params">
          <nvpair id="db-password" name="password" value="hunter2"/>
        </instance_attributes>
        <meta_attributes id="db-meta-attrs">
          <nvpair id="db-is-managed" name="is-managed" value="true"/>
        </meta_attributes>
      </primitive>
    </resources>
    <constraints>
      <rsc_location id="web-prefers-node1" rsc="web" node="node1" score="100"/>
      <rsc_order id="db-before-web" first="db" then="web"/>
    </constraints>
    <acls>
      <acl_role id="read-all" description="everything, read-only">
        <acl_permission id="read-all-cib" kind="read" xpath="/cib"/>
      </acl_role>
      <acl_role id="no-secrets">
        <acl_permission id="no-secrets-passwords" kind="deny" xpath="//nvpair[@name='password']"/>
      </acl_role>
      <acl_role id="hide-failures">
        <acl_permission id="hide-failures-reasons" kind="deny" object-type="lrm_rsc_op" attribute="exit-reason"/>
      </acl_role>
      <acl_role id="hide-status">
        <acl_permission id="hide-status-all" kind="deny" xpath="/cib/status"/>
      </acl_role>
      <acl_role id="web-operator">
        <acl_permission id="web-operator-server" kind="write" reference="web-server"/>
      </acl_role>
      <acl_role id="web-freeze">
        <acl_permission id="web-freeze-server" kind="deny" reference="web-server"/>
      </acl_role>
      <acl_role id="web-viewer">
        <acl_permission id="web-viewer-server" kind="read" reference="web-server"/>
      </acl_role>
      <acl_role id="operator">
        <acl_permission id="operator-target-role" kind="write" xpath="//meta_attributes/nvpair[@name='target-role']"/>
      </acl_role>
      <acl_role id="admin">
        <acl_permission id="admin-all" kind="write" xpath="/cib"/>
        <acl_permission id="admin-not-acls" kind="deny" xpath="/cib/configuration/acls"/>
      </acl_role>
      <acl_role id="fence-guard">
        <acl_permission id="fence-guard-resources" kind="write" object-type="resources"/>
        <acl_permission id="fence-guard-params" kind="deny" reference="fence-ipmi-params"/>
      </acl_role>
      <acl_target id="alice">
        <role id="read-all"/>
        <role id="no-secrets"/>
        <role id="hide-failures"/>
      </acl_target>
      <acl_target id="bob">
        <role id="read-all"/>
        <role id="web-operator"/>
      </acl_target>
      <acl_target id="dave-user" name="dave">
        <role id="admin"/>
      </acl_target>
      <acl_target id="erin">
        <role id="read-all"/>
        <role id="fence-guard"/>
      </acl_target>
      <acl_target id="frank">
        <role id="web-viewer"/>
      </acl_target>
      <acl_target id="hank">
        <role id="read-all"/>
        <role id="web-operator"/>
        <role id="web-freeze"/>
      </acl_target>
      <acl_target id="olga">
        <role id="read-all"/>
        <role id="operator"/>
      </acl_target>
      <acl_group id="auditors">
        <role id="read-all"/>
        <role id="hide-status"/>
      </acl_group>
    </acls>
  </configuration>
  <status>
    <node_state id="1" uname="node1" in_ccm="true" crmd="online" join="member" expected="member">
      <transient_attributes id="1">
        <instance_attributes id="status-1">
          <nvpair id="status-1-fail-count-db" name="fail-count-db#start_0" value="1"/>
        </instance_attributes>
      </transient_attributes>
      <lrm id="1">
        <lrm_resources>
          <lrm_resource id="db" class="ocf" provider="heartbeat" type="pgsql">
            <lrm_rsc_op id="db_last_failure_0" operation_key="db_start_0" operation="start" crm-debug-origin="do_update_resource" crm_feature_set="3.11.0" transition-key="3:1:0:6f1c1c36-1d5c-4a5f-9d2b-1d9c0f0e6a11" transition-magic="0:1;3:1:0:6f1c1c36-1d5c-4a5f-9d2b-1d9c0f0e6a11" exit-reason="password authentication failed for user postgres" on_node="node1" call-id="12" rc-code="1" op-status="0" interval="0" last-rc-change="1700000000" exec-time="120" queue-time="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/>
            <lrm_rsc_op id="db_last_0" operation_key="db_stop_0" operation="stop" crm-debug-origin="do_update_resource" crm_feature_set="3.11.0" transition-key="4:2:0:6f1c1c36-1d5c-4a5f-9d2b-1d9c0f0e6a11" transition-magic="0:0;4:2:0:6f1c1c36-1d5c-4a5f-9d2b-1d9c0f0e6a11" on_node="node1" call-id="13" rc-code="0" op-status="0" interval="0" last-rc-change="1700000010" exec-time="20" queue-time="0" op-digest="f2317cad3d54cec5d7d7aa7d0bf35cf8"/>
          </lrm_resource>
        </lrm_resources>
      </lrm>
    </node_state>
    <node_state id="2" uname="node2" in_ccm="true" crmd="online" join="member" expected="member"/>
  </status>
</cib>
"#;

const RESOURCES: &str = "/cib/configuration/resources";
const WEB_SERVER: &str =
    "/cib/configuration/resources/group[@id='web']/primitive[@id='web-server']";

fn cib() -> Element {
    Document::parse(CIB).unwrap().root
}

fn no_groups() -> Vec<String> {
    Vec::new()
}

/// Every element `path` selects in `root`.
#[track_caller]
fn select(root: &Element, path: &str) -> Vec<Vec<usize>> {
    let found = xpath::compile(path).unwrap().select(root).unwrap();
    assert!(!found.is_empty(), "{path} selects nothing");
    found
}

/// `root` with `f` applied to every element `path` selects.
#[track_caller]
fn edit(root: &Element, path: &str, f: impl Fn(&mut Element)) -> Element {
    let mut t = root.clone();
    for p in select(root, path) {
        f(xpath::element_at_mut(&mut t, &p).unwrap());
    }
    t
}

#[track_caller]
fn set(root: &Element, path: &str, name: &str, value: &str) -> Element {
    edit(root, path, |e| e.set_attr(name, value))
}

/// `root` without the elements `path` selects.
#[track_caller]
fn remove(root: &Element, path: &str) -> Element {
    let mut t = root.clone();
    for p in select(root, path).iter().rev() {
        xpath::remove_at(&mut t, p).unwrap();
    }
    t
}

/// `root` with `xml` appended to the element `path` selects.
#[track_caller]
fn append(root: &Element, path: &str, xml: &str) -> Element {
    let child = Document::parse(xml).unwrap().root;
    edit(root, path, |e| {
        e.push(child.clone());
    })
}

/// `e` without white-space-only text.
fn norm(e: &Element) -> Element {
    let mut e = e.clone();
    e.children
        .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
    for c in e.children.iter_mut() {
        if let Node::Element(c) = c {
            *c = norm(c);
        }
    }
    e
}

// ---------------------------------------------------------------------------
// Pacemaker, when installed.

fn cibadmin_available() -> bool {
    match Command::new("cibadmin").arg("--version").output() {
        Ok(o) if o.status.success() => true,
        _ => {
            eprintln!("SKIP: cibadmin (pacemaker-cli-utils) is not installed; no cross-check");
            assert!(
                std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
                "cibadmin (pacemaker-cli-utils) is required for the cross-check (VIGIL_REQUIRE_ALL is set)"
            );
            false
        }
    }
}

fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vigil-acl-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, e: &Element) {
    std::fs::write(path, Document::new(e.clone()).to_xml()).unwrap();
}

/// What Pacemaker shows `user` of `cib`: `None` for "Permission denied".
fn pacemaker_view(cib: &Element, user: &str) -> Option<Element> {
    let dir = scratch_dir();
    let file = dir.join("cib.xml");
    write(&file, cib);
    let out = Command::new("cibadmin")
        .arg("--query")
        .env("CIB_file", &file)
        .env("CIB_user", user)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        let text = String::from_utf8(out.stdout).unwrap();
        Some(Document::parse(&text).unwrap().root)
    } else if stderr.contains("Permission denied") {
        None
    } else {
        panic!("cibadmin --query as {user} failed: {stderr}");
    }
}

/// Whether Pacemaker lets `user` replace `old` with `new` (`what`).
fn pacemaker_allows(old: &Element, new: &Element, user: &str, what: &str) -> bool {
    let dir = scratch_dir();
    let file = dir.join("cib.xml");
    let new_file = dir.join("new.xml");
    write(&file, old);
    write(&new_file, new);
    let out = Command::new("cibadmin")
        .arg("--replace")
        .arg("--xml-file")
        .arg(&new_file)
        .env("CIB_file", &file)
        .env("CIB_user", user)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        true
    } else if stderr.contains("Permission denied") {
        false
    } else if stderr.contains("does not conform to the configured schema") {
        // Pacemaker checks ACLs before the schema (`cib__perform_op_rw`):
        // the ACLs let it through (deleting web-server leaves an ACL
        // reference dangling).
        true
    } else {
        panic!("{what}: cibadmin --replace as {user} failed for another reason: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// Reads.

#[test]
fn the_acls_are_read_without_complaint() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    assert!(acls.enabled());
    assert!(acls.diagnostics().is_empty(), "{:?}", acls.diagnostics());
    let ids: Vec<&str> = acls
        .permissions_of("carol", &["auditors".into()])
        .iter()
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(ids, ["read-all-cib", "hide-status-all"]);
    assert!(acls.permissions_of("carol", &no_groups()).is_empty());
    // `name` wins over `id` for a target.
    assert_eq!(acls.permissions_of("dave", &no_groups()).len(), 2);
    assert!(acls.permissions_of("dave-user", &no_groups()).is_empty());
}

/// What each user may read, exactly.
fn expected_views(root: &Element) -> Vec<(&'static str, Option<Element>)> {
    let alice = remove(
        &remove(root, "//nvpair[@name='password']"),
        "//lrm_rsc_op[@exit-reason]",
    );
    let dave = remove(root, "/cib/configuration/acls");
    let erin = remove(root, "//instance_attributes[@id='fence-ipmi-params']");
    let hank = remove(root, WEB_SERVER);
    // Only web-server, below skeletons of its ancestors: their names and
    // ids, nothing else.
    let web_server = xpath::compile(WEB_SERVER)
        .unwrap()
        .select_elements(root)
        .unwrap()[0]
        .clone();
    let mut frank = Document::parse(
        "<cib><configuration><resources><group id=\"web\"/></resources></configuration></cib>",
    )
    .unwrap()
    .root;
    xpath::element_at_mut(&mut frank, &[0, 0, 0])
        .unwrap()
        .push(web_server);
    vec![
        ("alice", Some(alice)),
        ("bob", Some(root.clone())),
        ("dave", Some(dave)),
        ("dave-user", None),
        ("erin", Some(erin)),
        ("frank", Some(frank)),
        ("hank", Some(hank)),
        ("mallory", None),
        ("root", Some(root.clone())),
        ("hacluster", Some(root.clone())),
    ]
}

#[test]
fn each_user_reads_what_their_acls_allow() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    for (user, expected) in expected_views(&root) {
        let seen = acls.filter_read(&root, user, &no_groups());
        match (&seen, &expected) {
            (Some(s), Some(e)) if user == "frank" => {
                assert_eq!(norm(s), norm(e), "{user} sees:\n{}", s.to_xml())
            }
            (Some(s), Some(e)) => assert_eq!(s, e, "{user} sees:\n{}", s.to_xml()),
            (None, None) => {}
            _ => panic!(
                "{user}: expected {:?}, got {:?}",
                expected.map(|e| e.to_xml()),
                seen.map(|e| e.to_xml())
            ),
        }
    }
}

#[test]
fn skeletons_keep_only_names_and_ids() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    let seen = acls.filter_read(&root, "frank", &no_groups()).unwrap();
    assert!(seen.attrs.is_empty(), "{:?}", seen.attrs);
    let group = xpath::element_at(&seen, &[0, 0, 0]).unwrap();
    assert_eq!(group.attrs, vec![("id".to_string(), "web".to_string())]);
    assert!(seen.child("status").is_none());
    let text = seen.to_xml();
    assert!(text.contains("type=\"apache\""), "{text}");
    assert!(!text.contains("IPaddr2"), "{text}");
}

#[test]
fn groups_give_their_roles() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    let auditors = vec!["wheel".to_string(), "auditors".to_string()];
    let seen = acls.filter_read(&root, "carol", &auditors).unwrap();
    assert_eq!(seen, remove(&root, "/cib/status"));
    assert!(acls.filter_read(&root, "carol", &no_groups()).is_none());
    assert!(
        acls.filter_read(&root, "carol", &["wheel".to_string()])
            .is_none()
    );
    // A group's roles add to a user's own.
    let seen = acls.filter_read(&root, "frank", &auditors).unwrap();
    assert_eq!(seen, remove(&root, "/cib/status"));
    // The auditors read but do not write.
    let changed = set(
        &root,
        "//nvpair[@id='web-server-target-role']",
        "value",
        "Stopped",
    );
    let e = acls
        .check_write(&root, &changed, "carol", &auditors)
        .unwrap_err();
    assert!(e.reason.contains("only read"), "{e}");
}

#[test]
fn reads_agree_with_pacemaker() {
    if !cibadmin_available() {
        return;
    }
    let root = cib();
    let acls = Acls::from_cib(&root);
    for (user, _) in expected_views(&root) {
        let ours = acls.filter_read(&root, user, &no_groups());
        let theirs = pacemaker_view(&root, user);
        assert_eq!(
            ours.as_ref().map(norm),
            theirs.as_ref().map(norm),
            "{user}: ours\n{}\nPacemaker's\n{}",
            ours.map(|e| e.to_xml()).unwrap_or_default(),
            theirs.map(|e| e.to_xml()).unwrap_or_default()
        );
    }
}

// ---------------------------------------------------------------------------
// Writes.

/// What a scenario expects: allowed, or refused at a path for a reason.
#[derive(Debug)]
enum Expect {
    Ok,
    Refused {
        path: String,
        refused: Refused,
        reason_has: &'static str,
    },
}

struct Scenario {
    user: &'static str,
    what: &'static str,
    new: Element,
    expect: Expect,
    /// Whether Pacemaker agrees (false: a documented deviation).
    pacemaker_agrees: bool,
}

fn refused(path: &str, refused: Refused, reason_has: &'static str) -> Expect {
    Expect::Refused {
        path: path.to_string(),
        refused,
        reason_has,
    }
}

fn change(attrs: &[&str]) -> Refused {
    Refused::Change {
        attributes: attrs.iter().map(|s| s.to_string()).collect(),
    }
}

fn scenarios(root: &Element) -> Vec<Scenario> {
    let target_role = "//nvpair[@id='web-server-target-role']";
    let web_ip_ip = format!(
        "{RESOURCES}/group[@id='web']/primitive[@id='web-ip']/instance_attributes[@id='web-ip-params']/nvpair[@id='web-ip-ip']"
    );
    let enable_acl = "/cib/configuration/crm_config/cluster_property_set[@id='cib-bootstrap-options']/nvpair[@id='cib-bootstrap-options-enable-acl']";
    let fence_params = format!(
        "{RESOURCES}/primitive[@id='fence-ipmi']/instance_attributes[@id='fence-ipmi-params']"
    );
    let s = |user, what, new, expect| Scenario {
        user,
        what,
        new,
        expect,
        pacemaker_agrees: true,
    };
    let deviation = |user, what, new, expect| Scenario {
        user,
        what,
        new,
        expect,
        pacemaker_agrees: false,
    };
    vec![
        // bob: web-server and nothing else.
        s(
            "bob",
            "set web-server's target-role",
            set(root, target_role, "value", "Stopped"),
            Expect::Ok,
        ),
        s(
            "bob",
            "add a meta-attribute to web-server",
            append(
                root,
                "//meta_attributes[@id='web-server-meta']",
                "<nvpair id=\"web-server-stickiness\" name=\"resource-stickiness\" value=\"100\"/>",
            ),
            Expect::Ok,
        ),
        s(
            "bob",
            "add an operation to web-server",
            append(
                root,
                "//primitive[@id='web-server']/operations",
                "<op id=\"web-server-start\" name=\"start\" interval=\"0\" timeout=\"60s\"/>",
            ),
            Expect::Ok,
        ),
        s(
            "bob",
            "remove web-server's meta-attributes",
            remove(root, "//meta_attributes[@id='web-server-meta']"),
            Expect::Ok,
        ),
        s(
            "bob",
            "remove an attribute of web-server",
            edit(root, "//primitive[@id='web-server']", |e| {
                e.remove_attr("provider");
                e.set_attr("class", "systemd");
                e.set_attr("type", "httpd");
            }),
            Expect::Ok,
        ),
        s(
            "bob",
            "delete web-server",
            remove(root, "//primitive[@id='web-server']"),
            Expect::Ok,
        ),
        s(
            "bob",
            "change web-ip's address",
            set(root, "//nvpair[@id='web-ip-ip']", "value", "192.168.1.11"),
            refused(&web_ip_ip, change(&["value"]), "only read"),
        ),
        s(
            "bob",
            "create a resource",
            append(
                root,
                RESOURCES,
                "<primitive id=\"mail\" class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\"/>",
            ),
            refused(
                &format!("{RESOURCES}/primitive[@id='mail']"),
                Refused::Create,
                "grants write access",
            ),
        ),
        s(
            "bob",
            "delete db",
            remove(root, "//primitive[@id='db']"),
            refused(
                &format!("{RESOURCES}/primitive[@id='db']"),
                Refused::Delete,
                "grants write access",
            ),
        ),
        s(
            "bob",
            "add empty meta_attributes (scaffolding) to db",
            append(
                root,
                "//primitive[@id='db']",
                "<meta_attributes id=\"db-meta\"/>",
            ),
            Expect::Ok,
        ),
        s(
            "bob",
            "add meta_attributes with an nvpair to db",
            append(
                root,
                "//primitive[@id='db']",
                "<meta_attributes id=\"db-meta\"><nvpair id=\"db-meta-tr\" name=\"target-role\" value=\"Stopped\"/></meta_attributes>",
            ),
            refused(
                &format!(
                    "{RESOURCES}/primitive[@id='db']/meta_attributes[@id='db-meta']/nvpair[@id='db-meta-tr']"
                ),
                Refused::Create,
                "grants write access",
            ),
        ),
        s(
            "bob",
            "disable ACLs",
            set(root, enable_acl, "value", "false"),
            refused(enable_acl, change(&["value"]), "grants write access"),
        ),
        s(
            "bob",
            "clear a fail count in the status",
            remove(root, "//nvpair[@id='status-1-fail-count-db']"),
            refused(
                "/cib/status/node_state[@id='1']/transient_attributes[@id='1']/instance_attributes[@id='status-1']/nvpair[@id='status-1-fail-count-db']",
                Refused::Delete,
                "grants write access",
            ),
        ),
        deviation(
            "bob",
            "put web-server before web-ip in the group",
            edit(root, "//group[@id='web']", |g| g.children.reverse()),
            refused(
                &format!("{RESOURCES}/group[@id='web']"),
                Refused::Reorder,
                "grants write access",
            ),
        ),
        s(
            "bob",
            "drop the location constraint's score",
            edit(root, "//rsc_location", |e| {
                e.remove_attr("score");
            }),
            refused(
                "/cib/configuration/constraints/rsc_location[@id='web-prefers-node1']",
                change(&["score"]),
                "grants write access",
            ),
        ),
        // olga: target-role meta-attributes, wherever they are.
        s(
            "olga",
            "stop web-server",
            set(root, target_role, "value", "Stopped"),
            Expect::Ok,
        ),
        s(
            "olga",
            "stop db by adding a target-role",
            append(
                root,
                "//meta_attributes[@id='db-meta-attrs']",
                "<nvpair id=\"db-target-role\" name=\"target-role\" value=\"Stopped\"/>",
            ),
            Expect::Ok,
        ),
        s(
            "olga",
            "unmanage db",
            set(root, "//nvpair[@id='db-is-managed']", "value", "false"),
            refused(
                &format!(
                    "{RESOURCES}/primitive[@id='db']/meta_attributes[@id='db-meta-attrs']/nvpair[@id='db-is-managed']"
                ),
                change(&["value"]),
                "only read",
            ),
        ),
        deviation(
            "olga",
            "turn is-managed into a target-role she may write",
            edit(root, "//nvpair[@id='db-is-managed']", |e| {
                e.set_attr("name", "target-role");
                e.set_attr("value", "Stopped");
            }),
            refused(
                &format!(
                    "{RESOURCES}/primitive[@id='db']/meta_attributes[@id='db-meta-attrs']/nvpair[@id='db-is-managed']"
                ),
                change(&["name", "value"]),
                "only read",
            ),
        ),
        // alice: read-only.
        s(
            "alice",
            "set web-server's target-role",
            set(root, target_role, "value", "Stopped"),
            refused(
                &format!(
                    "{WEB_SERVER}/meta_attributes[@id='web-server-meta']/nvpair[@id='web-server-target-role']"
                ),
                change(&["value"]),
                "'read-all-cib' of role 'read-all' lets them only read it",
            ),
        ),
        // dave: everything but the ACLs.
        s(
            "dave",
            "set web-server's target-role",
            set(root, target_role, "value", "Stopped"),
            Expect::Ok,
        ),
        s(
            "dave",
            "disable ACLs",
            set(root, enable_acl, "value", "false"),
            Expect::Ok,
        ),
        s(
            "dave",
            "give mallory a role",
            append(
                root,
                "/cib/configuration/acls",
                "<acl_target id=\"mallory\"><role id=\"admin\"/></acl_target>",
            ),
            refused(
                "/cib/configuration/acls/acl_target[@id='mallory']",
                Refused::Create,
                "'admin-not-acls' (kind deny, role 'admin') applies to /cib/configuration/acls",
            ),
        ),
        s(
            "dave",
            "weaken his own role",
            set(
                root,
                "//acl_permission[@id='admin-not-acls']",
                "kind",
                "read",
            ),
            refused(
                "/cib/configuration/acls/acl_role[@id='admin']/acl_permission[@id='admin-not-acls']",
                change(&["kind"]),
                "admin-not-acls",
            ),
        ),
        s(
            "dave-user",
            "set web-server's target-role (the target's id is not the user)",
            set(root, target_role, "value", "Stopped"),
            refused(
                &format!(
                    "{WEB_SERVER}/meta_attributes[@id='web-server-meta']/nvpair[@id='web-server-target-role']"
                ),
                change(&["value"]),
                "has no permissions",
            ),
        ),
        // erin: the resources, but not the fencing parameters.
        s(
            "erin",
            "set db's password",
            set(
                root,
                "//nvpair[@id='db-password']",
                "value",
                "correct horse",
            ),
            Expect::Ok,
        ),
        s(
            "erin",
            "change the fencing device's address",
            set(root, "//nvpair[@id='fence-ipmi-ip']", "value", "10.0.0.101"),
            refused(
                &format!("{fence_params}/nvpair[@id='fence-ipmi-ip']"),
                change(&["value"]),
                "'fence-guard-params' (kind deny, role 'fence-guard') applies to /cib/configuration/resources/primitive[@id='fence-ipmi']/instance_attributes[@id='fence-ipmi-params']",
            ),
        ),
        s(
            "erin",
            "change the fencing agent",
            set(
                root,
                "//primitive[@id='fence-ipmi']",
                "type",
                "fence_ipmilanplus",
            ),
            Expect::Ok,
        ),
        s(
            "erin",
            "delete the fencing parameters",
            remove(root, "//instance_attributes[@id='fence-ipmi-params']"),
            refused(&fence_params, Refused::Delete, "applies to it"),
        ),
        deviation(
            "erin",
            "delete the fencing device with its parameters",
            remove(root, "//primitive[@id='fence-ipmi']"),
            refused(&fence_params, Refused::Delete, "applies to it"),
        ),
        s(
            "erin",
            "change a constraint",
            set(root, "//rsc_location", "score", "200"),
            refused(
                "/cib/configuration/constraints/rsc_location[@id='web-prefers-node1']",
                change(&["score"]),
                "grants write access",
            ),
        ),
        // hank: write and deny on web-server: deny wins.
        s(
            "hank",
            "set web-server's target-role",
            set(root, target_role, "value", "Stopped"),
            refused(
                &format!(
                    "{WEB_SERVER}/meta_attributes[@id='web-server-meta']/nvpair[@id='web-server-target-role']"
                ),
                change(&["value"]),
                "'web-freeze-server' (kind deny, role 'web-freeze')",
            ),
        ),
        // mallory: nothing.
        s(
            "mallory",
            "set web-server's target-role",
            set(root, target_role, "value", "Stopped"),
            refused(
                &format!(
                    "{WEB_SERVER}/meta_attributes[@id='web-server-meta']/nvpair[@id='web-server-target-role']"
                ),
                change(&["value"]),
                "has no permissions",
            ),
        ),
        deviation(
            "mallory",
            "add empty meta_attributes (scaffolding) to db",
            append(
                root,
                "//primitive[@id='db']",
                "<meta_attributes id=\"db-meta\"/>",
            ),
            refused(
                &format!("{RESOURCES}/primitive[@id='db']/meta_attributes[@id='db-meta']"),
                Refused::Create,
                "has no permissions",
            ),
        ),
        // The superusers: anything.
        s(
            "root",
            "give mallory a role",
            append(
                root,
                "/cib/configuration/acls",
                "<acl_target id=\"mallory\"><role id=\"admin\"/></acl_target>",
            ),
            Expect::Ok,
        ),
        s(
            "hacluster",
            "delete db's failure history",
            remove(root, "//lrm_rsc_op[@id='db_last_failure_0']"),
            Expect::Ok,
        ),
    ]
}

#[track_caller]
fn check(acls: &Acls, old: &Element, sc: &Scenario) {
    let got = acls.check_write(old, &sc.new, sc.user, &no_groups());
    match (&sc.expect, &got) {
        (Expect::Ok, Ok(())) => {}
        (
            Expect::Refused {
                path,
                refused,
                reason_has,
            },
            Err(AclError {
                user,
                path: p,
                refused: r,
                reason,
            }),
        ) => {
            let e = got.as_ref().unwrap_err();
            assert_eq!(user, sc.user, "{}: {e}", sc.what);
            assert_eq!(p, path, "{} ({}): {e}", sc.what, sc.user);
            assert_eq!(r, refused, "{} ({}): {e}", sc.what, sc.user);
            assert!(
                reason.contains(reason_has),
                "{} ({}): the reason does not say {reason_has:?}: {e}",
                sc.what,
                sc.user
            );
        }
        _ => panic!(
            "{} ({}): expected {:?}, got {:?}",
            sc.what, sc.user, sc.expect, got
        ),
    }
}

#[test]
fn writes_are_allowed_and_refused_exactly() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    for sc in scenarios(&root) {
        check(&acls, &root, &sc);
        // No change is never refused.
        assert!(
            acls.check_write(&root, &root, sc.user, &no_groups())
                .is_ok()
        );
    }
}

#[test]
fn refusals_read_well() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    let new = remove(&root, "//primitive[@id='db']");
    let e = acls
        .check_write(&root, &new, "bob", &no_groups())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ACLs do not allow user 'bob' to delete \
         /cib/configuration/resources/primitive[@id='db']: none of their permissions grants \
         write access to it or to an element above it (permission 'read-all-cib' of role \
         'read-all' lets them only read it)"
    );
}

#[test]
fn writes_agree_with_pacemaker() {
    if !cibadmin_available() {
        return;
    }
    let root = cib();
    let acls = Acls::from_cib(&root);
    for sc in scenarios(&root) {
        let ours = acls
            .check_write(&root, &sc.new, sc.user, &no_groups())
            .is_ok();
        let theirs = pacemaker_allows(&root, &sc.new, sc.user, sc.what);
        if sc.pacemaker_agrees {
            assert_eq!(
                ours, theirs,
                "{} ({}): we say {}, Pacemaker says {}",
                sc.what, sc.user, ours, theirs
            );
        } else {
            // The deviations are where this module is stricter.
            assert!(!ours, "{} ({})", sc.what, sc.user);
            assert!(
                theirs,
                "{} ({}): Pacemaker refuses it too now; it is no longer a deviation",
                sc.what, sc.user
            );
        }
    }
}

#[test]
fn a_change_that_would_end_in_a_denied_place_is_refused() {
    // bob may write web-server; moving its id onto another resource is a
    // delete and a create, and renaming an element he may not write into
    // one he may is refused by the check before the change.
    let root = cib();
    let acls = Acls::from_cib(&root);
    let new = set(&root, "//primitive[@id='db']", "id", "web-server2");
    let e = acls
        .check_write(&root, &new, "bob", &no_groups())
        .unwrap_err();
    assert_eq!(e.refused, Refused::Delete);
    // erin may write the resources but not what the deny selects: moving
    // an element under the denied parameters is refused after the change.
    let new = set(&root, "//nvpair[@id='db-password']", "name", "password2");
    assert!(acls.check_write(&root, &new, "erin", &no_groups()).is_ok());
    let acls_text = CIB.replace(
        "kind=\"deny\" reference=\"fence-ipmi-params\"",
        "kind=\"deny\" xpath=\"//nvpair[@name='password']\"",
    );
    let root2 = Document::parse(&acls_text).unwrap().root;
    let acls2 = Acls::from_cib(&root2);
    let new = set(
        &root2,
        "//nvpair[@id='web-server-config']",
        "name",
        "password",
    );
    let e = acls2
        .check_write(&root2, &new, "erin", &no_groups())
        .unwrap_err();
    assert!(e.reason.starts_with("after the change, "), "{e}");
    assert_eq!(e.refused, change(&["name"]));
}

#[test]
fn operations_results_are_checked_with_their_version_bumps() {
    let doc = Document::parse(CIB).unwrap();
    let acls = Acls::from_cib(&doc.root);
    let ctx = Context {
        now: "Tue Jan  6 12:00:00 2026".into(),
        origin: Some("node1".into()),
        client: Some("cibadmin".into()),
        user: Some("bob".into()),
    };
    let mut new = doc.clone();
    let op = Op::Modify {
        section: Some(Section::Resources),
        xml: "<nvpair id=\"web-server-target-role\" value=\"Stopped\"/>".into(),
        create_if_missing: false,
    };
    ops::apply(&mut new, &op, &ctx).unwrap();
    assert_ne!(new.root.attr("epoch"), doc.root.attr("epoch"));
    assert!(new.root.attr("cib-last-written").is_some());
    acls.check_write(&doc.root, &new.root, "bob", &no_groups())
        .unwrap();

    let mut new = doc.clone();
    let op = Op::Modify {
        section: Some(Section::Resources),
        xml: "<nvpair id=\"db-password\" value=\"x\"/>".into(),
        create_if_missing: false,
    };
    ops::apply(&mut new, &op, &ctx).unwrap();
    let e = acls
        .check_write(&doc.root, &new.root, "bob", &no_groups())
        .unwrap_err();
    assert_eq!(
        e.path,
        "/cib/configuration/resources/primitive[@id='db']/instance_attributes[@id='db-params']/nvpair[@id='db-password']"
    );
}

#[test]
fn without_enable_acl_everyone_may_do_anything() {
    for value in ["false", "0", "no"] {
        let root = set(&cib(), "//nvpair[@name='enable-acl']", "value", value);
        let acls = Acls::from_cib(&root);
        assert!(!acls.enabled());
        assert!(!acls.required("mallory"));
        assert_eq!(
            acls.filter_read(&root, "mallory", &no_groups()).unwrap(),
            root
        );
        for sc in scenarios(&root) {
            assert!(
                acls.check_write(&root, &sc.new, "mallory", &no_groups())
                    .is_ok(),
                "{}",
                sc.what
            );
        }
    }
    // No crm_config option at all: the default is false.
    let root = remove(&cib(), "//nvpair[@name='enable-acl']");
    assert!(!Acls::from_cib(&root).enabled());
}

#[test]
fn superusers_bypass_the_acls() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    for user in ["root", "hacluster"] {
        assert!(!acls.required(user));
        assert_eq!(acls.filter_read(&root, user, &no_groups()).unwrap(), root);
        for sc in scenarios(&root) {
            assert!(
                acls.check_write(&root, &sc.new, user, &no_groups()).is_ok(),
                "{user}: {}",
                sc.what
            );
        }
    }
    // Even with an acl_target of their own that denies everything.
    let text = CIB.replace(
        "<acl_group id=\"auditors\">",
        "<acl_target id=\"root\"><role id=\"web-freeze\"/></acl_target><acl_group id=\"auditors\">",
    );
    let root = Document::parse(&text).unwrap().root;
    let acls = Acls::from_cib(&root);
    assert_eq!(acls.filter_read(&root, "root", &no_groups()).unwrap(), root);
}

#[test]
fn unknown_users_get_nothing() {
    let root = cib();
    let acls = Acls::from_cib(&root);
    for user in ["mallory", "", "Root", "bob "] {
        assert!(acls.required(user));
        assert!(
            acls.filter_read(&root, user, &no_groups()).is_none(),
            "{user:?}"
        );
        for sc in scenarios(&root) {
            let e = acls
                .check_write(&root, &sc.new, user, &no_groups())
                .unwrap_err();
            assert!(e.reason.contains("has no permissions"), "{user:?}: {e}");
        }
    }
}
