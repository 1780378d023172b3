//! The typed model over Pacemaker's scheduler corpus: every CIB builds, the
//! model holds as many primitives, constraints and history entries as the
//! XML has elements, and no error is reported except for the inputs that
//! are broken on purpose (listed below with the reason).
//!
//! The corpus is `../shared/cts/scheduler` beside the project, or
//! `$VIGIL_CTS_DIR`; without it the test says so and passes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use vigil_cib::model::Cib;
use vigil_cib::xml::{Document, Element};

/// Corpus inputs that Pacemaker itself reports configuration errors for:
/// the case name (a trailing `*` matches a family of cases), text every
/// error of that case contains, and why the input is like that. Each entry
/// must still match at least one error, so the list stays true.
const BROKEN_ON_PURPOSE: &[(&str, &str, &str)] = &[
    (
        "colocation-influence",
        "not a valid value for influence",
        "tests an invalid influence value on purpose (the file's comment says so); \
         Pacemaker logs a configuration error and uses the default",
    ),
    (
        "failcount-block",
        "node_state has no id",
        "the node_state of pcmk-4 has no id; Pacemaker logs a configuration error \
         and ignores the entry",
    ),
    (
        "intervals",
        "already defined by op 'rsc3-monitor-interval-40s'",
        "defines monitors with intervals 40s and P40S to show both spellings are the \
         same interval, so Pacemaker reports the second as a duplicate",
    ),
    (
        "bug-cl-5219",
        "'poweroff' is not a valid value for cluster option 'fencing-action'",
        "uses the legacy stonith-action=poweroff, which Pacemaker 3 no longer accepts \
         (the default reboot is used)",
    ),
    (
        "order-serialize",
        "'poweroff' is not a valid value for cluster option 'fencing-action'",
        "legacy stonith-action=poweroff, as above",
    ),
    (
        "order-serialize-set",
        "'poweroff' is not a valid value for cluster option 'fencing-action'",
        "legacy stonith-action=poweroff, as above",
    ),
    (
        "bug-lf-2606",
        "already defined",
        "promoted and unpromoted monitors share one interval, which Pacemaker reports \
         as duplicate operations (written for Pacemaker 1.x, which allowed it)",
    ),
    (
        "promoted-asymmetrical-order",
        "already defined",
        "promoted and unpromoted monitors share one interval, as above",
    ),
    (
        "promoted-notify",
        "already defined",
        "promoted and unpromoted monitors share one interval, as above",
    ),
    (
        "ticket-promoted-*",
        "already defined",
        "promoted and unpromoted monitors share one interval, as above",
    ),
    (
        "ticket-rsc-sets-*",
        "already defined",
        "promoted and unpromoted monitors share one interval, as above",
    ),
];

/// The allow-list entry for a case, if any.
fn allowance(name: &str) -> Option<usize> {
    BROKEN_ON_PURPOSE
        .iter()
        .position(|(pat, _, _)| match pat.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *pat,
        })
}

fn corpus_dir() -> Option<PathBuf> {
    vigil_testkit::corpus_dir()
}

fn count(root: &Element, names: &[&str]) -> usize {
    root.descendants()
        .filter(|e| names.contains(&e.name.as_str()))
        .count()
}

#[test]
fn every_corpus_cib_builds_and_agrees_with_the_xml() {
    let Some(dir) = corpus_dir() else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("xml"))
        .expect("the corpus xml directory is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CIBs in {}", dir.display());

    let mut used: BTreeMap<usize, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut totals = [0usize; 4];
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let doc = match Document::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: not well-formed: {e}"));
                continue;
            }
        };
        let cib = match Cib::from_document(&doc) {
            Ok(c) => c,
            Err(diags) => {
                failures.push(format!("{name}: does not build: {}", diags[0]));
                continue;
            }
        };

        let config = cib.configuration;
        let primitives = count(config.child("resources").unwrap_or(config), &["primitive"]);
        let constraints = count(
            config.child("constraints").unwrap_or(config),
            &["rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket"],
        );
        let history = doc
            .root
            .child("status")
            .map_or(0, |s| count(s, &["lrm_rsc_op"]));
        let got = (
            cib.primitives().len(),
            cib.constraints.len(),
            cib.status.history().count(),
        );
        if got != (primitives, constraints, history) {
            failures.push(format!(
                "{name}: model has {got:?} (primitives, constraints, history), the XML {:?}",
                (primitives, constraints, history)
            ));
        }
        totals[0] += primitives;
        totals[1] += constraints;
        totals[2] += history;

        let errors: Vec<_> = cib.diagnostics.iter().filter(|d| d.is_error()).collect();
        totals[3] += errors.len();
        match allowance(&name) {
            Some(i) => {
                let (pattern, needle, why) = BROKEN_ON_PURPOSE[i];
                *used.entry(i).or_default() += errors.len();
                if errors.is_empty() && !pattern.ends_with('*') {
                    failures.push(format!(
                        "{name}: listed as broken on purpose ({why}) but no error was reported"
                    ));
                }
                for e in errors.iter().filter(|e| !e.message.contains(needle)) {
                    failures.push(format!("{name}: unexpected error: {e}"));
                }
            }
            None => {
                for e in errors {
                    failures.push(format!("{name}: {e}"));
                }
            }
        }
    }
    for (i, (pattern, _, _)) in BROKEN_ON_PURPOSE.iter().enumerate() {
        if used.get(&i).copied().unwrap_or(0) == 0 {
            failures.push(format!(
                "allow-list entry '{pattern}' matched no error; remove it"
            ));
        }
    }
    eprintln!(
        "{} CIBs: {} primitives, {} constraints, {} history entries, {} allowed errors",
        files.len(),
        totals[0],
        totals[1],
        totals[2],
        totals[3]
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
