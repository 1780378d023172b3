//! A whole cluster of three nodes — membership, CIB, executor, fencer and
//! controller daemons on each — keeping a resource running: it starts on
//! one node, and when that node dies it is fenced and the resource starts
//! on another.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use vigil_testkit::{Daemon, Nodes, dbus_daemon_available, eventually, sibling_binary};

const CONTROLD: &str = env!("CARGO_BIN_EXE_vigil-controld");

struct Binaries {
    membershipd: PathBuf,
    cibd: PathBuf,
    execd: PathBuf,
    fenced: PathBuf,
}

fn binaries(test: &str) -> Option<Binaries> {
    if !dbus_daemon_available(test) {
        return None;
    }
    Some(Binaries {
        membershipd: sibling_binary(test, CONTROLD, "vigil-membershipd")?,
        cibd: sibling_binary(test, CONTROLD, "vigil-cibd")?,
        execd: sibling_binary(test, CONTROLD, "vigil-execd")?,
        fenced: sibling_binary(test, CONTROLD, "vigil-fenced")?,
    })
}

/// One node's daemons, stopped together (a dead node).
#[derive(Default)]
struct Node {
    daemons: Vec<Daemon>,
}

/// Fields drop in order: the daemons before the directory of their logs.
struct Cluster {
    running: Vec<Node>,
    nodes: Nodes,
    log: PathBuf,
}

const CONFIG: &str = r#"<configuration>
  <crm_config><cluster_property_set id="o">
    <nvpair id="o1" name="stonith-enabled" value="true"/>
  </cluster_property_set></crm_config>
    <!-- No nodes: the DC adds the members, as it would on a fresh cluster. -->
  <nodes/>

  <resources>
    <primitive id="fence" class="stonith" type="fence_test">
      <instance_attributes id="f-a"><nvpair id="f-l" name="log" value="LOG"/></instance_attributes>
    </primitive>
    <primitive id="web" class="ocf" provider="heartbeat" type="Dummy">
      <operations><op id="web-m" name="monitor" interval="2s" timeout="10s"/></operations>
    </primitive>
  </resources>
  <constraints/>
</configuration>"#;

impl Cluster {
    async fn start(test: &str, octet: u8) -> Option<Cluster> {
        Cluster::start_with(test, octet, "").await
    }

    /// With `constraints` (XML) in the configuration.
    async fn start_with(test: &str, octet: u8, constraints: &str) -> Option<Cluster> {
        let b = binaries(test)?;
        let nodes = Nodes::with_config(octet, 3, "[timings]\ntoken = \"1s\"\n");
        let agents = nodes.dir().join("agents");
        vigil_testkit::agents::install_fence_test(&agents);
        let log = nodes.dir().join("fencing.log");
        let mut c = Cluster {
            running: Vec::new(),
            nodes,
            log,
        };
        for id in 1..=3u32 {
            let mut node = Node::default();
            node.daemons
                .push(c.nodes.start_membership(&b.membershipd, id).await);
            let bus = c.nodes.bus(id).to_string();
            let name = format!("n{id}");
            let mut cib = Command::new(&b.cibd);
            cib.args(["--bus", &bus, "--node-name", &name])
                .arg("--state-dir")
                .arg(c.nodes.state(id, "cib"));
            let d = Daemon::start(
                &format!("vigil-cibd of {name}"),
                cib,
                &c.nodes.log(id, "cib"),
            );
            c.nodes.wait_for_name(&d, id, "org.vigil.cib1").await;
            node.daemons.push(d);
            let mut x = Command::new(&b.execd);
            x.args(["--bus", &bus, "--node-name", &name, "--systemd-bus", &bus])
                .arg("--agent-state-dir")
                .arg(c.nodes.state(id, "agents"))
                .arg("--fence-dir")
                .arg(&agents);
            let d = Daemon::start(
                &format!("vigil-execd of {name}"),
                x,
                &c.nodes.log(id, "execd"),
            );
            c.nodes.wait_for_name(&d, id, "org.vigil.executor1").await;
            node.daemons.push(d);
            let mut f = Command::new(&b.fenced);
            f.args(["--bus", &bus, "--node-name", &name])
                .arg("--agent-dir")
                .arg(&agents);
            let d = Daemon::start(
                &format!("vigil-fenced of {name}"),
                f,
                &c.nodes.log(id, "fenced"),
            );
            c.nodes.wait_for_name(&d, id, "org.vigil.fencing1").await;
            node.daemons.push(d);
            c.running.push(node);
        }
        // The configuration before the controllers: they schedule it.
        let conn = c.nodes.connect(1).await;
        let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await.unwrap();
        eventually("the CIB to be in step", async || match cib.synced().await {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        })
        .await;
        let config = CONFIG.replace("LOG", c.log.to_str().unwrap()).replace(
            "<constraints/>",
            &format!("<constraints>{constraints}</constraints>"),
        );
        cib.replace("configuration", "", &config)
            .await
            .expect("load the configuration");
        for id in 1..=3u32 {
            let bus = c.nodes.bus(id).to_string();
            let mut ctl = Command::new(CONTROLD);
            ctl.args(["--bus", &bus, "--node-name", &format!("n{id}")])
                .env("RUST_LOG", "debug,zbus=warn");
            let d = Daemon::start(
                &format!("vigil-controld of n{id}"),
                ctl,
                &c.nodes.log(id, "controld"),
            );
            c.running[id as usize - 1].daemons.push(d);
        }
        Some(c)
    }

    /// The nodes whose executor runs `resource`.
    async fn running_on(&self, resource: &str, ids: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for id in ids {
            let conn = self.nodes.connect(*id).await;
            let x = vigil_dbus::executor::ManagerProxy::new(&conn)
                .await
                .unwrap();
            if let Ok((_, state, _, _, _)) = x.get_resource(resource).await
                && state == "running"
            {
                out.push(*id);
            }
        }
        out
    }

    /// Waits until `web` runs on node `id` and nowhere else.
    async fn web_only_on(&self, id: u32) {
        eventually(&format!("web to run on n{id} only"), async || {
            let on = self.running_on("web", &[1, 2, 3]).await;
            if on == [id] {
                Ok(())
            } else {
                Err(format!("web runs on {on:?}"))
            }
        })
        .await
    }

    /// Waits until node `id`'s controller process has ended.
    async fn controller_stops(&self, id: u32) {
        eventually(&format!("n{id}'s controller to stop"), async || {
            if controller_ended(self, id) {
                Ok(())
            } else {
                Err("still running".to_string())
            }
        })
        .await
    }

    fn fencing_log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_runs_once_and_survives_its_node() {
    const T: &str = "a_resource_runs_once_and_survives_its_node";
    let Some(mut c) = Cluster::start(T, 71).await else {
        return;
    };
    let first = eventually("web to run on exactly one node", async || {
        let on = c.running_on("web", &[1, 2, 3]).await;
        if on.len() == 1 {
            Ok(on[0])
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    assert!(
        c.fencing_log().is_empty(),
        "nobody fenced yet: {:?}",
        c.fencing_log()
    );
    // It stays put.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.running_on("web", &[1, 2, 3]).await, [first]);
    // Its node dies: fenced, and web starts elsewhere.
    let dead = &mut c.running[first as usize - 1];
    for d in dead.daemons.drain(..).rev() {
        d.kill();
    }
    let survivors: Vec<u32> = (1..=3).filter(|i| *i != first).collect();
    let second = eventually("web to run on a survivor", async || {
        let on = c.running_on("web", &survivors).await;
        if on.len() == 1 {
            Ok(on[0])
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    assert_ne!(second, first);
    let fenced = c.fencing_log();
    assert_eq!(
        fenced,
        [format!("reboot n{first} ok")],
        "the dead node was fenced once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_monitor_counts_and_the_resource_recovers() {
    const T: &str = "a_failed_monitor_counts_and_the_resource_recovers";
    let Some(c) = Cluster::start(T, 72).await else {
        return;
    };
    let on = eventually("web to run on exactly one node", async || {
        let on = c.running_on("web", &[1, 2, 3]).await;
        if on.len() == 1 {
            Ok(on[0])
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    // web dies behind the cluster's back (Dummy's state file goes).
    let state = c.nodes.state(on, "agents");
    let file = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains("web"))
        .expect("Dummy's state file")
        .path();
    std::fs::remove_file(&file).unwrap();
    // The monitor notices, the failure is counted, web is recovered.
    let conn = c.nodes.connect(1).await;
    let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await.unwrap();
    eventually("the fail count in the CIB", async || {
        let xml = cib
            .query("//nvpair[@name='fail-count-web#monitor_2000']", "")
            .await
            .map_err(|e| e.to_string())?;
        if xml.contains("value=\"1\"") {
            Ok(())
        } else {
            Err(xml)
        }
    })
    .await;
    eventually("web to run again", async || {
        if file.exists() {
            Ok(())
        } else {
            Err("not restarted".to_string())
        }
    })
    .await;
    assert_eq!(
        c.running_on("web", &[1, 2, 3]).await,
        [on],
        "recovered where it was"
    );
    assert!(
        c.fencing_log().is_empty(),
        "a resource failure fences nobody"
    );
    // A cleanup forgets the failure; web is probed afresh and stays put.
    let ctl = vigil_dbus::controller::ManagerProxy::new(&conn)
        .await
        .unwrap();
    let e = ctl.cleanup("nope", "").await.unwrap_err().to_string();
    assert!(e.contains("no resource \"nope\""), "{e}");
    ctl.cleanup("web", "").await.unwrap();
    eventually("the fail count to go", async || {
        match cib
            .query("//nvpair[@name='fail-count-web#monitor_2000']", "")
            .await
        {
            Err(_) => Ok(()),
            Ok(xml) => Err(xml),
        }
    })
    .await;
    eventually("web's history to be probed afresh", async || {
        let xml = cib
            .query("//lrm_resource[@id='web']", "")
            .await
            .map_err(|e| e.to_string())?;
        if xml.contains("web_monitor_2000") && !xml.contains("last_failure") {
            Ok(())
        } else {
            Err(xml)
        }
    })
    .await;
    assert_eq!(
        c.running_on("web", &[1, 2, 3]).await,
        [on],
        "still where it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dc_dies_with_the_resource_and_a_new_dc_recovers_it() {
    const T: &str = "the_dc_dies_with_the_resource_and_a_new_dc_recovers_it";
    let prefer_n1 = r#"<rsc_location id="web-on-n1" rsc="web" node="n1" score="100"/>"#;
    let Some(mut c) = Cluster::start_with(T, 73, prefer_n1).await else {
        return;
    };
    eventually("web to run on n1, the DC", async || {
        let on = c.running_on("web", &[1, 2, 3]).await;
        if on == [1] {
            Ok(())
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    for d in c.running[0].daemons.drain(..).rev() {
        d.kill();
    }
    let on = eventually("web to run on a survivor", async || {
        let on = c.running_on("web", &[2, 3]).await;
        if on.len() == 1 {
            Ok(on[0])
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    assert!(on == 2 || on == 3);
    assert_eq!(
        c.fencing_log(),
        ["reboot n1 ok"],
        "the old DC was fenced once, by the new one"
    );
    let log = std::fs::read_to_string(c.nodes.log(2, "controld")).unwrap();
    assert!(
        log.contains("dc=Some(\"n2\")"),
        "n2 took over as DC:\n{log}"
    );
}

/// The controller process of node `id` has ended (gone, or a zombie:
/// this machine's PID 1 may not reap).
fn controller_ended(c: &Cluster, id: u32) -> bool {
    let Some(d) = c.running[id as usize - 1].daemons.last() else {
        return true;
    };
    let Some(pid) = d.pid() else { return true };
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn sigterm(c: &Cluster, id: u32) {
    let pid = c.running[id as usize - 1]
        .daemons
        .last()
        .and_then(Daemon::pid)
        .expect("the controller runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_that_stop_cleanly_move_their_resources_first_and_are_not_fenced() {
    const T: &str = "nodes_that_stop_cleanly_move_their_resources_first_and_are_not_fenced";
    let prefer = r#"<rsc_location id="web-on-n2" rsc="web" node="n2" score="100"/>
        <rsc_location id="web-on-n1" rsc="web" node="n1" score="50"/>"#;
    let Some(c) = Cluster::start_with(T, 74, prefer).await else {
        return;
    };
    c.web_only_on(2).await;
    // n2 (not the DC) stops: web leaves first, then its controller.
    sigterm(&c, 2);
    c.web_only_on(1).await;
    c.controller_stops(2).await;
    let conn = c.nodes.connect(3).await;
    let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await.unwrap();
    eventually("n2 to be expected down and offline", async || {
        let xml = cib
            .query("//node_state[@id='2']", "")
            .await
            .map_err(|e| e.to_string())?;
        if xml.contains("expected=\"down\"") && xml.contains("crmd=\"offline\"") {
            Ok(())
        } else {
            Err(xml)
        }
    })
    .await;
    // Then the DC itself: web goes to n3, n3 takes over as DC.
    sigterm(&c, 1);
    c.web_only_on(3).await;
    c.controller_stops(1).await;
    let ctl = vigil_dbus::controller::ManagerProxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    eventually("n3 to be the DC", async || match ctl.dc().await {
        Ok(dc) if dc == "n3" => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;
    // A little later, still nobody fenced and web still on n3 alone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        c.fencing_log().is_empty(),
        "clean stops fence nobody: {:?}",
        c.fencing_log()
    );
    assert_eq!(c.running_on("web", &[1, 2, 3]).await, [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_attributes_reach_the_scheduler_after_their_dampening() {
    const T: &str = "node_attributes_reach_the_scheduler_after_their_dampening";
    // web may run only where the attribute ok is 1.
    let needs_ok = r#"<rsc_location id="web-needs-ok" rsc="web">
        <rule id="web-needs-ok-r" score="-INFINITY" boolean-op="or">
          <expression id="web-needs-ok-e1" attribute="ok" operation="not_defined"/>
          <expression id="web-needs-ok-e2" attribute="ok" operation="ne" value="1"/>
        </rule></rsc_location>"#;
    let Some(c) = Cluster::start_with(T, 75, needs_ok).await else {
        return;
    };
    let conn = c.nodes.connect(1).await;
    let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await.unwrap();
    let ctl = vigil_dbus::controller::ManagerProxy::new(&conn)
        .await
        .unwrap();
    eventually("the controllers to settle", async || {
        cib.query("//node_state[@id='3']//lrm_resource[@id='web']", "")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    assert!(c.running_on("web", &[1, 2, 3]).await.is_empty());
    // Wrong requests say what is wrong.
    let e = ctl
        .set_attribute("n9", "ok", "1", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no node \"n9\""), "{e}");
    let e = ctl
        .set_attribute("n3", "", "1", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an attribute name"), "{e}");
    // Set on n3 from n1, dampened for 3 s: not written at once.
    ctl.set_attribute("n3", "ok", "1", 3000).await.unwrap();
    let ok_on_n3 = "//node_state[@id='3']/transient_attributes//nvpair[@name='ok']";
    assert!(
        cib.query(ok_on_n3, "").await.is_err(),
        "a dampened change waits"
    );
    eventually("ok=1 on n3 in the CIB", async || {
        let xml = cib.query(ok_on_n3, "").await.map_err(|e| e.to_string())?;
        if xml.contains("value=\"1\"") {
            Ok(())
        } else {
            Err(xml)
        }
    })
    .await;
    eventually("web to run on n3", async || {
        let on = c.running_on("web", &[1, 2, 3]).await;
        if on == [3] {
            Ok(())
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    let n3 = c.nodes.connect(3).await;
    let ctl3 = vigil_dbus::controller::ManagerProxy::new(&n3)
        .await
        .unwrap();
    let attrs = ctl3.attributes().await.unwrap();
    assert_eq!(attrs.get("ok").map(String::as_str), Some("1"), "{attrs:?}");
    // Removed at once: web stops.
    ctl3.delete_attribute("", "ok", 0).await.unwrap();
    eventually("web to stop", async || {
        let on = c.running_on("web", &[1, 2, 3]).await;
        if on.is_empty() {
            Ok(())
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_with_a_lifetime_ends_by_itself() {
    const T: &str = "a_ban_with_a_lifetime_ends_by_itself";
    let prefer = r#"<rsc_location id="web-on-n2" rsc="web" node="n2" score="100"/>"#;
    let Some(c) = Cluster::start_with(T, 76, prefer).await else {
        return;
    };
    c.web_only_on(2).await;
    // Banned from n2 for a few seconds, as `vigil resource ban --lifetime`
    // writes it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end = vigil_cib::time::DateTime::from_epoch_seconds(now + 5).to_string_with_offset();
    let ban = format!(
        r##"<rsc_location id="cli-ban-web-on-n2" rsc="web" role="Started"><rule id="b-r" score="-INFINITY" boolean-op="and"><expression id="b-e" attribute="#uname" operation="eq" value="n2" type="string"/><date_expression id="b-l" operation="lt" end="{end}"/></rule></rsc_location>"##
    );
    let conn = c.nodes.connect(1).await;
    let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await.unwrap();
    // The DC (n1) announces its transitions on the bus.
    let ctl = vigil_dbus::controller::ManagerProxy::new(&conn)
        .await
        .unwrap();
    let mut started = ctl.receive_transition_started().await.unwrap();
    let mut ended = ctl.receive_transition_ended().await.unwrap();
    cib.create("constraints", &ban).await.unwrap();
    let (id, trigger, summary) = tokio::time::timeout(Duration::from_secs(15), async {
        use futures_util::StreamExt;
        loop {
            let s = started.next().await.unwrap();
            let a = s.args().unwrap();
            if a.summary.iter().any(|l| l.contains("web")) {
                return (a.id, a.trigger.clone(), a.summary.clone());
            }
        }
    })
    .await
    .expect("a transition moving web");
    assert!(
        trigger.contains("the configuration changed"),
        "{trigger}: {summary:?}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("Move") && l.contains("web")),
        "{summary:?}"
    );
    let result = tokio::time::timeout(Duration::from_secs(15), async {
        use futures_util::StreamExt;
        loop {
            let s = ended.next().await.unwrap();
            let a = s.args().unwrap();
            if a.id == id {
                return a.result.clone();
            }
        }
    })
    .await
    .expect("its end");
    assert_eq!(result, "complete");
    let moved = eventually("web to leave n2", async || {
        let on = c.running_on("web", &[1, 2, 3]).await;
        if on.len() == 1 && on[0] != 2 {
            Ok(on[0])
        } else {
            Err(format!("web runs on {on:?}"))
        }
    })
    .await;
    assert_ne!(moved, 2);
    // Explain says why, as text and as data.
    let (text, placements, _, reasons) = ctl.explain("web").await.unwrap();
    assert!(text.contains("Scores of web"), "{text}");
    assert_eq!(placements.len(), 1);
    assert_eq!(placements[0].0, "web");
    assert!(
        placements[0]
            .2
            .iter()
            .any(|(n, s)| n == "n2" && s == "-INFINITY"),
        "{placements:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|(kind, id, _)| kind == "move-ban" && id == "cli-ban-web-on-n2"),
        "{reasons:?}"
    );
    let e = ctl.explain("nope").await.unwrap_err().to_string();
    assert!(
        e.contains("no resource \"nope\" (resources: fence, web)"),
        "{e}"
    );
    // With nothing else changing, the end of the ban brings web back.
    c.web_only_on(2).await;
    assert!(c.fencing_log().is_empty());
}
