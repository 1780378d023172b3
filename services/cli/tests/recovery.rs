//! Recovery in the sandbox, as an operator sees it: a failing monitor
//! restarts its resource in place and, at `migration-threshold`, moves it;
//! a dead DC is replaced with nothing started twice; a node in
//! maintenance is left alone until the maintenance ends.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{
    DEMO_PRIMITIVES as PRIMITIVES, NeverTwice, Sandbox, all_started, dc_of, started_on,
    started_sandbox, vigil, wait_for,
};

/// The Dummy agent's state file of resource `db` on `node` (its "it
/// runs" mark), wherever the agent keeps it under the node's state.
fn db_state_file(s: &Sandbox, node: &str) -> Option<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &s.dir.join("nodes").join(node).join("state").join("agents"),
        &mut files,
    );
    files.into_iter().find(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.contains("db") && !name.contains("backup")
    })
}

#[test]
fn a_failing_monitor_restarts_in_place_then_moves_at_the_migration_threshold() {
    const T: &str = "a_failing_monitor_restarts_in_place_then_moves_at_the_migration_threshold";
    let Some((s, bus, status)) = started_sandbox(T, 3) else {
        return;
    };
    let watch = NeverTwice::start(&s, &PRIMITIVES);
    let home = started_on(&status, "db").unwrap();
    // db leaves a node after two failures there.
    let db = r#"<primitive id="db" class="ocf" provider="pacemaker" type="Dummy">
      <meta_attributes id="db-meta"><nvpair id="db-mt" name="migration-threshold" value="2"/></meta_attributes>
      <operations><op id="db-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
    </primitive>"#;
    let file = s.dir.join("db.xml");
    std::fs::write(&file, db).unwrap();
    let (ok, out) = vigil(
        &[
            "cib",
            "replace",
            "--xpath",
            "//primitive[@id='db']",
            file.to_str().unwrap(),
        ],
        Some(&bus),
    );
    assert!(ok, "{out}");
    // First failure: db dies behind the cluster's back; the monitor sees
    // it, the failure is counted, db restarts where it was.
    let mark = db_state_file(&s, &home).expect("db's state file");
    std::fs::remove_file(&mark).unwrap();
    let st = wait_for("db to fail once and run again in place", || {
        let (_, st) = vigil(&["status"], Some(&bus));
        let counted = st.contains(&format!("db on {home}: 1 (leaves the node at 2)"));
        if counted && mark.exists() && started_on(&st, "db").as_deref() == Some(home.as_str()) {
            Ok(st)
        } else {
            Err(st)
        }
    });
    assert!(
        st.contains("Failed Resource Actions:")
            && st.contains(&format!("db_monitor_5000 on {home} 'not running' (7)")),
        "{st}"
    );
    // Second failure: at the threshold, db moves away.
    std::fs::remove_file(&mark).unwrap();
    let st = wait_for("db to move away after its second failure", || {
        let (_, st) = vigil(&["status"], Some(&bus));
        match started_on(&st, "db") {
            Some(n) if n != home && all_started(&st) => Ok(st),
            _ => Err(st),
        }
    });
    assert!(st.contains(&format!("db on {home}: 2")), "{st}");
    let (ok, json) = vigil(&["status", "--output", "json"], Some(&bus));
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let count = v["fail_counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["resource"] == "db" && c["node"] == home.as_str())
        .expect("db's fail count in the JSON");
    assert_eq!(
        (
            count["count"].as_i64(),
            count["migration_threshold"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert!(
        v["failed_actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["operation_key"] == "db_monitor_5000" && f["rc_text"] == "not running"),
        "{json}"
    );
    // A cleanup forgets it all.
    let (ok, out) = vigil(&["resource", "cleanup", "db"], Some(&bus));
    assert!(ok, "{out}");
    wait_for("the failures to be forgotten", || {
        let (_, st) = vigil(&["status"], Some(&bus));
        if !st.contains("Fail Counts:") && !st.contains("Failed Resource Actions:") {
            Ok(())
        } else {
            Err(st)
        }
    });
    watch.check();
}

#[test]
fn a_dead_dc_is_replaced_and_nothing_starts_twice() {
    const T: &str = "a_dead_dc_is_replaced_and_nothing_starts_twice";
    let Some((s, _, status)) = started_sandbox(T, 3) else {
        return;
    };
    let watch = NeverTwice::start(&s, &PRIMITIVES);
    let dc = dc_of(&status).expect("a DC");
    let (ok, out) = s.run(&["kill", &dc]);
    assert!(ok, "{out}");
    let survivor = if dc == "n1" { "n2" } else { "n1" };
    let sbus = s.bus(survivor);
    let st = wait_for("a new DC, and everything running on the survivors", || {
        let (_, st) = vigil(&["status"], Some(&sbus));
        let new_dc = dc_of(&st);
        let away = PRIMITIVES
            .iter()
            .all(|r| started_on(&st, r).is_some_and(|n| n != dc));
        match new_dc {
            Some(d) if d != dc && away => Ok(st),
            _ => Err(st),
        }
    });
    assert!(st.contains(&format!("reboot of {dc} successful")), "{st}");
    watch.check();
}

#[test]
fn a_node_in_maintenance_is_left_alone_until_it_ends() {
    const T: &str = "a_node_in_maintenance_is_left_alone_until_it_ends";
    let Some((s, bus, status)) = started_sandbox(T, 3) else {
        return;
    };
    let home = started_on(&status, "db").unwrap();
    let (ok, out) = vigil(&["node", "maintenance", &home], Some(&bus));
    assert!(ok, "{out}");
    wait_for("the node to be in maintenance", || {
        let (_, st) = vigil(&["status"], Some(&bus));
        if st.contains(&format!("Node {home}: maintenance")) {
            Ok(())
        } else {
            Err(st)
        }
    });
    // db dies there: nobody notices or acts while the node is in
    // maintenance (its monitor runs every 5 s otherwise).
    let mark = db_state_file(&s, &home).expect("db's state file");
    std::fs::remove_file(&mark).unwrap();
    std::thread::sleep(Duration::from_secs(7));
    let (_, st) = vigil(&["status"], Some(&bus));
    assert!(!mark.exists(), "db was left alone:\n{st}");
    assert!(!st.contains("Fail Counts:"), "no failure counted:\n{st}");
    // Maintenance over: the cluster looks again and starts db.
    let (ok, out) = vigil(&["node", "maintenance", &home, "--off"], Some(&bus));
    assert!(ok, "{out}");
    wait_for("db to run again", || {
        let (_, st) = vigil(&["status"], Some(&bus));
        if started_on(&st, "db").is_some()
            && db_state_file(&s, &started_on(&st, "db").unwrap()).is_some()
        {
            Ok(())
        } else {
            Err(st)
        }
    });
}
