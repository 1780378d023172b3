//! Agents that hang, ignore SIGTERM, exit with every code, print garbage,
//! are missing or cannot run: each gives the right result, and nothing
//! leaks (no process of theirs left, no descriptor left open).

mod common;

use common::{Exec, op};
use vigil_types::ocf;

/// A test agent that records its process group in `$OCF_RESKEY_pidfile`
/// and then does what `$OCF_RESKEY_mode` says.
const AGENT: &str = r#"#!/bin/sh
[ -n "$OCF_RESKEY_pidfile" ] && echo $$ > "$OCF_RESKEY_pidfile"
case "$OCF_RESKEY_mode" in
hang)
    sleep 1000 &
    wait
    ;;
stubborn)
    trap '' TERM
    (trap '' TERM; while :; do sleep 1; done) &
    while :; do sleep 1; done
    ;;
code)
    echo "ocf-exit-reason:asked for $OCF_RESKEY_code" >&2
    exit "$OCF_RESKEY_code"
    ;;
garbage)
    head -c 200000 /dev/urandom
    head -c 200000 /dev/urandom >&2
    printf 'ocf-exit-reason:\001\002 bad \033[31m bytes\n' >&2
    exit 1
    ;;
leave)
    sleep 30 &
    exit 0
    ;;
esac
exit 0
"#;

async fn start(test: &str) -> Option<Exec> {
    Exec::start(test, |root| {
        common::write_exec(&root.join("resource.d/vigiltest/Odd"), AGENT);
        common::write_exec(
            &root.join("resource.d/vigiltest/BadInterpreter"),
            "#!/nonexistent/bin/sh\nexit 0\n",
        );
        let noexec = root.join("resource.d/vigiltest/NotExecutable");
        std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    })
    .await
}

fn pid_in(path: &std::path::Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("the agent wrote its pid")
        .trim()
        .parse()
        .unwrap()
}

async fn none_left(pgid: u32) {
    vigil_testkit::eventually("the agent's processes are gone", async || {
        let left = Exec::group_members(pgid);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("processes of group {pgid} remain: {left:?}"))
        }
    })
    .await;
}

async fn no_descriptor_left(x: &Exec, before: usize) {
    vigil_testkit::eventually("descriptors are closed", async || {
        let now = x.open_fds();
        if now <= before {
            Ok(())
        } else {
            Err(format!("{now} open, {before} before"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_stubborn_agents_are_killed_at_their_timeout() {
    const T: &str = "hanging_and_stubborn_agents_are_killed_at_their_timeout";
    let Some(x) = start(T).await else { return };
    let fds_before = x.open_fds();
    for mode in ["hang", "stubborn"] {
        let pidfile = x.dir.path().join(format!("{mode}.pid"));
        let o = op("r", "ocf:vigiltest:Odd", "start")
            .param("mode", mode)
            .param("pidfile", pidfile.to_str().unwrap())
            .timeout(500);
        let (rec, result) = x.run(o).await;
        assert_eq!(result, "timeout", "{mode}: {rec:?}");
        assert_eq!(
            rec.op_status,
            vigil_types::OpStatus::Timeout.code(),
            "{mode}"
        );
        assert_eq!(rec.rc, ocf::UNKNOWN_ERROR);
        assert!(rec.exit_reason.contains("500ms"), "{}", rec.exit_reason);
        assert!(rec.exec_ms >= 450 && rec.exec_ms < 5_000, "{mode}: {rec:?}");
        assert!(rec.failed);
        none_left(pid_in(&pidfile)).await;
    }
    // The resource's next operation runs normally.
    let (rec, _) = x.run(op("r", "ocf:vigiltest:Odd", "stop")).await;
    assert_eq!(rec.rc, 0);
    no_descriptor_left(&x, fds_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exit_code_maps() {
    const T: &str = "every_exit_code_maps";
    let Some(x) = start(T).await else { return };
    let defined = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191];
    for code in defined.into_iter().chain([10, 42, 99, 189, 192, 255]) {
        let c = code.to_string();
        let o = op("r", "ocf:vigiltest:Odd", "start")
            .param("mode", "code")
            .param("code", &c);
        let (rec, result) = x.run(o).await;
        if defined.contains(&code) {
            assert_eq!(rec.rc, code, "{code}: {rec:?}");
            assert_eq!(rec.exit_reason, format!("asked for {code}"));
            let expected_status = match code {
                3 => vigil_types::OpStatus::NotSupported,
                5 => vigil_types::OpStatus::NotInstalled,
                _ => vigil_types::OpStatus::Done,
            };
            assert_eq!(rec.op_status, expected_status.code(), "{code}");
            let ok = code == 0 || code == 190;
            assert_eq!(
                result,
                if ok { "done" } else { "failed" },
                "{code}: {rec:?}"
            );
        } else {
            assert_eq!(rec.rc, ocf::UNKNOWN_ERROR, "{code}");
            assert_eq!(rec.op_status, vigil_types::OpStatus::Error.code());
            assert!(
                rec.exit_reason.contains(&format!("exit code {code}")),
                "{}",
                rec.exit_reason
            );
            assert_eq!(result, "failed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_missing_and_unrunnable_agents() {
    const T: &str = "garbage_missing_and_unrunnable_agents";
    let Some(x) = start(T).await else { return };
    let fds_before = x.open_fds();
    let (rec, _) = x
        .run(op("g", "ocf:vigiltest:Odd", "monitor").param("mode", "garbage"))
        .await;
    assert_eq!(rec.rc, ocf::UNKNOWN_ERROR);
    // The reason comes after 200 kB of noise, cleaned of control bytes.
    assert_eq!(rec.exit_reason, "bad  [31m bytes", "{rec:?}");

    let (rec, result) = x.run(op("m", "ocf:vigiltest:Missing", "start")).await;
    assert_eq!(
        (rec.rc, rec.op_status),
        (
            ocf::NOT_INSTALLED,
            vigil_types::OpStatus::NotInstalled.code()
        )
    );
    assert_eq!(result, "failed");
    assert!(rec.exit_reason.contains("not installed"), "{rec:?}");
    // A probe of a missing agent: not running here, and no failure.
    let (rec, _) = x.run(op("m2", "ocf:vigiltest:Missing", "monitor")).await;
    assert_eq!(rec.rc, ocf::NOT_INSTALLED);

    let (rec, _) = x.run(op("n", "ocf:vigiltest:NotExecutable", "start")).await;
    assert_eq!(rec.rc, ocf::INSUFFICIENT_PRIV, "{rec:?}");
    assert!(rec.exit_reason.contains("cannot be executed"), "{rec:?}");
    let (rec, _) = x
        .run(op("b", "ocf:vigiltest:BadInterpreter", "start"))
        .await;
    assert!(rec.exit_reason.contains("interpreter"), "{rec:?}");

    // An agent that leaves a process behind: its result comes at once.
    let pidfile = x.dir.path().join("leave.pid");
    let (rec, _) = x
        .run(
            op("l", "ocf:vigiltest:Odd", "start")
                .param("mode", "leave")
                .param("pidfile", pidfile.to_str().unwrap()),
        )
        .await;
    assert_eq!(rec.rc, 0);
    assert!(rec.exec_ms < 5_000, "{rec:?}");
    vigil_execd::spawn::kill_group(pid_in(&pidfile));
    none_left(pid_in(&pidfile)).await;
    x.daemon.assert_running();
    no_descriptor_left(&x, fds_before).await;
}
