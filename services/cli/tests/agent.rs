//! `vigil agent`: an operator runs an agent by hand, as the executor would.

use std::path::Path;
use std::process::Command;

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const AGENT: &str = r#"#!/bin/sh
case "$1" in
meta-data) cat <<'XML'
<?xml version="1.0"?>
<resource-agent name="Echo" version="1.0">
<version>1.1</version>
<shortdesc lang="en">Says what it was given</shortdesc>
<parameters>
<parameter name="answer" required="1"><shortdesc lang="en">The exit code</shortdesc><content type="integer"/></parameter>
</parameters>
<actions><action name="start" timeout="20s"/><action name="meta-data" timeout="5s"/></actions>
</resource-agent>
XML
exit 0;;
esac
echo "instance=$OCF_RESOURCE_INSTANCE clone_max=$OCF_RESKEY_CRM_meta_clone_max"
echo "ocf-exit-reason:answering $OCF_RESKEY_answer" >&2
exit "$OCF_RESKEY_answer"
"#;

#[test]
fn exec_runs_the_agent_with_the_clusters_environment() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ocf");
    write_exec(&root.join("resource.d/test/Echo"), AGENT);
    let root = root.to_str().unwrap();
    let out = vigil()
        .args([
            "agent",
            "exec",
            "ocf:test:Echo",
            "start",
            "-r",
            "web:1",
            "-p",
            "answer=7",
        ])
        .args(["-m", "clone-max=3", "--ocf-root", root, "-v"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the agent's rc is the exit status: {stderr}"
    );
    assert!(stdout.contains("OCF_RESKEY_answer=7"), "{stdout}");
    assert!(stdout.contains("instance=web:1 clone_max=3"), "{stdout}");
    assert!(
        stderr.contains("rc=7 (not running)") && stderr.contains("answering 7"),
        "{stderr}"
    );

    let out = vigil()
        .args(["agent", "list", "ocf", "test", "--ocf-root", root])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Echo\n");
    let out = vigil()
        .args(["agent", "meta", "ocf:test:Echo", "--ocf-root", root])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Says what it was given") && text.contains("answer (integer, required)"),
        "{text}"
    );
}

#[test]
fn mistakes_are_named() {
    for (args, want) in [
        (
            vec!["agent", "exec", "ocf:Echo", "start"],
            "ocf:PROVIDER:TYPE",
        ),
        (
            vec!["agent", "exec", "ocf:test:Echo", "start", "-p", "answer"],
            "NAME=VALUE",
        ),
        (
            vec![
                "agent",
                "exec",
                "ocf:test:Echo",
                "start",
                "--timeout",
                "soon",
            ],
            "not a duration",
        ),
        (
            vec![
                "agent",
                "exec",
                "ocf:test:Echo",
                "start",
                "--interval",
                "5s",
            ],
            "only monitors recur",
        ),
        (
            vec!["agent", "list", "lsb", "x"],
            "only ocf agents have providers",
        ),
        (vec!["agent", "meta", "ocf:nope:Nothing"], "has no metadata"),
    ] {
        let out = vigil().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    let out = vigil()
        .args(["agent", "exec", "ocf:nope:Nothing", "start"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "a missing agent is 'not installed'"
    );
}
