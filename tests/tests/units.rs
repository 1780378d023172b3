//! What the packages install for systemd, D-Bus and polkit (`units/`),
//! checked against the daemons: a unit per daemon that the target starts,
//! units that systemd accepts, a bus policy that dbus-daemon loads and
//! that admits root and group haclient only, polkit actions that are
//! exactly the ones the daemons check, and package metadata (.deb and
//! .rpm alike) that ships all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The daemons: (binary, bus name or none).
const DAEMONS: [(&str, Option<&str>); 5] = [
    ("vigil-membershipd", Some("org.vigil.membership1")),
    ("vigil-cibd", Some("org.vigil.cib1")),
    ("vigil-execd", Some("org.vigil.executor1")),
    ("vigil-fenced", Some("org.vigil.fencing1")),
    ("vigil-controld", Some("org.vigil.controller1")),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn units() -> PathBuf {
    root().join("units")
}

/// A unit file's `Key=value` lines by section (repeated keys kept in
/// order).
fn unit(name: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(units().join(name)).unwrap_or_else(|e| panic!("units/{name}: {e}"));
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("units/{name}: {line:?} is not Key=value"));
        out.entry(section.clone())
            .or_default()
            .push((k.to_string(), v.to_string()));
    }
    out
}

fn values(u: &BTreeMap<String, Vec<(String, String)>>, section: &str, key: &str) -> Vec<String> {
    u.get(section)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
        .collect()
}

#[test]
fn every_daemon_has_a_unit_that_the_target_starts() {
    let target = unit("vigil.target");
    let wanted: BTreeSet<String> = values(&target, "Unit", "Wants").into_iter().collect();
    for (daemon, bus) in DAEMONS {
        let name = format!("{daemon}.service");
        let u = unit(&name);
        assert!(wanted.contains(&name), "vigil.target does not want {name}");
        assert_eq!(values(&u, "Service", "Type"), ["notify"], "{name}");
        assert_eq!(
            values(&u, "Service", "ExecStart"),
            [format!("/usr/sbin/{daemon}")],
            "{name}"
        );
        assert_eq!(values(&u, "Service", "Restart"), ["on-failure"], "{name}");
        assert!(
            !values(&u, "Service", "WatchdogSec").is_empty(),
            "{name}: a watchdog"
        );
        assert_eq!(values(&u, "Unit", "PartOf"), ["vigil.target"], "{name}");
        assert_eq!(
            values(&u, "Install", "WantedBy"),
            ["vigil.target"],
            "{name}"
        );
        if let Some(bus) = bus
            && daemon != "vigil-membershipd"
        {
            assert_eq!(values(&u, "Service", "BusName"), [bus], "{name}");
        }
        if let Some(bus) = bus {
            // Bus activation goes through systemd, to this unit.
            let act = std::fs::read_to_string(units().join(format!("dbus/{bus}.service"))).unwrap();
            assert!(act.contains(&format!("Name={bus}\n")), "{act}");
            assert!(act.contains(&format!("SystemdService={name}\n")), "{act}");
        }
    }
    // The controller stops first (it is ordered after the others) and has
    // time to move the node's resources away.
    let ctl = unit("vigil-controld.service");
    let after: BTreeSet<String> = values(&ctl, "Unit", "After").into_iter().collect();
    for d in [
        "vigil-membershipd",
        "vigil-cibd",
        "vigil-execd",
        "vigil-fenced",
    ] {
        assert!(
            after.contains(&format!("{d}.service")),
            "controld after {d}"
        );
    }
    let stop = values(&ctl, "Service", "TimeoutStopSec");
    assert_eq!(
        stop,
        ["25min"],
        "longer than the default shutdown-escalation"
    );
    // The membership daemon waits for the configuration and key.
    let m = unit("vigil-membershipd.service");
    let conditions = values(&m, "Unit", "ConditionPathExists");
    assert_eq!(
        conditions,
        ["/etc/vigil/cluster.toml", "/etc/vigil/authkey"]
    );
}

#[test]
fn systemd_accepts_the_units() {
    const T: &str = "systemd_accepts_the_units";
    let analyze = Path::new("/usr/bin/systemd-analyze");
    let host_units = Path::new("/usr/lib/systemd/system");
    if !analyze.exists() || !host_units.join("sysinit.target").exists() {
        eprintln!(
            "SKIPPED {T}: needs systemd-analyze and systemd's own units (apt-get install systemd)"
        );
        assert!(
            std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
            "{T}: systemd-analyze is required"
        );
        return;
    }
    // A root with systemd's units, ours, and the binaries they start.
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    let sys = r.join("usr/lib/systemd/system");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::create_dir_all(r.join("usr/sbin")).unwrap();
    for e in std::fs::read_dir(host_units).unwrap().flatten() {
        if e.path().is_file() {
            let _ = std::fs::copy(e.path(), sys.join(e.file_name()));
        }
    }
    let mut names = Vec::new();
    for e in std::fs::read_dir(units()).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("vigil") {
            std::fs::copy(e.path(), sys.join(&n)).unwrap();
            names.push(n);
        }
    }
    for (d, _) in DAEMONS {
        std::fs::copy("/bin/true", r.join("usr/sbin").join(d)).unwrap();
    }
    let out = Command::new(analyze)
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .args(&names)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify {names:?}:\n{said}"
    );
}

#[test]
fn dbus_daemon_loads_the_bus_policy() {
    const T: &str = "dbus_daemon_loads_the_bus_policy";
    if !vigil_testkit::dbus_daemon_available(T) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <includedir>{}</includedir>
</busconfig>"#,
            tmp.path().join("bus.sock").display(),
            units().join("dbus").display()
        ),
    )
    .unwrap();
    // --print-address only once the whole configuration is read: a bad
    // policy file makes dbus-daemon exit with the error instead.
    let out = Command::new("timeout")
        .args(["2", "dbus-daemon", "--nofork", "--print-address"])
        .arg(format!("--config-file={}", config.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("unix:path=") && !stderr.contains("Failed to start"),
        "dbus-daemon with units/dbus:\nstdout: {stdout}\nstderr: {stderr}"
    );
    // Each policy: root owns the name; root and haclient may call it;
    // everyone else is denied both.
    for (_, bus) in DAEMONS {
        let bus = bus.unwrap();
        let p = std::fs::read_to_string(units().join(format!("dbus/{bus}.conf"))).unwrap();
        for line in [
            format!(r#"<allow own="{bus}"/>"#),
            format!(r#"<deny own="{bus}"/>"#),
            format!(r#"<deny send_destination="{bus}"/>"#),
            r#"<policy group="haclient">"#.to_string(),
            r#"<policy user="root">"#.to_string(),
        ] {
            assert!(p.contains(&line), "{bus}.conf lacks {line}:\n{p}");
        }
    }
}

#[test]
fn the_polkit_actions_are_those_the_daemons_check() {
    let policy = std::fs::read_to_string(units().join("polkit/org.vigil.policy")).unwrap();
    let declared: BTreeSet<&str> = policy
        .split("<action id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let checked: BTreeSet<&str> = [
        vigil_cibd::dbus::MODIFY_ACTION,
        vigil_controld::dbus::OPERATE_ACTION,
        vigil_execd::dbus::EXECUTE_ACTION,
        vigil_fenced::dbus::FENCE_ACTION,
    ]
    .into_iter()
    .collect();
    assert_eq!(declared, checked);
    let rules = std::fs::read_to_string(units().join("polkit/50-vigil.rules")).unwrap();
    for id in rules
        .split("action.id == \"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
    {
        assert!(
            checked.contains(id),
            "the rules name an unknown action {id}"
        );
    }
    // Fencing and running agents by hand stay with administrators.
    assert!(!rules.contains(vigil_fenced::dbus::FENCE_ACTION));
    assert!(!rules.contains(vigil_execd::dbus::EXECUTE_ACTION));
}

#[test]
fn the_packages_ship_every_unit_binary_and_contract() {
    let manifest = std::fs::read_to_string(root().join("services/cli/Cargo.toml")).unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    let meta = &doc["package"]["metadata"];
    let deb: BTreeMap<String, (String, String)> = meta["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                a[0].as_str().unwrap().to_string(),
                (
                    format!("/{}", a[1].as_str().unwrap()),
                    a[2].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let rpm: BTreeMap<String, (String, String)> = meta["generate-rpm"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["source"].as_str().unwrap().to_string(),
                (
                    a["dest"].as_str().unwrap().to_string(),
                    a["mode"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(deb, rpm, "the .deb and the .rpm ship the same files");
    let cli = root().join("services/cli");
    for src in deb.keys() {
        if !src.starts_with("target/") {
            assert!(cli.join(src).exists(), "a packaged file is missing: {src}");
        }
    }
    // Every file under units/ and every contract is shipped.
    let mut expected = Vec::new();
    for dir in ["units", "units/dbus", "units/polkit", "dbus-interfaces"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let shipped = e.path().is_file()
                && n != "README.md"
                && (dir != "dbus-interfaces" || n.ends_with(".xml"));
            if shipped {
                expected.push(format!("../../{dir}/{n}"));
            }
        }
    }
    for (d, _) in DAEMONS {
        expected.push(format!("target/release/{d}"));
    }
    expected.push("target/release/vigil".into());
    for e in expected {
        assert!(deb.contains_key(&e), "{e} is not packaged");
    }
    let scripts = &meta["generate-rpm"];
    for key in [
        "post_install_script",
        "pre_uninstall_script",
        "post_uninstall_script",
    ] {
        let p = scripts[key].as_str().unwrap();
        assert!(cli.join(p).exists(), "{key}: {p}");
    }
    for s in ["postinst", "prerm", "postrm"] {
        let p = root().join("packaging/debian").join(s);
        let mode =
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&p).unwrap().permissions());
        assert!(mode & 0o111 != 0, "{s} is executable");
    }
}
