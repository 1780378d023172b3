//! Patchsets over Pacemaker's scheduler corpus: every CIB is edited at
//! random (deterministically: attributes changed, added, removed and
//! reordered; elements and comments added, removed and moved, in the
//! configuration and in the status), and `diff` of the two must apply to the
//! first to give the second, read back what it writes, refuse a wrong source
//! version and a path that matches nothing without changing the CIB.
//!
//! When `crm_diff` is installed, a sample is also checked against it: our
//! patchsets applied by `crm_diff --patch`, and crm_diff's patchsets (with
//! and without versions) applied by ours, must give the same trees.
//!
//! The corpus is `../shared/cts/scheduler` beside the project, or
//! `$VIGIL_CTS_DIR`; without it (or without `crm_diff`) the test says so and
//! passes.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_cib::model::CibVersion;
use vigil_cib::patchset::{Change, PatchError, Patchset, diff};
use vigil_cib::xml::{Document, Element, Node};

fn corpus_dir() -> Option<PathBuf> {
    vigil_testkit::corpus_dir()
}

fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("xml"))
        .expect("the corpus xml directory is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no CIBs in {}", dir.display());
    files
}

fn load(path: &Path) -> Element {
    let text = std::fs::read_to_string(path).unwrap();
    Document::parse(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .root
}

/// `e` without white-space-only text, which patchsets do not carry (and
/// crm_diff drops).
fn norm(e: &Element) -> Element {
    let mut e = e.clone();
    e.children
        .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
    for c in e.children.iter_mut() {
        if let Node::Element(c) = c {
            *c = norm(c);
        }
    }
    e
}

/// SplitMix64: small, deterministic, good enough to pick edits.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn seed_for(name: &str, round: u64) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h ^ round.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }
}

/// Index paths (through `children`) of every element under `base`,
/// `base` itself first.
fn element_paths(base: &Element, prefix: Vec<usize>, out: &mut Vec<Vec<usize>>) {
    out.push(prefix.clone());
    for (i, c) in base.children.iter().enumerate() {
        if let Node::Element(e) = c {
            let mut p = prefix.clone();
            p.push(i);
            element_paths(e, p, out);
        }
    }
}

fn at<'a>(root: &'a mut Element, path: &[usize]) -> &'a mut Element {
    let mut cur = root;
    for &i in path {
        cur = match &mut cur.children[i] {
            Node::Element(e) => e,
            _ => unreachable!("paths lead through elements"),
        };
    }
    cur
}

/// What the random edits did, for messages.
#[derive(Default)]
struct Edits {
    log: Vec<String>,
    configuration: bool,
}

/// Makes one random edit in the configuration or the status of `cib`.
fn edit(cib: &mut Element, rng: &mut Rng, counter: &mut u64, edits: &mut Edits) {
    let sections: Vec<usize> = cib
        .children
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            matches!(n, Node::Element(e) if e.name == "configuration" || e.name == "status")
        })
        .map(|(i, _)| i)
        .collect();
    let Some(&section) = sections.get(rng.below(sections.len())) else {
        return;
    };
    let mut paths = Vec::new();
    let Node::Element(base) = &cib.children[section] else {
        return;
    };
    let in_configuration = base.name == "configuration";
    element_paths(base, vec![section], &mut paths);
    *counter += 1;
    let n = *counter;
    let target = paths[rng.below(paths.len())].clone();
    let kind = rng.below(10);
    let el = at(cib, &target);
    let what = format!("{}[{}]", el.name, el.attr("id").unwrap_or("-"));
    let mut done = String::new();
    match kind {
        // Change an attribute's value (or add one).
        0 | 1 => {
            let names: Vec<String> = el
                .attrs
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "id")
                .collect();
            if names.is_empty() {
                el.attrs.push((format!("vigil-a{n}"), format!("v{n}")));
                done = "added an attribute".into();
            } else {
                let k = &names[rng.below(names.len())];
                el.set_attr(k, format!("changed-{n}"));
                done = format!("changed {k}");
            }
        }
        // Add an attribute somewhere among the others.
        2 => {
            let at = rng.below(el.attrs.len() + 1);
            el.attrs
                .insert(at, (format!("vigil-a{n}"), format!("new <&> \"{n}\"")));
            done = format!("added an attribute at {at}");
        }
        // Remove an attribute.
        3 => {
            let names: Vec<String> = el
                .attrs
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != "id")
                .collect();
            if let Some(k) = names.get(rng.below(names.len())) {
                el.remove_attr(k);
                done = format!("removed {k}");
            }
        }
        // Reorder the attributes.
        4 => {
            if el.attrs.len() >= 2 {
                let i = rng.below(el.attrs.len());
                let j = rng.below(el.attrs.len());
                el.attrs.swap(i, j);
                done = format!("swapped attributes {i} and {j}");
            }
        }
        // Add an element (with a child) or a comment.
        5 | 6 => {
            let at = rng.below(el.children.len() + 1);
            if kind == 5 {
                let mut new = Element::new("vigil_test");
                new.set_attr("id", format!("vigil-test-{n}"));
                new.set_attr("value", format!("{n}"));
                let mut inner = Element::new("nvpair");
                inner.set_attr("id", format!("vigil-test-{n}-nv"));
                inner.set_attr("name", "x");
                inner.set_attr("value", "y");
                new.push(inner);
                el.children.insert(at, Node::Element(new));
                done = format!("added an element at child {at}");
            } else {
                el.children
                    .insert(at, Node::Comment(format!(" vigil comment {n} ")));
                done = format!("added a comment at child {at}");
            }
        }
        // Remove an element child or a comment.
        7 => {
            let kids: Vec<usize> = el
                .children
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c, Node::Element(_) | Node::Comment(_)))
                .map(|(i, _)| i)
                .collect();
            if let Some(&i) = kids.get(rng.below(kids.len())) {
                el.children.remove(i);
                done = format!("removed child {i}");
            }
        }
        // Move an element or a comment among its siblings.
        8 => {
            let kids: Vec<usize> = el
                .children
                .iter()
                .enumerate()
                .filter(|(_, c)| matches!(c, Node::Element(_) | Node::Comment(_)))
                .map(|(i, _)| i)
                .collect();
            if kids.len() >= 2 {
                let i = kids[rng.below(kids.len())];
                let node = el.children.remove(i);
                let to = rng.below(el.children.len() + 1);
                el.children.insert(to, node);
                done = format!("moved child {i} to {to}");
            }
        }
        // Move an element under another parent.
        _ => {
            if target.len() > 1 {
                let (parent, last) = target.split_at(target.len() - 1);
                let parent_el = at(cib, parent);
                let node = parent_el.children.remove(last[0]);
                let mut paths = Vec::new();
                let Node::Element(base) = &cib.children[section] else {
                    return;
                };
                element_paths(base, vec![section], &mut paths);
                let dest = paths[rng.below(paths.len())].clone();
                let dest_el = at(cib, &dest);
                let to = rng.below(dest_el.children.len() + 1);
                dest_el.children.insert(to, node);
                done = format!("moved it under {}", dest_el.name);
            }
        }
    }
    if !done.is_empty() {
        edits.configuration |= in_configuration;
        edits.log.push(format!("{what}: {done}"));
    }
}

/// A copy of `cib` with a few random edits and the version bumped as
/// Pacemaker would (a configuration change bumps epoch, a status change
/// num_updates).
fn edited(cib: &Element, rng: &mut Rng, counter: &mut u64) -> (Element, Edits) {
    let mut new = cib.clone();
    let mut edits = Edits::default();
    for _ in 0..1 + rng.below(6) {
        edit(&mut new, rng, counter, &mut edits);
    }
    let (mut v, _) = CibVersion::read(cib);
    if edits.configuration {
        v.epoch += 1;
        v.num_updates = 0;
    } else {
        v.num_updates += 1;
    }
    new.set_attr("epoch", v.epoch.to_string());
    new.set_attr("num_updates", v.num_updates.to_string());
    if cib.attr("admin_epoch").is_none() {
        new.set_attr("admin_epoch", "0");
    }
    (new, edits)
}

#[test]
fn diff_and_apply_over_the_corpus() {
    let Some(dir) = corpus_dir() else { return };
    let files = corpus_files(&dir);
    let mut failures = Vec::new();
    let (mut patches, mut changes) = (0usize, 0usize);
    let mut counter = 0;
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let old = load(path);
        // Fewer rounds for the few very large CIBs.
        let rounds = if old.to_xml().len() > 200_000 { 1 } else { 3 };
        for round in 0..rounds {
            let mut rng = Rng::seed_for(&name, round);
            let (new, edits) = edited(&old, &mut rng, &mut counter);
            let ctx = || format!("{name} round {round} ({})", edits.log.join("; "));
            let p = diff(&old, &new);
            patches += 1;
            changes += p.changes.len();

            // It reads back what it writes.
            match Patchset::from_element(&p.to_element()) {
                Ok(back) if back == p => {}
                Ok(_) => failures.push(format!("{}: to_element/from_element differ", ctx())),
                Err(e) => failures.push(format!("{}: cannot read its own patch: {e}", ctx())),
            }
            if Patchset::from_xml(&p.to_xml()).as_ref() != Ok(&p) {
                failures.push(format!("{}: to_xml/from_xml differ", ctx()));
            }

            // It applies, version checked, and gives the new CIB.
            let mut cib = old.clone();
            match p.apply(&mut cib) {
                Ok(()) if norm(&cib) == norm(&new) => {}
                Ok(()) => failures.push(format!(
                    "{}: applying gives another CIB; patch {}",
                    ctx(),
                    p.to_xml()
                )),
                Err(e) => failures.push(format!("{}: {e}; patch {}", ctx(), p.to_xml())),
            }
            // Not twice.
            if !matches!(p.apply(&mut cib), Err(PatchError::VersionTooNew { .. })) {
                failures.push(format!("{}: applied twice", ctx()));
            }

            // A wrong source version is refused, and nothing changes.
            let mut wrong = p.clone();
            if let Some(s) = &mut wrong.source {
                s.epoch += 1;
            }
            let mut cib = old.clone();
            match wrong.apply(&mut cib) {
                Err(PatchError::VersionTooOld { .. }) if cib == old => {}
                other => failures.push(format!("{}: wrong source version gave {other:?}", ctx())),
            }

            // A path that matches nothing is refused, named, and nothing
            // changes, even after the changes that did apply.
            let mut broken = p.clone();
            let bad_path = match p.changes.iter().rev().find(|c| c.path().contains("[@id=")) {
                Some(c) => {
                    let path = c.path();
                    let cut = path.rfind("[@id=").unwrap();
                    format!("{}[@id='vigil-no-such-id']", &path[..cut])
                }
                None => "/cib/configuration/vigil-nothing".to_string(),
            };
            broken.changes.push(Change::Delete {
                path: bad_path.clone(),
                position: None,
            });
            let mut cib = old.clone();
            match broken.apply(&mut cib) {
                Err(e @ PatchError::NoMatch { .. })
                    if cib == old && e.to_string().contains(&bad_path) => {}
                other => failures.push(format!(
                    "{}: a path matching nothing ({bad_path}) gave {other:?}",
                    ctx()
                )),
            }
        }
        if !diff(&old, &old).is_empty() {
            failures.push(format!("{name}: a CIB differs from itself"));
        }
    }
    eprintln!(
        "{} CIBs, {patches} patchsets, {changes} changes",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Against crm_diff.

fn crm_diff_available() -> bool {
    match Command::new("crm_diff").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ => {
            eprintln!("SKIP: crm_diff is not installed (package pacemaker-cli-utils)");
            assert!(
                std::env::var_os("VIGIL_REQUIRE_ALL").is_none(),
                "crm_diff (pacemaker-cli-utils) is required for the cross-check (VIGIL_REQUIRE_ALL is set)"
            );
            false
        }
    }
}

/// Runs crm_diff; exit codes 0 and 1 (differences found) are success.
fn crm_diff(args: &[&str]) -> Result<String, String> {
    let out = Command::new("crm_diff")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run crm_diff: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    match out.status.code() {
        Some(0 | 1) if !stdout.trim().is_empty() || args.contains(&"-n") => Ok(stdout),
        _ => Err(format!(
            "crm_diff {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn parse_output(text: &str) -> Result<Element, String> {
    Document::parse(text)
        .map(|d| d.root)
        .map_err(|e| format!("crm_diff printed XML we cannot parse: {e}"))
}

/// `cib` with the version attributes of `from`.
fn with_version_of(cib: &Element, from: &Element) -> Element {
    let mut cib = cib.clone();
    for attr in ["admin_epoch", "epoch", "num_updates"] {
        match from.attr(attr) {
            Some(v) => cib.set_attr(attr, v),
            None => {
                cib.remove_attr(attr);
            }
        }
    }
    cib
}

#[test]
fn crm_diff_agrees() {
    let Some(dir) = corpus_dir() else { return };
    if !crm_diff_available() {
        return;
    }
    let files = corpus_files(&dir);
    let tmp = std::env::temp_dir().join(format!("vigil-patchset-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let file = |name: &str| tmp.join(name).to_string_lossy().to_string();
    let (a, b, ours, theirs) = (
        file("old.xml"),
        file("new.xml"),
        file("ours.xml"),
        file("theirs.xml"),
    );

    let mut failures = Vec::new();
    let (mut checked, mut pacemaker_inexact) = (0, Vec::new());
    let (mut refused_ambiguous, mut pacemaker_refuses) = (Vec::new(), Vec::new());
    let mut counter = 0;
    // A sample: every 12th CIB (every one with VIGIL_CRM_DIFF_EVERY=1).
    let every = std::env::var("VIGIL_CRM_DIFF_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12usize)
        .max(1);
    for path in files.iter().step_by(every) {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let mut old = load(path);
        // crm_diff 2.1 writes format 1 for CIBs of feature sets up to
        // 3.0.8: declare a recent one.
        old.set_attr("crm_feature_set", "3.19.0");
        let mut rng = Rng::seed_for(&name, 1000);
        let (new, edits) = edited(&old, &mut rng, &mut counter);
        let ctx = format!("{name} ({})", edits.log.join("; "));
        std::fs::write(&a, old.to_xml()).unwrap();
        std::fs::write(&b, new.to_xml()).unwrap();
        checked += 1;

        // Ours, applied by crm_diff (with --cib, which checks versions).
        let p = diff(&old, &new);
        std::fs::write(&ours, p.to_xml()).unwrap();
        match crm_diff(&["--cib", "-o", &a, "-p", &ours]).and_then(|t| parse_output(&t)) {
            Ok(got) if norm(&got) == norm(&new) => {}
            Ok(_) => failures.push(format!(
                "{ctx}: crm_diff --patch with our patchset gives another CIB; patch {}",
                p.to_xml()
            )),
            Err(e) => failures.push(format!("{ctx}: {e}; patch {}", p.to_xml())),
        }

        // Theirs, with and without versions, applied by ours.
        for no_version in [false, true] {
            let mut args = vec!["-o", a.as_str(), "-n", b.as_str()];
            if no_version {
                args.push("--no-version");
            }
            let text = match crm_diff(&args) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(format!("{ctx}: {e}"));
                    continue;
                }
            };
            let label = if no_version {
                "--no-version"
            } else {
                "with versions"
            };
            if text.trim().is_empty() {
                // crm_diff found no difference.
                if norm(&with_version_of(&new, &old)) != norm(&old) {
                    pacemaker_inexact.push(format!("{name} ({label}, no difference found)"));
                }
                continue;
            }
            let patch = match Patchset::from_xml(&text) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!(
                        "{ctx}: cannot read crm_diff's patchset ({label}): {e}\n{text}"
                    ));
                    continue;
                }
            };
            if no_version != patch.source.is_none() {
                failures.push(format!(
                    "{ctx}: crm_diff {label} gave source {:?}",
                    patch.source
                ));
            }
            let mut cib = old.clone();
            if let Err(e) = patch.apply(&mut cib) {
                std::fs::write(&theirs, &text).unwrap();
                let pacemaker = crm_diff(&["-o", &a, "-p", &theirs]);
                match (&e, pacemaker) {
                    // Siblings with the same name and id (or none): Pacemaker
                    // takes the first, we refuse.
                    (PatchError::Ambiguous { .. }, Ok(_)) => {
                        refused_ambiguous.push(format!("{name} ({label})"));
                    }
                    // Pacemaker cannot apply its own patchset either.
                    (_, Err(_)) => pacemaker_refuses.push(format!("{name} ({label}): {e}")),
                    (_, Ok(_)) => failures.push(format!(
                        "{ctx}: crm_diff's patchset ({label}) does not apply: {e}\n{text}"
                    )),
                }
                continue;
            }
            let expected = if no_version {
                with_version_of(&new, &old)
            } else {
                new.clone()
            };
            if norm(&cib) == norm(&expected) {
                continue;
            }
            // Not the new CIB: it must at least be what crm_diff itself
            // makes of its patchset.
            std::fs::write(&theirs, &text).unwrap();
            match crm_diff(&["-o", &a, "-p", &theirs]).and_then(|t| parse_output(&t)) {
                Ok(got) if norm(&got) == norm(&cib) => {
                    pacemaker_inexact.push(format!("{name} ({label})"));
                }
                Ok(_) => failures.push(format!(
                    "{ctx}: crm_diff's patchset ({label}) gives another CIB with ours than with \
                     crm_diff\n{text}"
                )),
                Err(e) => failures.push(format!("{ctx}: {e}")),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "crm_diff cross-check: {checked} CIBs; crm_diff's own patchset does not give the new \
         CIB (ours applies it as crm_diff does) for {}: {:?}",
        pacemaker_inexact.len(),
        pacemaker_inexact
    );
    eprintln!(
        "crm_diff cross-check: crm_diff's patchset has a path matching several nodes (Pacemaker \
         takes the first, we refuse) for {}: {:?}",
        refused_ambiguous.len(),
        refused_ambiguous
    );
    eprintln!(
        "crm_diff cross-check: crm_diff cannot apply its own patchset either for {}: {:?}",
        pacemaker_refuses.len(),
        pacemaker_refuses
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
