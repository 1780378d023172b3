//! Network splits in the sandbox: a node cut off from the others is
//! fenced and its resources recover on the side with quorum; a two-node
//! cluster split in two ends with one node running everything. Across
//! both, no resource ever runs on two nodes at once.

mod common;

use common::{
    DEMO_PRIMITIVES as PRIMITIVES, NeverTwice, all_started, started_on, started_sandbox, vigil,
    wait_for, wait_for_within,
};

#[test]
fn a_node_cut_off_is_fenced_its_resources_recover_and_it_comes_back() {
    const T: &str = "a_node_cut_off_is_fenced_its_resources_recover_and_it_comes_back";
    let Some((s, _, status)) = started_sandbox(T, 3) else {
        return;
    };
    let watch = NeverTwice::start(&s, &PRIMITIVES);
    let db = started_on(&status, "db").unwrap();
    // Errors name the problem.
    let (ok, out) = s.run(&["partition", "n9"]);
    assert!(!ok && out.contains("no node \"n9\""), "{out}");
    let (ok, out) = s.run(&["partition", "n1", "n2", "n3"]);
    assert!(!ok && out.contains("not none or all"), "{out}");
    // db's node is cut off: the others fence it and take db over.
    let (ok, out) = s.run(&["partition", &db]);
    assert!(ok && out.contains("cut off from"), "{out}");
    let survivor = if db == "n1" { "n2" } else { "n1" };
    let sbus = s.bus(survivor);
    let after = wait_for("db to recover on the side with quorum", || {
        let (_, st) = vigil(&["status"], Some(&sbus));
        match started_on(&st, "db") {
            Some(n) if n != db && all_started(&st) => Ok(st),
            _ => Err(st),
        }
    });
    assert!(
        after.contains(&format!("reboot of {db} successful")),
        "the cut-off node was fenced:\n{after}"
    );
    let (ok, st) = s.run(&["status"]);
    assert!(ok && st.contains(&format!("{db}: off")), "{st}");
    // The links back, the node powered on: it rejoins, and nothing moves
    // back (stickiness) nor runs twice.
    let (ok, out) = s.run(&["heal"]);
    assert!(ok, "{out}");
    let (ok, out) = s.run(&["start", &db]);
    assert!(ok && out.contains("rejoins"), "{out}");
    let (ok, out) = s.run(&["start", &db]);
    assert!(!ok && out.contains("on already"), "{out}");
    wait_for("the node to be online again", || {
        let (_, st) = vigil(&["status"], Some(&sbus));
        let online = st.lines().any(|l| l.contains("Online:") && l.contains(&db));
        if online && all_started(&st) {
            Ok(())
        } else {
            Err(st)
        }
    });
    // The node's own bus address is the same as before it went off.
    let (ok, st) = vigil(&["status"], Some(&s.bus(&db)));
    assert!(ok, "{st}");
    watch.check();
}

#[test]
fn a_two_node_cluster_split_in_two_ends_with_one_node_running_everything() {
    const T: &str = "a_two_node_cluster_split_in_two_ends_with_one_node_running_everything";
    let Some((s, _, _)) = started_sandbox(T, 2) else {
        return;
    };
    let watch = NeverTwice::start(&s, &PRIMITIVES);
    let (ok, out) = s.run(&["partition", "n2"]);
    assert!(ok, "{out}");
    // Both keep quorum (two_node) and fence each other: one survives.
    let survivor = wait_for_within("one node to be left", 60, || {
        let (_, st) = s.run(&["status"]);
        let on: Vec<&str> = st
            .lines()
            .filter(|l| !l.contains(": off"))
            .filter_map(|l| l.split(':').next())
            .collect();
        if on.len() == 1 {
            Ok(on[0].to_string())
        } else {
            Err(st)
        }
    });
    let sbus = s.bus(&survivor);
    wait_for("the survivor to run what can run", || {
        let (_, st) = vigil(&["status"], Some(&sbus));
        // db-backup may not run beside db: with one node it stays stopped.
        let here = ["web-ip", "web-server", "db"]
            .iter()
            .all(|r| started_on(&st, r).as_deref() == Some(survivor.as_str()));
        if here { Ok(()) } else { Err(st) }
    });
    watch.check();
}
