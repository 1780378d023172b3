//! vigil-execd with real agents and with agents that misbehave, driven over
//! its bus interface as the controller drives it.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Exec, op, real_agents};
use futures_util::StreamExt;
use vigil_types::ocf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_ocf_agents_start_monitor_stop() {
    const T: &str = "real_ocf_agents_start_monitor_stop";
    if !real_agents(T) {
        return;
    }
    let Some(x) = Exec::start(T, |_| {}).await else {
        return;
    };
    for agent in ["ocf:heartbeat:Dummy", "ocf:pacemaker:Dummy"] {
        let r = "web";
        let (rec, result) = x.run(op(r, agent, "monitor")).await;
        assert_eq!(
            (rec.rc, result.as_str()),
            (ocf::NOT_RUNNING, "done"),
            "{agent} probe: {rec:?}"
        );
        assert!(!rec.failed, "a probe finding it stopped is no failure");
        let (rec, result) = x.run(op(r, agent, "start")).await;
        assert_eq!(
            (rec.rc, result.as_str(), rec.note.as_str()),
            (0, "done", ""),
            "{agent} start: {rec:?}"
        );
        let (rec, _) = x.run(op(r, agent, "start")).await;
        assert_eq!(
            (rec.rc, rec.note.as_str()),
            (0, "already running"),
            "{agent}: {rec:?}"
        );
        let (rec, _) = x.run(op(r, agent, "monitor")).await;
        assert_eq!(rec.rc, ocf::OK, "{agent} monitor");
        // heartbeat's Dummy (OCF 1.0) knows only "reload": reload-agent
        // becomes reload; pacemaker's knows reload-agent.
        let (rec, _) = x.run(op(r, agent, "reload-agent")).await;
        assert_eq!(rec.rc, ocf::OK, "{agent} reload-agent: {rec:?}");
        // Live migration's two halves (the Dummies support it).
        let (rec, _) = x
            .run(
                op(r, agent, "migrate_to")
                    .meta("migrate_source", "n1")
                    .meta("migrate_target", "n2"),
            )
            .await;
        assert_eq!(rec.rc, ocf::OK, "{agent} migrate_to: {rec:?}");
        let (rec, _) = x
            .run(
                op(r, agent, "migrate_from")
                    .meta("migrate_source", "n2")
                    .meta("migrate_target", "n1"),
            )
            .await;
        assert_eq!(rec.rc, ocf::OK, "{agent} migrate_from: {rec:?}");
        let (rec, _) = x.run(op(r, agent, "monitor")).await;
        assert_eq!(rec.rc, ocf::OK, "{agent} runs here after migrate_from");
        let (rec, _) = x.run(op(r, agent, "stop")).await;
        assert_eq!((rec.rc, rec.note.as_str()), (0, ""), "{agent} stop");
        let (rec, _) = x.run(op(r, agent, "stop")).await;
        assert_eq!(
            (rec.rc, rec.note.as_str()),
            (0, "already stopped"),
            "{agent}: {rec:?}"
        );
        let (rec, _) = x.run(op(r, agent, "monitor")).await;
        assert_eq!(rec.rc, ocf::NOT_RUNNING);
        let m = x.manager().await;
        m.forget_resource(r).await.unwrap();
    }
    // The agents keep their state in the node's own directory.
    assert!(x.state_dir.exists());
    let m = x.manager().await;
    let (agent, state, ops, failure, jobs) = {
        x.run(op("db", "ocf:heartbeat:Dummy", "start")).await;
        m.get_resource("db").await.unwrap()
    };
    assert_eq!(
        (agent.as_str(), state.as_str()),
        ("ocf:heartbeat:Dummy", "running")
    );
    assert_eq!(ops.len(), 1);
    assert!(failure.is_empty() && jobs.is_empty());
    assert!(
        m.list_resources()
            .await
            .unwrap()
            .contains(&"db".to_string())
    );
    let err = m.get_resource("nothing").await.unwrap_err().to_string();
    assert!(err.contains("no operation of nothing is known"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_and_metadata() {
    const T: &str = "listings_and_metadata";
    if !real_agents(T) {
        return;
    }
    let Some(x) = Exec::start(T, |root| {
        common::write_exec(
            &root.join("resource.d/vigiltest/Mine"),
            "#!/bin/sh\nexit 0\n",
        );
    })
    .await
    else {
        return;
    };
    let m = x.manager().await;
    let classes = m.list_classes().await.unwrap();
    assert!(classes.contains(&"ocf".to_string()), "{classes:?}");
    assert!(
        !classes.contains(&"systemd".to_string()),
        "no systemd here: {classes:?}"
    );
    let providers = m.list_providers("ocf").await.unwrap();
    for p in ["heartbeat", "pacemaker", "vigiltest"] {
        assert!(providers.contains(&p.to_string()), "{providers:?}");
    }
    let agents = m.list_agents("ocf", "heartbeat").await.unwrap();
    assert!(agents.contains(&"Dummy".to_string()) && agents.contains(&"IPaddr2".to_string()));
    assert_eq!(m.list_agents("ocf", "vigiltest").await.unwrap(), ["Mine"]);
    let err = m.list_agents("ocf", "nope").await.unwrap_err().to_string();
    assert!(err.contains("no ocf provider \"nope\""), "{err}");
    let err = m.list_agents("foo", "").await.unwrap_err().to_string();
    assert!(err.contains("unknown agent class"), "{err}");

    let xml = m.agent_metadata("ocf:heartbeat:IPaddr2").await.unwrap();
    let md = vigil_executor::metadata::parse(&xml).unwrap();
    let ip = md.parameter("ip").expect("IPaddr2 takes ip");
    assert!(ip.required, "ip is required");
    assert!(md.action("monitor").is_some());
    let err = m
        .agent_metadata("ocf:vigiltest:Mine")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid agent metadata") || err.contains("no metadata"),
        "{err}"
    );
    let err = m.agent_metadata("ocf:Dummy").await.unwrap_err().to_string();
    assert!(err.contains("ocf:PROVIDER:TYPE"), "{err}");

    // Validation: metadata checks, then the agent's own validate-all.
    let (rc, _reason, problems) = m
        .validate(
            "vip",
            "ocf:heartbeat:IPaddr2",
            HashMap::from([("cidr_netmask", "24"), ("bogus", "1")]),
        )
        .await
        .unwrap();
    let names: Vec<_> = problems
        .iter()
        .map(|p| (p.0.as_str(), p.1.as_str()))
        .collect();
    assert!(names.contains(&("ip", "error")), "{problems:?}");
    assert!(names.contains(&("bogus", "warning")), "{problems:?}");
    assert_ne!(rc, ocf::OK, "IPaddr2's validate-all refuses a missing ip");
    let (rc, reason, problems) = m
        .validate("d", "ocf:heartbeat:Dummy", HashMap::new())
        .await
        .unwrap();
    assert_eq!((rc, problems.len()), (ocf::OK, 0), "{reason}");
    // A fence device needs neither the action nor the target (the fencer
    // gives them at each request), and the pcmk_* parameters are the
    // fencer's.
    if std::path::Path::new("/usr/sbin/fence_dummy").exists() {
        let (rc, reason, problems) = m
            .validate(
                "f",
                "stonith:fence_dummy",
                HashMap::from([("pcmk_host_list", "n1 n2")]),
            )
            .await
            .unwrap();
        assert_eq!((rc, problems.len()), (ocf::OK, 0), "{reason} {problems:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateful_promotes_and_gets_the_clone_environment() {
    const T: &str = "stateful_promotes_and_gets_the_clone_environment";
    if !real_agents(T) {
        return;
    }
    let Some(x) = Exec::start(T, |_| {}).await else {
        return;
    };
    let envfile = x.dir.path().join("stateful.env");
    let envfile = envfile.to_str().unwrap();
    let agent = "ocf:pacemaker:Stateful";
    let o = |action| {
        op("db:0", agent, action)
            .param("envfile", envfile)
            .meta("clone-max", "3")
            .meta("clone-node-max", "1")
            .meta("promoted-max", "1")
            .meta("notify", "true")
            .meta("globally-unique", "false")
    };
    let (rec, _) = x.run(o("start")).await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}");
    let (rec, _) = x.run(o("monitor")).await;
    assert_eq!(rec.rc, ocf::OK, "started unpromoted");
    let (rec, _) = x.run(o("promote")).await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}");
    let (rec, _) = x.run(o("monitor")).await;
    assert_eq!(rec.rc, ocf::RUNNING_PROMOTED, "promoted");
    let m = x.manager().await;
    assert_eq!(m.get_resource("db:0").await.unwrap().1, "promoted");
    let (rec, _) = x
        .run(
            o("notify")
                .meta("notify_type", "pre")
                .meta("notify_operation", "demote")
                .meta("notify_demote_uname", "n1"),
        )
        .await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}");
    let env = std::fs::read_to_string(envfile).expect("Stateful wrote its environment");
    for want in [
        "OCF_RESOURCE_INSTANCE=db:0",
        "OCF_RESOURCE_TYPE=Stateful",
        "OCF_RESOURCE_PROVIDER=pacemaker",
        "OCF_RESKEY_CRM_meta_clone_max=3",
        "OCF_RESKEY_CRM_meta_promoted_max=1",
        "OCF_RESKEY_CRM_meta_notify_type=pre",
        "OCF_RESKEY_CRM_meta_notify_operation=demote",
        "OCF_RESKEY_CRM_meta_notify_demote_uname=n1",
        "OCF_RESKEY_CRM_meta_on_node=n1",
        "OCF_RESKEY_CRM_meta_name=notify",
        "OCF_RESKEY_CRM_meta_timeout=20000",
    ] {
        assert!(
            env.lines().any(
                |l| l.trim_start_matches("export ").trim_matches('"') == want || l.contains(want)
            ),
            "{want} missing from the agent's environment:\n{env}"
        );
    }
    let (rec, _) = x.run(o("demote")).await;
    assert_eq!(rec.rc, ocf::OK);
    let (rec, _) = x.run(o("monitor")).await;
    assert_eq!(rec.rc, ocf::OK, "demoted");
    let (rec, _) = x.run(o("stop")).await;
    assert_eq!(rec.rc, ocf::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recurring_monitor_reports_changes_until_cancelled() {
    const T: &str = "recurring_monitor_reports_changes_until_cancelled";
    if !real_agents(T) {
        return;
    }
    let Some(x) = Exec::start(T, |_| {}).await else {
        return;
    };
    let agent = "ocf:heartbeat:Dummy";
    x.run(op("web", agent, "start")).await;
    let m = x.manager().await;
    let mut completed = m.receive_operation_completed().await.unwrap();
    let mut removed = m.receive_job_removed().await.unwrap();
    let (id, path) = m
        .execute(
            "web",
            agent,
            "monitor",
            200,
            10_000,
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
        )
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), completed.next())
        .await
        .expect("the first run is reported")
        .unwrap();
    let first = first.args().unwrap();
    assert_eq!(
        (first.job_id, first.record.rc, first.record.interval_ms),
        (id, 0, 200)
    );
    // The job object shows the recurring job.
    let job = vigil_dbus::executor::JobProxy::builder(&x.conn)
        .path(path.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(job.resource().await.unwrap(), "web");
    assert_eq!(job.interval_ms().await.unwrap(), 200);
    // Identical successes are not reported...
    let quiet = tokio::time::timeout(Duration::from_millis(1_200), completed.next()).await;
    assert!(
        quiet.is_err(),
        "an identical result was reported: {:?}",
        quiet.map(|s| s.map(|s| s.args().unwrap().record))
    );
    // ...but they run: the history's last run moves.
    let (_, _, ops, _, jobs) = m.get_resource("web").await.unwrap();
    let mon = ops.iter().find(|o| o.action == "monitor").unwrap();
    assert!(
        mon.call_id > first.record.call_id,
        "the monitor keeps running: {mon:?}"
    );
    assert_eq!(jobs.len(), 1);
    // The resource dies behind the cluster's back: reported, as a failure.
    let state = std::fs::read_dir(&x.state_dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains("web"))
        .expect("Dummy's state file for web")
        .path();
    std::fs::remove_file(&state).unwrap();
    let change = tokio::time::timeout(Duration::from_secs(10), completed.next())
        .await
        .expect("the change is reported")
        .unwrap();
    let change = change.args().unwrap();
    assert_eq!(change.record.rc, ocf::NOT_RUNNING);
    assert!(change.record.failed, "{:?}", change.record);
    let (_, state_now, _, failure, _) = m.get_resource("web").await.unwrap();
    assert_eq!(state_now, "stopped");
    assert_eq!(failure[0].rc, ocf::NOT_RUNNING);
    // Cancelled: the job ends and nothing more comes.
    m.cancel("web", "monitor", 200).await.unwrap();
    let end = common::job_end(&mut removed, id).await;
    assert_eq!(
        end,
        ("web_monitor_200".to_string(), "cancelled".to_string())
    );
    let err = m
        .cancel("web", "monitor", 200)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no recurring monitor"), "{err}");
    assert!(m.get_resource("web").await.unwrap().4.is_empty());
    // The journal (stderr here) has the structured fields.
    let log = x.log();
    assert!(
        log.contains("vigil_resource=web")
            && log.contains("vigil_op=web_monitor_200")
            && log.contains("vigil_rc=7"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_cancels_recurring_monitors() {
    const T: &str = "a_stop_cancels_recurring_monitors";
    if !real_agents(T) {
        return;
    }
    let Some(x) = Exec::start(T, |_| {}).await else {
        return;
    };
    let agent = "ocf:heartbeat:Dummy";
    x.run(op("web", agent, "start")).await;
    let m = x.manager().await;
    let mut removed = m.receive_job_removed().await.unwrap();
    let (id, _) = m
        .execute(
            "web",
            agent,
            "monitor",
            300,
            10_000,
            HashMap::new(),
            HashMap::new(),
            HashMap::new(),
        )
        .await
        .unwrap();
    let (rec, _) = x.run(op("web", agent, "stop")).await;
    assert_eq!(rec.rc, 0);
    let end = common::job_end(&mut removed, id).await;
    assert_eq!(end.1, "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operation_at_a_time_per_resource() {
    const T: &str = "one_operation_at_a_time_per_resource";
    let Some(x) = Exec::start(T, |root| {
        common::write_exec(
            &root.join("resource.d/vigiltest/Slow"),
            "#!/bin/sh\ncase $1 in start) sleep 0.6;; esac\necho \"$1 $(date +%s%N)\" >> \"$OCF_RESKEY_log\"\nexit 0\n",
        );
    })
    .await
    else {
        return;
    };
    let log = x.dir.path().join("order.log");
    let log = log.to_str().unwrap();
    let a = op("a", "ocf:vigiltest:Slow", "start").param("log", log);
    let a_mon = op("a", "ocf:vigiltest:Slow", "monitor").param("log", log);
    let b = op("b", "ocf:vigiltest:Slow", "monitor").param("log", log);
    let (ra, rmon, rb) = tokio::join!(
        x.run(a),
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            x.run(a_mon).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            x.run(b).await
        }
    );
    assert!(ra.0.exec_ms >= 500, "{:?}", ra.0);
    assert!(
        rmon.0.queue_ms >= 300,
        "a's monitor waited for its start: {:?}",
        rmon.0
    );
    assert!(rb.0.queue_ms < 300, "b did not wait for a: {:?}", rb.0);
    let order = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = order
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        lines,
        ["monitor", "start", "monitor"],
        "b's monitor ran during a's start:\n{order}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    const T: &str = "bad_requests_are_refused_and_change_nothing";
    let Some(x) = Exec::start(T, |_| {}).await else {
        return;
    };
    let m = x.manager().await;
    let e = HashMap::new;
    /// (resource, agent, action, interval, options, expected error)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        u64,
        HashMap<&'a str, zbus::Variant<'a>>,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "r",
            "ocf:Dummy",
            "start",
            0,
            HashMap::new(),
            "ocf:PROVIDER:TYPE",
        ),
        (
            "r",
            "ocf:heartbeat:../../x",
            "start",
            0,
            HashMap::new(),
            "invalid agent type",
        ),
        (
            "a b",
            "ocf:heartbeat:Dummy",
            "start",
            0,
            HashMap::new(),
            "invalid resource id",
        ),
        (
            "r",
            "ocf:heartbeat:Dummy",
            "start",
            1000,
            HashMap::new(),
            "only monitors recur",
        ),
        (
            "r",
            "ocf:heartbeat:Dummy",
            "st art",
            0,
            HashMap::new(),
            "invalid action",
        ),
        (
            "r",
            "ocf:heartbeat:Dummy",
            "start",
            0,
            HashMap::from([("colour", zbus::Variant::from("red"))]),
            "unknown option \"colour\"",
        ),
        (
            "r",
            "ocf:heartbeat:Dummy",
            "start",
            0,
            HashMap::from([("expected-rc", zbus::Variant::from("zero"))]),
            "must be an int32",
        ),
    ];
    for (res, agent, action, interval, options, want) in cases {
        let err = m
            .execute(res, agent, action, interval, 0, e(), e(), options)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{res} {agent} {action}: {err}");
    }
    let err = m
        .execute(
            "r",
            "ocf:heartbeat:Dummy",
            "start",
            0,
            0,
            HashMap::from([("a=b", "1")]),
            e(),
            HashMap::new(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid parameter name"), "{err}");
    assert!(
        m.list_resources().await.unwrap().is_empty(),
        "a refusal changes nothing"
    );
}

/// `busctl` as user nobody on the executor's bus.
fn busctl_as_nobody(x: &Exec, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "busctl"])
        .arg(format!("--address={}", x.bus.address()))
        .args([
            "call",
            "org.vigil.executor1",
            "/org/vigil/executor1",
            "org.vigil.executor1.Manager",
        ])
        .args(args)
        .output()
        .expect("run busctl as nobody");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_is_not_root_needs_polkit_to_run_agents() {
    const T: &str = "a_caller_that_is_not_root_needs_polkit_to_run_agents";
    if !vigil_testkit::polkit::can_call_as_nobody(T) {
        return;
    }
    let Some(x) = Exec::start_open(T).await else {
        return;
    };
    let execute = [
        "Execute",
        "ssstta{ss}a{ss}a{sv}",
        "web",
        "ocf:heartbeat:Dummy",
        "monitor",
        "0",
        "0",
        "0",
        "0",
        "0",
    ];
    // Reading is open; running an agent is not, without polkit's word.
    // (busctl prints every AccessDenied as "Access denied"; dbus-send shows
    // the daemon's message.)
    let (ok, out) = busctl_as_nobody(&x, &["ListResources"]);
    assert!(ok, "{out}");
    let (ok, out) = busctl_as_nobody(&x, &execute);
    assert!(!ok && out.contains("Access denied"), "{out}");
    let forget = |bus: &str| {
        vigil_testkit::polkit::as_nobody(
            bus,
            "org.vigil.executor1",
            "/org/vigil/executor1",
            "org.vigil.executor1.Manager.ForgetResource",
            &["string:web"],
        )
    };
    let (ok, out) = forget(x.bus.address());
    assert!(
        !ok && out.contains("polkit did not answer") && out.contains("org.vigil.executor1.execute"),
        "{out}"
    );
    {
        let _polkit = vigil_testkit::polkit::fake(x.bus.address(), None).await;
        let (ok, out) = forget(x.bus.address());
        assert!(
            !ok && out.contains("'nobody' (uid 65534) is not allowed to run resource agents"),
            "{out}"
        );
    }
    let _polkit =
        vigil_testkit::polkit::fake(x.bus.address(), Some("org.vigil.executor1.execute")).await;
    let (ok, out) = busctl_as_nobody(&x, &execute);
    assert!(ok && out.contains("/org/vigil/executor1/job/"), "{out}");
}
