//! The operator's everyday commands on a running cluster: a user boots a
//! sandbox, changes a resource's parameters, restarts it, groups and
//! ungroups resources, clones and unclones one, sets node attributes, and
//! gets clear refusals for mistakes, each checked in the CIB or the status
//! the way the user would look.

mod common;

use std::time::{Duration, Instant};

use common::{Sandbox, started_on, vigil, wait_for_within};

/// [`wait_for_within`] a minute (restarts wait on slow agents).
fn wait_for<T>(what: &str, f: impl FnMut() -> Result<T, String>) -> T {
    wait_for_within(what, 60, f)
}

/// An attribute's value in an XML text (the first element that has it).
fn attr(xml: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = xml.find(&key)? + key.len();
    Some(xml[at..].split('"').next()?.to_string())
}

/// The ids of the primitives in an XML text, in order.
fn primitives(xml: &str) -> Vec<String> {
    xml.split("<primitive id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn operating_a_sandbox_cluster() {
    const T: &str = "operating_a_sandbox_cluster";
    if !common::daemons_built(T) {
        return;
    }
    let sandbox = Sandbox::up(3);
    let bus = sandbox.bus("n1");
    let bus = Some(bus.as_str());
    let run = |args: &[&str]| vigil(args, bus);
    let show = |id: &str| {
        let (ok, out) = run(&["resource", "show", id]);
        assert!(ok, "{out}");
        out
    };
    let running = |what: &str, rsc: &'static [&'static str]| {
        wait_for(what, || {
            let (ok, s) = run(&["status"]);
            if ok && rsc.iter().all(|r| started_on(&s, r).is_some()) {
                Ok(s)
            } else {
                Err(s)
            }
        })
    };
    running(
        "the demo resources to start",
        &["web-ip", "web-server", "db", "db-backup"],
    );

    // ---- resource update ----
    let (ok, out) = run(&["resource", "update", "db", "fake=hello", "op_sleep=0"]);
    assert!(ok && out.contains("db: fake=hello, op_sleep=0"), "{out}");
    let db = show("db");
    assert!(db.contains(r#"name="fake" value="hello""#), "{db}");
    // Mistakes name what is wrong and change nothing.
    let (ok, out) = run(&["resource", "update", "db", "fake=bye", "nope=1"]);
    assert!(
        !ok && out.contains("has no parameter \"nope\"")
            && out.contains("its parameters: ")
            && out.contains("fake")
            && out.contains("--force"),
        "{out}"
    );
    let (ok, out) = run(&["resource", "update", "db", "fake"]);
    assert!(!ok && out.contains("\"fake\" is not NAME=VALUE"), "{out}");
    let (ok, out) = run(&["resource", "update", "nosuch", "fake=1"]);
    assert!(
        !ok && out.contains("no resource \"nosuch\"") && out.contains("db-backup"),
        "{out}"
    );
    let (ok, out) = run(&["resource", "update", "db", "op_sleep=abc"]);
    assert!(!ok && out.contains("db not changed"), "{out}");
    let (ok, out) = run(&["resource", "update", "web", "fake=1"]);
    assert!(
        !ok && out.contains("only primitives have parameters"),
        "{out}"
    );
    let (ok, out) = run(&["resource", "update", "db", "passwd="]);
    assert!(
        !ok && out.contains("db has no parameter \"passwd\" to remove"),
        "{out}"
    );
    assert_eq!(
        show("db"),
        db,
        "refused changes leave the resource as it was"
    );
    // NAME= removes; meta attributes also for groups.
    let (ok, out) = run(&["resource", "update", "db", "op_sleep="]);
    assert!(ok && out.contains("op_sleep removed"), "{out}");
    assert!(!show("db").contains("op_sleep"));
    let (ok, out) = run(&[
        "resource",
        "update",
        "web",
        "--meta",
        "resource-stickiness=50",
    ]);
    assert!(ok, "{out}");
    assert!(
        show("web").contains(r#"name="resource-stickiness" value="50""#),
        "{}",
        show("web")
    );

    // ---- resource restart ----
    let status = running("db to run", &["db"]);
    let node = started_on(&status, "db").unwrap();
    let last = |node: &str| {
        let (ok, out) = run(&[
            "cib",
            "show",
            "--xpath",
            &format!(
                "//node_state[@uname='{node}']//lrm_resource[@id='db']/lrm_rsc_op[@id='db_last_0']"
            ),
        ]);
        assert!(ok, "{out}");
        out
    };
    let before = last(&node);
    let before_call: u64 = attr(&before, "call-id").unwrap().parse().unwrap();
    let (ok, out) = run(&["resource", "restart", "db", "--timeout", "60s"]);
    assert!(
        ok && out.contains(&format!("db: running on {node}; stopping it"))
            && out.contains("db: stopped everywhere")
            && out.contains("target-role removed again (it had none)")
            && out.contains("db: running again on "),
        "{out}"
    );
    let again = started_on(&run(&["status"]).1, "db").expect("db runs after its restart");
    let after = last(&again);
    assert_eq!(
        attr(&after, "operation").as_deref(),
        Some("start"),
        "{after}"
    );
    if again == node {
        let call: u64 = attr(&after, "call-id").unwrap().parse().unwrap();
        assert!(call > before_call, "a new start: {before}\n{after}");
    }
    assert!(!show("db").contains("target-role"), "{}", show("db"));
    // A target-role of its own is put back as it was.
    let (ok, out) = run(&["resource", "update", "db", "--meta", "target-role=Started"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["resource", "restart", "db"]);
    assert!(ok && out.contains("target-role back to Started"), "{out}");
    assert!(
        show("db").contains(r#"name="target-role" value="Started""#),
        "{}",
        show("db")
    );
    // A resource that takes longer to stop than the timeout: the
    // target-role comes back and the failure says so.
    let (ok, out) = run(&[
        "resource",
        "create",
        "slow",
        "ocf:pacemaker:Dummy",
        "op_sleep=3",
    ]);
    assert!(ok, "{out}");
    running("slow to run", &["slow"]);
    let (ok, out) = run(&["resource", "restart", "slow", "--timeout", "1s"]);
    assert!(
        !ok && out.contains("slow did not stop within 1s")
            && out.contains("target-role removed again"),
        "{out}"
    );
    assert!(!show("slow").contains("target-role"), "{}", show("slow"));
    running("slow to run again", &["slow"]);
    let (ok, out) = run(&["resource", "restart", "slow", "--timeout", "soon"]);
    assert!(
        !ok && out.contains("\"soon\" is not a positive time span"),
        "{out}"
    );
    let (ok, out) = run(&["resource", "restart", "nosuch"]);
    assert!(!ok && out.contains("no resource \"nosuch\""), "{out}");
    let (ok, out) = run(&["resource", "disable", "slow"]);
    assert!(ok, "{out}");
    wait_for("slow to stop", || {
        let (_, s) = run(&["status"]);
        if started_on(&s, "slow").is_none() {
            Ok(())
        } else {
            Err(s)
        }
    });
    let (ok, out) = run(&["resource", "restart", "slow"]);
    assert!(!ok && out.contains("slow is not running"), "{out}");
    let (ok, out) = run(&["resource", "delete", "slow"]);
    assert!(ok, "{out}");

    // ---- groups ----
    let (ok, out) = run(&["resource", "create", "app", "ocf:heartbeat:Dummy"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["group", "add", "web", "app", "--before", "web-server"]);
    assert!(ok && out.contains("web: web-ip, app, web-server"), "{out}");
    assert_eq!(primitives(&show("web")), ["web-ip", "app", "web-server"]);
    running("app to run with web", &["app"]);
    let s = run(&["status"]).1;
    assert_eq!(started_on(&s, "app"), started_on(&s, "web-ip"), "{s}");
    for (args, why) in [
        (
            &["group", "add", "web", "nosuch"][..],
            "no resource \"nosuch\"",
        ),
        (
            &["group", "add", "db", "app"],
            "db is a primitive, not a group",
        ),
        (&["group", "add", "web", "app"], "app is in web already"),
        (
            &["group", "add", "web", "db", "--after", "nosuch"],
            "nosuch is not in web (its members: web-ip, app, web-server)",
        ),
        (&["group", "remove", "web", "db"], "db is not in web"),
        (&["group", "delete", "db"], "db is a primitive, not a group"),
    ] {
        let (ok, out) = run(args);
        assert!(!ok && out.contains(why), "{args:?}: {out}");
    }
    assert_eq!(primitives(&show("web")), ["web-ip", "app", "web-server"]);
    let (ok, out) = run(&["group", "remove", "web", "app"]);
    assert!(ok && out.contains("app left web"), "{out}");
    assert_eq!(primitives(&show("web")), ["web-ip", "web-server"]);
    assert!(show("app").starts_with("<primitive"), "{}", show("app"));
    // A new group; the last member out deletes it.
    let (ok, out) = run(&["group", "add", "solo", "app"]);
    assert!(ok && out.contains("solo: app"), "{out}");
    let (ok, out) = run(&["group", "remove", "solo", "app"]);
    assert!(ok && out.contains("solo emptied and deleted"), "{out}");
    let (_, list) = run(&["resource", "show"]);
    assert!(
        list.lines().any(|l| l == "app") && !list.contains("solo"),
        "{list}"
    );
    // Ungrouping a group that constraints name: refused, naming them;
    // --force removes them with it.
    let (ok, out) = run(&["group", "add", "solo", "app"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["constraint", "location", "add", "solo", "n1", "10"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["group", "delete", "solo"]);
    assert!(
        !ok && out.contains("constraints name it: location-solo-n1-10") && out.contains("--force"),
        "{out}"
    );
    assert_eq!(primitives(&show("solo")), ["app"]);
    let (ok, out) = run(&["group", "delete", "solo", "--force"]);
    assert!(
        ok && out.contains("removed the constraints naming solo: location-solo-n1-10")
            && out.contains("solo deleted; app stay"),
        "{out}"
    );
    let (_, list) = run(&["resource", "show"]);
    assert!(
        list.lines().any(|l| l == "app") && !list.contains("solo"),
        "{list}"
    );
    let (_, constraints) = run(&["constraint", "list"]);
    assert!(!constraints.contains("solo"), "{constraints}");
    // Moving a primitive from one group into another.
    let (ok, out) = run(&["group", "add", "pair", "app"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&["group", "add", "web", "app", "--after", "web-ip"]);
    assert!(ok && out.contains("pair emptied and deleted"), "{out}");
    assert_eq!(primitives(&show("web")), ["web-ip", "app", "web-server"]);
    let (ok, out) = run(&["group", "remove", "web", "app"]);
    assert!(ok, "{out}");

    // ---- clones ----
    let (ok, out) = run(&["clone", "app", "clone-max=2", "interleave=true"]);
    assert!(ok && out.contains("app is cloned as app-clone"), "{out}");
    let c = show("app-clone");
    assert!(
        c.starts_with("<clone id=\"app-clone\"")
            && c.contains(r#"name="clone-max" value="2""#)
            && c.contains(r#"name="interleave" value="true""#)
            && primitives(&c) == ["app"],
        "{c}"
    );
    let (ok, out) = run(&[
        "cib",
        "show",
        "--xpath",
        "/cib/configuration/resources/primitive[@id='app']",
    ]);
    assert!(
        !out.contains("<primitive"),
        "app is no longer top-level: {ok} {out}"
    );
    for (args, why) in [
        (&["clone", "web-ip"][..], "web-ip is in group web"),
        (&["clone", "app"], "app is cloned already (app-clone)"),
        (&["clone", "nosuch"], "no resource \"nosuch\""),
        (&["clone", "db", "clone-max=two"], "clone-max is a count"),
        (
            &["clone", "db", "clone-maxx=1"],
            "clone-maxx is not a clone option",
        ),
        (&["unclone", "db"], "db is not cloned"),
    ] {
        let (ok, out) = run(args);
        assert!(!ok && out.contains(why), "{args:?}: {out}");
    }
    let (ok, out) = run(&["unclone", "app"]);
    assert!(ok && out.contains("app-clone unwrapped"), "{out}");
    assert!(show("app").starts_with("<primitive"), "{}", show("app"));
    let (_, list) = run(&["resource", "show"]);
    assert!(!list.contains("app-clone"), "{list}");
    let (ok, out) = run(&["clone", "web", "--promotable"]);
    assert!(ok, "{out}");
    let c = show("web-clone");
    assert!(
        c.contains(r#"name="promotable" value="true""#)
            && primitives(&c) == ["web-ip", "web-server"],
        "{c}"
    );
    let (ok, out) = run(&["unclone", "web-clone"]);
    assert!(ok, "{out}");
    assert!(show("web").starts_with("<group"), "{}", show("web"));

    // ---- node attributes ----
    let (ok, out) = run(&["node", "attribute", "n2", "rack", "r1"]);
    assert!(ok && out.contains("n2: rack=r1 (permanent)"), "{out}");
    let (ok, out) = run(&[
        "cib",
        "show",
        "--xpath",
        "/cib/configuration/nodes/node[@uname='n2']/instance_attributes/nvpair[@name='rack']",
    ]);
    assert!(ok && attr(&out, "value").as_deref() == Some("r1"), "{out}");
    let (ok, out) = run(&[
        "node",
        "attribute",
        "n2",
        "ping",
        "5",
        "--lifetime",
        "reboot",
    ]);
    assert!(ok && out.contains("n2: ping=5 (transient)"), "{out}");
    let transient = |node: &str, name: &str| {
        let (_, out) = run(&[
            "cib",
            "show",
            "--xpath",
            &format!(
                "/cib/status/node_state[@uname='{node}']/transient_attributes//nvpair[@name='{name}']"
            ),
        ]);
        attr(&out, "value")
    };
    wait_for("ping in n2's transient attributes", || {
        match transient("n2", "ping") {
            Some(v) if v == "5" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let (ok, out) = run(&["node", "attribute", "n2"]);
    assert!(
        ok && out.starts_with("n2:\n")
            && out.contains("  rack=r1 (permanent)\n")
            && out.contains("  ping=5 (transient)\n"),
        "{out}"
    );
    let (ok, out) = run(&["node", "attribute", "n2", "ping"]);
    assert!(ok && out == "ping=5 (transient)\n", "{out}");
    let (ok, out) = run(&["node", "attribute", "n2", "rack", "--lifetime", "forever"]);
    assert!(ok && out == "rack=r1 (permanent)\n", "{out}");
    // Dampened: written once it has held for a while.
    let (ok, out) = run(&[
        "node",
        "attribute",
        "n3",
        "ping",
        "7",
        "--lifetime",
        "reboot",
        "--dampen",
        "3s",
    ]);
    let set_at = Instant::now();
    assert!(
        ok && out.contains("written once it holds for 3000 ms"),
        "{out}"
    );
    let (ok, out) = run(&["node", "attribute", "n3", "ping"]);
    if set_at.elapsed() < Duration::from_millis(2500) {
        assert!(
            !ok && out.contains("n3 has no attribute \"ping\""),
            "not before its dampening: {out}"
        );
    }
    wait_for("n3's dampened ping", || match transient("n3", "ping") {
        Some(v) if v == "7" => Ok(()),
        other => Err(format!("{other:?}")),
    });
    assert!(
        set_at.elapsed() >= Duration::from_millis(2500),
        "written at once, not dampened"
    );
    // Deleting: each lifetime on its own.
    let (ok, out) = run(&["node", "attribute", "n2", "ping", "--delete"]);
    assert!(
        !ok && out.contains("n2 has no permanent attribute \"ping\" to delete")
            && out.contains("--lifetime reboot"),
        "{out}"
    );
    let (ok, out) = run(&[
        "node",
        "attribute",
        "n2",
        "ping",
        "--delete",
        "--lifetime",
        "reboot",
    ]);
    assert!(ok && out.contains("n2: ping deleted (transient)"), "{out}");
    wait_for("ping gone from n2", || match transient("n2", "ping") {
        None => Ok(()),
        Some(v) => Err(v),
    });
    let (ok, out) = run(&["node", "attribute", "n2", "rack", "--delete"]);
    assert!(ok && out.contains("n2: rack deleted (permanent)"), "{out}");
    let (ok, out) = run(&["node", "attribute", "n2", "rack"]);
    assert!(!ok && out.contains("n2 has no attribute \"rack\""), "{out}");
    for (args, why) in [
        (
            &["node", "attribute", "n9"][..],
            "no node \"n9\" in the configuration (nodes: n1, n2, n3)",
        ),
        (
            &["node", "attribute", "n2", "x", "1", "--dampen", "5s"],
            "--dampen applies to transient attributes only",
        ),
        (
            &[
                "node",
                "attribute",
                "n2",
                "x",
                "1",
                "--lifetime",
                "reboot",
                "--dampen",
                "soon",
            ],
            "--dampen \"soon\" is not a time span",
        ),
        (
            &["node", "attribute", "n2", "x", "1", "--delete"],
            "--delete takes no VALUE",
        ),
        (
            &["node", "attribute", "n2", "x", "1", "--lifetime", "week"],
            "invalid value 'week'",
        ),
    ] {
        let (ok, out) = run(args);
        assert!(!ok && out.contains(why), "{args:?}: {out}");
    }
    let (ok, out) = run(&["node", "attribute", "n2", "x"]);
    assert!(!ok && out.contains("n2 has no attribute \"x\""), "{out}");

    let (ok, out) = sandbox.run(&["down"]);
    assert!(ok, "{out}");
}
