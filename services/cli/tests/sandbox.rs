//! `vigil sandbox`: a user boots a cluster on one machine, watches it,
//! pulls a node's plug, sees the resources come back elsewhere, and stops
//! it all.

mod common;

use std::process::Command;

use common::{NeverTwice, Sandbox, VIGIL, started_on, vigil, wait_for};

#[test]
fn a_sandbox_cluster_survives_a_pulled_plug() {
    const T: &str = "a_sandbox_cluster_survives_a_pulled_plug";
    if !common::daemons_built(T) {
        return;
    }
    let sandbox = Sandbox::up(3);
    let dir = sandbox.dir.clone();
    let d = sandbox.d();
    let (ok, again) = vigil(&["sandbox", "up", "--dir", d], None);
    assert!(!ok && again.contains("already runs"), "{again}");
    let bus = std::fs::read_to_string(dir.join("nodes/n1/bus"))
        .unwrap()
        .trim()
        .to_string();
    let status = wait_for("the demo resources to start", || {
        let (ok, s) = vigil(&["status"], Some(&bus));
        let all = ["web-ip", "web-server", "db", "db-backup", "fence-sandbox"]
            .iter()
            .all(|r| started_on(&s, r).is_some());
        if ok && all { Ok(s) } else { Err(s) }
    });
    // Across all that follows, nothing runs twice.
    let never_twice = NeverTwice::start(&sandbox, &["web-ip", "web-server", "db", "db-backup"]);
    let web = started_on(&status, "web-ip").unwrap();
    assert_eq!(
        started_on(&status, "web-server"),
        Some(web.clone()),
        "a group runs together:\n{status}"
    );
    assert_ne!(
        started_on(&status, "db"),
        started_on(&status, "db-backup"),
        "kept apart:\n{status}"
    );
    // The operator's commands: a move, a node in standby, a disabled
    // resource, and back.
    let other = if web == "n3" { "n2" } else { "n3" };
    let (ok, out) = vigil(&["resource", "move", "web", other], Some(&bus));
    assert!(
        ok && out.contains("vigil resource clear web"),
        "the move says what it leaves: {out}"
    );
    wait_for("web to move", || {
        let (_, s) = vigil(&["status"], Some(&bus));
        if started_on(&s, "web-server").as_deref() == Some(other) {
            Ok(())
        } else {
            Err(s)
        }
    });
    let (ok, out) = vigil(&["why", "web"], Some(&bus));
    assert!(
        ok && out.contains(&format!("web-ip: Started {other}"))
            && out.contains("Scores of web-ip")
            && out.contains("cli-prefer-web")
            && out.contains("vigil resource clear web"),
        "why tells the move it left:\n{out}"
    );
    let (ok, out) = vigil(&["resource", "clear", "web"], Some(&bus));
    assert!(ok && out.contains("cleared cli-prefer-web"), "{out}");
    // A ban for a while: a rule with an end date; a lifetime that is not
    // one is refused and names what is wrong.
    let db = started_on(&status, "db").unwrap();
    let (ok, out) = vigil(
        &["resource", "ban", "db", &db, "--lifetime", "soon"],
        Some(&bus),
    );
    assert!(!ok && out.contains("\"soon\" is not a lifetime"), "{out}");
    let (ok, out) = vigil(
        &["resource", "ban", "db", &db, "--lifetime", "PT1H"],
        Some(&bus),
    );
    assert!(ok && out.contains(" until "), "{out}");
    wait_for("db to leave the node it is banned from for an hour", || {
        let (_, s) = vigil(&["status"], Some(&bus));
        match started_on(&s, "db") {
            Some(n) if n != db => Ok(()),
            _ => Err(s),
        }
    });
    let (ok, out) = vigil(&["resource", "clear", "db"], Some(&bus));
    assert!(ok && out.contains(&format!("cli-ban-db-on-{db}")), "{out}");
    let (ok, out) = vigil(&["node", "standby", other], Some(&bus));
    assert!(ok, "{out}");
    wait_for("nothing to run on the standby node", || {
        let (_, s) = vigil(&["status"], Some(&bus));
        let anything = ["web-ip", "web-server", "db", "db-backup"]
            .iter()
            .any(|r| started_on(&s, r).as_deref() == Some(other));
        if !anything && s.contains(&format!("Node {other}: standby")) {
            Ok(())
        } else {
            Err(s)
        }
    });
    let (ok, out) = vigil(&["node", "unstandby", other], Some(&bus));
    assert!(ok, "{out}");
    // `vigil status --watch` follows the change live.
    let mut watch = Command::new(VIGIL)
        .args(["status", "--watch"])
        .env("VIGIL_BUS", &bus)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        let seen = seen.clone();
        let mut stdout = watch.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    // db's settings as a Pacemaker CIB may name them: disabling it changes
    // the target-role that is there, rather than adding a second one.
    let db_xml = dir.join("db.xml");
    std::fs::write(
        &db_xml,
        r#"<primitive id="db" class="ocf" provider="pacemaker" type="Dummy">
      <meta_attributes id="db-meta"><nvpair id="db-tr" name="target-role" value="Started"/></meta_attributes>
      <operations><op id="db-monitor" name="monitor" interval="5s" timeout="20s"/></operations>
    </primitive>"#,
    )
    .unwrap();
    let (ok, out) = vigil(
        &[
            "cib",
            "replace",
            "--xpath",
            "//primitive[@id='db']",
            db_xml.to_str().unwrap(),
        ],
        Some(&bus),
    );
    assert!(ok, "{out}");
    let (ok, out) = vigil(&["resource", "disable", "db"], Some(&bus));
    assert!(ok, "{out}");
    let (ok, roles) = vigil(
        &[
            "cib",
            "show",
            "--xpath",
            "//primitive[@id='db']//nvpair[@name='target-role']",
        ],
        Some(&bus),
    );
    assert!(
        ok && roles.matches("<nvpair").count() == 1
            && roles.contains(r#"id="db-tr""#)
            && roles.contains(r#"value="Stopped""#),
        "one target-role, changed in place:\n{roles}"
    );
    wait_for("the watch to show db stopped", || {
        let s = seen.lock().unwrap().clone();
        if s.contains("db\t(ocf:pacemaker:Dummy):\t Stopped (disabled)") {
            Ok(())
        } else {
            Err(s)
        }
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let (ok, out) = vigil(&["resource", "cleanup", "db"], Some(&bus));
    assert!(ok && out.contains("probes it afresh"), "{out}");
    let (ok, out) = vigil(&["resource", "cleanup", "db", "--node", "n9"], Some(&bus));
    assert!(!ok && out.contains("no node \"n9\""), "{out}");
    // Configuration: a resource joins the web group, a wrong one is
    // refused, constraints come and go, a resource is deleted.
    let (ok, out) = vigil(
        &[
            "resource",
            "create",
            "app",
            "ocf:heartbeat:Dummy",
            "--group",
            "web",
        ],
        Some(&bus),
    );
    assert!(ok, "{out}");
    let (ok, out) = vigil(
        &[
            "resource",
            "create",
            "vip",
            "ocf:heartbeat:IPaddr2",
            "cidr_netmask=24",
        ],
        Some(&bus),
    );
    assert!(
        !ok && out.contains("requires the parameter \"ip\""),
        "{out}"
    );
    let (ok, out) = vigil(
        &["resource", "create", "ghost", "ocf:nope:Nothing"],
        Some(&bus),
    );
    assert!(!ok && out.contains("has no metadata"), "{out}");
    wait_for("app to run with its group", || {
        let (_, s) = vigil(&["status"], Some(&bus));
        match (started_on(&s, "app"), started_on(&s, "web-ip")) {
            (Some(a), Some(w)) if a == w => Ok(()),
            _ => Err(s),
        }
    });
    let (ok, out) = vigil(
        &["constraint", "location", "add", "db", "n1", "-INFINITY"],
        Some(&bus),
    );
    assert!(ok, "{out}");
    let (ok, out) = vigil(&["constraint", "list"], Some(&bus));
    assert!(
        ok && out.contains("location-db-n1-infinity: db on n1 (-INFINITY)"),
        "{out}"
    );
    let (ok, out) = vigil(
        &["constraint", "remove", "location-db-n1-infinity"],
        Some(&bus),
    );
    assert!(ok, "{out}");
    let (ok, out) = vigil(&["resource", "delete", "app"], Some(&bus));
    assert!(ok && out.contains("deleted app"), "{out}");
    let (ok, out) = vigil(&["resource", "show"], Some(&bus));
    assert!(ok && !out.contains("app"), "{out}");
    let (ok, out) = vigil(&["resource", "move", "nope", "n1"], Some(&bus));
    assert!(!ok && out.contains("no resource \"nope\""), "{out}");
    let (ok, out) = vigil(&["node", "standby", "n9"], Some(&bus));
    assert!(!ok && out.contains("no node \"n9\""), "{out}");
    let status = wait_for("web to settle", || {
        let (_, s) = vigil(&["status"], Some(&bus));
        match started_on(&s, "web-ip") {
            Some(_) => Ok(s),
            None => Err(s),
        }
    });
    let web = started_on(&status, "web-ip").unwrap();
    // Pull the plug of web's node; ask a survivor.
    let (ok, out) = vigil(&["sandbox", "kill", &web, "--dir", d], None);
    assert!(ok, "{out}");
    let survivor = if web == "n1" { "n2" } else { "n1" };
    let sbus = std::fs::read_to_string(dir.join(format!("nodes/{survivor}/bus")))
        .unwrap()
        .trim()
        .to_string();
    let after = wait_for("web to run elsewhere", || {
        let (_, s) = vigil(&["status"], Some(&sbus));
        match started_on(&s, "web-ip") {
            Some(n) if n != web && started_on(&s, "web-server") == Some(n.clone()) => Ok(s),
            _ => Err(s),
        }
    });
    assert!(after.contains(&format!("OFFLINE: [ {web} ]")), "{after}");
    assert!(
        after.contains(&format!("reboot of {web} successful")),
        "fenced:\n{after}"
    );
    // The same, for programs.
    let (ok, json) = vigil(&["status", "--output", "json"], Some(&sbus));
    assert!(ok, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("status JSON");
    assert_eq!(v["version"], 1);
    let node = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == web.as_str())
        .unwrap();
    assert_eq!(node["online"], false, "{node}");
    let rsc = v["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "web-ip")
        .unwrap();
    assert_eq!(
        (rsc["kind"].as_str(), rsc["parent"].as_str()),
        (Some("primitive"), Some("web"))
    );
    assert_eq!(rsc["agent"], "ocf:heartbeat:Dummy");
    assert!(
        rsc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n != web.as_str()),
        "{rsc}"
    );
    assert!(
        v["fencing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["target"] == web.as_str() && f["outcome"] == "done"),
        "{json}"
    );
    let (ok, st) = vigil(&["sandbox", "status", "--dir", d], None);
    assert!(ok && st.contains(&format!("{web}: off")), "{st}");
    never_twice.check();
    let (ok, out) = vigil(&["sandbox", "down", "--dir", d], None);
    assert!(ok, "{out}");
    assert!(!dir.exists(), "the sandbox directory is gone");
}
