//! Three nodes on 127.0.X.1..3, each running `vigil-membershipd` and
//! `vigil-cibd` on its own private bus, driven the way a user (or the
//! controller) drives them: through `org.vigil.cib1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_dbus::cib::{ManagerProxy, Version};
use vigil_testkit::{Daemon, Nodes, dbus_daemon_available, eventually, sibling_binary};
use zbus::proxy::CacheProperties;

const CIBD: &str = env!("CARGO_BIN_EXE_vigil-cibd");

/// The binaries, or `None` (the test is skipped, saying why).
fn binaries(test: &str) -> Option<PathBuf> {
    if !dbus_daemon_available(test) {
        return None;
    }
    sibling_binary(test, CIBD, "vigil-membershipd")
}

/// One node's daemons.
struct Node {
    membership: Option<Daemon>,
    cib: Option<Daemon>,
}

/// Fields drop in order: the daemons (printing their logs if the test
/// failed) before the scratch directory that holds the logs.
struct Cluster {
    running: Vec<Node>,
    nodes: Nodes,
    membershipd: PathBuf,
}

impl Cluster {
    fn new(octet: u8, n: u32, membershipd: PathBuf) -> Cluster {
        Cluster {
            running: (0..n)
                .map(|_| Node {
                    membership: None,
                    cib: None,
                })
                .collect(),
            // Failure detection is not what these tests are about.
            nodes: Nodes::with_config(octet, n, "[timings]\ntoken = \"5s\"\n"),
            membershipd,
        }
    }

    fn cibd_command(&self, id: u32) -> Command {
        let mut cmd = Command::new(CIBD);
        cmd.arg("--bus")
            .arg(self.nodes.bus(id))
            .arg("--state-dir")
            .arg(self.nodes.state(id, "cib"))
            .arg("--node-name")
            .arg(format!("n{id}"));
        cmd
    }

    async fn start_membership(&mut self, id: u32, config: Option<&Path>) {
        let d = match config {
            None => self.nodes.start_membership(&self.membershipd, id).await,
            Some(config) => {
                let mut cmd = Command::new(&self.membershipd);
                cmd.arg("--config")
                    .arg(config)
                    .arg("--key")
                    .arg(self.nodes.key(id))
                    .arg("--node")
                    .arg(id.to_string())
                    .arg("--bus")
                    .arg(self.nodes.bus(id))
                    .arg("--state-dir")
                    .arg(self.nodes.state(id, "membership"));
                let d = Daemon::start(
                    &format!("vigil-membershipd of node {id}"),
                    cmd,
                    &self.nodes.log(id, "membership"),
                );
                self.nodes
                    .wait_for_name(&d, id, "org.vigil.membership1")
                    .await;
                d
            }
        };
        self.running[id as usize - 1].membership = Some(d);
    }

    async fn start_cib(&mut self, id: u32) {
        let d = Daemon::start(
            &format!("vigil-cibd of node {id}"),
            self.cibd_command(id),
            &self.nodes.log(id, "cib"),
        );
        self.nodes.wait_for_name(&d, id, "org.vigil.cib1").await;
        self.running[id as usize - 1].cib = Some(d);
    }

    async fn start(&mut self, ids: &[u32]) {
        for &id in ids {
            self.start_membership(id, None).await;
        }
        for &id in ids {
            self.start_cib(id).await;
        }
    }

    fn kill(&mut self, id: u32) {
        let n = &mut self.running[id as usize - 1];
        n.cib.take();
        n.membership.take();
    }

    async fn cib(&self, id: u32) -> ManagerProxy<'static> {
        let conn = self.nodes.connect(id).await;
        ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .expect("CIB proxy")
    }

    /// Waits until every node of `ids` is in step and shows the same CIB;
    /// returns its version.
    async fn converged(&self, ids: &[u32]) -> Version {
        let mut proxies = Vec::new();
        for &id in ids {
            proxies.push((id, self.cib(id).await));
        }
        eventually(&format!("nodes {ids:?} to show one CIB"), async || {
            let mut seen = Vec::new();
            for (id, p) in &proxies {
                if let Some(d) = &self.running[*id as usize - 1].cib {
                    d.assert_running();
                }
                let synced = p.synced().await.map_err(|e| e.to_string())?;
                let v = p.version().await.map_err(|e| e.to_string())?;
                let xml = p
                    .query("", "configuration")
                    .await
                    .map_err(|e| e.to_string())?;
                seen.push((*id, synced, v, xml));
            }
            let first = &seen[0];
            if seen.iter().all(|s| s.1 && s.2 == first.2 && s.3 == first.3) {
                Ok(first.2)
            } else {
                Err(seen
                    .iter()
                    .map(|s| format!("[node {}: synced {} version {:?}]", s.0, s.1, s.2))
                    .collect::<Vec<_>>()
                    .join(" "))
            }
        })
        .await
    }
}

fn property(name: &str, value: &str) -> String {
    format!(
        "<cluster_property_set id=\"cib-bootstrap-options\"><nvpair id=\"cib-bootstrap-options-{name}\" name=\"{name}\" value=\"{value}\"/></cluster_property_set>"
    )
}

fn dummy(id: &str) -> String {
    format!("<primitive id=\"{id}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_any_node_show_up_on_every_node() {
    let Some(membershipd) = binaries("writes_on_any_node_show_up_on_every_node") else {
        return;
    };
    let mut c = Cluster::new(41, 3, membershipd);
    c.start(&[1, 2, 3]).await;
    let v0 = c.converged(&[1, 2, 3]).await;

    let v1 = c
        .cib(2)
        .await
        .modify("crm_config", &property("no-quorum-policy", "freeze"), true)
        .await
        .expect("modify on node 2");
    assert_eq!(v1.1, v0.1 + 1, "a configuration change bumps the epoch");
    let v2 = c
        .cib(3)
        .await
        .create("resources", &dummy("web"))
        .await
        .expect("create on node 3");
    assert!(v2 > v1);
    assert_eq!(c.converged(&[1, 2, 3]).await, v2);
    let xml = c
        .cib(1)
        .await
        .query("//primitive[@id='web']", "")
        .await
        .expect("query on node 1");
    assert!(xml.contains("Dummy"), "{xml}");

    // Status updates in a batch: one version step, everywhere.
    let state =
        |id: u32, v: &str| format!("<node_state id=\"{id}\" uname=\"n{id}\" crmd=\"{v}\"/>");
    let (s1, s2, s3) = (state(1, "online"), state(2, "online"), state(3, "offline"));
    let v3 = c
        .cib(1)
        .await
        .batch(&[
            ("modify", "status", &s1, true),
            ("modify", "status", &s2, true),
            ("modify", "status", &s3, true),
        ])
        .await
        .expect("a status batch on node 1");
    assert_eq!((v3.1, v3.2), (v2.1, v2.2 + 1), "one num_updates step");
    assert_eq!(c.converged(&[1, 2, 3]).await, v3);
    let status = c.cib(2).await.query("", "status").await.expect("status");
    assert_eq!(status.matches("<node_state").count(), 3, "{status}");
    let v2 = v3;

    // A refused change is refused with its reason and changes nothing.
    let err = c
        .cib(1)
        .await
        .create("resources", &dummy("web"))
        .await
        .expect_err("a duplicate id");
    assert!(err.to_string().contains("web"), "{err}");
    let err = c
        .cib(1)
        .await
        .create("resources", "<primitive id=")
        .await
        .expect_err("malformed XML");
    assert!(!err.to_string().is_empty());
    let err = c
        .cib(2)
        .await
        .create("resources", &dummy("has space"))
        .await
        .expect_err("an invalid id");
    assert!(err.to_string().contains("not a valid XML id"), "{err}");
    let stale = "<diff format=\"2\"><version><source admin_epoch=\"0\" epoch=\"999\" num_updates=\"0\"/><target admin_epoch=\"0\" epoch=\"1000\" num_updates=\"0\"/></version><change operation=\"delete\" path=\"/cib/configuration/resources/primitive[@id='web']\"/></diff>";
    let err = c
        .cib(3)
        .await
        .apply_patch(stale)
        .await
        .expect_err("a patch for another version");
    assert!(err.to_string().contains("patch"), "{err}");
    let err = c
        .cib(3)
        .await
        .apply_patch("<diff format=\"2\"><change operation=\"explode\"/></diff>")
        .await
        .expect_err("a patch that makes no sense");
    assert!(err.to_string().contains("patch"), "{err}");
    assert_eq!(c.converged(&[1, 2, 3]).await, v2);
    let xml = c.cib(1).await.query("", "resources").await.expect("query");
    assert!(
        xml.contains("\"web\""),
        "the refused patch deleted nothing: {xml}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_receives_the_cib_and_a_partitioned_change_is_reported() {
    let Some(membershipd) =
        binaries("a_new_node_receives_the_cib_and_a_partitioned_change_is_reported")
    else {
        return;
    };
    let mut c = Cluster::new(42, 3, membershipd);
    c.start(&[1, 2]).await;
    c.converged(&[1, 2]).await;
    c.cib(1)
        .await
        .create("resources", &dummy("early"))
        .await
        .expect("create on node 1");
    // Node 3 starts later, from nothing: it receives the CIB.
    c.start(&[3]).await;
    let v = c.converged(&[1, 2, 3]).await;
    let xml = c.cib(3).await.query("", "resources").await.expect("query");
    assert!(xml.contains("early"), "{xml}");

    // Node 3 is cut off (it restarts in a cluster of its own) and both
    // sides change the CIB; node 1's side makes two changes.
    c.kill(3);
    let alone = c.nodes.dir().join("alone.toml");
    let full = std::fs::read_to_string(&c.nodes.config).expect("read the configuration");
    let only3: String = {
        let mut parts = full.split("\n[[node]]");
        let head = parts.next().expect("cluster section").to_string();
        let node3 = parts
            .find(|p| p.contains("id = 3"))
            .expect("node 3 in the configuration");
        format!("{head}\n[[node]]{node3}")
    };
    std::fs::write(&alone, only3).expect("write the one-node configuration");
    c.start_membership(3, Some(&alone)).await;
    c.start_cib(3).await;
    c.converged(&[3]).await;
    c.cib(3)
        .await
        .create("resources", &dummy("apart"))
        .await
        .expect("create on node 3 alone");
    c.cib(1)
        .await
        .create("resources", &dummy("together1"))
        .await
        .expect("create on node 1");
    c.cib(2)
        .await
        .create("resources", &dummy("together2"))
        .await
        .expect("create on node 2");
    // The partition heals.
    c.kill(3);
    c.start(&[3]).await;
    let healed = c.converged(&[1, 2, 3]).await;
    assert!(healed > v);
    let xml = c.cib(3).await.query("", "resources").await.expect("query");
    assert!(
        xml.contains("together1") && xml.contains("together2") && !xml.contains("apart"),
        "the higher version wins: {xml}"
    );
    // Node 3 reported what it lost, naming it.
    let log = std::fs::read_to_string(c.nodes.log(3, "cib")).expect("node 3's log");
    assert!(
        log.contains("apart") && log.contains("while apart"),
        "node 3 should report the lost change: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_cib_replicates_and_an_oversized_one_is_refused() {
    let Some(membershipd) = binaries("a_large_cib_replicates_and_an_oversized_one_is_refused")
    else {
        return;
    };
    let mut c = Cluster::new(47, 3, membershipd);
    c.start(&[1, 2, 3]).await;
    c.converged(&[1, 2, 3]).await;
    // About 1 MB of resources: more than one membership message carries
    // (a debug build of the membership daemon is slow with much more).
    let mut resources = String::from("<resources>");
    for i in 0..12_000 {
        resources.push_str(&dummy(&format!("big{i:05}")));
    }
    resources.push_str("</resources>");
    assert!(resources.len() > vigil_cibd::replica::PART);
    c.cib(2)
        .await
        .replace("resources", "", &resources)
        .await
        .expect("replace the resources section on node 2");
    c.converged(&[1, 2, 3]).await;
    let xml = c
        .cib(3)
        .await
        .query("//primitive[@id='big11999']", "")
        .await
        .expect("query node 3");
    assert!(xml.contains("big11999"), "{xml}");
    // Beyond the limit: refused before anything is sent, saying so.
    let before = c.cib(1).await.version().await.expect("version");
    let huge = format!(
        "<primitive id=\"huge\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\" description=\"{}\"/>",
        "x".repeat(17 << 20)
    );
    let err = c
        .cib(1)
        .await
        .create("resources", &huge)
        .await
        .expect_err("an oversized document");
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(c.converged(&[1, 2, 3]).await, before);
}

/// `dbus-send` as user nobody on `bus`, calling `method` of the CIB.
fn as_nobody(bus: &str, method: &str, args: &[&str]) -> (bool, String) {
    vigil_testkit::polkit::as_nobody(
        bus,
        "org.vigil.cib1",
        "/org/vigil/cib1",
        &format!("org.vigil.cib1.Manager.{method}"),
        args,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_is_not_root_needs_polkit_and_the_acls() {
    let test = "a_caller_that_is_not_root_needs_polkit_and_the_acls";
    let Some(membershipd) = binaries(test) else {
        return;
    };
    if !vigil_testkit::polkit::can_call_as_nobody(test) {
        return;
    }
    let nodes = Nodes::with_open_buses(48, 1, "[timings]\ntoken = \"5s\"\n");
    let _m = nodes.start_membership(&membershipd, 1).await;
    let mut cmd = Command::new(CIBD);
    cmd.arg("--bus")
        .arg(nodes.bus(1))
        .arg("--state-dir")
        .arg(nodes.state(1, "cib"))
        .arg("--node-name")
        .arg("n1");
    let cibd = Daemon::start("vigil-cibd", cmd, &nodes.log(1, "cib"));
    nodes.wait_for_name(&cibd, 1, "org.vigil.cib1").await;
    let conn = nodes.connect(1).await;
    let root = ManagerProxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("CIB proxy");
    eventually("the CIB to be in step", async || {
        match root.synced().await {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // ACLs on: nobody reads everything but the status, and writes only
    // resource "mine".
    let config = r#"<configuration>
  <crm_config><cluster_property_set id="o"><nvpair id="o-acl" name="enable-acl" value="true"/></cluster_property_set></crm_config>
  <nodes/>
  <resources>
    <primitive id="mine" class="ocf" provider="pacemaker" type="Dummy"/>
    <primitive id="theirs" class="ocf" provider="pacemaker" type="Dummy"/>
  </resources>
  <constraints/>
  <acls>
    <acl_target id="nobody"><role id="reader"/><role id="mine-writer"/></acl_target>
    <acl_role id="reader">
      <acl_permission id="reader-all" kind="read" xpath="/cib"/>
      <acl_permission id="reader-status" kind="deny" xpath="/cib/status"/>
    </acl_role>
    <acl_role id="mine-writer"><acl_permission id="mine-w" kind="write" reference="mine"/></acl_role>
  </acls>
</configuration>"#;
    root.replace("configuration", "", config)
        .await
        .expect("root sets up the ACLs");
    let before = root.version().await.expect("version");

    let bus = nodes.bus(1).to_string();
    let modify = |id: &str| {
        format!(
            "string:<primitive id=\"{id}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\" description=\"changed\"/>"
        )
    };
    // Without polkit's word, nothing.
    let (ok, out) = as_nobody(
        &bus,
        "Modify",
        &["string:resources", &modify("mine"), "boolean:false"],
    );
    assert!(!ok && out.contains("polkit"), "{out}");
    // Polkit says no.
    let polkit = vigil_testkit::polkit::fake(&bus, None).await;
    let (ok, out) = as_nobody(
        &bus,
        "Modify",
        &["string:resources", &modify("mine"), "boolean:false"],
    );
    assert!(!ok && out.contains("not allowed"), "{out}");
    drop(polkit);
    // Polkit says yes: the ACLs decide.
    let _polkit = vigil_testkit::polkit::fake(&bus, Some("org.vigil.cib1.modify")).await;
    let (ok, out) = as_nobody(
        &bus,
        "Modify",
        &["string:resources", &modify("theirs"), "boolean:false"],
    );
    assert!(
        !ok && out.contains("theirs") && out.contains("permission"),
        "{out}"
    );
    assert_eq!(root.version().await.expect("version"), before);
    let (ok, out) = as_nobody(
        &bus,
        "Modify",
        &["string:resources", &modify("mine"), "boolean:false"],
    );
    assert!(ok, "{out}");
    let xml = root
        .query("//primitive[@id='mine']", "")
        .await
        .expect("query");
    assert!(xml.contains("changed"), "{xml}");
    // Reads are filtered: no status for nobody.
    let (ok, out) = as_nobody(&bus, "Query", &["string:", "string:"]);
    assert!(
        ok && out.contains("theirs") && !out.contains("<status"),
        "{out}"
    );
}
