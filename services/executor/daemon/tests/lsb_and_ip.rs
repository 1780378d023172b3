//! LSB init scripts (compliant and the usual non-compliant ones) and a real
//! floating IP address (`ocf:heartbeat:IPaddr2`) inside a network
//! namespace of its own.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Exec, op, real_agents};
use vigil_types::ocf;

/// An init script keeping its "service" as a file; `sloppy` fails a start
/// of a running service and a stop of a stopped one, `nostatus` has no
/// status action.
fn script(state: &Path, flavour: &str) -> String {
    let state = state.display();
    let (dup_start, dup_stop) = if flavour == "sloppy" {
        ("echo already running; exit 1", "echo not running; exit 1")
    } else {
        ("exit 0", "exit 0")
    };
    let status = if flavour == "nostatus" {
        "status) echo \"Usage: $0 {start|stop}\" >&2; exit 1 ;;".to_string()
    } else {
        format!("status) [ -f {state} ] && {{ echo running; exit 0; }}; echo stopped; exit 3 ;;")
    };
    format!(
        "#!/bin/sh\n\
         ### BEGIN INIT INFO\n\
         # Provides: {flavour}\n\
         # Short-Description: A test service\n\
         # Description: Pretends to serve\n\
         #  for the executor's tests.\n\
         ### END INIT INFO\n\
         case \"$1\" in\n\
         start) [ -f {state} ] && {{ {dup_start}; }}; touch {state}; exit 0 ;;\n\
         stop) [ -f {state} ] || {{ {dup_stop}; }}; rm -f {state}; exit 0 ;;\n\
         {status}\n\
         *) echo \"Usage: $0 {{start|stop|status}}\" >&2; exit 2 ;;\n\
         esac\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lsb_scripts_compliant_or_not() {
    const T: &str = "lsb_scripts_compliant_or_not";
    let Some(x) = Exec::start(T, |_| {}).await else {
        return;
    };
    let init = x.dir.path().join("init.d");
    for flavour in ["web", "sloppy", "nostatus"] {
        let state = x.dir.path().join(format!("{flavour}.running"));
        common::write_exec(&init.join(flavour), &script(&state, flavour));
    }
    // A compliant script, by name (in the LSB directory).
    let (rec, _) = x.run(op("web", "lsb:web", "monitor")).await;
    assert_eq!(rec.rc, ocf::NOT_RUNNING, "{rec:?}");
    let (rec, result) = x.run(op("web", "lsb:web", "start")).await;
    assert_eq!((rec.rc, result.as_str()), (0, "done"));
    let (rec, _) = x.run(op("web", "lsb:web", "monitor")).await;
    assert_eq!(rec.rc, ocf::OK);
    let (rec, _) = x.run(op("web", "lsb:web", "promote")).await;
    assert_eq!(rec.rc, ocf::UNIMPLEMENT_FEATURE, "{rec:?}");
    let (rec, _) = x.run(op("web", "lsb:web", "stop")).await;
    assert_eq!(rec.rc, 0);
    // `service:` is the init script where systemd has no such unit (here
    // there is no systemd at all).
    let (rec, _) = x.run(op("svc", "service:web", "start")).await;
    assert_eq!(rec.rc, 0, "{rec:?}");
    let (rec, _) = x.run(op("svc", "service:web", "monitor")).await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}");
    let (rec, _) = x.run(op("svc", "service:web", "stop")).await;
    assert_eq!(rec.rc, 0, "{rec:?}");

    // A sloppy one, by its full path: the failed duplicate start and stop
    // are checked against status and succeed.
    let sloppy = init.join("sloppy");
    let agent = format!("lsb:{}", sloppy.display());
    x.run(op("s", &agent, "start")).await;
    let (rec, result) = x.run(op("s", &agent, "start")).await;
    assert_eq!((rec.rc, result.as_str()), (0, "done"), "{rec:?}");
    assert!(
        rec.exit_reason
            .contains("status says the service is running"),
        "{rec:?}"
    );
    x.run(op("s", &agent, "stop")).await;
    let (rec, _) = x.run(op("s", &agent, "stop")).await;
    assert_eq!(rec.rc, 0, "{rec:?}");
    assert!(rec.exit_reason.contains("stopped"), "{rec:?}");

    // One without status: its monitor is reported as unimplemented.
    let (rec, _) = x.run(op("n", "lsb:nostatus", "monitor")).await;
    assert_eq!(rec.rc, ocf::UNIMPLEMENT_FEATURE, "{rec:?}");
    assert!(rec.exit_reason.contains("no status action"), "{rec:?}");

    // A missing script.
    let (rec, _) = x.run(op("m", "lsb:missing", "start")).await;
    assert_eq!(rec.rc, ocf::NOT_INSTALLED);

    let m = x.manager().await;
    let md = vigil_executor::metadata::parse(&m.agent_metadata("lsb:web").await.unwrap()).unwrap();
    assert_eq!(md.shortdesc, "A test service");
    assert_eq!(md.longdesc, "Pretends to serve for the executor's tests.");
    let scripts = m.list_agents("lsb", "").await.unwrap();
    assert_eq!(scripts, ["nostatus", "sloppy", "web"]);
}

/// A network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Option<Netns> {
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = Command::new("ip").args(["netns", "del", name]).status();
        if !ok(&["netns", "add", name]) {
            return None;
        }
        let ns = Netns(name.to_string());
        for args in [
            vec!["-n", name, "link", "set", "lo", "up"],
            // A veth pair (the dummy driver is not everywhere).
            vec![
                "-n", name, "link", "add", "vigil0", "type", "veth", "peer", "name", "vigil1",
            ],
            vec!["-n", name, "link", "set", "vigil1", "up"],
            vec!["-n", name, "link", "set", "vigil0", "up"],
            vec!["-n", name, "addr", "add", "192.0.2.1/24", "dev", "vigil0"],
        ] {
            assert!(ok(&args), "ip {args:?} failed");
        }
        Some(ns)
    }

    fn addresses(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0, "-4", "addr", "show", "dev", "vigil0"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipaddr2_floats_an_address_in_a_namespace() {
    const T: &str = "ipaddr2_floats_an_address_in_a_namespace";
    if !real_agents(T) {
        return;
    }
    let root = nix::unistd::Uid::effective().is_root();
    let ip = Command::new("ip").arg("-V").output().is_ok();
    if !root || !ip {
        eprintln!("SKIPPED {T}: needs root and iproute2 (network namespaces)");
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none() || !root,
            "{T}: iproute2 is required (VIGIL_REQUIRE_ALL is set)"
        );
        return;
    }
    let name = format!("vigil-exec-{}", std::process::id());
    let Some(ns) = Netns::create(&name) else {
        eprintln!("SKIPPED {T}: cannot create a network namespace here");
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
            "{T}: network namespaces are required (VIGIL_REQUIRE_ALL is set)"
        );
        return;
    };
    let Some(x) = Exec::start_with(
        T,
        |_| {},
        |argv| {
            let mut wrapped = vec!["ip".into(), "netns".into(), "exec".into(), name.clone()];
            wrapped.append(argv);
            *argv = wrapped;
        },
    )
    .await
    else {
        return;
    };
    let agent = "ocf:heartbeat:IPaddr2";
    let vip = |action| {
        op("vip", agent, action)
            .param("ip", "192.0.2.50")
            .param("cidr_netmask", "24")
            .param("nic", "vigil0")
    };
    let (rec, _) = x.run(vip("monitor")).await;
    assert_eq!(rec.rc, ocf::NOT_RUNNING, "{rec:?}\n{}", x.log());
    let (rec, _) = x.run(vip("start")).await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}\n{}", x.log());
    assert!(
        ns.addresses().contains("192.0.2.50/24"),
        "{}",
        ns.addresses()
    );
    let (rec, _) = x.run(vip("monitor")).await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}");
    let (rec, _) = x.run(vip("stop")).await;
    assert_eq!(rec.rc, ocf::OK, "{rec:?}");
    assert!(!ns.addresses().contains("192.0.2.50"), "{}", ns.addresses());
    let (rec, _) = x.run(vip("monitor")).await;
    assert_eq!(rec.rc, ocf::NOT_RUNNING);
    // A bad address is the agent's to refuse, with its reason.
    let (rec, _) = x
        .run(op("bad", agent, "start").param("ip", "not-an-address"))
        .await;
    assert_ne!(rec.rc, ocf::OK);
    assert!(!rec.exit_reason.is_empty(), "{rec:?}");
}
