//! vigil-fenced on three nodes (each with its membership and CIB daemons),
//! driven over the bus: topology fallbacks, a device that times out, one
//! that lies, a missing agent, concurrent requests for one target, and a
//! request while its executioner dies. Each checks the history, the same
//! on every node, and that the target was fenced exactly once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::StreamExt;
use vigil_dbus::fencing::{HistoryEntry, ManagerProxy};
use vigil_testkit::{Daemon, Nodes, dbus_daemon_available, eventually, sibling_binary};

const FENCED: &str = env!("CARGO_BIN_EXE_vigil-fenced");

struct Node {
    membership: Option<Daemon>,
    cib: Option<Daemon>,
    fenced: Option<Daemon>,
}

/// Fields drop in order: the daemons before the directory of their logs.
struct Cluster {
    running: Vec<Node>,
    nodes: Nodes,
    agents: PathBuf,
    log: PathBuf,
    state: PathBuf,
}

fn binaries(test: &str) -> Option<(PathBuf, PathBuf)> {
    if !dbus_daemon_available(test) {
        return None;
    }
    Some((
        sibling_binary(test, FENCED, "vigil-membershipd")?,
        sibling_binary(test, FENCED, "vigil-cibd")?,
    ))
}

impl Cluster {
    async fn start(test: &str, octet: u8, devices: &str) -> Option<Cluster> {
        Cluster::start_with(test, octet, devices, false).await
    }

    async fn start_with(test: &str, octet: u8, devices: &str, open: bool) -> Option<Cluster> {
        let (membershipd, cibd) = binaries(test)?;
        let extra = "[timings]\ntoken = \"2s\"\n";
        let nodes = if open {
            Nodes::with_open_buses(octet, 3, extra)
        } else {
            Nodes::with_config(octet, 3, extra)
        };
        let agents = nodes.dir().join("agents");
        std::fs::create_dir_all(&agents).unwrap();
        vigil_testkit::agents::install_fence_test(&agents);
        let log = nodes.dir().join("fencing.log");
        let state = nodes.dir().join("power");
        std::fs::create_dir_all(&state).unwrap();
        let mut c = Cluster {
            running: Vec::new(),
            nodes,
            agents,
            log,
            state,
        };
        for id in 1..=3 {
            let membership = c.nodes.start_membership(&membershipd, id).await;
            let mut cmd = Command::new(&cibd);
            cmd.arg("--bus")
                .arg(c.nodes.bus(id))
                .arg("--state-dir")
                .arg(c.nodes.state(id, "cib"))
                .arg("--node-name")
                .arg(format!("n{id}"));
            let cib = Daemon::start(
                &format!("vigil-cibd of n{id}"),
                cmd,
                &c.nodes.log(id, "cib"),
            );
            c.nodes.wait_for_name(&cib, id, "org.vigil.cib1").await;
            c.running.push(Node {
                membership: Some(membership),
                cib: Some(cib),
                fenced: None,
            });
        }
        // The configuration, through node 1's CIB.
        let conn = c.nodes.connect(1).await;
        let cib = vigil_dbus::cib::ManagerProxy::new(&conn).await.unwrap();
        eventually("the CIB to be in step", async || match cib.synced().await {
            Ok(true) => Ok(()),
            other => Err(format!("{other:?}")),
        })
        .await;
        let config = devices
            .replace("LOG", c.log.to_str().unwrap())
            .replace("STATE", c.state.to_str().unwrap());
        cib.replace("configuration", "", &config)
            .await
            .expect("load the configuration");
        for id in 1..=3 {
            c.start_fenced(id).await;
        }
        Some(c)
    }

    async fn start_fenced(&mut self, id: u32) {
        let mut cmd = Command::new(FENCED);
        cmd.arg("--bus")
            .arg(self.nodes.bus(id))
            .arg("--node-name")
            .arg(format!("n{id}"))
            .arg("--agent-dir")
            .arg(&self.agents)
            .env("RUST_LOG", "debug,zbus=warn");
        let d = Daemon::start(
            &format!("vigil-fenced of n{id}"),
            cmd,
            &self.nodes.log(id, "fenced"),
        );
        self.nodes.wait_for_name(&d, id, "org.vigil.fencing1").await;
        self.running[id as usize - 1].fenced = Some(d);
    }

    async fn fencer(&self, id: u32) -> ManagerProxy<'static> {
        let conn = self.nodes.connect(id).await;
        ManagerProxy::new(&conn).await.unwrap()
    }

    /// Waits until every running fencer has `n` history entries, all the
    /// same, and returns them.
    async fn history(&self, ids: &[u32], n: usize) -> Vec<HistoryEntry> {
        let mut fencers = Vec::new();
        for id in ids {
            fencers.push(self.fencer(*id).await);
        }
        eventually("the same fence history on every node", async || {
            let mut first: Option<Vec<HistoryEntry>> = None;
            for (i, f) in fencers.iter().enumerate() {
                let h = f.history("").await.map_err(|e| e.to_string())?;
                if h.len() != n {
                    return Err(format!("n{} has {} entries: {h:?}", ids[i], h.len()));
                }
                match &first {
                    None => first = Some(h),
                    Some(f0) if *f0 != h => {
                        return Err(format!("histories differ: {f0:?} / {h:?}"));
                    }
                    Some(_) => {}
                }
            }
            Ok(first.unwrap_or_default())
        })
        .await
    }

    /// The fencing actions the agent performed.
    fn actions(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Asks node `id` to fence `target` and waits for the job's result.
    async fn fence(
        &self,
        id: u32,
        target: &str,
        action: &str,
        options: HashMap<&str, zbus::Variant<'_>>,
    ) -> String {
        let f = self.fencer(id).await;
        let mut removed = f.receive_job_removed().await.unwrap();
        let (job, _) = f.fence(target, action, options).await.expect("fence");
        tokio::time::timeout(Duration::from_secs(40), async {
            loop {
                let s = removed.next().await.unwrap();
                let a = s.args().unwrap();
                if a.id == job {
                    return a.result.to_string();
                }
            }
        })
        .await
        .expect("the job ends")
    }
}

fn device(id: &str, mode: &str, extra: &str) -> String {
    format!(
        r#"<primitive id="{id}" class="stonith" type="fence_test"><instance_attributes id="{id}-a">
          <nvpair id="{id}-l" name="log" value="LOG"/><nvpair id="{id}-m" name="mode" value="{mode}"/>
          <nvpair id="{id}-s" name="state" value="STATE"/><nvpair id="{id}-r" name="pcmk_off_retries" value="0"/>
          <nvpair id="{id}-rr" name="pcmk_reboot_retries" value="0"/>{extra}</instance_attributes></primitive>"#
    )
}

fn configuration(devices: &[String], topology: &str) -> String {
    format!(
        r#"<configuration><crm_config/><nodes>
          <node id="1" uname="n1"/><node id="2" uname="n2"/><node id="3" uname="n3"/></nodes>
          <resources>{}</resources><constraints/>
          <fencing-topology>{topology}</fencing-topology></configuration>"#,
        devices.join("")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_falls_back_past_a_failing_and_a_lying_device() {
    const T: &str = "topology_falls_back_past_a_failing_and_a_lying_device";
    let config = configuration(
        &[
            device("broken", "fail", ""),
            device("liar", "lie", ""),
            device("good", "ok", ""),
        ],
        r#"<fencing-level id="l1" target="n3" index="1" devices="broken"/>
           <fencing-level id="l2" target="n3" index="2" devices="liar"/>
           <fencing-level id="l3" target="n3" index="3" devices="good"/>"#,
    );
    let Some(c) = Cluster::start(T, 61, &config).await else {
        return;
    };
    let result = c.fence(1, "n3", "off", HashMap::new()).await;
    assert_eq!(result, "done");
    let h = c.history(&[1, 2, 3], 1).await;
    let e = &h[0];
    assert_eq!(
        (e.target.as_str(), e.action.as_str(), e.outcome.as_str()),
        ("n3", "off", "done")
    );
    assert_eq!(e.devices, ["good"]);
    assert_eq!((e.origin.as_str(), e.executioner.as_str()), ("n1", "n1"));
    assert_eq!(
        c.actions(),
        ["off n3 fail", "off n3 lie", "off n3 ok"],
        "each level once, in order"
    );
    let log = std::fs::read_to_string(c.nodes.log(1, "fenced")).unwrap();
    assert!(
        log.contains("its status says it is still on"),
        "the lie is reported:\n{log}"
    );
    // Everyone sees the node's power state: off.
    assert_eq!(
        std::fs::read_to_string(c.state.join("n3")).unwrap().trim(),
        "off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_times_out_and_a_missing_agent_fail_the_operation() {
    const T: &str = "a_device_that_times_out_and_a_missing_agent_fail_the_operation";
    let missing = r#"<primitive id="gone" class="stonith" type="fence_nope"/>"#.to_string();
    let config = configuration(
        &[
            device(
                "slow",
                "hang",
                r#"<nvpair id="t" name="pcmk_off_timeout" value="1s"/>"#,
            ),
            missing,
        ],
        r#"<fencing-level id="l1" target="n2" index="1" devices="slow"/>
           <fencing-level id="l2" target="n2" index="2" devices="gone"/>"#,
    );
    let Some(c) = Cluster::start(T, 62, &config).await else {
        return;
    };
    let started = std::time::Instant::now();
    let result = c.fence(3, "n2", "off", HashMap::new()).await;
    assert_eq!(result, "failed");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let h = c.history(&[1, 2, 3], 1).await;
    let e = &h[0];
    assert_eq!(e.outcome, "failed");
    assert!(
        e.reason.contains("level 1: slow") && e.reason.contains("timed out"),
        "{}",
        e.reason
    );
    assert!(
        e.reason.contains("level 2: gone") && e.reason.contains("not installed"),
        "{}",
        e.reason
    );
    assert_eq!(c.actions(), ["off n2 hang"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_from_two_nodes_fence_once() {
    const T: &str = "concurrent_requests_from_two_nodes_fence_once";
    let config = configuration(
        &[device(
            "psu",
            "ok",
            r#"<nvpair id="d" name="pcmk_delay_base" value="1s"/>"#,
        )],
        "",
    );
    let Some(c) = Cluster::start(T, 63, &config).await else {
        return;
    };
    let (a, b) = tokio::join!(
        c.fence(1, "n3", "reboot", HashMap::new()),
        c.fence(2, "n3", "reboot", HashMap::new())
    );
    assert_eq!((a.as_str(), b.as_str()), ("done", "done"));
    let h = c.history(&[1, 2, 3], 1).await;
    assert_eq!(h[0].requests, 2, "{h:?}");
    assert_eq!(c.actions(), ["reboot n3 ok"], "fenced exactly once");
    // The devices and who they fence.
    let f = c.fencer(2).await;
    assert_eq!(f.devices_for("n1").await.unwrap(), ["psu"]);
    let devices = f.devices().await.unwrap();
    assert_eq!(devices[0].0, "psu");
    assert_eq!(f.monitor_device("psu").await.unwrap().0, 0);

    // The operator's view: `vigil fence`, `vigil stonith`.
    let Some(vigil) = sibling_binary(T, FENCED, "vigil") else {
        return;
    };
    let cli = |args: &[&str]| {
        let out = Command::new(&vigil)
            .args(args)
            .arg("--bus")
            .arg(c.nodes.bus(2))
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = cli(&["fence", "history"]);
    assert!(
        ok && out.contains("n3 reboot")
            // Whichever request the cluster ordered first runs it.
            && (out.contains("fenced with psu by n1") || out.contains("fenced with psu by n2"))
            && out.contains("and 1 more"),
        "{out}"
    );
    let (ok, out) = cli(&["stonith", "list"]);
    assert!(ok && out.contains("psu  stonith:fence_test"), "{out}");
    let (ok, out) = cli(&["stonith", "show", "psu"]);
    assert!(
        ok && out.contains("monitor: ok") && out.contains("configuration: valid"),
        "{out}"
    );
    let (ok, out) = cli(&["fence", "n1", "--action", "off"]);
    assert!(
        ok && out.contains("n1 off") && out.contains("fenced with psu by n2"),
        "{out}"
    );
    let (ok, out) = cli(&["fence", "confirm", "n1"]);
    assert!(!ok && out.contains("--yes"), "{out}");
    let (ok, out) = cli(&["fence", "n7"]);
    assert!(!ok && out.contains("unknown node \"n7\""), "{out}");
    assert_eq!(c.actions(), ["reboot n3 ok", "off n1 ok"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_survives_its_executioner_dying() {
    const T: &str = "a_request_survives_its_executioner_dying";
    let config = configuration(&[device("psu", "ok", "")], "");
    let Some(mut c) = Cluster::start(T, 64, &config).await else {
        return;
    };
    // n1 asks (and so runs it) with a delay, then dies before fencing.
    let f1 = c.fencer(1).await;
    let options = HashMap::from([("delay-ms", zbus::Variant::from(3_000u64))]);
    f1.fence("n3", "off", options).await.unwrap();
    let f2 = c.fencer(2).await;
    eventually("the operation to be known everywhere", async || {
        let p = f2.pending().await.map_err(|e| e.to_string())?;
        if p.len() == 1 {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    })
    .await;
    let n1 = &mut c.running[0];
    n1.fenced.take().unwrap().kill();
    n1.cib.take().unwrap().kill();
    n1.membership.take().unwrap().kill();
    let h = c.history(&[2, 3], 1).await;
    let e = &h[0];
    assert_eq!(
        (
            e.outcome.as_str(),
            e.origin.as_str(),
            e.executioner.as_str()
        ),
        ("done", "n1", "n2"),
        "{e:?}"
    );
    assert_eq!(c.actions(), ["off n3 ok"], "fenced exactly once");
}

/// Runs one operation through node 1's executor: (rc, exit reason).
async fn through_the_executor(
    c: &Cluster,
    resource: &str,
    agent: &str,
    action: &str,
) -> (i32, String) {
    use vigil_dbus::executor::ManagerProxy as Executor;
    let conn = c.nodes.connect(1).await;
    let x = Executor::new(&conn).await.unwrap();
    let mut done = x.receive_operation_completed().await.unwrap();
    let (job, _) = x
        .execute(
            resource,
            agent,
            action,
            0,
            10_000,
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let s = done.next().await.unwrap();
            let a = s.args().unwrap();
            if a.job_id == job {
                return (a.record.rc, a.record.exit_reason);
            }
        }
    })
    .await
    .expect("the executor answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_confirmation() {
    const T: &str = "bad_requests_and_confirmation";
    let gone = r#"<primitive id="gone" class="stonith" type="fence_nope"/>"#.to_string();
    let config = configuration(&[device("psu", "ok", ""), gone], "");
    let Some(c) = Cluster::start(T, 65, &config).await else {
        return;
    };
    let f = c.fencer(1).await;
    let e = f
        .fence("n9", "off", HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown node \"n9\"") && e.contains("n1, n2, n3"),
        "{e}"
    );
    let e = f
        .fence("n2", "explode", HashMap::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown fencing action"), "{e}");
    let e = f
        .fence(
            "n2",
            "off",
            HashMap::from([("soon", zbus::Variant::from(1u64))]),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown option \"soon\""), "{e}");
    let e = f.monitor_device("nothing").await.unwrap_err().to_string();
    assert!(e.contains("no fence device \"nothing\""), "{e}");
    f.confirm("n2").await.unwrap();
    let h = c.history(&[1, 2, 3], 1).await;
    assert_eq!(
        (h[0].target.as_str(), h[0].outcome.as_str()),
        ("n2", "confirmed")
    );
    assert!(c.actions().is_empty(), "confirming runs no device");

    // The executor hands fence devices to the fencer and reports their
    // monitors.
    let Some(execd) = sibling_binary(T, FENCED, "vigil-execd") else {
        return;
    };
    let mut cmd = Command::new(execd);
    cmd.arg("--bus")
        .arg(c.nodes.bus(1))
        .arg("--node-name")
        .arg("n1")
        .arg("--fence-dir")
        .arg(&c.agents)
        .arg("--agent-state-dir")
        .arg(c.nodes.state(1, "agents"))
        .arg("--systemd-bus")
        .arg(c.nodes.bus(1));
    let x = Daemon::start("vigil-execd of n1", cmd, &c.nodes.log(1, "execd"));
    c.nodes.wait_for_name(&x, 1, "org.vigil.executor1").await;
    assert_eq!(
        through_the_executor(&c, "psu", "stonith:fence_test", "start")
            .await
            .0,
        0
    );
    assert_eq!(
        through_the_executor(&c, "psu", "stonith:fence_test", "monitor")
            .await
            .0,
        0
    );
    assert_eq!(
        through_the_executor(&c, "psu", "stonith:fence_test", "stop")
            .await
            .0,
        0
    );
    assert_eq!(
        through_the_executor(&c, "psu", "stonith:fence_test", "monitor")
            .await
            .0,
        7,
        "a stopped device's probe"
    );
    let (rc, why) = through_the_executor(&c, "gone", "stonith:fence_nope", "start").await;
    assert_eq!(rc, 5, "{why}");
    assert!(why.contains("not installed"), "{why}");
    let (rc, why) = through_the_executor(&c, "ghost", "stonith:fence_test", "start").await;
    assert_ne!(rc, 0);
    assert!(why.contains("no fence device \"ghost\""), "{why}");
    assert!(c.actions().is_empty(), "a monitor fences nobody");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debians_fence_dummy_fences_and_checks_status() {
    const T: &str = "debians_fence_dummy_fences_and_checks_status";
    let real = Path::new("/usr/sbin/fence_dummy");
    if !real.exists() {
        eprintln!("SKIPPED {T}: install Debian's fence-agents for fence_dummy");
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
            "{T}: fence_dummy is required (VIGIL_REQUIRE_ALL is set)"
        );
        return;
    }
    let config = configuration(
        &[r#"<primitive id="dummy" class="stonith" type="fence_dummy"><instance_attributes id="d-a">
              <nvpair id="d-s" name="status_file" value="STATE/dummy"/>
              <nvpair id="d-h" name="pcmk_host_list" value="n2"/></instance_attributes></primitive>"#
            .to_string()],
        "",
    );
    let Some(c) = Cluster::start(T, 66, &config).await else {
        return;
    };
    std::os::unix::fs::symlink(real, c.agents.join("fence_dummy")).unwrap();
    std::fs::write(c.state.join("dummy"), "on").unwrap();
    let f = c.fencer(1).await;
    assert_eq!(f.devices_for("n2").await.unwrap(), ["dummy"]);
    assert!(f.devices_for("n3").await.unwrap().is_empty());
    let (rc, reason, problems) = f.validate_device("dummy").await.unwrap();
    assert_eq!(rc, 0, "{reason}");
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(c.fence(1, "n2", "off", HashMap::new()).await, "done");
    assert_eq!(
        std::fs::read_to_string(c.state.join("dummy")).unwrap(),
        "off"
    );
    let h = c.history(&[1, 2, 3], 1).await;
    assert_eq!(
        (h[0].outcome.as_str(), h[0].devices.clone()),
        ("done", vec!["dummy".to_string()])
    );
    // No device for n3: the operation fails, saying so.
    assert_eq!(c.fence(2, "n3", "off", HashMap::new()).await, "failed");
    let h = c.history(&[1, 2, 3], 2).await;
    assert!(
        h[1].reason.contains("no fence device can fence n3"),
        "{}",
        h[1].reason
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfencing_uses_the_devices_that_provide_it() {
    const T: &str = "unfencing_uses_the_devices_that_provide_it";
    let config = configuration(
        &[
            device("power", "ok", ""),
            device(
                "storage",
                "ok",
                r#"<nvpair id="u" name="provides" value="unfencing"/>"#,
            ),
        ],
        "",
    );
    let Some(c) = Cluster::start(T, 67, &config).await else {
        return;
    };
    assert_eq!(c.fence(1, "n2", "on", HashMap::new()).await, "done");
    let h = c.history(&[1, 2, 3], 1).await;
    assert_eq!(h[0].devices, ["storage"]);
    assert_eq!(c.actions(), ["on n2 ok"]);
    // Fencing uses every device (here the first by id).
    assert_eq!(c.fence(1, "n2", "off", HashMap::new()).await, "done");
    let h = c.history(&[1, 2, 3], 2).await;
    assert_eq!(h[1].devices, ["power"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_is_not_root_needs_polkit_to_fence() {
    const T: &str = "a_caller_that_is_not_root_needs_polkit_to_fence";
    if !vigil_testkit::polkit::can_call_as_nobody(T) {
        return;
    }
    let config = configuration(&[device("psu", "ok", "")], "");
    let Some(c) = Cluster::start_with(T, 68, &config, true).await else {
        return;
    };
    let bus = c.nodes.bus(1).to_string();
    let call = |method: &str, args: &[&str]| {
        vigil_testkit::polkit::as_nobody(
            &bus,
            "org.vigil.fencing1",
            "/org/vigil/fencing1",
            &format!("org.vigil.fencing1.Manager.{method}"),
            args,
        )
    };
    let (ok, out) = call("History", &["string:"]);
    assert!(ok, "reading the history is open: {out}");
    let (ok, out) = call("Confirm", &["string:n2"]);
    assert!(
        !ok && out.contains("org.vigil.fencing1.fence") && out.contains("polkit did not answer"),
        "{out}"
    );
    {
        let _polkit = vigil_testkit::polkit::fake(&bus, None).await;
        let (ok, out) = call("Confirm", &["string:n2"]);
        assert!(!ok && out.contains("not allowed to fence nodes"), "{out}");
    }
    let _polkit = vigil_testkit::polkit::fake(&bus, Some("org.vigil.fencing1.fence")).await;
    let (ok, out) = call("Confirm", &["string:n2"]);
    assert!(ok, "{out}");
    let h = c.history(&[1, 2, 3], 1).await;
    assert!(h[0].client.starts_with("nobody"), "{h:?}");
}
