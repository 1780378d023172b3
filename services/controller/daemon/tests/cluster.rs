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
  <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
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
