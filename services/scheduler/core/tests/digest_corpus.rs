//! Operation digests against Pacemaker's scheduler regression corpus.
//!
//! The corpus lives outside the repository (`/work/shared/cts/scheduler`, or
//! `$VIGIL_CTS_DIR`); without it these tests print a notice and pass.
//!
//! Parameters are extracted lightly: a primitive's `instance_attributes`
//! nvpairs, then its parents', first value winning, with sets that carry
//! rules skipped; no templates, no `id-ref`s.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use vigil_cib::xml::{Document, Element};
use vigil_scheduler::digest::{
    ConfigChange, DigestInput, DigestMatch, Digests, RecordedDigests, compare, compute_digests,
    config_change, digest_params,
};

fn cts_dir() -> Option<PathBuf> {
    vigil_testkit::corpus_dir()
}

fn load(dir: &std::path::Path, case: &str) -> Document {
    let path = dir.join("xml").join(format!("{case}.xml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Document::parse(&text).unwrap_or_else(|e| panic!("{case}: {e}"))
}

/// `pcmk__parse_ms`: an integer (decimals truncated) and optional unit.
fn parse_ms(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: i64 = s[..digits].parse().ok()?;
    let unit = s[digits..]
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
        .trim_start()
        .to_ascii_lowercase();
    let ms = if unit.is_empty() || unit.starts_with('s') {
        n * 1000
    } else if unit.starts_with("ms") {
        n
    } else if unit.starts_with("us") {
        n / 1000
    } else if unit.starts_with('m') {
        n * 60_000
    } else if unit.starts_with('h') {
        n * 3_600_000
    } else {
        return None;
    };
    Some(ms)
}

/// An interval spec: a duration or a simple ISO 8601 duration (`P1DT10S`).
fn parse_interval(s: Option<&str>) -> u32 {
    let Some(s) = s else { return 0 };
    if let Some(iso) = s.strip_prefix('P') {
        let mut total: i64 = 0;
        let mut num = String::new();
        let mut in_time = false;
        for c in iso.chars() {
            match c {
                'T' => in_time = true,
                c if c.is_ascii_digit() => num.push(c),
                unit => {
                    let n: i64 = num.parse().unwrap_or(0);
                    num.clear();
                    total += n * match (unit, in_time) {
                        ('D', _) => 86_400,
                        ('W', false) => 7 * 86_400,
                        ('H', true) => 3600,
                        ('M', true) => 60,
                        ('S', _) => 1,
                        _ => 0,
                    };
                }
            }
        }
        return (total * 1000) as u32;
    }
    parse_ms(s).unwrap_or(0).max(0) as u32
}

/// The nvpairs of an element's `set_name` blocks, first value winning,
/// skipping blocks with rules. Returns whether a block was skipped.
fn nvpairs_into(el: &Element, set_name: &str, out: &mut BTreeMap<String, String>) -> bool {
    let mut skipped = false;
    for set in el.children_named(set_name) {
        if set.child("rule").is_some() {
            skipped = true;
            continue;
        }
        for nv in set.children_named("nvpair") {
            if let (Some(n), Some(v)) = (nv.attr("name"), nv.attr("value")) {
                out.entry(n.to_string()).or_insert_with(|| v.to_string());
            }
        }
    }
    skipped
}

/// A primitive with its ancestors in `<resources>`, innermost first.
struct Prim<'a> {
    el: &'a Element,
    parents: Vec<&'a Element>,
}

fn primitives(root: &Element) -> HashMap<String, Prim<'_>> {
    fn walk<'a>(
        el: &'a Element,
        stack: &mut Vec<&'a Element>,
        out: &mut HashMap<String, Prim<'a>>,
    ) {
        for child in el.elements() {
            if child.name == "primitive" {
                if let Some(id) = child.attr("id") {
                    let mut parents = stack.clone();
                    parents.reverse();
                    out.insert(id.to_string(), Prim { el: child, parents });
                }
            } else if matches!(child.name.as_str(), "group" | "clone" | "master" | "bundle") {
                stack.push(child);
                walk(child, stack, out);
                stack.pop();
            }
        }
    }
    let mut out = HashMap::new();
    if let Some(res) = root
        .child("configuration")
        .and_then(|c| c.child("resources"))
    {
        walk(res, &mut Vec::new(), &mut out);
    }
    out
}

/// What a history entry's digests are computed from.
struct Extracted {
    params: BTreeMap<String, String>,
    op_params: BTreeMap<String, String>,
    interval_ms: u32,
    timeout_ms: u32,
    rules: bool,
}

fn extract(root: &Element, prim: &Prim<'_>, op: &Element) -> Extracted {
    let mut params = BTreeMap::new();
    let mut rules = nvpairs_into(prim.el, "instance_attributes", &mut params);
    for p in &prim.parents {
        rules |= nvpairs_into(p, "instance_attributes", &mut params);
    }
    let task = op.attr("operation").unwrap_or("");
    let interval_ms: u32 = op
        .attr("interval")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);

    let ops: Vec<&Element> = prim
        .el
        .child("operations")
        .map(|o| o.children_named("op").collect())
        .unwrap_or_default();
    let find = |name: &str, interval: u32| {
        ops.iter().copied().find(|o| {
            o.attr("name") == Some(name) && parse_interval(o.attr("interval")) == interval
        })
    };
    let mut config = find(task, interval_ms);
    if config.is_none() && matches!(task, "migrate_to" | "migrate_from") {
        config = find("migrate", 0);
    }

    let mut op_params = BTreeMap::new();
    let mut meta = BTreeMap::new();
    if let Some(c) = config {
        rules |= nvpairs_into(c, "instance_attributes", &mut op_params);
        nvpairs_into(c, "meta_attributes", &mut meta);
        for (k, v) in &c.attrs {
            meta.insert(k.clone(), v.clone());
        }
    }
    if let Some(defaults) = root
        .child("configuration")
        .and_then(|c| c.child("op_defaults"))
    {
        nvpairs_into(defaults, "meta_attributes", &mut meta);
    }
    let timeout_ms = meta
        .get("timeout")
        .and_then(|t| parse_ms(t))
        .filter(|&t| t > 0)
        .map_or(20_000, |t| t.min(i64::from(i32::MAX)) as u32);
    Extracted {
        params,
        op_params,
        interval_ms,
        timeout_ms,
        rules,
    }
}

/// One history entry with its computed digests.
struct Entry<'a> {
    node: String,
    rsc: String,
    op: &'a Element,
    digests: Option<Digests>,
    extracted: Option<Extracted>,
    rules: bool,
    template: bool,
}

fn entries<'a>(doc: &'a Document, calc_secure: bool) -> Vec<Entry<'a>> {
    let root = &doc.root;
    let prims = primitives(root);
    let mut out = Vec::new();
    let Some(status) = root.child("status") else {
        return out;
    };
    for ns in status.children_named("node_state") {
        let node = ns.attr("uname").unwrap_or("").to_string();
        for lrm in ns.children_named("lrm") {
            for lrs in lrm.children_named("lrm_resources") {
                for lr in lrs.children_named("lrm_resource") {
                    let rid = lr.attr("id").unwrap_or("");
                    let base = rid.split(':').next().unwrap_or(rid);
                    let prim = prims.get(rid).or_else(|| prims.get(base));
                    for op in lr.children_named("lrm_rsc_op") {
                        let mut entry = Entry {
                            node: node.clone(),
                            rsc: rid.to_string(),
                            op,
                            digests: None,
                            extracted: None,
                            rules: false,
                            template: false,
                        };
                        if let Some(prim) = prim {
                            let x = extract(root, prim, op);
                            let fencing = prim.el.attr("class") == Some("stonith");
                            let input = DigestInput {
                                params: &x.params,
                                op_params: &x.op_params,
                                interval_ms: x.interval_ms,
                                timeout_ms: x.timeout_ms,
                                fencing,
                                cib_feature_set: root.attr("crm_feature_set"),
                            };
                            let recorded = RecordedDigests::from_op(op);
                            entry.digests =
                                Some(compute_digests(&input, Some(&recorded), calc_secure));
                            entry.rules = x.rules;
                            entry.template = prim.el.attr("template").is_some();
                            entry.extracted = Some(x);
                        }
                        out.push(entry);
                    }
                }
            }
        }
    }
    out
}

fn find_entry<'a, 'b>(all: &'b [Entry<'a>], node: &str, op_id: &str) -> &'b Entry<'a> {
    all.iter()
        .find(|e| e.node == node && e.op.attr("id") == Some(op_id))
        .unwrap_or_else(|| panic!("no history entry {op_id} on {node}"))
}

/// Cases (and resources, or all with `*`) whose expected output shows no
/// configuration change for them: every recorded digest must be reproduced.
const UNCHANGED: &[(&str, &[&str])] = &[
    ("simple6", &["*"]),
    // rsc1 is recovered after a failure; its stop entry carries a digest of
    // unknown origin (stops are never checked).
    ("rec-rsc-5", &["rsc2"]),
    ("params-1", &["rsc_c001n01", "rsc_c001n03"]),
    ("params-3", &["rsc_c001n01", "rsc_c001n03"]),
    ("params-4", &["rsc_c001n01", "rsc_c001n03"]),
    // Entries with op-restart-digest and op-force-restart lists.
    ("1-a-then-bm-move-b", &["*"]),
    ("3-am-then-bm-both-migrate", &["*"]),
    ("6-migrate-group", &["*"]),
    ("allow-unhealthy-nodes", &["*"]),
    ("intervals", &["*"]),
    ("colocation-vs-stickiness", &["*"]),
    ("coloc-dependee-should-stay", &["*"]),
    ("clone-anon-failcount", &["*"]),
    ("remote-partial-migrate", &["*"]),
    // Entries with op-secure-digest (feature set 3.16 and later).
    ("restart-with-extra-op-params", &["Fencing"]),
];

#[test]
fn unchanged_resources_reproduce_recorded_digests() {
    let Some(dir) = cts_dir() else { return };
    let mut checked = 0;
    let mut restart_checked = 0;
    for (case, rscs) in UNCHANGED {
        let doc = load(&dir, case);
        for e in entries(&doc, false) {
            let Some(recorded_all) = e.op.attr("op-digest") else {
                continue;
            };
            if !rscs.contains(&"*") && !rscs.contains(&e.rsc.as_str()) {
                continue;
            }
            let op_id = e.op.attr("id").unwrap_or("?");
            let d = e
                .digests
                .as_ref()
                .unwrap_or_else(|| panic!("{case}: {} has no primitive", e.rsc));
            assert_eq!(
                d.all, recorded_all,
                "{case}: op-digest of {op_id} on {}",
                e.node
            );
            let recorded = RecordedDigests::from_op(e.op);
            if let Some(r) = recorded.restart {
                assert_eq!(
                    d.restart.as_deref(),
                    Some(r),
                    "{case}: restart digest of {op_id}"
                );
                restart_checked += 1;
            }
            assert_eq!(compare(&recorded, d), DigestMatch::Match, "{case}: {op_id}");
            checked += 1;
        }
    }
    eprintln!("{checked} op-digests reproduced ({restart_checked} with restart digests)");
    assert!(checked >= 80, "only {checked} entries checked");
    assert!(
        restart_checked >= 20,
        "only {restart_checked} restart digests checked"
    );
}

/// Pacemaker 3.16+ filters the secure set a second time, after
/// `CRM_meta_interval` is gone, so its recomputed secure digest of a
/// recurring operation never covers the timeout while the recorded one does.
fn secure_drops_timeout(op: &Element) -> bool {
    let recurring = op.attr("interval").is_some_and(|i| i != "0");
    let new = op
        .attr("crm_feature_set")
        .and_then(|v| {
            let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
            Some((it.next()?, it.next().unwrap_or(0)))
        })
        .is_some_and(|v| v >= (3, 16));
    recurring && new
}

#[test]
fn secure_digests_are_reproduced() {
    let Some(dir) = cts_dir() else { return };
    let mut checked = 0;
    let mut dropped = 0;
    for case in [
        "restart-with-extra-op-params",
        "intervals",
        "colocation-vs-stickiness",
        "cancel-behind-moving-remote",
        "remote-connection-shutdown",
        "bundle-promoted-colocation-1",
    ] {
        let doc = load(&dir, case);
        for e in entries(&doc, true) {
            let (Some(recorded), Some(d)) = (e.op.attr("op-secure-digest"), &e.digests) else {
                continue;
            };
            // Only entries whose configuration is unchanged.
            if e.rules || e.template || e.op.attr("op-digest") != Some(d.all.as_str()) {
                continue;
            }
            let op_id = e.op.attr("id").unwrap_or("?");
            if secure_drops_timeout(e.op) {
                assert_ne!(d.secure.as_deref(), Some(recorded), "{case}: {op_id}");
                dropped += 1;
                continue;
            }
            assert_eq!(
                d.secure.as_deref(),
                Some(recorded),
                "{case}: op-secure-digest of {op_id} on {} ({})",
                e.node,
                e.op.attr("crm_feature_set").unwrap_or("?")
            );
            checked += 1;
        }
    }
    eprintln!("{checked} op-secure-digests reproduced, {dropped} recurring 3.16+ ones differ");
    assert!(checked >= 100, "only {checked} secure digests checked");
    assert!(dropped >= 2, "only {dropped} recurring 3.16+ entries seen");
}

#[test]
fn changed_parameters_are_detected() {
    let Some(dir) = cts_dir() else { return };
    // (case, node, history entry, comparison, what the scheduler does)
    let expected: &[(&str, &str, &str, DigestMatch, ConfigChange)] = &[
        // ip changed, no reload support: restart.
        (
            "params-1",
            "c001n02",
            "DcIPaddr_start_0",
            DigestMatch::Mismatch,
            ConfigChange::Restart,
        ),
        // The monitor gained an op instance attribute: reschedule.
        (
            "params-1",
            "c001n08",
            "rsc_c001n08_monitor_5000",
            DigestMatch::Mismatch,
            ConfigChange::Reschedule,
        ),
        // Reloadable change, but the start is still pending: the reload
        // becomes a restart later on (schedule_reload's business).
        (
            "params-3",
            "c001n02",
            "DcIPaddr_start_0",
            DigestMatch::Mismatch,
            ConfigChange::Reload,
        ),
        // Only reloadable parameters changed (restart digest matches).
        (
            "params-4",
            "c001n02",
            "DcIPaddr_start_0",
            DigestMatch::Mismatch,
            ConfigChange::Reload,
        ),
        (
            "params-4",
            "c001n08",
            "rsc_c001n08_monitor_5000",
            DigestMatch::Mismatch,
            ConfigChange::Reschedule,
        ),
        // Recorded digest deliberately altered.
        (
            "params-2",
            "node2",
            "rsc2_start_0",
            DigestMatch::Mismatch,
            ConfigChange::Restart,
        ),
        (
            "params-6",
            "v03-a",
            "c5-x64-devel.vds-ok.com-vm_last_0",
            DigestMatch::Mismatch,
            ConfigChange::Reload,
        ),
        (
            "bug-5025-1",
            "fc16-builder",
            "A_last_0",
            DigestMatch::Mismatch,
            ConfigChange::Reload,
        ),
        // The start <op> has its own instance attributes: restart, not reload.
        (
            "restart-with-extra-op-params",
            "node2",
            "dummy1_last_0",
            DigestMatch::Restart,
            ConfigChange::Restart,
        ),
        (
            "bug-1572-1",
            "arc-tkincaidlx.wsicorp.com",
            "rsc_drbd_7788-1_start_0",
            DigestMatch::Mismatch,
            ConfigChange::Restart,
        ),
    ];
    for &(case, node, op_id, result, change) in expected {
        let doc = load(&dir, case);
        let all = entries(&doc, true);
        let e = find_entry(&all, node, op_id);
        let d = e.digests.as_ref().expect("primitive");
        let recorded = RecordedDigests::from_op(e.op);
        assert_ne!(Some(d.all.as_str()), recorded.all, "{case}: {op_id} digest");
        assert_eq!(compare(&recorded, d), result, "{case}: {op_id}");
        let interval =
            e.op.attr("interval")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        assert_eq!(
            config_change(&recorded, d, interval, true),
            change,
            "{case}: {op_id}"
        );
    }
}

#[test]
fn restart_with_extra_op_params_in_detail() {
    let Some(dir) = cts_dir() else { return };
    let doc = load(&dir, "restart-with-extra-op-params");
    let all = entries(&doc, true);
    let e = find_entry(&all, "node2", "dummy1_last_0");
    let d = e.digests.as_ref().expect("primitive");
    let recorded = RecordedDigests::from_op(e.op);
    // Only the op's own parameter (trace_ra) changed, and it is reloadable:
    // the restart digest still matches, yet a restart is due.
    assert_eq!(d.restart.as_deref(), recorded.restart);
    assert!(d.restart_if_changed);
    // The digest without the op parameter is what was recorded.
    let mut without = BTreeMap::new();
    without.insert("fake".to_string(), "foo".to_string());
    without.insert("passwd".to_string(), "whatever".to_string());
    assert_eq!(Some(digest_params(&without).as_str()), recorded.all);
}

/// Every op-digest of the corpus, fed the primitive's plain instance
/// attributes: a sanity figure and a guard against regressions.
#[test]
fn corpus_sanity_figure() {
    let Some(dir) = cts_dir() else { return };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("xml"))
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read");
        let Ok(doc) = Document::parse(&text) else {
            *count.entry("unparsable file").or_default() += 1;
            continue;
        };
        for e in entries(&doc, true) {
            let Some(recorded_all) = e.op.attr("op-digest") else {
                continue;
            };
            *count.entry("total").or_default() += 1;
            let Some(d) = &e.digests else {
                *count
                    .entry("no primitive (orphan or bundle-generated)")
                    .or_default() += 1;
                continue;
            };
            let recorded = RecordedDigests::from_op(e.op);
            let why = if d.all == recorded_all {
                "match"
            } else if recorded.secure.is_some() && d.secure.as_deref() == recorded.secure {
                "differs, secure digest matches (masked private values)"
            } else if e.template {
                "differs: template"
            } else if e.rules {
                "differs: rules in instance_attributes"
            } else if e.op.attr("interval").is_some_and(|i| i != "0")
                && legacy_recurring(&e).as_deref() == Some(recorded_all)
            {
                "differs: recorded without CRM_meta_timeout (old recurring op)"
            } else {
                "differs: other"
            };
            *count.entry(why).or_default() += 1;
        }
    }
    for (k, v) in &count {
        eprintln!("{v:6}  {k}");
    }
    assert!(
        count.get("match").copied().unwrap_or(0) >= 14_000,
        "{count:?}"
    );
}

/// The digest old controllers recorded for recurring ops: without timeout.
fn legacy_recurring(e: &Entry<'_>) -> Option<String> {
    let x = e.extracted.as_ref()?;
    let input = DigestInput {
        params: &x.params,
        op_params: &x.op_params,
        interval_ms: 0,
        timeout_ms: x.timeout_ms,
        fencing: false,
        cib_feature_set: None,
    };
    Some(compute_digests(&input, None, false).all)
}
