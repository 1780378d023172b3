//! Operation digests: has a resource's configuration changed since an
//! operation ran?
//!
//! Every `lrm_rsc_op` history entry in the CIB status section carries MD5
//! digests of the parameters the operation ran with. The scheduler recomputes
//! them from the current configuration and compares; a difference means the
//! resource must be restarted or reloaded, or a recurring operation
//! rescheduled. This module does that computation and comparison the way
//! Pacemaker does, so that digests recorded by Pacemaker nodes are reproduced
//! bit for bit.
//!
//! # The parameter set
//!
//! The full parameter set of an operation is built as a map in which the
//! *first* value given for a key wins:
//!
//! 1. the resource's instance attributes, evaluated for the node (the
//!    primitive's own sets first, then those of its parents; for a bundle's
//!    remote connection using the container hack, `addr` comes first of all),
//!    see [`DigestInput::params`];
//! 2. the instance attributes of the operation's own `<op>` definition (the
//!    `<op>` with the same name and interval; for `migrate_to` and
//!    `migrate_from`, a `migrate` `<op>` with interval 0 if no exact match),
//!    see [`DigestInput::op_params`]. A resource parameter of the same name
//!    takes precedence;
//! 3. the action's meta-attributes as `CRM_meta_<name>` (dashes turned into
//!    underscores). All of them are filtered away in step 4 except
//!    `CRM_meta_timeout`, so only `CRM_meta_interval` (the interval in
//!    milliseconds, present when non-zero) and `CRM_meta_timeout` (the
//!    normalised timeout in milliseconds) are modelled, see
//!    [`DigestInput::interval_ms`] and [`DigestInput::timeout_ms`].
//!
//! 4. Then it is filtered: every key starting with `CRM_meta_` is removed,
//!    as are `id`, `crm_feature_set`, `op-digest`, `on_node`, `on_node_uuid`
//!    and `pcmk_external_ip`; but when `CRM_meta_interval` parses as a
//!    non-zero unsigned integer, `CRM_meta_timeout` is kept (put back). So a
//!    recurring operation's digest covers its timeout, a one-shot's does not.
//!
//! # The three digests
//!
//! * **all** (`op-digest`): the filtered set above.
//! * **restart** (`op-restart-digest`): computed only when the history entry
//!   has an `op-restart-digest`. The filtered set restricted to the names in
//!   the entry's `op-force-restart` list (space-separated; the parameters the
//!   agent cannot reload), or the whole filtered set when that list is absent.
//! * **secure** (`op-secure-digest`): computed on request only (Pacemaker does
//!   so in simulations, whose input may have had private parameters masked).
//!   Names in the entry's `op-secure-params` list are removed (without a
//!   history entry: `passwd`, `password` and `user`). What they are removed
//!   from depends on the feature set the digest was recorded with (the
//!   entry's `crm_feature_set`, else the CIB's, else
//!   [`CURRENT_FEATURE_SET`]):
//!   - 3.16.0 and later: the filtered full set. The result is then filtered
//!     as in step 4 once more, and as `CRM_meta_interval` is gone by then,
//!     that drops `CRM_meta_timeout`: Pacemaker's recomputed secure digest
//!     never covers the timeout, although controllers record recurring
//!     operations' secure digests with it (so those never match; faithful);
//!   - before 3.16.0: the resource's parameters only (no op parameters, no
//!     meta-attributes), with, for fencing devices, the Pacemaker-defined
//!     fencing parameters removed too (`provides`, `stonith-timeout`,
//!     `pcmk_action_limit`, `pcmk_delay_base`, `pcmk_delay_max`,
//!     `pcmk_host_argument`, `pcmk_host_check`, `pcmk_host_list`,
//!     `pcmk_host_map` and `pcmk_<action>_action|timeout|retries`), then
//!     filtered as in step 4, and never with `CRM_meta_timeout`.
//!
//! # The serialised form
//!
//! A digest is the lowercase hex MD5 of one line of text: a space, then an
//! empty `parameters` element with one attribute per parameter sorted by name
//! in byte order, then a newline:
//!
//! ```text
//!  <parameters CRM_meta_timeout="20000" ip="127.0.0.20"/>\n
//! ```
//!
//! Attribute values escape `&`, `<`, `>` and `"` as `&amp;`, `&lt;`, `&gt;`
//! and `&quot;`, and ASCII control characters (including tab, newline and
//! DEL) as `&#xHH;` with two upper-case hex digits; everything else,
//! non-ASCII included, is copied as is. With no parameters the text is
//! ` <parameters/>\n`. See [`serialize_params`].
//!
//! # Comparison
//!
//! [`compare`] mirrors Pacemaker's categories ([`DigestMatch`]): a restart
//! digest that differs (when both are known) means *restart*; otherwise a
//! missing `op-digest` is *unknown*; a different one is *mismatch* (reloadable
//! change), or *restart* for a one-shot operation whose `<op>` has its own
//! instance attributes; an equal one is a *match*. [`config_change`] turns
//! the result into what `pcmk__check_action_config` schedules, and
//! [`only_private_changed`] is the simulation escape hatch that ignores
//! changes confined to masked (private) parameters.
//!
//! Pacemaker computes the digests of one operation key (resource, action,
//! interval) once per node and reuses them for every history entry with that
//! key on that node, so the `op-force-restart` / `op-secure-params` lists of
//! the first entry examined are the ones used. Callers wanting identical
//! results should cache the same way.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use md5::{Digest, Md5};
use vigil_cib::xml::Element;

/// The CRM feature set of the Pacemaker version whose behaviour is mirrored;
/// used when neither the history entry nor the CIB states one.
pub const CURRENT_FEATURE_SET: &str = "3.20.5";

/// Feature set from which secure digests start from the full parameter set.
const SECURE_FROM_ALL_SINCE: &str = "3.16.0";

/// Secure parameters assumed when there is no history entry to name them.
const DEFAULT_SECURE_PARAMS: &str = " passwd password user ";

const META_INTERVAL: &str = "CRM_meta_interval";
const META_TIMEOUT: &str = "CRM_meta_timeout";

/// What the digests of one operation are computed from.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The resource's instance attributes as evaluated for the node (rules
    /// applied, parents' sets merged after the primitive's own).
    pub params: &'a BTreeMap<String, String>,
    /// The instance attributes of the operation's `<op>` definition, as
    /// evaluated for the node; empty when there is no such `<op>` or it has
    /// none.
    pub op_params: &'a BTreeMap<String, String>,
    /// The operation's interval in milliseconds (0 for one-shot operations
    /// and probes).
    pub interval_ms: u32,
    /// The operation's timeout in milliseconds, normalised as Pacemaker does
    /// (`<op timeout>`, else the `<op>`'s meta-attributes, else a probe's
    /// most frequent monitor's, else `op_defaults`, else 20000; fencing
    /// start/probe: `pcmk_monitor_timeout` first). Only enters the digests
    /// of recurring operations.
    pub timeout_ms: u32,
    /// Whether the resource is a fencing device (class `stonith`); only
    /// matters for secure digests recorded before feature set 3.16.0.
    pub fencing: bool,
    /// The CIB's `crm_feature_set`, the fallback when the history entry
    /// names none.
    pub cib_feature_set: Option<&'a str>,
}

/// The digest-related attributes of one `lrm_rsc_op` history entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordedDigests<'a> {
    /// `op-digest`: all parameters.
    pub all: Option<&'a str>,
    /// `op-restart-digest`: non-reloadable parameters; present only when the
    /// agent supports reload.
    pub restart: Option<&'a str>,
    /// `op-secure-digest`: non-private parameters.
    pub secure: Option<&'a str>,
    /// `op-force-restart`: space-separated non-reloadable parameter names.
    pub force_restart: Option<&'a str>,
    /// `op-secure-params`: space-separated private parameter names.
    pub secure_params: Option<&'a str>,
    /// `crm_feature_set` of the node that recorded the entry.
    pub feature_set: Option<&'a str>,
}

impl<'a> RecordedDigests<'a> {
    /// Reads the digest attributes of an `lrm_rsc_op` element.
    pub fn from_op(op: &'a Element) -> Self {
        RecordedDigests {
            all: op.attr("op-digest"),
            restart: op.attr("op-restart-digest"),
            secure: op.attr("op-secure-digest"),
            force_restart: op.attr("op-force-restart"),
            secure_params: op.attr("op-secure-params"),
            feature_set: op.attr("crm_feature_set"),
        }
    }
}

/// Digests computed from the current configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Digest of all parameters (compare with `op-digest`).
    pub all: String,
    /// Digest of the non-reloadable parameters; `None` when the history entry
    /// has no `op-restart-digest` (or there is no entry).
    pub restart: Option<String>,
    /// Digest of the non-private parameters; `None` unless requested.
    pub secure: Option<String>,
    /// A one-shot operation whose `<op>` has its own instance attributes:
    /// any change of the full digest then calls for a restart, never a
    /// reload, so that the new history entry gets correct digests.
    pub restart_if_changed: bool,
}

/// How the recorded digests compare with the computed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestMatch {
    /// The history entry has no `op-digest` to compare with.
    Unknown,
    /// Nothing changed.
    Match,
    /// Some parameter changed, possibly reloadable ones only.
    Mismatch,
    /// A parameter that requires a restart changed.
    Restart,
}

/// What a configuration change of a history entry's operation calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigChange {
    /// The configuration is unchanged (or the change is to be ignored).
    Unchanged,
    /// Make the operation [`digest_task`] required on the node: for `start`
    /// this is a restart "due to resource definition change".
    Restart,
    /// Reload the resource with `reload-agent` (the agent supports it).
    Reload,
    /// Cancel and re-create the recurring operation with the new parameters.
    Reschedule,
}

/// Computes an operation's digests.
///
/// `recorded` is the history entry the digests are for (its restart and
/// secure lists and feature set are used); `None` when there is none, as for
/// unfencing digests. `calc_secure` asks for the secure digest, which
/// Pacemaker computes only in simulations (`crm_simulate` always does).
pub fn compute_digests(
    input: &DigestInput<'_>,
    recorded: Option<&RecordedDigests<'_>>,
    calc_secure: bool,
) -> Digests {
    let feature_set = recorded
        .and_then(|r| r.feature_set)
        .or(input.cib_feature_set)
        .unwrap_or(CURRENT_FEATURE_SET);

    let mut all = BTreeMap::new();
    add_missing(&mut all, input.params);
    add_missing(&mut all, input.op_params);
    if input.interval_ms > 0 {
        all.entry(META_INTERVAL.to_string())
            .or_insert_with(|| input.interval_ms.to_string());
    }
    all.entry(META_TIMEOUT.to_string())
        .or_insert_with(|| input.timeout_ms.to_string());
    filter_for_digest(&mut all);

    let secure = calc_secure.then(|| {
        let list = match recorded {
            Some(r) => r.secure_params,
            None => Some(DEFAULT_SECURE_PARAMS),
        };
        let old = compare_versions(feature_set, SECURE_FROM_ALL_SINCE).is_lt();
        let mut secure = if old {
            input.params.clone()
        } else {
            all.clone()
        };
        if let Some(list) = list {
            let names: Vec<&str> = list.split(' ').collect();
            secure.retain(|k, _| !names.contains(&k.as_str()));
        }
        if old && input.fencing {
            secure.retain(|k, _| !is_fencing_param(k));
        }
        filter_for_digest(&mut secure);
        if old {
            secure.remove(META_TIMEOUT);
        }
        digest_params(&secure)
    });

    let restart = recorded
        .filter(|r| r.restart.is_some())
        .map(|r| match r.force_restart {
            Some(list) => {
                let names: Vec<&str> = list.split(' ').collect();
                let kept: BTreeMap<String, String> = all
                    .iter()
                    .filter(|(k, _)| names.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                digest_params(&kept)
            }
            None => digest_params(&all),
        });

    Digests {
        all: digest_params(&all),
        restart,
        secure,
        restart_if_changed: input.interval_ms == 0 && !input.op_params.is_empty(),
    }
}

/// Compares recorded digests with computed ones (`rsc_action_digest_cmp`).
pub fn compare(recorded: &RecordedDigests<'_>, computed: &Digests) -> DigestMatch {
    if let (Some(was), Some(now)) = (recorded.restart, computed.restart.as_deref())
        && was != now
    {
        return DigestMatch::Restart;
    }
    match recorded.all {
        None => DigestMatch::Unknown,
        Some(was) if was != computed.all => {
            if computed.restart_if_changed {
                DigestMatch::Restart
            } else {
                DigestMatch::Mismatch
            }
        }
        Some(_) => DigestMatch::Match,
    }
}

/// Whether a change found by [`compare`] is confined to private parameters:
/// true when the result is not a match but the recorded secure digest equals
/// the computed one. Pacemaker ignores such changes in simulations, whose
/// input may have had private values masked.
pub fn only_private_changed(
    recorded: &RecordedDigests<'_>,
    computed: &Digests,
    result: DigestMatch,
) -> bool {
    result != DigestMatch::Match
        && matches!((recorded.secure, computed.secure.as_deref()), (Some(a), Some(b)) if a == b)
}

/// What a comparison result calls for (`pcmk__check_action_config`), for a
/// history entry with interval `interval_ms`. `sanitized` is set in
/// simulations, where changes confined to private parameters are ignored.
///
/// Pacemaker checks only entries since the last start on nodes where the
/// resource is active, and only recurring operations and `start`, `monitor`,
/// `promote` and `migrate_from`; a recurring operation no longer configured
/// is cancelled before any digest is looked at.
pub fn config_change(
    recorded: &RecordedDigests<'_>,
    computed: &Digests,
    interval_ms: u32,
    sanitized: bool,
) -> ConfigChange {
    let result = compare(recorded, computed);
    if sanitized && only_private_changed(recorded, computed, result) {
        return ConfigChange::Unchanged;
    }
    match result {
        DigestMatch::Match => ConfigChange::Unchanged,
        DigestMatch::Restart => ConfigChange::Restart,
        DigestMatch::Unknown | DigestMatch::Mismatch => {
            if interval_ms > 0 {
                ConfigChange::Reschedule
            } else if recorded.restart.is_some() {
                ConfigChange::Reload
            } else {
                ConfigChange::Restart
            }
        }
    }
}

/// The action a [`ConfigChange::Restart`] makes required: one-shot
/// `monitor` (probe), `migrate_from` and `promote` stand for `start`.
pub fn digest_task(task: &str, interval_ms: u32) -> &str {
    if interval_ms == 0 && matches!(task, "monitor" | "migrate_from" | "promote") {
        "start"
    } else {
        task
    }
}

/// The unfencing summary stored in the node attributes `#digests-all` and
/// `#digests-secure`: `<device id>:<agent>:<digest>`, one per device,
/// comma-separated. The digests are those of [`compute_digests`] for the
/// device with no history entry, interval 0 and no op parameters.
pub fn unfencing_summary(rsc_id: &str, agent: &str, digest: &str) -> String {
    format!("{rsc_id}:{agent}:{digest}")
}

/// The exact text that is hashed for a parameter set (see the module doc).
pub fn serialize_params(params: &BTreeMap<String, String>) -> String {
    let mut out = String::from(" <parameters");
    // BTreeMap<String, _> iterates in byte order, as strcmp sorts.
    for (name, value) in params {
        out.push(' ');
        out.push_str(name);
        out.push_str("=\"");
        escape_attr(value, &mut out);
        out.push('"');
    }
    out.push_str("/>\n");
    out
}

/// The lowercase hex MD5 of [`serialize_params`].
pub fn digest_params(params: &BTreeMap<String, String>) -> String {
    md5_hex(serialize_params(params).as_bytes())
}

fn md5_hex(data: &[u8]) -> String {
    let sum = Md5::digest(data);
    let mut hex = String::with_capacity(32);
    for byte in sum.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn escape_attr(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "&#x{:02X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn add_missing(into: &mut BTreeMap<String, String>, from: &BTreeMap<String, String>) {
    for (k, v) in from {
        into.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// Removes what never enters a digest, keeping a recurring op's timeout.
fn filter_for_digest(params: &mut BTreeMap<String, String>) {
    let recurring = params
        .get(META_INTERVAL)
        .and_then(|v| parse_leading_int(v))
        .is_some_and(|v| v > 0 && v <= i64::from(u32::MAX));
    let timeout = if recurring {
        params.get(META_TIMEOUT).cloned()
    } else {
        None
    };
    params.retain(|k, _| {
        !k.starts_with("CRM_meta_")
            && !matches!(
                k.as_str(),
                "id" | "crm_feature_set"
                    | "op-digest"
                    | "on_node"
                    | "on_node_uuid"
                    | "pcmk_external_ip"
            )
    });
    if let Some(t) = timeout {
        params.insert(META_TIMEOUT.to_string(), t);
    }
}

/// An integer at the start of `s` after white space, as `strtoll` reads it;
/// `None` when there are no digits.
fn parse_leading_int(s: &str) -> Option<i64> {
    let s = s.trim_start();
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let value = rest[..digits].parse::<i64>().unwrap_or(i64::MAX);
    Some(if neg { value.saturating_neg() } else { value })
}

/// The Pacemaker-defined parameters of fencing devices.
fn is_fencing_param(name: &str) -> bool {
    if matches!(name, "provides" | "stonith-timeout") {
        return true;
    }
    let Some(rest) = name.strip_prefix("pcmk_") else {
        return false;
    };
    if matches!(
        rest,
        "action_limit"
            | "delay_base"
            | "delay_max"
            | "host_argument"
            | "host_check"
            | "host_list"
            | "host_map"
    ) {
        return true;
    }
    // pcmk_<action>_<what>: the suffix from the first '_' after "pcmk_".
    rest.find('_')
        .is_some_and(|i| matches!(&rest[i..], "_action" | "_timeout" | "_retries"))
}

/// Compares dotted version numbers as Pacemaker does: leading white space is
/// skipped, only the leading run of dot-separated digits counts, and missing
/// components are zero.
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(v: &str) -> Vec<u64> {
        let v = v.trim_start();
        let mut out = Vec::new();
        let mut rest = v;
        loop {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                break;
            }
            out.push(rest[..n].parse().unwrap_or(u64::MAX));
            rest = &rest[n..];
            match rest.strip_prefix('.') {
                Some(r) if r.starts_with(|c: char| c.is_ascii_digit()) => rest = r,
                _ => break,
            }
        }
        out
    }
    if a == b {
        return std::cmp::Ordering::Equal;
    }
    let (pa, pb) = (parts(a), parts(b));
    let len = pa.len().max(pb.len());
    for i in 0..len {
        let x = pa.get(i).copied().unwrap_or(0);
        let y = pb.get(i).copied().unwrap_or(0);
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn input<'a>(
        params: &'a BTreeMap<String, String>,
        op_params: &'a BTreeMap<String, String>,
        interval_ms: u32,
    ) -> DigestInput<'a> {
        DigestInput {
            params,
            op_params,
            interval_ms,
            timeout_ms: 20000,
            fencing: false,
            cib_feature_set: None,
        }
    }

    #[test]
    fn empty_parameter_set() {
        let empty = BTreeMap::new();
        assert_eq!(serialize_params(&empty), " <parameters/>\n");
        // Recorded for parameterless resources throughout the corpus.
        assert_eq!(digest_params(&empty), "f2317cad3d54cec5d7d7aa7d0bf35cf8");
        let d = compute_digests(&input(&empty, &empty, 0), None, false);
        assert_eq!(d.all, "f2317cad3d54cec5d7d7aa7d0bf35cf8");
    }

    #[test]
    fn serialisation_sorts_and_escapes() {
        let p = map(&[("b", "x<y>&\"z\""), ("a", "tab\there\u{7f}"), ("B", "é")]);
        assert_eq!(
            serialize_params(&p),
            " <parameters B=\"é\" a=\"tab&#x09;here&#x7F;\" b=\"x&lt;y&gt;&amp;&quot;z&quot;\"/>\n"
        );
    }

    #[test]
    fn recurring_digest_covers_timeout_only() {
        let p = map(&[("ip", "127.0.0.20")]);
        let none = BTreeMap::new();
        let oneshot = compute_digests(&input(&p, &none, 0), None, false);
        assert_eq!(oneshot.all, digest_params(&p));
        let recurring = compute_digests(&input(&p, &none, 5000), None, false);
        let mut expect = p.clone();
        expect.insert("CRM_meta_timeout".into(), "20000".into());
        assert_eq!(recurring.all, digest_params(&expect));
    }

    #[test]
    fn filtered_names_and_precedence() {
        let p = map(&[
            ("ip", "1"),
            ("id", "x"),
            ("on_node", "n"),
            ("CRM_meta_foo", "y"),
            ("pcmk_external_ip", "z"),
        ]);
        let op = map(&[("ip", "2"), ("extra", "e")]);
        let d = compute_digests(&input(&p, &op, 0), None, false);
        assert_eq!(d.all, digest_params(&map(&[("extra", "e"), ("ip", "1")])));
        assert!(d.restart_if_changed);
    }

    #[test]
    fn restart_and_secure_lists() {
        let p = map(&[("state", "/tmp/x"), ("fake", "1"), ("passwd", "s")]);
        let none = BTreeMap::new();
        let rec = RecordedDigests {
            all: Some("x"),
            restart: Some("y"),
            force_restart: Some(" state "),
            secure_params: Some(" passwd "),
            feature_set: Some("3.19.0"),
            ..Default::default()
        };
        let d = compute_digests(&input(&p, &none, 0), Some(&rec), true);
        assert_eq!(
            d.restart.as_deref(),
            Some(digest_params(&map(&[("state", "/tmp/x")])).as_str())
        );
        assert_eq!(
            d.secure.as_deref(),
            Some(digest_params(&map(&[("fake", "1"), ("state", "/tmp/x")])).as_str())
        );
        // No restart digest recorded: none computed.
        let rec2 = RecordedDigests {
            restart: None,
            ..rec
        };
        assert_eq!(
            compute_digests(&input(&p, &none, 0), Some(&rec2), false).restart,
            None
        );
        // Without a history entry the default private names apply.
        let d = compute_digests(&input(&p, &none, 0), None, true);
        assert_eq!(
            d.secure.as_deref(),
            Some(digest_params(&map(&[("fake", "1"), ("state", "/tmp/x")])).as_str())
        );
    }

    #[test]
    fn old_secure_digest_drops_fencing_params_and_timeout() {
        let p = map(&[
            ("pcmk_host_list", "a"),
            ("pcmk_reboot_timeout", "9"),
            ("ipaddr", "h"),
        ]);
        let op = map(&[("extra", "1")]);
        let mut i = input(&p, &op, 60000);
        i.fencing = true;
        let rec = RecordedDigests {
            feature_set: Some("3.0.14"),
            secure_params: Some(" passwd "),
            ..Default::default()
        };
        let d = compute_digests(&i, Some(&rec), true);
        assert_eq!(
            d.secure.as_deref(),
            Some(digest_params(&map(&[("ipaddr", "h")])).as_str())
        );
    }

    #[test]
    fn comparison_categories() {
        let d = Digests {
            all: "a".into(),
            restart: Some("r".into()),
            secure: Some("s".into()),
            restart_if_changed: false,
        };
        let rec = RecordedDigests {
            all: Some("a"),
            restart: Some("r"),
            secure: Some("s"),
            ..Default::default()
        };
        assert_eq!(compare(&rec, &d), DigestMatch::Match);
        let changed = RecordedDigests {
            all: Some("b"),
            ..rec
        };
        assert_eq!(compare(&changed, &d), DigestMatch::Mismatch);
        assert_eq!(config_change(&changed, &d, 0, false), ConfigChange::Reload);
        assert_eq!(
            config_change(&changed, &d, 10000, false),
            ConfigChange::Reschedule
        );
        // The secure digest still matches: only private parameters changed.
        assert!(only_private_changed(&changed, &d, DigestMatch::Mismatch));
        assert_eq!(
            config_change(&changed, &d, 0, true),
            ConfigChange::Unchanged
        );
        let restart = RecordedDigests {
            restart: Some("q"),
            ..rec
        };
        assert_eq!(compare(&restart, &d), DigestMatch::Restart);
        let unknown = RecordedDigests { all: None, ..rec };
        assert_eq!(compare(&unknown, &d), DigestMatch::Unknown);
        let no_reload = RecordedDigests {
            restart: None,
            ..changed
        };
        assert_eq!(
            config_change(&no_reload, &d, 0, false),
            ConfigChange::Restart
        );
        let forced = Digests {
            restart_if_changed: true,
            ..d.clone()
        };
        assert_eq!(compare(&changed, &forced), DigestMatch::Restart);
    }

    #[test]
    fn helpers() {
        assert!(is_fencing_param("pcmk_host_map"));
        assert!(is_fencing_param("pcmk_off_retries"));
        assert!(is_fencing_param("provides"));
        assert!(!is_fencing_param("pcmk_foo"));
        assert!(is_fencing_param("pcmk__action"));
        assert!(!is_fencing_param("pcmk_a_b_action"));
        assert!(!is_fencing_param("ipaddr"));
        assert!(compare_versions("3.15.9", "3.16.0").is_lt());
        assert!(compare_versions("3.16", "3.16.0").is_eq());
        assert!(compare_versions("2.0", "3.16.0").is_lt());
        assert!(compare_versions(" 3.20.5-x", "3.16.0").is_gt());
        assert!(compare_versions("garbage", "3.16.0").is_lt());
        assert_eq!(digest_task("monitor", 0), "start");
        assert_eq!(digest_task("monitor", 1000), "monitor");
        assert_eq!(unfencing_summary("f", "fence_x", "d"), "f:fence_x:d");
        assert_eq!(parse_leading_int(" 42abc"), Some(42));
        assert_eq!(parse_leading_int("x"), None);
    }
}
