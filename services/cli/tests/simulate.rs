//! `vigil simulate` driven as a user runs it.

use std::path::PathBuf;
use std::process::Command;

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo-cib.xml")
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("simulate-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn demo_cluster_recovers_the_dead_node_s_group() {
    let out = vigil()
        .args(["simulate", "-S", "-x"])
        .arg(demo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for section in [
        "Current cluster status:",
        "Transition Summary:",
        "Executing Cluster Transition:",
        "Revised Cluster Status:",
    ] {
        assert!(text.contains(section), "missing {section}:\n{text}");
    }
    let summary: Vec<String> = text
        .split("Transition Summary:\n")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        summary,
        [
            "* Fence (reboot) n3 'peer is no longer part of the cluster'",
            "* Move web-ip ( n3 -> n2 )",
            "* Move web ( n3 -> n2 )",
            "* Recover db ( n1 )",
        ]
    );
    assert!(text.contains("* OFFLINE: [ n3 ]"), "{text}");
}

#[test]
fn scores_and_graph_are_written_on_request() {
    let graph = scratch("graph.xml");
    let _ = std::fs::remove_file(&graph);
    let out = vigil()
        .args(["simulate", "-s", "-x"])
        .arg(demo())
        .arg("-G")
        .arg(&graph)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("pcmk__primitive_assign: db allocation score on n1: 100"),
        "{text}"
    );
    let g = std::fs::read_to_string(&graph).unwrap();
    assert!(g.starts_with("<transition_graph"), "{g}");
    assert!(g.contains("operation_key=\"web_start_0\""), "{g}");
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let out = vigil()
        .args(["simulate", "-S", "-x", "/nonexistent/cib.xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent/cib.xml"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn malformed_xml_is_an_error_with_line_and_column() {
    let bad = scratch("bad.xml");
    std::fs::write(&bad, "<cib>\n  <configuration>\n  </status>\n</cib>\n").unwrap();
    let out = vigil()
        .args(["simulate", "-S", "-x"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.xml:3:"), "{err}");
}

#[test]
fn a_document_that_is_not_a_cib_is_refused() {
    let bad = scratch("not-cib.xml");
    std::fs::write(&bad, "<html/>").unwrap();
    let out = vigil()
        .args(["simulate", "-S", "-x"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("<html>"), "{err}");
}

#[test]
fn an_invalid_date_is_refused() {
    let out = vigil()
        .args(["simulate", "-S", "-t", "yesterday", "-x"])
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("yesterday"), "{err}");
}
