//! Scheduler conformance against Pacemaker's regression corpus.
//!
//! Every case of `../shared/cts/scheduler` is scheduled and its Transition
//! Summary compared with the expected one (white space folded). The test
//! prints the pass counts for the ladder and the whole corpus, with the first
//! failures and their diffs, and fails if any case listed in
//! `tests/conformance-pass.txt` (the regression lock) stops passing.
//!
//! `VIGIL_CONFORMANCE_UPDATE=1` rewrites the lock with every passing case.

use std::collections::BTreeSet;
use std::path::Path;

use vigil_cib::time::DateTime;
use vigil_cib::xml::Document;
use vigil_scheduler::output::TextOptions;
use vigil_scheduler::{Options, Scheduler};

/// "Now" for cases that carry no date of their own: well after every
/// timestamp in the corpus, as the real clock is when crm_simulate runs.
const DEFAULT_NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The lines of one section of crm_simulate output.
fn section(text: &str, title: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with(title) {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with(' ') && !line.trim().is_empty() {
                break;
            }
            if !line.trim().is_empty() {
                out.push(fold(line));
            }
        }
    }
    out
}

fn case_args(dir: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(dir.join("tests.json")).unwrap_or_default();
    let mut map = std::collections::BTreeMap::new();
    // A tiny reader for [{"name": .., "args": [..]}]: enough for this file.
    let mut name = None;
    for line in text.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("\"name\": \"") {
            name = rest.split('"').next().map(str::to_string);
        } else if let Some(rest) = l.strip_prefix("\"args\": [") {
            let args: Vec<String> = rest
                .trim_end_matches(',')
                .trim_end_matches(']')
                .split(',')
                .map(|a| a.trim().trim_matches('"').to_string())
                .filter(|a| !a.is_empty())
                .collect();
            if let Some(n) = name.take() {
                map.insert(n, args);
            }
        }
    }
    map
}

struct Outcome {
    name: String,
    pass: bool,
    diff: String,
    /// The stricter levels, for cases that pass: revised status and scores.
    status_ok: bool,
    scores_ok: bool,
    /// The whole `crm_simulate -S` text is identical.
    full_ok: bool,
}

fn run_case(dir: &Path, name: &str, args: &[String]) -> Outcome {
    let xml = std::fs::read_to_string(dir.join("xml").join(format!("{name}.xml"))).unwrap();
    let expected = std::fs::read_to_string(dir.join("summary").join(format!("{name}.summary")))
        .unwrap_or_default();
    let want = section(&expected, "Transition Summary:");
    let doc = match Document::parse(&xml) {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                name: name.into(),
                pass: false,
                diff: format!("parse error: {e}"),
                status_ok: false,
                scores_ok: false,
                full_ok: false,
            };
        }
    };
    let mut now = doc
        .root
        .attr("execution-date")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(DEFAULT_NOW);
    if let Some(i) = args.iter().position(|a| a == "-t")
        && let Some(t) = args.get(i + 1).and_then(|t| DateTime::parse(t).ok())
    {
        now = t.to_epoch_seconds();
    }
    let original_date =
        !args.iter().any(|a| a == "-t") && doc.root.attr("execution-date").is_some();
    let result = std::panic::catch_unwind(|| {
        let s = Scheduler::run(&doc, &Options { now: Some(now) });
        (
            s.transition_summary(),
            format!("Revised Cluster Status:\n{}", s.cluster_status(true)),
            s.score_lines(),
            s.simulate_text(&TextOptions {
                simulate: true,
                scores: false,
                original_date,
            }),
        )
    });
    let (got, status, scores, full): (Vec<String>, String, Vec<String>, String) = match result {
        Ok((lines, status, scores, full)) => (
            lines.iter().map(|l| fold(l)).collect(),
            status,
            scores,
            full,
        ),
        Err(_) => {
            return Outcome {
                name: name.into(),
                pass: false,
                diff: "panicked".into(),
                status_ok: false,
                scores_ok: false,
                full_ok: false,
            };
        }
    };
    let want_status = section(&expected, "Revised Cluster Status:");
    let status_ok = section(&status, "Revised Cluster Status:") == want_status;
    let want_scores: BTreeSet<String> =
        std::fs::read_to_string(dir.join("scores").join(format!("{name}.scores")))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("allocation score") || l.contains("promotion score"))
            .map(fold)
            .collect();
    let got_scores: BTreeSet<String> = scores.iter().map(|l| fold(l)).collect();
    let scores_ok = want_scores == got_scores;
    let trim = |t: &str| t.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    let full_ok = trim(&full).trim_end() == trim(&expected).trim_end();
    let pass = got == want;
    let mut diff = String::new();
    if !pass {
        for l in &want {
            if !got.contains(l) {
                diff.push_str(&format!("    - {l}\n"));
            }
        }
        for l in &got {
            if !want.contains(l) {
                diff.push_str(&format!("    + {l}\n"));
            }
        }
        if diff.is_empty() {
            diff.push_str("    (same lines, different order)\n");
        }
    }
    Outcome {
        name: name.into(),
        pass,
        diff,
        status_ok,
        scores_ok,
        full_ok,
    }
}

#[test]
fn scheduler_conformance() {
    let Some(dir) = vigil_tests::corpus_dir() else {
        return;
    };
    let args = case_args(&dir);
    let names = vigil_tests::case_names(&dir);
    let ladder: Vec<String> = std::fs::read_to_string(dir.join("ladder.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let empty = Vec::new();
    let outcomes: Vec<Outcome> = names
        .iter()
        .map(|n| run_case(&dir, n, args.get(n).unwrap_or(&empty)))
        .collect();
    let passed: BTreeSet<&str> = outcomes
        .iter()
        .filter(|o| o.pass)
        .map(|o| o.name.as_str())
        .collect();
    let ladder_pass = ladder
        .iter()
        .filter(|l| passed.contains(l.as_str()))
        .count();
    println!(
        "ladder: {} passed, {} failed",
        ladder_pass,
        ladder.len() - ladder_pass
    );
    println!(
        "corpus: {} passed, {} failed",
        passed.len(),
        outcomes.len() - passed.len()
    );
    // VIGIL_CONFORMANCE_SHOW sets how many failures are shown (default 20).
    let limit: usize = std::env::var("VIGIL_CONFORMANCE_SHOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let status_ok = outcomes.iter().filter(|o| o.pass && o.status_ok).count();
    let scores_ok = outcomes.iter().filter(|o| o.pass && o.scores_ok).count();
    let full_ok = outcomes.iter().filter(|o| o.full_ok).count();
    println!(
        "stricter levels among passing cases: revised status {status_ok}, scores {scores_ok}; \
         whole crm_simulate -S text identical: {full_ok}"
    );
    let mut shown = 0;
    for l in &ladder {
        if let Some(o) = outcomes.iter().find(|o| &o.name == l && !o.pass)
            && shown < 10
        {
            println!("FAIL {} (ladder)\n{}", o.name, o.diff);
            shown += 1;
        }
    }
    for o in outcomes.iter().filter(|o| !o.pass) {
        if shown >= limit {
            break;
        }
        if !ladder.contains(&o.name) {
            println!("FAIL {}\n{}", o.name, o.diff);
            shown += 1;
        }
    }

    let lock_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance-pass.txt");
    if std::env::var_os("VIGIL_CONFORMANCE_UPDATE").is_some() {
        let mut text = String::from(
            "# Scheduler cases that pass on the Transition Summary; a case listed here must keep passing.\n",
        );
        for p in &passed {
            text.push_str(p);
            text.push('\n');
        }
        std::fs::write(&lock_path, text).unwrap();
    }
    let locked: Vec<String> = std::fs::read_to_string(&lock_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let regressed: Vec<&String> = locked
        .iter()
        .filter(|l| !passed.contains(l.as_str()))
        .collect();
    assert!(
        regressed.is_empty(),
        "cases in the regression lock stopped passing: {regressed:?}"
    );
}
