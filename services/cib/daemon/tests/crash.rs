//! Crash safety: `vigil-cibd` is killed with SIGKILL at varying moments
//! while a client writes a stream of configuration changes, again and
//! again. After every restart the stored CIB is exactly a committed
//! version (it loads, its digest matches) and no acknowledged change is
//! missing.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigil_dbus::cib::ManagerProxy;
use vigil_testkit::{Daemon, Nodes, dbus_daemon_available, eventually, sibling_binary};
use zbus::proxy::CacheProperties;

const CIBD: &str = env!("CARGO_BIN_EXE_vigil-cibd");

/// Kill-and-restart rounds (`VIGIL_CRASH_ROUNDS` for more).
fn rounds() -> u32 {
    std::env::var("VIGIL_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

async fn proxy(nodes: &Nodes) -> ManagerProxy<'static> {
    let conn = nodes.connect(1).await;
    ManagerProxy::builder(&conn)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .expect("CIB proxy")
}

fn start_cibd(nodes: &Nodes) -> Daemon {
    let mut cmd = Command::new(CIBD);
    cmd.arg("--bus")
        .arg(nodes.bus(1))
        .arg("--state-dir")
        .arg(nodes.state(1, "cib"))
        .arg("--node-name")
        .arg("n1");
    Daemon::start("vigil-cibd", cmd, &nodes.log(1, "cib"))
}

/// The ids of the primitives `r<k>` in the CIB, as numbers.
fn present(xml: &str) -> BTreeSet<u64> {
    xml.split("id=\"r")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_change_is_lost_when_the_daemon_is_killed() {
    let test = "no_acknowledged_change_is_lost_when_the_daemon_is_killed";
    if !dbus_daemon_available(test) {
        return;
    }
    let Some(membershipd) = sibling_binary(test, CIBD, "vigil-membershipd") else {
        return;
    };
    let nodes = Nodes::new(45, 1);
    let _membership = nodes.start_membership(&membershipd, 1).await;
    let acked: Arc<Mutex<BTreeSet<u64>>> = Arc::default();
    let mut next: u64 = 0;
    // A fixed sequence of kill delays, 5..=205 ms, so that a failure can be
    // run again the same way.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..rounds() {
        let cibd = start_cibd(&nodes);
        nodes.wait_for_name(&cibd, 1, "org.vigil.cib1").await;
        let cib = proxy(&nodes).await;
        // After the restart: the stored CIB is a committed version with
        // every acknowledged change.
        let xml = eventually("the restarted daemon to join and answer", async || {
            cibd.assert_running();
            if !cib.synced().await.map_err(|e| e.to_string())? {
                return Err("not in step yet".into());
            }
            cib.query("", "resources").await.map_err(|e| e.to_string())
        })
        .await;
        let have = present(&xml);
        let acked_now = acked.lock().unwrap().clone();
        let missing: Vec<u64> = acked_now.difference(&have).copied().collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged changes missing after a kill: {missing:?}"
        );
        // Nothing appears that was never sent; at most the change in
        // flight when the daemon died was committed without its answer.
        let unacked: Vec<u64> = have.difference(&acked_now).copied().collect();
        assert!(
            unacked.iter().all(|k| *k < next) && unacked.len() <= 1,
            "round {round}: unexpected changes {unacked:?} (sent up to {next})"
        );
        acked.lock().unwrap().extend(unacked);
        // A stream of writes, killed after a while.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(5 + seed % 201);
        let writer = {
            let acked = acked.clone();
            let cib = cib.clone();
            let first = next;
            tokio::spawn(async move {
                let mut k = first;
                loop {
                    let xml = format!(
                        "<primitive id=\"r{k}\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>"
                    );
                    match cib.create("resources", &xml).await {
                        Ok(_) => {
                            acked.lock().unwrap().insert(k);
                        }
                        Err(_) => return k + 1,
                    }
                    k += 1;
                }
            })
        };
        tokio::time::sleep(delay).await;
        cibd.kill();
        next = writer.await.expect("the writer task");
        drop(cibd);
    }
    let total = acked.lock().unwrap().len();
    assert!(
        total >= rounds() as usize,
        "too few changes were acknowledged ({total}) for the test to mean anything"
    );
}

#[test]
fn a_damaged_cib_file_is_refused_with_the_way_out_and_left_alone() {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let state = dir.path().join("cib");
    std::fs::create_dir_all(&state).expect("the state directory");
    // A stored CIB and its digest, as the daemon writes them ...
    let mut store = vigil_cibd::store::Store::open(&state, false)
        .expect("open the store")
        .store;
    let text = "<cib admin_epoch=\"0\" epoch=\"4\" num_updates=\"0\"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>";
    let v = vigil_cib::model::CibVersion {
        admin_epoch: 0,
        epoch: 4,
        num_updates: 0,
    };
    store.write(text, v, None).expect("write the CIB");
    // ... then changed behind its back.
    let file = state.join("cib.xml");
    let damaged = text.replace("epoch=\"4\"", "epoch=\"40\"");
    std::fs::write(&file, &damaged).expect("damage the file");
    let mut cmd = Command::new(CIBD);
    cmd.arg("--state-dir")
        .arg(&state)
        .arg("--bus")
        .arg("unix:path=/nonexistent/bus")
        .env("VIGIL_LOG_STDERR", "1");
    let out = vigil_testkit::run_with_deadline(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the daemon started anyway: {err}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains("--accept-digest"),
        "the error should name the file and the way out: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("the file"),
        damaged,
        "nothing is overwritten"
    );
}
