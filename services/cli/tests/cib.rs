//! `vigil cib ...` and `vigil property ...` against a real one-node
//! cluster (vigil-membershipd and vigil-cibd on a private bus), as an
//! operator types them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use vigil_testkit::{Daemon, Nodes, dbus_daemon_available, eventually, sibling_binary};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

struct Node {
    // Dropped first: the daemons, then the scratch directory.
    _cib: Daemon,
    _membership: Daemon,
    nodes: Nodes,
}

async fn one_node(test: &str, octet: u8) -> Option<Node> {
    if !dbus_daemon_available(test) {
        return None;
    }
    let membershipd = sibling_binary(test, VIGIL, "vigil-membershipd")?;
    let cibd = sibling_binary(test, VIGIL, "vigil-cibd")?;
    let nodes = Nodes::new(octet, 1);
    let membership = nodes.start_membership(&membershipd, 1).await;
    let mut cmd = Command::new(cibd);
    cmd.arg("--bus")
        .arg(nodes.bus(1))
        .arg("--state-dir")
        .arg(nodes.state(1, "cib"))
        .arg("--node-name")
        .arg("n1");
    let cib = Daemon::start("vigil-cibd", cmd, &nodes.log(1, "cib"));
    nodes.wait_for_name(&cib, 1, "org.vigil.cib1").await;
    let bus = nodes.bus(1).to_string();
    eventually("the CIB to be in step", async || {
        let (ok, out, err) = vigil(&bus, &["cib", "show", "--section", "crm_config"], None);
        if ok {
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    })
    .await;
    Some(Node {
        _cib: cib,
        _membership: membership,
        nodes,
    })
}

/// Runs `vigil ARGS --bus BUS` with `stdin`; (success, stdout, stderr).
fn vigil(bus: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    vigil_env(bus, args, stdin, &[])
}

fn vigil_env(
    bus: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = Command::new(VIGIL);
    cmd.args(args)
        .arg("--bus")
        .arg(bus)
        .env_remove("VIGIL_BUS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run vigil");
    if let Some(text) = stdin {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes());
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().expect("wait for vigil");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_are_checked_set_shown_and_unset() {
    let Some(node) = one_node("properties_are_checked_set_shown_and_unset", 43).await else {
        return;
    };
    let bus = node.nodes.bus(1).to_string();
    let (ok, out, err) = vigil(
        &bus,
        &["property", "set", "no-quorum-policy", "freeze"],
        None,
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("no-quorum-policy=freeze"), "{out}");
    let (ok, out, _) = vigil(&bus, &["property", "get", "no-quorum-policy"], None);
    assert!(ok);
    assert_eq!(out.trim(), "freeze");
    // A legacy name finds the current option.
    let (ok, _, err) = vigil(&bus, &["property", "set", "stonith-enabled", "false"], None);
    assert!(ok, "{err}");
    let (_, out, _) = vigil(&bus, &["property", "get", "fencing-enabled"], None);
    assert_eq!(out.trim(), "false");
    // Mistakes are named, and change nothing.
    let (ok, _, err) = vigil(&bus, &["property", "set", "no-quorum-polcy", "stop"], None);
    assert!(!ok);
    assert!(err.contains("did you mean no-quorum-policy"), "{err}");
    let (ok, _, err) = vigil(
        &bus,
        &["property", "set", "no-quorum-policy", "sometimes"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("sometimes") && err.contains("freeze"), "{err}");
    let (_, out, _) = vigil(&bus, &["property", "get", "no-quorum-policy"], None);
    assert_eq!(out.trim(), "freeze");
    // Unset: the default applies again.
    let (ok, _, err) = vigil(&bus, &["property", "unset", "no-quorum-policy"], None);
    assert!(ok, "{err}");
    let (_, out, _) = vigil(&bus, &["property", "get", "no-quorum-policy"], None);
    assert!(out.contains("not set") && out.contains("stop"), "{out}");
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write a file");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pacemaker_cib_loads_and_edits_keep_the_operators_work() {
    let Some(node) = one_node(
        "a_pacemaker_cib_loads_and_edits_keep_the_operators_work",
        44,
    )
    .await
    else {
        return;
    };
    let bus = node.nodes.bus(1).to_string();
    let dir = node.nodes.dir();
    // A cib.xml as Pacemaker writes it loads as it is.
    let cib = write(
        dir,
        "cib.xml",
        r#"<cib crm_feature_set="3.16.2" validate-with="pacemaker-3.9" epoch="12" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
      </cluster_property_set>
    </crm_config>
    <nodes>
      <node id="1" uname="n1"/>
    </nodes>
    <resources>
      <primitive id="web" class="ocf" provider="heartbeat" type="apache"/>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>
"#,
    );
    let (ok, out, err) = vigil(&bus, &["cib", "replace", cib.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    // Its configuration counts from its own epoch on.
    assert!(out.contains("CIB version 0.1"), "{out}");
    let epoch: u64 = out
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|v| v.split('.').nth(1))
        .and_then(|e| e.parse().ok())
        .expect("a version");
    assert!(epoch >= 12, "{out}");
    let (_, out, _) = vigil(&bus, &["cib", "show", "--section", "resources"], None);
    assert!(out.contains("apache"), "{out}");
    let (_, out, _) = vigil(
        &bus,
        &["cib", "show", "--xpath", "//primitive[@id='web']"],
        None,
    );
    assert!(out.starts_with("<primitive"), "{out}");

    // An edit that breaks the XML is reported and reopened with the
    // operator's text; the second pass fixes it and it is applied.
    let editor = write(
        dir,
        "editor.sh",
        r#"#!/bin/sh
# First pass: rename web to www and break the XML; second: repair it.
cp "$1" "$(dirname "$0")/seen.xml"
if grep -q 'id="www"' "$1"; then
    sed -i 's|<constraints UNCLOSED>|<constraints/>|' "$1"
else
    sed -i 's|id="web"|id="www"|; s|<constraints/>|<constraints UNCLOSED>|' "$1"
fi
"#,
    );
    let (ok, out, err) = vigil_env(
        &bus,
        &["cib", "edit"],
        Some("y\n"),
        &[("EDITOR", &format!("sh {}", editor.display()))],
    );
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("Edit again?"),
        "{err}\nthe CIB the editor saw:\n{}",
        std::fs::read_to_string(dir.join("seen.xml")).unwrap_or_default()
    );
    let (_, out, _) = vigil(&bus, &["cib", "show", "--section", "resources"], None);
    assert!(
        out.contains("id=\"www\"") && !out.contains("id=\"web\""),
        "{out}"
    );

    // An edit the cluster refuses (a constraint on a resource that does
    // not exist), with no second chance, keeps the file and says where.
    let bad = write(
        dir,
        "bad.sh",
        "#!/bin/sh\nsed -i 's|<constraints/>|<constraints><rsc_location id=\"l\" rsc=\"ghost\" node=\"n1\" score=\"10\"/></constraints>|' \"$1\"\n",
    );
    let (ok, _, err) = vigil_env(
        &bus,
        &["cib", "edit"],
        None,
        &[("EDITOR", &format!("sh {}", bad.display()))],
    );
    assert!(!ok);
    assert!(err.contains("ghost") && err.contains("kept in"), "{err}");
    let (_, out, _) = vigil(&bus, &["cib", "show", "--section", "constraints"], None);
    assert!(!out.contains("ghost"), "{out}");

    // diff works on files, without the daemon.
    let other = write(
        dir,
        "other.xml",
        &std::fs::read_to_string(&cib)
            .unwrap()
            .replace("epoch=\"12\"", "epoch=\"13\"")
            .replace("apache", "nginx"),
    );
    let out = Command::new(VIGIL)
        .args(["cib", "diff"])
        .arg(&cib)
        .arg(&other)
        .output()
        .expect("vigil cib diff");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("format=\"2\"") && text.contains("nginx"),
        "{text}"
    );
}
