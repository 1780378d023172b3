//! Typed, read-only views of a CIB for the scheduler and the front-ends.
//!
//! [`Cib::from_document`] walks a parsed [`Document`] once and returns a
//! [`Cib`] whose parts borrow from the tree: the version and the attributes
//! of `<cib>`, the cluster options (raw `cluster_property_set`s plus a typed
//! [`ClusterOptions`] with Pacemaker's defaults), `rsc_defaults` and
//! `op_defaults`, the nodes, the resources as a tree ([`Resource`]), the
//! templates, the tags, the constraints ([`Constraint`]) and the status
//! section ([`Status`]: node states, transient attributes with decoded fail
//! counts, operation history, tickets).
//!
//! Nothing is guessed: a part that cannot be read is reported as a
//! [`Diagnostic`] and either left out (an element Pacemaker would ignore, such
//! as a node without a name) or kept with the value Pacemaker goes on with
//! (such as the default of a cluster option whose value is invalid), as each
//! field's documentation says. Only a document that is not a CIB at all (no
//! `<cib>` root, no `<configuration>`) is refused. The diagnostics of a built
//! model are the full validation of [`crate::validate`]: the problems met
//! while reading plus the cross-reference checks (duplicate ids, dangling
//! references).
//!
//! Name/value sets are kept raw ([`NvSet`]); [`Cib::evaluate_sets`] applies
//! them for a [`RuleContext`] exactly as Pacemaker does (see
//! [`crate::rules::unpack_nvpair_sets_into`]). Everything is in document
//! order.

use std::collections::BTreeMap;
use std::fmt;

use vigil_types::{OpStatus, Role, Score};

use crate::rules::{IdIndex, RuleContext, RuleErrorKind, RuleLog, UnpackOptions};
use crate::time::{self, DateTime, ScanLl, scan_ll};
use crate::validate::{self, Diagnostic};
use crate::xml::{Document, Element};

// ---------------------------------------------------------------------------
// Small value parsers shared with validation.

/// Reads a boolean as Pacemaker's `pcmk__parse_bool()`: `true`, `on`, `yes`,
/// `y`, `1` or `false`, `off`, `no`, `n`, `0`, in any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "on", "yes", "y", "1"];
    const FALSE: [&str; 5] = ["false", "off", "no", "n", "0"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// Reads a score as Pacemaker's `pcmk_parse_score()`: `INFINITY`,
/// `+INFINITY` or `-INFINITY` (exactly so spelled), the health colours `red`,
/// `yellow`, `green` (any case; here with their default values -INFINITY, 0,
/// 0), or a `strtoll` integer prefix clipped to ±INFINITY. `None` when the
/// text has no digits.
pub fn parse_score(s: &str) -> Option<Score> {
    match s {
        "INFINITY" | "+INFINITY" => return Some(Score::INFINITY),
        "-INFINITY" => return Some(Score::NEG_INFINITY),
        _ => {}
    }
    if s.eq_ignore_ascii_case("red") {
        return Some(Score::NEG_INFINITY);
    }
    if s.eq_ignore_ascii_case("yellow") || s.eq_ignore_ascii_case("green") {
        return Some(Score::ZERO);
    }
    match scan_ll(s) {
        ScanLl::Ok(v, _) | ScanLl::Range(v, _) => Some(Score::new(v)),
        ScanLl::NoDigits => None,
    }
}

/// Reads a role as constraints and operations name them: `Stopped`,
/// `Started`, `Unpromoted`, `Promoted`, or the legacy `Slave` and `Master`,
/// in any case. `Unknown` is not a role one can configure.
pub fn parse_role(s: &str) -> Option<Role> {
    Role::parse(s).filter(|r| *r != Role::Unknown)
}

fn scan_u64(s: &str) -> Option<u64> {
    match scan_ll(s) {
        ScanLl::Ok(v, _) if v >= 0 => Some(v as u64),
        _ => None,
    }
}

fn scan_i64(s: &str) -> Option<i64> {
    match scan_ll(s) {
        ScanLl::Ok(v, _) => Some(v),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// The document.

/// A CIB version: `(admin_epoch, epoch, num_updates)`, compared in that
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CibVersion {
    pub admin_epoch: u64,
    pub epoch: u64,
    pub num_updates: u64,
}

/// A problem with one version attribute of `<cib>`, found by
/// [`CibVersion::read`]; the field counts as 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionProblem<'a> {
    /// The attribute (`admin_epoch`, `epoch` or `num_updates`) is absent.
    Missing(&'static str),
    /// The attribute's value is not a non-negative integer.
    Invalid(&'static str, &'a str),
}

impl CibVersion {
    /// The names of the version attributes, most significant first.
    pub const FIELDS: [&'static str; 3] = ["admin_epoch", "epoch", "num_updates"];

    /// Reads the version from the attributes of `el` (the `<cib>` element,
    /// or a patchset's `<source>`/`<target>`). A field that is missing or not
    /// a non-negative integer counts as 0 and is listed, in field order.
    pub fn read(el: &Element) -> (CibVersion, Vec<VersionProblem<'_>>) {
        let mut version = CibVersion::default();
        let mut problems = Vec::new();
        for (attr, slot) in Self::FIELDS.into_iter().zip([
            &mut version.admin_epoch,
            &mut version.epoch,
            &mut version.num_updates,
        ]) {
            match el.attr(attr) {
                None => problems.push(VersionProblem::Missing(attr)),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) => *slot = n,
                    Err(_) => problems.push(VersionProblem::Invalid(attr, v)),
                },
            }
        }
        (version, problems)
    }
}

/// `admin_epoch.epoch.num_updates`, as Pacemaker prints versions.
impl fmt::Display for CibVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.admin_epoch, self.epoch, self.num_updates
        )
    }
}

/// A typed view of a whole CIB. Build it with [`Cib::from_document`].
#[derive(Debug)]
pub struct Cib<'a> {
    /// The `<cib>` element.
    pub root: &'a Element,
    /// `<configuration>`.
    pub configuration: &'a Element,
    /// The version; an attribute that is missing or invalid counts as 0 (and
    /// is reported).
    pub version: CibVersion,
    /// `validate-with`, e.g. `pacemaker-3.9`.
    pub validate_with: Option<&'a str>,
    pub crm_feature_set: Option<&'a str>,
    /// `have-quorum`; false when absent or invalid (invalid is reported).
    pub have_quorum: bool,
    /// `dc-uuid`: the node id of the DC.
    pub dc_uuid: Option<&'a str>,
    /// `execution-date` in seconds since the epoch: the time the scheduler
    /// takes as "now" for this input, if recorded.
    pub execution_date: Option<i64>,
    /// `crm_config`'s `cluster_property_set`s, raw.
    pub crm_config: Vec<NvSet<'a>>,
    /// The cluster options, evaluated at `execution_date` (rules that need a
    /// time fail without one; see [`Cib::cluster_options_at`]).
    pub options: ClusterOptions,
    /// `rsc_defaults`' `meta_attributes`, raw.
    pub rsc_defaults: Vec<NvSet<'a>>,
    /// `op_defaults`' `meta_attributes`, raw.
    pub op_defaults: Vec<NvSet<'a>>,
    /// Configured nodes (`<nodes>`), without those Pacemaker ignores.
    pub nodes: Vec<Node<'a>>,
    /// Top-level resources, each a tree.
    pub resources: Vec<Resource<'a>>,
    /// Resource templates (`<template>`).
    pub templates: Vec<Primitive<'a>>,
    pub tags: Vec<Tag<'a>>,
    /// Every constraint, in document order.
    pub constraints: Vec<Constraint<'a>>,
    pub status: Status<'a>,
    /// Everything wrong or doubtful, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    ids: IdIndex<'a>,
}

/// What a resource is built from: `class`, `provider`, `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent<'a> {
    pub class: &'a str,
    pub provider: Option<&'a str>,
    pub agent_type: &'a str,
}

impl fmt::Display for Agent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.provider {
            Some(p) => write!(f, "{}:{}:{}", self.class, p, self.agent_type),
            None => write!(f, "{}:{}", self.class, self.agent_type),
        }
    }
}

// ---------------------------------------------------------------------------
// Name/value sets.

/// One `nvpair` (after following an `id-ref`).
#[derive(Debug, Clone, Copy)]
pub struct NvPair<'a> {
    /// The `nvpair` element as written (it may be an `id-ref`).
    pub element: &'a Element,
    pub id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub value: Option<&'a str>,
}

/// One name/value block (`instance_attributes`, `meta_attributes`,
/// `utilization`, `cluster_property_set`), after following an `id-ref`. An
/// `id-ref` that resolves to nothing (or to another kind of element) is left
/// out; validation reports it.
#[derive(Debug, Clone)]
pub struct NvSet<'a> {
    /// The block as written.
    pub element: &'a Element,
    /// The block its `id-ref` names, or `element` itself.
    pub target: &'a Element,
    pub id: Option<&'a str>,
    /// The block's `score` (its priority among blocks), raw.
    pub score: Option<&'a str>,
    /// The block's `rule`, if any: the block applies only when it passes.
    pub rule: Option<&'a Element>,
    pub pairs: Vec<NvPair<'a>>,
}

impl<'a> NvSet<'a> {
    /// The values of this block alone, ignoring its rule; the first value of
    /// a name wins.
    pub fn values(&self) -> BTreeMap<&'a str, &'a str> {
        let mut out = BTreeMap::new();
        for p in &self.pairs {
            if let (Some(n), Some(v)) = (p.name, p.value) {
                out.entry(n).or_insert(v);
            }
        }
        out
    }
}

/// Every pair of `sets`, ignoring rules and scores, first value wins:
/// a quick look for front-ends. The scheduler uses [`Cib::evaluate_sets`].
pub fn unconditional_values<'a>(sets: &[NvSet<'a>]) -> BTreeMap<&'a str, &'a str> {
    let mut out = BTreeMap::new();
    for s in sets {
        for (n, v) in s.values() {
            out.entry(n).or_insert(v);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Cluster options.

/// What to do without quorum (`no-quorum-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NoQuorumPolicy {
    #[default]
    Stop,
    Freeze,
    Ignore,
    Demote,
    /// `fence`, or its legacy spelling `suicide`.
    Fence,
}

/// `fencing-action` (`stonith-action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FencingAction {
    #[default]
    Reboot,
    Off,
}

/// `fencing-reaction` (`fence-reaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FencingReaction {
    #[default]
    Stop,
    Panic,
}

/// `node-health-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HealthStrategy {
    #[default]
    None,
    MigrateOnRed,
    OnlyGreen,
    Progressive,
    Custom,
}

/// `placement-strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlacementStrategy {
    #[default]
    Default,
    Utilization,
    Minimal,
    Balanced,
}

/// How an option's value is checked, as in Pacemaker's option table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OptKind {
    /// Free text, never invalid.
    Text,
    Bool,
    /// An interval specification (`pcmk__valid_interval_spec`).
    Duration,
    /// `INFINITY`, `-INFINITY` or an integer (`pcmk__valid_int`).
    Int,
    /// `INFINITY` or an integer above 0 (`pcmk__valid_positive_int`).
    PositiveInt,
    /// A number followed by `%` (`pcmk__valid_percentage`).
    Percentage,
    /// One of the listed words, in any case.
    SelectCi(&'static [&'static str]),
    /// One of the listed words, exactly.
    Select(&'static [&'static str]),
}

/// One cluster option: its name, legacy name, type and default.
#[derive(Debug, Clone, Copy)]
struct OptDef {
    name: &'static str,
    alt: Option<&'static str>,
    kind: OptKind,
    default: Option<&'static str>,
}

const fn opt(name: &'static str, kind: OptKind, default: Option<&'static str>) -> OptDef {
    OptDef {
        name,
        alt: None,
        kind,
        default,
    }
}

const fn opt_alt(
    name: &'static str,
    alt: &'static str,
    kind: OptKind,
    default: Option<&'static str>,
) -> OptDef {
    OptDef {
        name,
        alt: Some(alt),
        kind,
        default,
    }
}

const NO_QUORUM: &[&str] = &["stop", "freeze", "ignore", "demote", "fence", "suicide"];
const HEALTH: &[&str] = &[
    "none",
    "migrate-on-red",
    "only-green",
    "progressive",
    "custom",
];
const PLACEMENT: &[&str] = &["default", "utilization", "minimal", "balanced"];

/// Pacemaker's cluster options (Pacemaker Explained, "Cluster Options"),
/// with their legacy names, types and defaults.
const OPTIONS: &[OptDef] = &[
    opt("dc-version", OptKind::Text, None),
    opt("cluster-infrastructure", OptKind::Text, None),
    opt("cluster-name", OptKind::Text, None),
    opt("dc-deadtime", OptKind::Duration, Some("20s")),
    opt("cluster-recheck-interval", OptKind::Duration, Some("15min")),
    opt("election-timeout", OptKind::Duration, Some("2min")),
    opt("shutdown-escalation", OptKind::Duration, Some("20min")),
    opt("join-integration-timeout", OptKind::Duration, Some("3min")),
    opt(
        "join-finalization-timeout",
        OptKind::Duration,
        Some("30min"),
    ),
    opt("transition-delay", OptKind::Duration, Some("0s")),
    opt(
        "no-quorum-policy",
        OptKind::SelectCi(NO_QUORUM),
        Some("stop"),
    ),
    opt("shutdown-lock", OptKind::Bool, Some("false")),
    opt("shutdown-lock-limit", OptKind::Duration, Some("0")),
    opt("enable-acl", OptKind::Bool, Some("false")),
    opt("symmetric-cluster", OptKind::Bool, Some("true")),
    opt("maintenance-mode", OptKind::Bool, Some("false")),
    opt("start-failure-is-fatal", OptKind::Bool, Some("true")),
    opt("enable-startup-probes", OptKind::Bool, Some("true")),
    opt("fence-remote-without-quorum", OptKind::Bool, Some("false")),
    opt_alt(
        "fencing-enabled",
        "stonith-enabled",
        OptKind::Bool,
        Some("true"),
    ),
    opt_alt(
        "fencing-action",
        "stonith-action",
        OptKind::Select(&["reboot", "off"]),
        Some("reboot"),
    ),
    opt_alt(
        "fencing-reaction",
        "fence-reaction",
        OptKind::Text,
        Some("stop"),
    ),
    opt_alt(
        "fencing-timeout",
        "stonith-timeout",
        OptKind::Duration,
        Some("60s"),
    ),
    opt("have-watchdog", OptKind::Bool, Some("false")),
    opt_alt(
        "fencing-watchdog-timeout",
        "stonith-watchdog-timeout",
        OptKind::Text,
        Some("0"),
    ),
    opt_alt(
        "fencing-max-attempts",
        "stonith-max-attempts",
        OptKind::PositiveInt,
        Some("10"),
    ),
    opt("concurrent-fencing", OptKind::Bool, Some("true")),
    opt("startup-fencing", OptKind::Bool, Some("true")),
    opt("priority-fencing-delay", OptKind::Duration, Some("0")),
    opt("node-pending-timeout", OptKind::Duration, Some("0")),
    opt("cluster-delay", OptKind::Duration, Some("60s")),
    opt("load-threshold", OptKind::Percentage, Some("80%")),
    opt("node-action-limit", OptKind::Int, Some("0")),
    opt("batch-limit", OptKind::Int, Some("0")),
    opt("migration-limit", OptKind::Int, Some("-1")),
    opt("cluster-ipc-limit", OptKind::Text, None),
    opt("stop-all-resources", OptKind::Bool, Some("false")),
    opt_alt(
        "stop-removed-resources",
        "stop-orphan-resources",
        OptKind::Bool,
        Some("true"),
    ),
    opt_alt(
        "cancel-removed-actions",
        "stop-orphan-actions",
        OptKind::Bool,
        Some("true"),
    ),
    opt("pe-error-series-max", OptKind::Int, Some("-1")),
    opt("pe-warn-series-max", OptKind::Int, Some("5000")),
    opt("pe-input-series-max", OptKind::Int, Some("4000")),
    opt(
        "node-health-strategy",
        OptKind::SelectCi(HEALTH),
        Some("none"),
    ),
    opt("node-health-base", OptKind::Int, Some("0")),
    opt("node-health-green", OptKind::Int, Some("0")),
    opt("node-health-yellow", OptKind::Int, Some("0")),
    opt("node-health-red", OptKind::Int, Some("-INFINITY")),
    opt(
        "placement-strategy",
        OptKind::SelectCi(PLACEMENT),
        Some("default"),
    ),
];

fn is_infinity(s: &str) -> bool {
    s == "INFINITY" || s == "+INFINITY"
}

/// What the cluster knows about one of its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptionInfo {
    /// The current name.
    pub name: &'static str,
    /// The legacy name, if it has one.
    pub legacy: Option<&'static str>,
    /// The values it takes, in words.
    pub takes: String,
    /// Its default, if it has one.
    pub default: Option<&'static str>,
}

/// A cluster option by its current or legacy name.
pub fn cluster_option(name: &str) -> Option<ClusterOptionInfo> {
    OPTIONS
        .iter()
        .find(|d| d.name == name || d.alt == Some(name))
        .map(|d| ClusterOptionInfo {
            name: d.name,
            legacy: d.alt,
            takes: describe_kind(d.kind),
            default: d.default,
        })
}

/// Every cluster option's current name.
pub fn cluster_option_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().map(|d| d.name)
}

/// Whether `value` is valid for the cluster option `name` (current or
/// legacy name): `Err` says why not, or that there is no such option.
pub fn check_cluster_option(name: &str, value: &str) -> Result<(), String> {
    let Some(def) = OPTIONS
        .iter()
        .find(|d| d.name == name || d.alt == Some(name))
    else {
        return Err(format!("there is no cluster option named {name}"));
    };
    if option_value_valid(def.kind, value) {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid value for {}: it takes {}",
            def.name,
            describe_kind(def.kind)
        ))
    }
}

/// Whether `value` is valid for `kind`, as Pacemaker's validators decide.
fn option_value_valid(kind: OptKind, value: &str) -> bool {
    match kind {
        OptKind::Text => true,
        OptKind::Bool => parse_bool(value).is_some(),
        OptKind::Duration => time::interval_spec(Some(value)).error.is_none(),
        OptKind::Int => {
            is_infinity(value) || value == "-INFINITY" || matches!(scan_ll(value), ScanLl::Ok(..))
        }
        OptKind::PositiveInt => {
            is_infinity(value) || matches!(scan_ll(value), ScanLl::Ok(v, _) if v > 0)
        }
        OptKind::Percentage => {
            // strtof() then a '%' right after the number, and not negative.
            let t = value.trim_start();
            let b = t.as_bytes();
            let mut n = usize::from(matches!(b.first(), Some(b'+' | b'-')));
            let int_start = n;
            while n < b.len() && b[n].is_ascii_digit() {
                n += 1;
            }
            let mut digits = n > int_start;
            if b.get(n) == Some(&b'.') {
                let frac_start = n + 1;
                let mut m = frac_start;
                while m < b.len() && b[m].is_ascii_digit() {
                    m += 1;
                }
                if digits || m > frac_start {
                    digits = true;
                    n = m;
                }
            }
            if !digits {
                // No conversion: strtof leaves the end at the start.
                return value.starts_with('%');
            }
            let number: f64 = t[..n].parse().unwrap_or(0.0);
            t[n..].starts_with('%') && number >= 0.0
        }
        OptKind::SelectCi(words) => words.iter().any(|w| value.eq_ignore_ascii_case(w)),
        OptKind::Select(words) => words.contains(&value),
    }
}

fn describe_kind(kind: OptKind) -> String {
    match kind {
        OptKind::Text => "any text".into(),
        OptKind::Bool => "true or false".into(),
        OptKind::Duration => {
            "a time interval such as 60s, 15min or an ISO 8601 duration (PT15M)".into()
        }
        OptKind::Int => "an integer, INFINITY or -INFINITY".into(),
        OptKind::PositiveInt => "a positive integer or INFINITY".into(),
        OptKind::Percentage => "a percentage such as 80%".into(),
        OptKind::SelectCi(words) | OptKind::Select(words) => {
            format!("one of {}", words.join(", "))
        }
    }
}

/// The cluster options Pacemaker's scheduler and controller read, typed,
/// with Pacemaker's defaults. An invalid value is reported and the default
/// used instead, as Pacemaker does; a legacy name (`stonith-enabled`, ...)
/// is honoured when the current name is not set.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterOptions {
    /// Every known option's effective value (configured and valid, or the
    /// default), under its current name, plus any unknown names configured.
    pub values: BTreeMap<String, String>,
    pub cluster_name: Option<String>,
    pub dc_version: Option<String>,
    pub cluster_infrastructure: Option<String>,
    pub dc_deadtime_ms: u64,
    /// 0 disables the periodic recheck.
    pub cluster_recheck_interval_ms: u64,
    pub election_timeout_ms: u64,
    pub shutdown_escalation_ms: u64,
    pub join_integration_timeout_ms: u64,
    pub join_finalization_timeout_ms: u64,
    pub transition_delay_ms: u64,
    pub no_quorum_policy: NoQuorumPolicy,
    pub shutdown_lock: bool,
    pub shutdown_lock_limit_ms: u64,
    pub enable_acl: bool,
    pub symmetric_cluster: bool,
    pub maintenance_mode: bool,
    pub start_failure_is_fatal: bool,
    /// `enable-startup-probes` (deprecated).
    pub enable_startup_probes: bool,
    pub fence_remote_without_quorum: bool,
    /// `fencing-enabled` (`stonith-enabled`).
    pub fencing_enabled: bool,
    /// `fencing-action` (`stonith-action`).
    pub fencing_action: FencingAction,
    /// `fencing-reaction` (`fence-reaction`); any value but `panic` means
    /// stop.
    pub fencing_reaction: FencingReaction,
    /// `fencing-timeout` (`stonith-timeout`).
    pub fencing_timeout_ms: u64,
    /// Set by the cluster itself when SBD is in use.
    pub have_watchdog: bool,
    /// `fencing-watchdog-timeout` (`stonith-watchdog-timeout`), raw: Pacemaker
    /// accepts any value here (negative means "derive from SBD").
    pub fencing_watchdog_timeout: String,
    /// `fencing-max-attempts` (`stonith-max-attempts`).
    pub fencing_max_attempts: i64,
    /// `concurrent-fencing` (deprecated; true since Pacemaker 3.0).
    pub concurrent_fencing: bool,
    pub startup_fencing: bool,
    pub priority_fencing_delay_ms: u64,
    /// 0 means pending nodes are never fenced.
    pub node_pending_timeout_ms: u64,
    pub cluster_delay_ms: u64,
    /// `load-threshold` in percent.
    pub load_threshold_percent: f64,
    pub node_action_limit: i64,
    pub batch_limit: i64,
    /// -1 means no limit.
    pub migration_limit: i64,
    pub stop_all_resources: bool,
    /// `stop-removed-resources` (`stop-orphan-resources`).
    pub stop_removed_resources: bool,
    /// `cancel-removed-actions` (`stop-orphan-actions`).
    pub cancel_removed_actions: bool,
    pub pe_error_series_max: i64,
    pub pe_warn_series_max: i64,
    pub pe_input_series_max: i64,
    pub node_health_strategy: HealthStrategy,
    pub node_health_base: Score,
    pub node_health_green: Score,
    pub node_health_yellow: Score,
    pub node_health_red: Score,
    pub placement_strategy: PlacementStrategy,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions::from_values(&BTreeMap::new(), &mut |_| {})
    }
}

/// A problem with one configured cluster option: which option (the name as
/// configured), its value, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionProblem {
    pub name: String,
    pub value: String,
    pub message: String,
    pub is_error: bool,
}

impl ClusterOptions {
    /// Types `configured` (name to value, as unpacked from `crm_config`),
    /// calling `report` for each invalid value (the default is then used)
    /// and each legacy name in use.
    pub fn from_values(
        configured: &BTreeMap<String, String>,
        report: &mut dyn FnMut(OptionProblem),
    ) -> ClusterOptions {
        let mut values: BTreeMap<String, String> = configured.clone();
        for def in OPTIONS {
            let mut chosen: Option<(&str, &str)> =
                configured.get(def.name).map(|v| (def.name, v.as_str()));
            if chosen.is_none()
                && let Some(alt) = def.alt
                && let Some(v) = configured.get(alt)
            {
                report(OptionProblem {
                    name: alt.to_string(),
                    value: v.clone(),
                    message: format!(
                        "cluster option '{alt}' is a deprecated name; use '{}' instead",
                        def.name
                    ),
                    is_error: false,
                });
                chosen = Some((alt, v.as_str()));
            }
            let effective = match chosen {
                Some((_, v)) if option_value_valid(def.kind, v) => Some(v.to_string()),
                Some((name, v)) => {
                    let default = def
                        .default
                        .map_or("no value".to_string(), |d| format!("the default '{d}'"));
                    report(OptionProblem {
                        name: name.to_string(),
                        value: v.to_string(),
                        message: format!(
                            "'{v}' is not a valid value for cluster option '{}' \
                             (expected {}); using {default}",
                            def.name,
                            describe_kind(def.kind)
                        ),
                        is_error: true,
                    });
                    def.default.map(str::to_string)
                }
                None => def.default.map(str::to_string),
            };
            match effective {
                Some(v) => {
                    values.insert(def.name.to_string(), v);
                }
                None => {
                    values.remove(def.name);
                }
            }
        }
        Self::typed(values)
    }

    /// Builds the typed fields from effective (already valid) values.
    fn typed(values: BTreeMap<String, String>) -> ClusterOptions {
        let get = |n: &str| values.get(n).map(String::as_str);
        let b = |n: &str| get(n).and_then(parse_bool).unwrap_or(false);
        let ms = |n: &str| u64::from(time::interval_spec(get(n)).ms);
        let int = |n: &str| match get(n) {
            Some(v) if is_infinity(v) => i64::from(Score::INFINITY_VALUE),
            Some("-INFINITY") => -i64::from(Score::INFINITY_VALUE),
            Some(v) => scan_i64(v).unwrap_or(0),
            None => 0,
        };
        let score = |n: &str| Score::new(int(n));
        let lower = |n: &str| get(n).unwrap_or_default().to_ascii_lowercase();
        let percent = get("load-threshold")
            .map(|v| {
                let t = v.trim_start();
                let end = t.find('%').unwrap_or(t.len());
                t[..end].trim().parse::<f64>().unwrap_or(0.0)
            })
            .unwrap_or(80.0);
        ClusterOptions {
            cluster_name: get("cluster-name").map(str::to_string),
            dc_version: get("dc-version").map(str::to_string),
            cluster_infrastructure: get("cluster-infrastructure").map(str::to_string),
            dc_deadtime_ms: ms("dc-deadtime"),
            cluster_recheck_interval_ms: ms("cluster-recheck-interval"),
            election_timeout_ms: ms("election-timeout"),
            shutdown_escalation_ms: ms("shutdown-escalation"),
            join_integration_timeout_ms: ms("join-integration-timeout"),
            join_finalization_timeout_ms: ms("join-finalization-timeout"),
            transition_delay_ms: ms("transition-delay"),
            no_quorum_policy: match lower("no-quorum-policy").as_str() {
                "freeze" => NoQuorumPolicy::Freeze,
                "ignore" => NoQuorumPolicy::Ignore,
                "demote" => NoQuorumPolicy::Demote,
                "fence" | "suicide" => NoQuorumPolicy::Fence,
                _ => NoQuorumPolicy::Stop,
            },
            shutdown_lock: b("shutdown-lock"),
            shutdown_lock_limit_ms: ms("shutdown-lock-limit"),
            enable_acl: b("enable-acl"),
            symmetric_cluster: b("symmetric-cluster"),
            maintenance_mode: b("maintenance-mode"),
            start_failure_is_fatal: b("start-failure-is-fatal"),
            enable_startup_probes: b("enable-startup-probes"),
            fence_remote_without_quorum: b("fence-remote-without-quorum"),
            fencing_enabled: b("fencing-enabled"),
            fencing_action: if get("fencing-action") == Some("off") {
                FencingAction::Off
            } else {
                FencingAction::Reboot
            },
            fencing_reaction: if lower("fencing-reaction") == "panic" {
                FencingReaction::Panic
            } else {
                FencingReaction::Stop
            },
            fencing_timeout_ms: ms("fencing-timeout"),
            have_watchdog: b("have-watchdog"),
            fencing_watchdog_timeout: get("fencing-watchdog-timeout").unwrap_or("0").to_string(),
            fencing_max_attempts: int("fencing-max-attempts"),
            concurrent_fencing: b("concurrent-fencing"),
            startup_fencing: b("startup-fencing"),
            priority_fencing_delay_ms: ms("priority-fencing-delay"),
            node_pending_timeout_ms: ms("node-pending-timeout"),
            cluster_delay_ms: ms("cluster-delay"),
            load_threshold_percent: percent,
            node_action_limit: int("node-action-limit"),
            batch_limit: int("batch-limit"),
            migration_limit: int("migration-limit"),
            stop_all_resources: b("stop-all-resources"),
            stop_removed_resources: b("stop-removed-resources"),
            cancel_removed_actions: b("cancel-removed-actions"),
            pe_error_series_max: int("pe-error-series-max"),
            pe_warn_series_max: int("pe-warn-series-max"),
            pe_input_series_max: int("pe-input-series-max"),
            node_health_strategy: match lower("node-health-strategy").as_str() {
                "migrate-on-red" => HealthStrategy::MigrateOnRed,
                "only-green" => HealthStrategy::OnlyGreen,
                "progressive" => HealthStrategy::Progressive,
                "custom" => HealthStrategy::Custom,
                _ => HealthStrategy::None,
            },
            node_health_base: score("node-health-base"),
            node_health_green: score("node-health-green"),
            node_health_yellow: score("node-health-yellow"),
            node_health_red: score("node-health-red"),
            placement_strategy: match lower("placement-strategy").as_str() {
                "utilization" => PlacementStrategy::Utilization,
                "minimal" => PlacementStrategy::Minimal,
                "balanced" => PlacementStrategy::Balanced,
                _ => PlacementStrategy::Default,
            },
            values,
        }
    }
}

// ---------------------------------------------------------------------------
// Nodes.

/// A node's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// `member` (the default).
    Member,
    /// `remote`: a Pacemaker Remote node.
    Remote,
}

/// A configured node (`<nodes><node>`).
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub uname: &'a str,
    pub kind: NodeKind,
    /// The node's base score; 0 when absent or invalid (invalid is reported).
    pub score: Score,
    pub description: Option<&'a str>,
    pub instance_attributes: Vec<NvSet<'a>>,
    pub utilization: Vec<NvSet<'a>>,
}

// ---------------------------------------------------------------------------
// Resources.

/// An operation configured for a resource (`<op>`).
#[derive(Debug, Clone)]
pub struct Op<'a> {
    pub element: &'a Element,
    pub id: Option<&'a str>,
    /// The action name (`monitor`, `start`, ...); required.
    pub name: Option<&'a str>,
    /// The interval as written (absent means 0).
    pub interval: Option<&'a str>,
    /// The interval in milliseconds; 0 when it is invalid (and reported), as
    /// Pacemaker goes on with.
    pub interval_ms: u64,
    /// The role the operation applies to; `None` when absent (or invalid,
    /// which is reported).
    pub role: Option<Role>,
    pub timeout: Option<&'a str>,
    pub on_fail: Option<&'a str>,
    pub start_delay: Option<&'a str>,
    pub interval_origin: Option<&'a str>,
    /// `enabled`; `None` when absent or invalid.
    pub enabled: Option<bool>,
    pub instance_attributes: Vec<NvSet<'a>>,
    pub meta_attributes: Vec<NvSet<'a>>,
}

/// A primitive resource or a resource template.
#[derive(Debug, Clone)]
pub struct Primitive<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub description: Option<&'a str>,
    /// `class`, `provider` and `type`: the primitive's own, or else its
    /// template's. `None` when neither says (which is reported).
    pub agent: Option<Agent<'a>>,
    /// `template`: the id of the `<template>` this primitive is built from.
    pub template: Option<&'a str>,
    /// Only the primitive's own sets and operations; a template's are not
    /// merged in.
    pub instance_attributes: Vec<NvSet<'a>>,
    pub meta_attributes: Vec<NvSet<'a>>,
    pub utilization: Vec<NvSet<'a>>,
    pub ops: Vec<Op<'a>>,
}

/// A group of primitives, started in order on one node.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub description: Option<&'a str>,
    pub instance_attributes: Vec<NvSet<'a>>,
    pub meta_attributes: Vec<NvSet<'a>>,
    pub children: Vec<Primitive<'a>>,
}

/// A clone (or a legacy `<master>`, a promotable clone).
#[derive(Debug, Clone)]
pub struct CloneResource<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub description: Option<&'a str>,
    /// The element is `<master>`: promotable whatever its meta-attributes say.
    /// Otherwise promotability is the `promotable` meta-attribute.
    pub legacy_master: bool,
    pub instance_attributes: Vec<NvSet<'a>>,
    pub meta_attributes: Vec<NvSet<'a>>,
    /// The cloned primitive or group; `None` when missing (reported).
    pub child: Option<Box<Resource<'a>>>,
}

/// The container technology of a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    Docker,
    Podman,
    /// `rkt`: no longer supported by Pacemaker 3 (reported).
    Rkt,
}

/// A bundle: containers, their network and storage, and optionally one
/// primitive running inside each.
#[derive(Debug, Clone)]
pub struct Bundle<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub description: Option<&'a str>,
    pub container_kind: Option<ContainerKind>,
    /// The `<docker>`, `<podman>` or `<rkt>` element.
    pub container: Option<&'a Element>,
    pub network: Option<&'a Element>,
    pub port_mappings: Vec<&'a Element>,
    pub storage: Option<&'a Element>,
    pub storage_mappings: Vec<&'a Element>,
    pub instance_attributes: Vec<NvSet<'a>>,
    pub meta_attributes: Vec<NvSet<'a>>,
    pub primitive: Option<Primitive<'a>>,
}

/// A configured resource and its children.
#[derive(Debug, Clone)]
pub enum Resource<'a> {
    Primitive(Primitive<'a>),
    Group(Group<'a>),
    Clone(CloneResource<'a>),
    Bundle(Bundle<'a>),
}

impl<'a> Resource<'a> {
    pub fn id(&self) -> &'a str {
        match self {
            Resource::Primitive(p) => p.id,
            Resource::Group(g) => g.id,
            Resource::Clone(c) => c.id,
            Resource::Bundle(b) => b.id,
        }
    }

    pub fn element(&self) -> &'a Element {
        match self {
            Resource::Primitive(p) => p.element,
            Resource::Group(g) => g.element,
            Resource::Clone(c) => c.element,
            Resource::Bundle(b) => b.element,
        }
    }

    pub fn meta_attributes(&self) -> &[NvSet<'a>] {
        match self {
            Resource::Primitive(p) => &p.meta_attributes,
            Resource::Group(g) => &g.meta_attributes,
            Resource::Clone(c) => &c.meta_attributes,
            Resource::Bundle(b) => &b.meta_attributes,
        }
    }

    pub fn instance_attributes(&self) -> &[NvSet<'a>] {
        match self {
            Resource::Primitive(p) => &p.instance_attributes,
            Resource::Group(g) => &g.instance_attributes,
            Resource::Clone(c) => &c.instance_attributes,
            Resource::Bundle(b) => &b.instance_attributes,
        }
    }

    /// Collects the ids of this resource and everything inside it.
    fn ids_into(&self, out: &mut BTreeMap<&'a str, &'a Element>) {
        out.entry(self.id()).or_insert(self.element());
        match self {
            Resource::Primitive(_) => {}
            Resource::Group(g) => {
                for c in &g.children {
                    out.entry(c.id).or_insert(c.element);
                }
            }
            Resource::Clone(c) => {
                if let Some(child) = &c.child {
                    child.ids_into(out);
                }
            }
            Resource::Bundle(b) => {
                if let Some(p) = &b.primitive {
                    out.entry(p.id).or_insert(p.element);
                }
            }
        }
    }

    /// Every primitive in this tree (a group's members, a clone's or a
    /// bundle's primitive), in document order.
    pub fn primitives(&self) -> Vec<&Primitive<'a>> {
        let mut out = Vec::new();
        self.primitives_into(&mut out);
        out
    }

    fn primitives_into<'s>(&'s self, out: &mut Vec<&'s Primitive<'a>>) {
        match self {
            Resource::Primitive(p) => out.push(p),
            Resource::Group(g) => out.extend(g.children.iter()),
            Resource::Clone(c) => {
                if let Some(child) = &c.child {
                    child.primitives_into(out);
                }
            }
            Resource::Bundle(b) => out.extend(b.primitive.iter()),
        }
    }
}

// ---------------------------------------------------------------------------
// Tags.

/// A tag: a name for a list of configuration objects.
#[derive(Debug, Clone)]
pub struct Tag<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    /// The ids its `obj_ref`s name, in order.
    pub refs: Vec<(&'a Element, &'a str)>,
}

// ---------------------------------------------------------------------------
// Constraints.

/// An ordering's `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrderKind {
    #[default]
    Mandatory,
    Optional,
    Serialize,
}

impl OrderKind {
    /// Parses a kind; Pacemaker compares case-sensitively.
    pub fn parse(s: &str) -> Option<OrderKind> {
        match s {
            "Mandatory" => Some(OrderKind::Mandatory),
            "Optional" => Some(OrderKind::Optional),
            "Serialize" => Some(OrderKind::Serialize),
            _ => None,
        }
    }
}

/// An action named in an ordering or a resource set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConstraintAction {
    Start,
    Stop,
    Promote,
    Demote,
}

impl ConstraintAction {
    pub fn parse(s: &str) -> Option<ConstraintAction> {
        match s {
            "start" => Some(ConstraintAction::Start),
            "stop" => Some(ConstraintAction::Stop),
            "promote" => Some(ConstraintAction::Promote),
            "demote" => Some(ConstraintAction::Demote),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConstraintAction::Start => "start",
            ConstraintAction::Stop => "stop",
            ConstraintAction::Promote => "promote",
            ConstraintAction::Demote => "demote",
        }
    }
}

/// A location constraint's `resource-discovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Discovery {
    #[default]
    Always,
    Never,
    Exclusive,
}

/// A ticket constraint's `loss-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LossPolicy {
    #[default]
    Stop,
    Demote,
    Fence,
    Freeze,
}

/// A `resource_set` (after following an `id-ref`).
#[derive(Debug, Clone)]
pub struct ResourceSet<'a> {
    /// The set as written.
    pub element: &'a Element,
    /// The set its `id-ref` names, or `element`.
    pub target: &'a Element,
    pub id: Option<&'a str>,
    /// `sequential`; `None` when absent or invalid.
    pub sequential: Option<bool>,
    pub require_all: Option<bool>,
    /// `ordering` (`group` or `listed`), raw.
    pub ordering: Option<&'a str>,
    pub action: Option<ConstraintAction>,
    pub role: Option<Role>,
    pub score: Option<Score>,
    pub kind: Option<OrderKind>,
    /// The resource ids of its `resource_ref`s, with the elements.
    pub resources: Vec<(&'a Element, &'a str)>,
}

/// `rsc_location`.
#[derive(Debug, Clone)]
pub struct Location<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub rsc: Option<&'a str>,
    pub rsc_pattern: Option<&'a str>,
    pub role: Option<Role>,
    pub sets: Vec<ResourceSet<'a>>,
    /// `node` with `score`: a fixed preference.
    pub node: Option<&'a str>,
    /// `None` when absent or invalid (invalid is reported; Pacemaker then
    /// ignores the constraint).
    pub score: Option<Score>,
    /// The `rule` children (used when there is no `node`).
    pub rules: Vec<&'a Element>,
    /// `resource-discovery`; `Always` when absent or invalid.
    pub discovery: Discovery,
}

/// `rsc_colocation`.
#[derive(Debug, Clone)]
pub struct Colocation<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    /// 0 when absent; `None` when invalid (Pacemaker then ignores it).
    pub score: Option<Score>,
    /// The dependent resource.
    pub rsc: Option<&'a str>,
    /// The primary resource.
    pub with_rsc: Option<&'a str>,
    pub rsc_role: Option<Role>,
    pub with_rsc_role: Option<Role>,
    /// `node-attribute`: the node attribute whose equal values count as
    /// "together"; `#uname` by default.
    pub node_attribute: &'a str,
    /// `influence`; `None` when absent (the dependent's `critical`
    /// meta-attribute decides) or invalid.
    pub influence: Option<bool>,
    pub sets: Vec<ResourceSet<'a>>,
}

/// `rsc_order`.
#[derive(Debug, Clone)]
pub struct Order<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub first: Option<&'a str>,
    pub then: Option<&'a str>,
    /// `first-action`, `start` by default.
    pub first_action: ConstraintAction,
    /// `then-action`: by default the same as `first-action`.
    pub then_action: ConstraintAction,
    /// `kind`, or from the deprecated `score` (0 means optional).
    pub kind: OrderKind,
    /// `symmetrical` as configured (`None` when absent: symmetric unless
    /// the kind is `Serialize`).
    pub symmetrical: Option<bool>,
    pub require_all: Option<bool>,
    pub sets: Vec<ResourceSet<'a>>,
}

impl Order<'_> {
    /// Whether the ordering also applies in reverse (stop `then` before
    /// `first`), as Pacemaker decides it.
    pub fn is_symmetrical(&self) -> bool {
        match self.symmetrical {
            Some(s) => s && self.kind != OrderKind::Serialize,
            None => self.kind != OrderKind::Serialize,
        }
    }
}

/// `rsc_ticket`.
#[derive(Debug, Clone)]
pub struct TicketConstraint<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub ticket: Option<&'a str>,
    pub rsc: Option<&'a str>,
    pub rsc_role: Option<Role>,
    /// `loss-policy`; `Stop` when absent or invalid.
    pub loss_policy: LossPolicy,
    pub sets: Vec<ResourceSet<'a>>,
}

/// A constraint.
#[derive(Debug, Clone)]
pub enum Constraint<'a> {
    Location(Location<'a>),
    Colocation(Colocation<'a>),
    Order(Order<'a>),
    Ticket(TicketConstraint<'a>),
}

impl<'a> Constraint<'a> {
    pub fn id(&self) -> &'a str {
        match self {
            Constraint::Location(c) => c.id,
            Constraint::Colocation(c) => c.id,
            Constraint::Order(c) => c.id,
            Constraint::Ticket(c) => c.id,
        }
    }

    pub fn element(&self) -> &'a Element {
        match self {
            Constraint::Location(c) => c.element,
            Constraint::Colocation(c) => c.element,
            Constraint::Order(c) => c.element,
            Constraint::Ticket(c) => c.element,
        }
    }

    pub fn sets(&self) -> &[ResourceSet<'a>] {
        match self {
            Constraint::Location(c) => &c.sets,
            Constraint::Colocation(c) => &c.sets,
            Constraint::Order(c) => &c.sets,
            Constraint::Ticket(c) => &c.sets,
        }
    }
}

// ---------------------------------------------------------------------------
// Status.

/// A node_state's `in_ccm` or `crmd`: absent, a legacy boolean/word, or
/// (since Pacemaker 2.1.7) the time since when the node has been up, 0
/// meaning down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presence {
    /// The attribute is not there.
    Absent,
    /// Up; `since` is the epoch time, or `None` for the legacy `true` /
    /// `online` form.
    Up { since: Option<i64> },
    /// `false`, `offline` or `0`.
    Down,
    /// Unreadable (reported as a warning); Pacemaker treats the node as not
    /// a member (for `in_ccm`) or offline (for `crmd`).
    Invalid,
}

impl Presence {
    pub fn is_up(self) -> bool {
        matches!(self, Presence::Up { .. })
    }

    fn member(s: Option<&str>) -> Presence {
        let Some(s) = s else {
            return Presence::Absent;
        };
        match parse_bool(s) {
            Some(true) => Presence::Up { since: None },
            Some(false) => Presence::Down,
            None => match scan_ll(s) {
                ScanLl::Ok(t, _) if t > 0 => Presence::Up { since: Some(t) },
                ScanLl::Ok(0, _) => Presence::Down,
                _ => Presence::Invalid,
            },
        }
    }

    fn online(s: Option<&str>) -> Presence {
        let Some(s) = s else {
            return Presence::Absent;
        };
        if s.eq_ignore_ascii_case("offline") {
            return Presence::Down;
        }
        if s.eq_ignore_ascii_case("online") {
            return Presence::Up { since: None };
        }
        match scan_ll(s) {
            ScanLl::Ok(t, _) if t > 0 => Presence::Up { since: Some(t) },
            ScanLl::Ok(0, _) => Presence::Down,
            _ => Presence::Invalid,
        }
    }
}

/// A node's controller join state (`join`) or expected state (`expected`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinState {
    Member,
    Down,
    Pending,
    Banned,
    /// Any other word, kept as written.
    Other,
}

impl JoinState {
    fn parse(s: &str) -> JoinState {
        match s {
            "member" => JoinState::Member,
            "down" => JoinState::Down,
            "pending" => JoinState::Pending,
            "banned" => JoinState::Banned,
            _ => JoinState::Other,
        }
    }
}

/// The two kinds of failure attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailAttrKind {
    /// `fail-count-…`: how many times the operation failed.
    FailCount,
    /// `last-failure-…`: when it last failed (epoch seconds).
    LastFailure,
}

/// A failure attribute decoded from its name,
/// `fail-count-RSC#OP_INTERVAL` or `last-failure-RSC#OP_INTERVAL` (or the
/// legacy `fail-count-RSC`, which Pacemaker 2 and later ignore).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailAttr<'a> {
    pub kind: FailAttrKind,
    /// The resource as named, possibly with a clone instance (`rsc:1`).
    pub resource: &'a str,
    /// The operation and its interval in milliseconds; `None` for the legacy
    /// form.
    pub op: Option<(&'a str, u64)>,
    pub value: &'a str,
    /// The value read as a fail count (a score) or an epoch time.
    pub number: Option<i64>,
}

impl<'a> FailAttr<'a> {
    /// Decodes a node attribute name; `None` when it is not a failure
    /// attribute.
    pub fn parse(name: &'a str, value: &'a str) -> Option<FailAttr<'a>> {
        let (kind, rest) = if let Some(r) = name.strip_prefix("fail-count-") {
            (FailAttrKind::FailCount, r)
        } else if let Some(r) = name.strip_prefix("last-failure-") {
            (FailAttrKind::LastFailure, r)
        } else {
            return None;
        };
        let (resource, op) = match rest.split_once('#') {
            Some((rsc, op_part)) => {
                let (op, interval) = op_part.rsplit_once('_')?;
                if op.is_empty()
                    || interval.is_empty()
                    || !interval.bytes().all(|b| b.is_ascii_digit())
                {
                    return None;
                }
                (rsc, Some((op, interval.parse().ok()?)))
            }
            None => (rest, None),
        };
        if resource.is_empty() {
            return None;
        }
        let number = match kind {
            FailAttrKind::FailCount => parse_score(value).map(|s| i64::from(s.value())),
            FailAttrKind::LastFailure => scan_i64(value),
        };
        Some(FailAttr {
            kind,
            resource,
            op,
            value,
            number,
        })
    }

    /// The resource without a clone instance suffix.
    pub fn base_resource(&self) -> &'a str {
        strip_instance(self.resource)
    }
}

/// `rsc:3` → `rsc`; other ids unchanged.
pub fn strip_instance(id: &str) -> &str {
    match id.rsplit_once(':') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => id,
    }
}

/// A decoded `transition-key`: `ACTION:TRANSITION:TARGET_RC:UUID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionKey<'a> {
    pub action_id: i64,
    pub transition_id: i64,
    /// The result the scheduler expected.
    pub target_rc: i32,
    /// The DC's transition graph identifier.
    pub uuid: &'a str,
}

impl<'a> TransitionKey<'a> {
    /// Decodes a key as Pacemaker does (three integers and a text of up to
    /// 36 characters, separated by colons).
    pub fn parse(s: &'a str) -> Option<TransitionKey<'a>> {
        let mut parts = s.splitn(4, ':');
        let action_id = parts.next()?.trim().parse().ok()?;
        let transition_id = parts.next()?.trim().parse().ok()?;
        let target_rc = parts.next()?.trim().parse().ok()?;
        let uuid = parts.next()?.trim();
        if uuid.is_empty() {
            return None;
        }
        let uuid = match uuid.char_indices().nth(36) {
            Some((i, _)) => &uuid[..i],
            None => uuid,
        };
        Some(TransitionKey {
            action_id,
            transition_id,
            target_rc,
            uuid,
        })
    }
}

/// A decoded `transition-magic`: `OP_STATUS:RC;KEY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionMagic<'a> {
    pub op_status: i32,
    pub rc: i32,
    pub key: TransitionKey<'a>,
}

impl<'a> TransitionMagic<'a> {
    pub fn parse(s: &'a str) -> Option<TransitionMagic<'a>> {
        let (head, key) = s.split_once(';')?;
        let (status, rc) = head.split_once(':')?;
        Some(TransitionMagic {
            op_status: status.trim().parse().ok()?,
            rc: rc.trim().parse().ok()?,
            key: TransitionKey::parse(key)?,
        })
    }
}

/// One entry of a resource's operation history (`lrm_rsc_op`).
#[derive(Debug, Clone)]
pub struct HistoryOp<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    /// The action (`operation`), e.g. `start`, `monitor`.
    pub operation: Option<&'a str>,
    /// `interval` in milliseconds (0 when absent).
    pub interval_ms: u64,
    pub call_id: Option<i64>,
    /// `rc-code`: the agent's exit code.
    pub rc_code: Option<i32>,
    /// `op-status`, raw, and decoded.
    pub op_status_code: Option<i32>,
    pub op_status: Option<OpStatus>,
    pub transition_key: Option<TransitionKey<'a>>,
    pub transition_magic: Option<TransitionMagic<'a>>,
    pub last_rc_change: Option<i64>,
    pub last_run: Option<i64>,
    pub exec_time: Option<i64>,
    pub queue_time: Option<i64>,
    pub op_digest: Option<&'a str>,
    pub op_restart_digest: Option<&'a str>,
    pub op_secure_digest: Option<&'a str>,
    pub op_force_restart: Option<&'a str>,
    pub op_secure_params: Option<&'a str>,
    pub exit_reason: Option<&'a str>,
    pub on_node: Option<&'a str>,
    pub migrate_source: Option<&'a str>,
    pub migrate_target: Option<&'a str>,
    pub crm_feature_set: Option<&'a str>,
}

impl HistoryOp<'_> {
    /// The result the scheduler expected, from the transition key (Pacemaker
    /// takes 0 when there is no readable key).
    pub fn target_rc(&self) -> i32 {
        self.transition_key.map_or(0, |k| k.target_rc)
    }
}

/// A resource's history on one node (`lrm_resource`).
#[derive(Debug, Clone)]
pub struct LrmResource<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub class: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub agent_type: Option<&'a str>,
    pub container: Option<&'a str>,
    pub ops: Vec<HistoryOp<'a>>,
}

/// One `node_state`.
#[derive(Debug, Clone)]
pub struct NodeState<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub uname: Option<&'a str>,
    /// Cluster-layer membership (`in_ccm`).
    pub in_ccm: Presence,
    /// Controller process group membership (`crmd`).
    pub crmd: Presence,
    pub join: Option<JoinState>,
    pub expected: Option<JoinState>,
    /// `remote_node="true"`: the entry is for a Pacemaker Remote node.
    pub remote_node: bool,
    /// `shutdown`, raw (a time, or 0).
    pub shutdown: Option<&'a str>,
    /// The `instance_attributes` of `transient_attributes`.
    pub transient_attributes: Vec<NvSet<'a>>,
    /// Failure attributes decoded from the transient attributes.
    pub fail_attrs: Vec<FailAttr<'a>>,
    pub resources: Vec<LrmResource<'a>>,
}

impl<'a> NodeState<'a> {
    /// The transient attributes, first value of a name wins.
    pub fn attributes(&self) -> BTreeMap<&'a str, &'a str> {
        unconditional_values(&self.transient_attributes)
    }
}

/// One `ticket_state`.
#[derive(Debug, Clone)]
pub struct TicketState<'a> {
    pub element: &'a Element,
    pub id: &'a str,
    pub granted: bool,
    pub standby: bool,
    pub last_granted: Option<i64>,
}

/// The status section.
#[derive(Debug, Clone, Default)]
pub struct Status<'a> {
    pub element: Option<&'a Element>,
    pub node_states: Vec<NodeState<'a>>,
    pub tickets: Vec<TicketState<'a>>,
}

impl<'a> Status<'a> {
    /// Every history entry of every node, in document order.
    pub fn history(
        &self,
    ) -> impl Iterator<Item = (&NodeState<'a>, &LrmResource<'a>, &HistoryOp<'a>)> {
        self.node_states.iter().flat_map(|ns| {
            ns.resources
                .iter()
                .flat_map(move |r| r.ops.iter().map(move |op| (ns, r, op)))
        })
    }
}

// ---------------------------------------------------------------------------
// Building.

struct Builder<'a, 'b> {
    ids: &'b IdIndex<'a>,
    diags: Vec<Diagnostic>,
}

fn id_of(el: &Element) -> Option<&str> {
    el.attr("id").filter(|s| !s.is_empty())
}

impl<'a> Builder<'a, '_> {
    fn error(&mut self, el: &Element, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(el, message));
    }

    fn warning(&mut self, el: &Element, message: impl Into<String>) {
        self.diags.push(Diagnostic::warning(el, message));
    }

    /// The element `el` stands for: itself, or what its `id-ref` names when
    /// that is an element of the same name. Unresolved references are left
    /// to validation.
    fn deref(&self, el: &'a Element) -> Option<&'a Element> {
        match el.attr("id-ref") {
            None => Some(el),
            Some(r) => self.ids.get(r).filter(|t| t.name == el.name),
        }
    }

    fn nv_sets(&mut self, parent: &'a Element, name: &str) -> Vec<NvSet<'a>> {
        let mut out = Vec::new();
        for el in parent.elements().filter(|e| e.name == name) {
            let Some(target) = self.deref(el) else {
                continue;
            };
            let holder = match target.elements().next() {
                Some(first) if first.name == "attributes" => first,
                _ => target,
            };
            let mut pairs = Vec::new();
            for p in holder.children_named("nvpair") {
                let Some(t) = self.deref(p) else { continue };
                pairs.push(NvPair {
                    element: p,
                    id: id_of(t),
                    name: t.attr("name"),
                    value: t.attr("value"),
                });
            }
            out.push(NvSet {
                element: el,
                target,
                id: id_of(target),
                score: target.attr("score"),
                rule: target.child("rule"),
                pairs,
            });
        }
        out
    }

    fn required_id(&mut self, el: &'a Element, what: &str) -> Option<&'a str> {
        let id = id_of(el);
        if id.is_none() {
            self.error(
                el,
                format!("this {what} has no id and is ignored; give it a unique id"),
            );
        }
        id
    }

    fn role_attr(&mut self, el: &'a Element, attr: &str) -> Option<Role> {
        let v = el.attr(attr)?;
        let role = parse_role(v);
        if role.is_none() {
            self.error(
                el,
                format!(
                    "'{v}' is not a valid {attr}; use Stopped, Started, Unpromoted or Promoted"
                ),
            );
        }
        role
    }

    fn bool_attr(&mut self, el: &'a Element, attr: &str) -> Option<bool> {
        let v = el.attr(attr)?;
        let b = parse_bool(v);
        if b.is_none() {
            self.error(
                el,
                format!("'{v}' is not a valid value for {attr}; use true or false"),
            );
        }
        b
    }

    fn score_attr(&mut self, el: &'a Element, attr: &str, consequence: &str) -> Option<Score> {
        let v = el.attr(attr)?;
        let s = parse_score(v);
        if s.is_none() {
            self.error(
                el,
                format!(
                    "'{v}' is not a valid {attr} (use an integer, INFINITY or -INFINITY); {consequence}"
                ),
            );
        }
        s
    }

    fn action_attr(&mut self, el: &'a Element, attr: &str) -> Option<ConstraintAction> {
        let v = el.attr(attr)?;
        let a = ConstraintAction::parse(v);
        if a.is_none() {
            self.error(
                el,
                format!("'{v}' is not a valid {attr}; use start, stop, promote or demote"),
            );
        }
        a
    }

    fn kind_attr(&mut self, el: &'a Element) -> Option<OrderKind> {
        let v = el.attr("kind")?;
        let k = OrderKind::parse(v);
        if k.is_none() {
            self.error(
                el,
                format!(
                    "'{v}' is not a valid kind (Mandatory is used); use Mandatory, Optional or Serialize"
                ),
            );
        }
        k
    }

    // --- nodes

    fn node(&mut self, el: &'a Element) -> Option<Node<'a>> {
        let id = self.required_id(el, "node");
        let uname = el.attr("uname").filter(|s| !s.is_empty());
        if uname.is_none() {
            self.error(
                el,
                "this node has no uname and is ignored; set uname to the node's name",
            );
        }
        let kind = match el.attr("type") {
            None => NodeKind::Member,
            Some(t) if t.eq_ignore_ascii_case("member") => NodeKind::Member,
            Some(t) if t.eq_ignore_ascii_case("remote") => NodeKind::Remote,
            Some(t) => {
                self.error(
                    el,
                    format!(
                        "node type '{t}' is not recognized and the node is ignored; use member or remote"
                    ),
                );
                return None;
            }
        };
        let score = match el.attr("score") {
            None => Score::ZERO,
            Some(v) => parse_score(v).unwrap_or_else(|| {
                self.warning(
                    el,
                    format!("'{v}' is not a valid score; 0 is used for this node"),
                );
                Score::ZERO
            }),
        };
        let (id, uname) = (id?, uname?);
        Some(Node {
            element: el,
            id,
            uname,
            kind,
            score,
            description: el.attr("description"),
            instance_attributes: self.nv_sets(el, "instance_attributes"),
            utilization: self.nv_sets(el, "utilization"),
        })
    }

    // --- resources

    fn op(&mut self, el: &'a Element) -> Op<'a> {
        let id = id_of(el);
        if id.is_none() {
            self.error(el, "this operation has no id; give it a unique id");
        }
        let name = el.attr("name").filter(|s| !s.is_empty());
        if name.is_none() {
            self.error(
                el,
                "this operation has no name; set name to the action (e.g. monitor)",
            );
        }
        let interval = el.attr("interval");
        let spec = time::interval_spec(interval);
        if let Some(e) = spec.error {
            self.error(
                el,
                format!(
                    "'{}' is not a valid interval ({e}); 0 is used. Use e.g. 10s, 5min or PT10S",
                    interval.unwrap_or_default()
                ),
            );
        }
        let enabled = self.bool_attr(el, "enabled");
        Op {
            element: el,
            id,
            name,
            interval,
            interval_ms: u64::from(spec.ms),
            role: self.role_attr(el, "role"),
            timeout: el.attr("timeout"),
            on_fail: el.attr("on-fail"),
            start_delay: el.attr("start-delay"),
            interval_origin: el.attr("interval-origin"),
            enabled,
            instance_attributes: self.nv_sets(el, "instance_attributes"),
            meta_attributes: self.nv_sets(el, "meta_attributes"),
        }
    }

    fn primitive(&mut self, el: &'a Element, templates: &[&'a Element]) -> Option<Primitive<'a>> {
        let what = if el.name == "template" {
            "template"
        } else {
            "resource"
        };
        let id = self.required_id(el, what)?;
        let template_id = if el.name == "primitive" {
            el.attr("template")
        } else {
            None
        };
        let template =
            template_id.and_then(|t| templates.iter().copied().find(|e| e.attr("id") == Some(t)));
        let get = |a: &str| {
            el.attr(a)
                .filter(|s| !s.is_empty())
                .or_else(|| template.and_then(|t| t.attr(a)).filter(|s| !s.is_empty()))
        };
        let (class, provider, agent_type) = (get("class"), get("provider"), get("type"));
        let agent = match (class, agent_type) {
            (Some(class), Some(agent_type)) => {
                if class == "ocf" && provider.is_none() {
                    self.error(
                        el,
                        format!("ocf {what} '{id}' has no provider; set provider (e.g. heartbeat or pacemaker)"),
                    );
                }
                Some(Agent {
                    class,
                    provider,
                    agent_type,
                })
            }
            _ if template_id.is_some() && template.is_none() => None, // validation reports the template
            _ => {
                let missing: Vec<&str> = [("class", class), ("type", agent_type)]
                    .iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(n, _)| *n)
                    .collect();
                self.error(
                    el,
                    format!(
                        "{what} '{id}' has no {}; set class and type (e.g. class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\") or a template",
                        missing.join(" and ")
                    ),
                );
                None
            }
        };
        let ops_parent = el.child("operations").and_then(|o| self.deref(o));
        let ops = match ops_parent {
            Some(o) => o.children_named("op").map(|op| self.op(op)).collect(),
            None => Vec::new(),
        };
        Some(Primitive {
            element: el,
            id,
            description: el.attr("description"),
            agent,
            template: template_id,
            instance_attributes: self.nv_sets(el, "instance_attributes"),
            meta_attributes: self.nv_sets(el, "meta_attributes"),
            utilization: self.nv_sets(el, "utilization"),
            ops,
        })
    }

    fn group(&mut self, el: &'a Element, templates: &[&'a Element]) -> Option<Group<'a>> {
        let id = self.required_id(el, "group")?;
        let mut children = Vec::new();
        for c in el.elements() {
            match c.name.as_str() {
                "primitive" => children.extend(self.primitive(c, templates)),
                "group" | "clone" | "master" | "bundle" => self.error(
                    c,
                    format!(
                        "a group may hold only primitives; this <{}> is ignored",
                        c.name
                    ),
                ),
                _ => {}
            }
        }
        if children.is_empty() {
            self.error(
                el,
                format!("group '{id}' has no primitives; add at least one or remove it"),
            );
        }
        Some(Group {
            element: el,
            id,
            description: el.attr("description"),
            instance_attributes: self.nv_sets(el, "instance_attributes"),
            meta_attributes: self.nv_sets(el, "meta_attributes"),
            children,
        })
    }

    fn clone_rsc(
        &mut self,
        el: &'a Element,
        templates: &[&'a Element],
    ) -> Option<CloneResource<'a>> {
        let id = self.required_id(el, "clone")?;
        let mut child = None;
        for c in el.elements() {
            let r = match c.name.as_str() {
                "primitive" => self.primitive(c, templates).map(Resource::Primitive),
                "group" => self.group(c, templates).map(Resource::Group),
                "clone" | "master" | "bundle" => {
                    self.error(
                        c,
                        format!(
                            "a clone may hold only a primitive or a group; this <{}> is ignored",
                            c.name
                        ),
                    );
                    None
                }
                _ => continue,
            };
            if let Some(r) = r {
                if child.is_some() {
                    self.error(
                        c,
                        format!("clone '{id}' already has a child; this one is ignored"),
                    );
                } else {
                    child = Some(Box::new(r));
                }
            }
        }
        if child.is_none() {
            self.error(
                el,
                format!("clone '{id}' has nothing to clone; add a primitive or a group"),
            );
        }
        Some(CloneResource {
            element: el,
            id,
            description: el.attr("description"),
            legacy_master: el.name == "master",
            instance_attributes: self.nv_sets(el, "instance_attributes"),
            meta_attributes: self.nv_sets(el, "meta_attributes"),
            child,
        })
    }

    fn bundle(&mut self, el: &'a Element, templates: &[&'a Element]) -> Option<Bundle<'a>> {
        let id = self.required_id(el, "bundle")?;
        let mut container = None;
        let mut container_kind = None;
        for c in el.elements() {
            let kind = match c.name.as_str() {
                "docker" => ContainerKind::Docker,
                "podman" => ContainerKind::Podman,
                "rkt" => ContainerKind::Rkt,
                _ => continue,
            };
            if container.is_some() {
                self.error(
                    c,
                    format!("bundle '{id}' already has a container; this one is ignored"),
                );
                continue;
            }
            if kind == ContainerKind::Rkt {
                self.error(
                    c,
                    "rkt containers are no longer supported; use podman or docker",
                );
            }
            if c.attr("image").is_none_or(str::is_empty) {
                self.error(
                    c,
                    format!("the container of bundle '{id}' has no image; set image"),
                );
            }
            container = Some(c);
            container_kind = Some(kind);
        }
        if container.is_none() {
            self.error(
                el,
                format!("bundle '{id}' has no container; add a <podman> or <docker> element"),
            );
        }
        let network = el.child("network");
        let storage = el.child("storage");
        let mut primitives = el.children_named("primitive");
        let primitive = primitives.next().and_then(|p| self.primitive(p, templates));
        for extra in primitives {
            self.error(
                extra,
                format!("bundle '{id}' may hold only one primitive; this one is ignored"),
            );
        }
        Some(Bundle {
            element: el,
            id,
            description: el.attr("description"),
            container_kind,
            container,
            network,
            port_mappings: network
                .map(|n| n.children_named("port-mapping").collect())
                .unwrap_or_default(),
            storage,
            storage_mappings: storage
                .map(|s| s.children_named("storage-mapping").collect())
                .unwrap_or_default(),
            instance_attributes: self.nv_sets(el, "instance_attributes"),
            meta_attributes: self.nv_sets(el, "meta_attributes"),
            primitive,
        })
    }

    fn resource(&mut self, el: &'a Element, templates: &[&'a Element]) -> Option<Resource<'a>> {
        match el.name.as_str() {
            "primitive" => self.primitive(el, templates).map(Resource::Primitive),
            "group" => self.group(el, templates).map(Resource::Group),
            "clone" | "master" => self.clone_rsc(el, templates).map(Resource::Clone),
            "bundle" => self.bundle(el, templates).map(Resource::Bundle),
            _ => None,
        }
    }

    // --- constraints

    fn resource_set(&mut self, el: &'a Element) -> Option<ResourceSet<'a>> {
        let target = self.deref(el)?;
        if id_of(target).is_none() {
            self.error(
                el,
                "this resource_set has no id and is ignored; give it a unique id",
            );
            return None;
        }
        let resources: Vec<_> = target
            .children_named("resource_ref")
            .filter_map(|r| match id_of(r) {
                Some(id) => Some((r, id)),
                None => {
                    self.error(r, "this resource_ref has no id naming a resource");
                    None
                }
            })
            .collect();
        if resources.is_empty() {
            self.warning(target, "this resource_set names no resources");
        }
        Some(ResourceSet {
            element: el,
            target,
            id: id_of(target),
            sequential: self.bool_attr(target, "sequential"),
            require_all: self.bool_attr(target, "require-all"),
            ordering: target.attr("ordering"),
            action: self.action_attr(target, "action"),
            role: self.role_attr(target, "role"),
            score: self.score_attr(target, "score", "the set is ignored"),
            kind: self.kind_attr(target),
            resources,
        })
    }

    fn sets(&mut self, el: &'a Element) -> Vec<ResourceSet<'a>> {
        el.children_named("resource_set")
            .filter_map(|s| self.resource_set(s))
            .collect()
    }

    fn location(&mut self, el: &'a Element, id: &'a str) -> Location<'a> {
        let sets = self.sets(el);
        let rsc = el.attr("rsc");
        let rsc_pattern = el.attr("rsc-pattern");
        if rsc.is_none() && rsc_pattern.is_none() && el.child("resource_set").is_none() {
            self.error(el, "this location constraint names no resource; set rsc, rsc-pattern or add a resource_set");
        }
        let node = el.attr("node");
        let rules: Vec<_> = el.children_named("rule").collect();
        for rule in &rules {
            let Some(rule) = self.deref(rule) else {
                continue;
            };
            if rule.attr("score-attribute").is_none() {
                if rule.attr("score").is_none() {
                    self.error(
                        rule,
                        "this location rule has neither score nor score-attribute and is ignored; set one",
                    );
                } else {
                    self.score_attr(rule, "score", "the rule is ignored");
                }
            }
            self.role_attr(rule, "role");
        }
        let score = self.score_attr(el, "score", "the constraint is ignored");
        if node.is_some() && el.attr("score").is_none() && rules.is_empty() {
            self.error(
                el,
                "this location constraint has a node but no score; set score",
            );
        } else if node.is_none() && rules.is_empty() {
            self.error(
                el,
                "this location constraint has neither node and score nor a rule; it does nothing",
            );
        }
        let discovery = match el.attr("resource-discovery") {
            None => Discovery::Always,
            Some(v) if v.eq_ignore_ascii_case("always") => Discovery::Always,
            Some(v) if v.eq_ignore_ascii_case("never") => Discovery::Never,
            Some(v) if v.eq_ignore_ascii_case("exclusive") => Discovery::Exclusive,
            Some(v) => {
                self.error(
                    el,
                    format!(
                        "'{v}' is not a valid resource-discovery; use always, never or exclusive"
                    ),
                );
                Discovery::Always
            }
        };
        Location {
            element: el,
            id,
            rsc,
            rsc_pattern,
            role: self.role_attr(el, "role"),
            sets,
            node,
            score,
            rules,
            discovery,
        }
    }

    fn colocation(&mut self, el: &'a Element, id: &'a str) -> Colocation<'a> {
        let sets = self.sets(el);
        let (rsc, with_rsc) = (el.attr("rsc"), el.attr("with-rsc"));
        if sets.is_empty()
            && el.child("resource_set").is_none()
            && (rsc.is_none() || with_rsc.is_none())
        {
            self.error(
                el,
                "this colocation needs both rsc and with-rsc (or resource sets)",
            );
        }
        let score = match el.attr("score") {
            None => Some(Score::ZERO),
            Some(_) => self.score_attr(el, "score", "the constraint is ignored"),
        };
        let influence = self.bool_attr(el, "influence");
        if el.attr("symmetrical").and_then(parse_bool) == Some(true) {
            self.warning(
                el,
                "colocations have no symmetrical attribute any more; it is ignored",
            );
        }
        Colocation {
            element: el,
            id,
            score,
            rsc,
            with_rsc,
            rsc_role: self.role_attr(el, "rsc-role"),
            with_rsc_role: self.role_attr(el, "with-rsc-role"),
            node_attribute: el.attr("node-attribute").unwrap_or("#uname"),
            influence,
            sets,
        }
    }

    fn order(&mut self, el: &'a Element, id: &'a str) -> Order<'a> {
        let sets = self.sets(el);
        let (first, then) = (el.attr("first"), el.attr("then"));
        if sets.is_empty()
            && el.child("resource_set").is_none()
            && (first.is_none() || then.is_none())
        {
            self.error(
                el,
                "this ordering needs both first and then (or resource sets)",
            );
        }
        let kind = match (self.kind_attr(el), el.attr("kind"), el.attr("score")) {
            (Some(k), _, _) => k,
            (None, Some(_), _) => OrderKind::Mandatory,
            (None, None, Some(s)) => {
                self.warning(el, "score in an ordering is deprecated; use kind instead");
                match parse_score(s) {
                    Some(v) if v == Score::ZERO => OrderKind::Optional,
                    Some(_) => OrderKind::Mandatory,
                    None => OrderKind::Optional,
                }
            }
            (None, None, None) => OrderKind::Mandatory,
        };
        let symmetrical = self.bool_attr(el, "symmetrical");
        if symmetrical == Some(true) && kind == OrderKind::Serialize {
            self.warning(el, "symmetrical is ignored for kind Serialize");
        }
        let first_action = self
            .action_attr(el, "first-action")
            .unwrap_or(ConstraintAction::Start);
        let then_action = self.action_attr(el, "then-action").unwrap_or(first_action);
        Order {
            element: el,
            id,
            first,
            then,
            first_action,
            then_action,
            kind,
            symmetrical,
            require_all: self.bool_attr(el, "require-all"),
            sets,
        }
    }

    fn ticket(&mut self, el: &'a Element, id: &'a str) -> TicketConstraint<'a> {
        let sets = self.sets(el);
        let ticket = el.attr("ticket").filter(|s| !s.is_empty());
        if ticket.is_none() {
            self.error(el, "this ticket constraint names no ticket; set ticket");
        }
        let rsc = el.attr("rsc");
        if rsc.is_none() && el.child("resource_set").is_none() {
            self.error(
                el,
                "this ticket constraint names no resource; set rsc or add a resource_set",
            );
        }
        let loss_policy = match el.attr("loss-policy") {
            None => LossPolicy::Stop,
            Some(v) => {
                match v.to_ascii_lowercase().as_str() {
                    "stop" => LossPolicy::Stop,
                    "demote" => LossPolicy::Demote,
                    "fence" => LossPolicy::Fence,
                    "freeze" => LossPolicy::Freeze,
                    _ => {
                        self.error(
                        el,
                        format!("'{v}' is not a valid loss-policy; use stop, demote, fence or freeze"),
                    );
                        LossPolicy::Stop
                    }
                }
            }
        };
        TicketConstraint {
            element: el,
            id,
            ticket,
            rsc,
            rsc_role: self.role_attr(el, "rsc-role"),
            loss_policy,
            sets,
        }
    }

    fn constraint(&mut self, el: &'a Element) -> Option<Constraint<'a>> {
        if !matches!(
            el.name.as_str(),
            "rsc_location" | "rsc_colocation" | "rsc_order" | "rsc_ticket"
        ) {
            return None;
        }
        let id = self.required_id(el, "constraint")?;
        Some(match el.name.as_str() {
            "rsc_location" => Constraint::Location(self.location(el, id)),
            "rsc_colocation" => Constraint::Colocation(self.colocation(el, id)),
            "rsc_order" => Constraint::Order(self.order(el, id)),
            _ => Constraint::Ticket(self.ticket(el, id)),
        })
    }

    // --- status

    fn history_op(&mut self, el: &'a Element) -> Option<HistoryOp<'a>> {
        let Some(id) = id_of(el) else {
            self.warning(el, "this history entry has no id and is ignored");
            return None;
        };
        let int_attr = |b: &mut Self, name: &str| -> Option<i64> {
            let v = el.attr(name)?;
            let n = scan_i64(v);
            if n.is_none() {
                b.warning(el, format!("'{v}' is not a valid {name}"));
            }
            n
        };
        let call_id = int_attr(self, "call-id");
        let rc_code = int_attr(self, "rc-code").map(|v| v as i32);
        let op_status_code = int_attr(self, "op-status").map(|v| v as i32);
        let interval_ms = match el.attr("interval") {
            None => 0,
            Some(v) => scan_u64(v).unwrap_or_else(|| {
                self.warning(el, format!("'{v}' is not a valid interval in milliseconds"));
                0
            }),
        };
        let transition_key = el.attr("transition-key").and_then(|k| {
            let key = TransitionKey::parse(k);
            if key.is_none() {
                self.warning(el, format!("'{k}' is not a valid transition-key"));
            }
            key
        });
        let transition_magic = el.attr("transition-magic").and_then(|m| {
            let magic = TransitionMagic::parse(m);
            if magic.is_none() {
                self.warning(el, format!("'{m}' is not a valid transition-magic"));
            }
            magic
        });
        // Older entries spell the times with underscores.
        let time_attr = |b: &mut Self, dash: &str, under: &str| {
            if el.attr(dash).is_some() {
                int_attr(b, dash)
            } else {
                int_attr(b, under)
            }
        };
        Some(HistoryOp {
            element: el,
            id,
            operation: el.attr("operation"),
            interval_ms,
            call_id,
            rc_code,
            op_status_code,
            op_status: op_status_code.and_then(OpStatus::from_code),
            transition_key,
            transition_magic,
            last_rc_change: time_attr(self, "last-rc-change", "last_rc_change"),
            last_run: time_attr(self, "last-run", "last_run"),
            exec_time: time_attr(self, "exec-time", "exec_time"),
            queue_time: time_attr(self, "queue-time", "queue_time"),
            op_digest: el.attr("op-digest"),
            op_restart_digest: el.attr("op-restart-digest"),
            op_secure_digest: el.attr("op-secure-digest"),
            op_force_restart: el.attr("op-force-restart"),
            op_secure_params: el.attr("op-secure-params"),
            exit_reason: el.attr("exit-reason"),
            on_node: el.attr("on_node"),
            migrate_source: el.attr("migrate_source"),
            migrate_target: el.attr("migrate_target"),
            crm_feature_set: el.attr("crm_feature_set"),
        })
    }

    fn node_state(&mut self, el: &'a Element) -> Option<NodeState<'a>> {
        let Some(id) = id_of(el) else {
            self.error(el, "this node_state has no id and is ignored");
            return None;
        };
        let in_ccm = Presence::member(el.attr("in_ccm"));
        if in_ccm == Presence::Invalid {
            self.warning(
                el,
                format!(
                    "'{}' is not a valid in_ccm (true, false or a time); the node counts as not a member",
                    el.attr("in_ccm").unwrap_or_default()
                ),
            );
        }
        let crmd = Presence::online(el.attr("crmd"));
        if crmd == Presence::Invalid {
            self.warning(
                el,
                format!(
                    "'{}' is not a valid crmd (online, offline or a time); the node counts as offline",
                    el.attr("crmd").unwrap_or_default()
                ),
            );
        }
        let mut transient_attributes = Vec::new();
        for t in el.children_named("transient_attributes") {
            transient_attributes.extend(self.nv_sets(t, "instance_attributes"));
        }
        let mut fail_attrs = Vec::new();
        for set in &transient_attributes {
            for p in &set.pairs {
                if let (Some(n), Some(v)) = (p.name, p.value)
                    && let Some(fa) = FailAttr::parse(n, v)
                {
                    if fa.number.is_none() {
                        self.warning(
                            p.element,
                            format!("'{v}' is not a valid value for {n}; it is ignored"),
                        );
                    }
                    fail_attrs.push(fa);
                }
            }
        }
        let mut resources = Vec::new();
        for lrm in el.children_named("lrm") {
            for lr in lrm.children_named("lrm_resources") {
                for r in lr.children_named("lrm_resource") {
                    let Some(rid) = id_of(r) else {
                        self.warning(r, "this lrm_resource has no id and is ignored");
                        continue;
                    };
                    let ops = r
                        .children_named("lrm_rsc_op")
                        .filter_map(|op| self.history_op(op))
                        .collect();
                    resources.push(LrmResource {
                        element: r,
                        id: rid,
                        class: r.attr("class"),
                        provider: r.attr("provider"),
                        agent_type: r.attr("type"),
                        container: r.attr("container"),
                        ops,
                    });
                }
            }
        }
        Some(NodeState {
            element: el,
            id,
            uname: el.attr("uname"),
            in_ccm,
            crmd,
            join: el.attr("join").map(JoinState::parse),
            expected: el.attr("expected").map(JoinState::parse),
            remote_node: el.attr("remote_node").and_then(parse_bool).unwrap_or(false),
            shutdown: el.attr("shutdown"),
            transient_attributes,
            fail_attrs,
            resources,
        })
    }

    fn status(&mut self, el: &'a Element) -> Status<'a> {
        let node_states = el
            .children_named("node_state")
            .filter_map(|n| self.node_state(n))
            .collect();
        let mut tickets = Vec::new();
        for t in el.children_named("tickets") {
            for ts in t.children_named("ticket_state") {
                let Some(id) = id_of(ts) else {
                    self.warning(ts, "this ticket_state has no id and is ignored");
                    continue;
                };
                tickets.push(TicketState {
                    element: ts,
                    id,
                    granted: ts.attr("granted").and_then(parse_bool).unwrap_or(false),
                    standby: ts.attr("standby").and_then(parse_bool).unwrap_or(false),
                    last_granted: ts.attr("last-granted").and_then(scan_i64),
                });
            }
        }
        Status {
            element: Some(el),
            node_states,
            tickets,
        }
    }
}

impl<'a> Cib<'a> {
    /// Builds the typed view of `doc`. Fails only when `doc` is not a CIB at
    /// all (the root is not `<cib>` or there is no `<configuration>`); every
    /// other problem is in [`Cib::diagnostics`].
    pub fn from_document(doc: &'a Document) -> Result<Cib<'a>, Vec<Diagnostic>> {
        let root = &doc.root;
        if root.name != "cib" {
            return Err(vec![Diagnostic::error(
                root,
                format!("the root element must be <cib>, not <{}>", root.name),
            )]);
        }
        let Some(configuration) = root.child("configuration") else {
            return Err(vec![Diagnostic::error(
                root,
                "there is no <configuration> section; a CIB needs <configuration> with \
                 <crm_config>, <nodes>, <resources> and <constraints>",
            )]);
        };
        let ids = IdIndex::new(configuration);
        let mut b = Builder {
            ids: &ids,
            diags: Vec::new(),
        };

        for section in ["crm_config", "nodes", "resources", "constraints"] {
            if configuration.child(section).is_none() {
                b.error(
                    configuration,
                    format!("the <{section}> section is missing; add an empty <{section}/>"),
                );
            }
        }
        let status_el = root.child("status");
        if status_el.is_none() {
            b.error(
                root,
                "the <status> section is missing; add an empty <status/>",
            );
        }

        let (version, problems) = CibVersion::read(root);
        for problem in problems {
            match problem {
                VersionProblem::Missing(attr) => {
                    b.warning(root, format!("{attr} is missing; 0 is assumed"))
                }
                VersionProblem::Invalid(attr, v) => b.error(
                    root,
                    format!("'{v}' is not a valid {attr} (a non-negative integer); 0 is assumed"),
                ),
            }
        }
        let have_quorum = match root.attr("have-quorum") {
            None => false,
            Some(v) => parse_bool(v).unwrap_or_else(|| {
                b.error(
                    root,
                    format!("'{v}' is not a valid have-quorum; use true or false"),
                );
                false
            }),
        };
        let execution_date = root.attr("execution-date").and_then(|v| {
            let t = time::parse_epoch(v);
            if t.is_none() {
                b.error(
                    root,
                    format!("'{v}' is not a valid execution-date (seconds since the epoch)"),
                );
            }
            t
        });

        let crm_config_el = configuration.child("crm_config");
        let crm_config = crm_config_el
            .map(|c| b.nv_sets(c, "cluster_property_set"))
            .unwrap_or_default();
        let rsc_defaults = configuration
            .child("rsc_defaults")
            .map(|c| b.nv_sets(c, "meta_attributes"))
            .unwrap_or_default();
        let op_defaults = configuration
            .child("op_defaults")
            .map(|c| b.nv_sets(c, "meta_attributes"))
            .unwrap_or_default();

        let nodes = configuration
            .child("nodes")
            .map(|n| n.children_named("node").filter_map(|e| b.node(e)).collect())
            .unwrap_or_default();

        let resources_el = configuration.child("resources");
        let template_els: Vec<&Element> = resources_el
            .map(|r| r.children_named("template").collect())
            .unwrap_or_default();
        let mut resources = Vec::new();
        let mut templates = Vec::new();
        if let Some(r) = resources_el {
            for el in r.elements() {
                if el.name == "template" {
                    templates.extend(b.primitive(el, &template_els));
                } else {
                    resources.extend(b.resource(el, &template_els));
                }
            }
        }

        let mut tags = Vec::new();
        for tags_el in configuration.children_named("tags") {
            for t in tags_el.children_named("tag") {
                let Some(id) = b.required_id(t, "tag") else {
                    continue;
                };
                let refs = t
                    .children_named("obj_ref")
                    .filter_map(|r| match id_of(r) {
                        Some(rid) => Some((r, rid)),
                        None => {
                            b.error(
                                r,
                                format!("an obj_ref of tag '{id}' has no id and is ignored"),
                            );
                            None
                        }
                    })
                    .collect();
                tags.push(Tag {
                    element: t,
                    id,
                    refs,
                });
            }
        }

        let constraints = configuration
            .child("constraints")
            .map(|c| c.elements().filter_map(|e| b.constraint(e)).collect())
            .unwrap_or_default();

        let status = status_el.map(|s| b.status(s)).unwrap_or_default();

        let diags = std::mem::take(&mut b.diags);
        let mut cib = Cib {
            root,
            configuration,
            version,
            validate_with: root.attr("validate-with"),
            crm_feature_set: root.attr("crm_feature_set"),
            have_quorum,
            dc_uuid: root.attr("dc-uuid"),
            execution_date,
            crm_config,
            // Replaced just below; computing the defaults here would parse
            // every option twice per CIB.
            options: ClusterOptions::typed(BTreeMap::new()),
            rsc_defaults,
            op_defaults,
            nodes,
            resources,
            templates,
            tags,
            constraints,
            status,
            diagnostics: diags,
            ids,
        };
        let (options, option_diags) =
            cib.cluster_options_at(execution_date.map(DateTime::from_epoch_seconds));
        cib.options = options;
        cib.diagnostics.extend(option_diags);
        let mut more = Vec::new();
        validate::check_model(&cib, &mut more);
        cib.diagnostics.extend(more);
        cib.diagnostics.sort_by_key(|d| d.pos);
        Ok(cib)
    }

    /// The element with this id in the configuration (the first one, if the
    /// id is used twice).
    pub fn element_by_id(&self, id: &str) -> Option<&'a Element> {
        self.ids.get(id)
    }

    /// Applies the name/value blocks named `set_element` under `parent` for
    /// `ctx`, as Pacemaker does (rules, scores, `id-ref`s; the first value of
    /// a name wins unless `overwrite`).
    pub fn evaluate_sets(
        &self,
        parent: &'a Element,
        set_element: &str,
        ctx: &RuleContext<'_>,
        overwrite: bool,
    ) -> (BTreeMap<String, String>, RuleLog) {
        let mut values = BTreeMap::new();
        let mut log = RuleLog::new();
        let opts = UnpackOptions {
            set_element: Some(set_element),
            first_id: None,
            overwrite,
        };
        let resolve = |id: &str| self.ids.get(id);
        crate::rules::unpack_nvpair_sets_into(parent, &opts, ctx, &resolve, &mut values, &mut log);
        (values, log)
    }

    /// The cluster options as they are at `now` (rules in
    /// `cluster_property_set`s that need a time fail without one), with the
    /// problems found: invalid values (the default is used), legacy names,
    /// broken rules.
    pub fn cluster_options_at(&self, now: Option<DateTime>) -> (ClusterOptions, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut values = BTreeMap::new();
        let mut log = RuleLog::new();
        let mut ctx = RuleContext::new();
        ctx.now = now;
        if let Some(crm_config) = self.configuration.child("crm_config") {
            let opts = UnpackOptions {
                set_element: Some("cluster_property_set"),
                first_id: Some("cib-bootstrap-options"),
                overwrite: false,
            };
            let resolve = |id: &str| self.ids.get(id);
            crate::rules::unpack_nvpair_sets_into(
                crm_config,
                &opts,
                &ctx,
                &resolve,
                &mut values,
                &mut log,
            );
        }
        let mut need_time = false;
        for e in log.errors {
            match e.kind {
                // Validation reports references that resolve to nothing.
                RuleErrorKind::UnresolvedIdRef(_) => {}
                RuleErrorKind::NoTime => need_time = true,
                _ => diags.push(Diagnostic {
                    severity: validate::Severity::Error,
                    pos: e.pos,
                    element: e.element.clone(),
                    id: e.id.clone(),
                    message: e.kind.to_string(),
                }),
            }
        }
        if need_time && let Some(c) = self.configuration.child("crm_config") {
            diags.push(Diagnostic::warning(
                c,
                "some cluster options depend on the date, and this CIB has no execution-date; \
                 those rules were taken as not passing",
            ));
        }
        let crm_config = self.configuration.child("crm_config");
        let options = ClusterOptions::from_values(&values, &mut |p| {
            // Name the nvpair that supplied the value.
            let el = crm_config
                .and_then(|c| {
                    c.descendants().find(|e| {
                        e.name == "nvpair"
                            && e.attr("name") == Some(p.name.as_str())
                            && e.attr("value") == Some(p.value.as_str())
                    })
                })
                .or(crm_config)
                .unwrap_or(self.configuration);
            diags.push(if p.is_error {
                Diagnostic::error(el, p.message)
            } else {
                Diagnostic::warning(el, p.message)
            });
        });
        (options, diags)
    }

    /// Every primitive of the configuration (not templates), depth first in
    /// document order.
    pub fn primitives(&self) -> Vec<&Primitive<'a>> {
        self.resources.iter().flat_map(|r| r.primitives()).collect()
    }

    /// The ids of every configured resource at any depth (groups' members,
    /// clones' children, bundles' primitives), with their elements.
    pub fn resource_ids(&self) -> BTreeMap<&'a str, &'a Element> {
        let mut out = BTreeMap::new();
        for r in &self.resources {
            r.ids_into(&mut out);
        }
        out
    }

    /// The configured node with this name.
    pub fn node_by_name(&self, uname: &str) -> Option<&Node<'a>> {
        self.nodes.iter().find(|n| n.uname == uname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(config: &str, status: &str) -> Document {
        let text = format!(
            "<cib admin_epoch=\"1\" epoch=\"2\" num_updates=\"3\" have-quorum=\"1\" \
             dc-uuid=\"n1\" execution-date=\"1700000000\" validate-with=\"pacemaker-3.9\">\
             <configuration>{config}</configuration><status>{status}</status></cib>"
        );
        Document::parse(&text).unwrap()
    }

    const BASE: &str = "<crm_config/><nodes>\
        <node id=\"n1\" uname=\"node1\"/><node id=\"n2\" uname=\"node2\" type=\"remote\" score=\"5\"/>\
        </nodes><resources/><constraints/>";

    fn errors(cib: &Cib<'_>) -> Vec<String> {
        cib.diagnostics.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn header_and_nodes() {
        let d = doc(BASE, "");
        let cib = Cib::from_document(&d).unwrap();
        assert_eq!(cib.version.to_string(), "1.2.3");
        assert!(cib.have_quorum);
        assert_eq!(cib.dc_uuid, Some("n1"));
        assert_eq!(cib.execution_date, Some(1_700_000_000));
        assert_eq!(cib.validate_with, Some("pacemaker-3.9"));
        let nodes: Vec<_> = cib
            .nodes
            .iter()
            .map(|n| (n.id, n.uname, n.kind, n.score.to_string()))
            .collect();
        assert_eq!(
            nodes,
            [
                ("n1", "node1", NodeKind::Member, "0".to_string()),
                ("n2", "node2", NodeKind::Remote, "5".to_string())
            ]
        );
        assert!(cib.diagnostics.is_empty(), "{:?}", errors(&cib));
        assert!(
            CibVersion {
                admin_epoch: 1,
                epoch: 0,
                num_updates: 0
            } > CibVersion {
                admin_epoch: 0,
                epoch: 9,
                num_updates: 9
            }
        );
    }

    /// Each case: crm_config nvpairs, the option values to check (via
    /// `ClusterOptions::values`), and the diagnostics expected.
    /// crm_config nvpairs, option values expected, diagnostics expected.
    type OptionCase<'s> = (&'s str, &'s [(&'s str, &'s str)], &'s [&'s str]);

    fn check_options(cases: &[OptionCase<'_>]) {
        for (pairs, expected, diags) in cases {
            let config = format!(
                "<crm_config><cluster_property_set id=\"cib-bootstrap-options\">{pairs}\
                 </cluster_property_set></crm_config><nodes/><resources/><constraints/>"
            );
            let d = doc(&config, "");
            let cib = Cib::from_document(&d).unwrap();
            for (name, value) in *expected {
                assert_eq!(
                    cib.options.values.get(*name).map(String::as_str),
                    Some(*value),
                    "{name} for {pairs}"
                );
            }
            let got: Vec<String> = cib
                .diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.id.as_deref().unwrap_or("-"), d.message))
                .collect();
            assert_eq!(got, *diags, "for {pairs}");
        }
    }

    #[test]
    fn cluster_options_defaults_types_and_legacy_names() {
        check_options(&[
            (
                "",
                &[
                    ("fencing-enabled", "true"),
                    ("no-quorum-policy", "stop"),
                    ("cluster-recheck-interval", "15min"),
                    ("node-health-red", "-INFINITY"),
                    ("placement-strategy", "default"),
                ],
                &[],
            ),
            (
                "<nvpair id=\"o1\" name=\"stonith-enabled\" value=\"false\"/>",
                &[("fencing-enabled", "false")],
                &[
                    "o1: cluster option 'stonith-enabled' is a deprecated name; use 'fencing-enabled' instead",
                ],
            ),
            (
                "<nvpair id=\"o1\" name=\"fencing-enabled\" value=\"true\"/>\
                 <nvpair id=\"o2\" name=\"stonith-enabled\" value=\"false\"/>",
                &[("fencing-enabled", "true")],
                &[],
            ),
            (
                "<nvpair id=\"o1\" name=\"no-quorum-policy\" value=\"sometimes\"/>",
                &[("no-quorum-policy", "stop")],
                &[
                    "o1: 'sometimes' is not a valid value for cluster option 'no-quorum-policy' (expected one of stop, freeze, ignore, demote, fence, suicide); using the default 'stop'",
                ],
            ),
            (
                "<nvpair id=\"o1\" name=\"cluster-recheck-interval\" value=\"soon\"/>\
                 <nvpair id=\"o2\" name=\"load-threshold\" value=\"80\"/>\
                 <nvpair id=\"o3\" name=\"batch-limit\" value=\"INFINITY\"/>\
                 <nvpair id=\"o4\" name=\"fencing-max-attempts\" value=\"0\"/>",
                &[
                    ("cluster-recheck-interval", "15min"),
                    ("load-threshold", "80%"),
                    ("batch-limit", "INFINITY"),
                    ("fencing-max-attempts", "10"),
                ],
                &[
                    "o1: 'soon' is not a valid value for cluster option 'cluster-recheck-interval' (expected a time interval such as 60s, 15min or an ISO 8601 duration (PT15M)); using the default '15min'",
                    "o2: '80' is not a valid value for cluster option 'load-threshold' (expected a percentage such as 80%); using the default '80%'",
                    "o4: '0' is not a valid value for cluster option 'fencing-max-attempts' (expected a positive integer or INFINITY); using the default '10'",
                ],
            ),
            (
                "<nvpair id=\"o1\" name=\"no-quorum-policy\" value=\"Suicide\"/>\
                 <nvpair id=\"o2\" name=\"fencing-action\" value=\"OFF\"/>",
                &[
                    ("no-quorum-policy", "Suicide"),
                    ("fencing-action", "reboot"),
                ],
                &[
                    "o2: 'OFF' is not a valid value for cluster option 'fencing-action' (expected one of reboot, off); using the default 'reboot'",
                ],
            ),
        ]);
    }

    #[test]
    fn typed_cluster_options() {
        let mut v = BTreeMap::new();
        for (n, val) in [
            ("stonith-enabled", "no"),
            ("no-quorum-policy", "suicide"),
            ("cluster-recheck-interval", "5min"),
            ("placement-strategy", "Balanced"),
            ("node-health-strategy", "progressive"),
            ("node-health-yellow", "-50"),
            ("load-threshold", "60.5%"),
            ("stonith-action", "off"),
            ("fencing-reaction", "panic"),
            ("migration-limit", "3"),
        ] {
            v.insert(n.to_string(), val.to_string());
        }
        let mut problems = Vec::new();
        let o = ClusterOptions::from_values(&v, &mut |p| problems.push(p));
        assert!(!o.fencing_enabled);
        assert_eq!(o.no_quorum_policy, NoQuorumPolicy::Fence);
        assert_eq!(o.cluster_recheck_interval_ms, 300_000);
        assert_eq!(o.placement_strategy, PlacementStrategy::Balanced);
        assert_eq!(o.node_health_strategy, HealthStrategy::Progressive);
        assert_eq!(o.node_health_yellow, Score::new(-50));
        assert_eq!(o.node_health_red, Score::NEG_INFINITY);
        assert_eq!(o.load_threshold_percent, 60.5);
        assert_eq!(o.fencing_action, FencingAction::Off);
        assert_eq!(o.fencing_reaction, FencingReaction::Panic);
        assert_eq!(o.migration_limit, 3);
        assert_eq!(o.fencing_timeout_ms, 60_000);
        assert!(o.concurrent_fencing && o.startup_fencing && o.symmetric_cluster);
        assert_eq!(problems.len(), 2, "{problems:?}"); // two legacy names
        let d = ClusterOptions::default();
        assert_eq!(d.migration_limit, -1);
        assert_eq!(d.pe_input_series_max, 4000);
        assert_eq!(d.dc_deadtime_ms, 20_000);
    }

    #[test]
    fn options_with_date_rules_follow_execution_date() {
        let config = "<crm_config>\
            <cluster_property_set id=\"later\" score=\"10\"><rule id=\"r\">\
            <date_expression id=\"d\" operation=\"gt\" start=\"2030-01-01\"/></rule>\
            <nvpair id=\"a\" name=\"maintenance-mode\" value=\"true\"/></cluster_property_set>\
            <cluster_property_set id=\"cib-bootstrap-options\">\
            <nvpair id=\"b\" name=\"batch-limit\" value=\"7\"/></cluster_property_set>\
            </crm_config><nodes/><resources/><constraints/>";
        let d = doc(config, "");
        let cib = Cib::from_document(&d).unwrap();
        assert!(!cib.options.maintenance_mode);
        assert_eq!(cib.options.batch_limit, 7);
        let later = DateTime::parse("2031-01-01").unwrap();
        let (o, diags) = cib.cluster_options_at(Some(later));
        assert!(o.maintenance_mode && diags.is_empty());
        let (o, diags) = cib.cluster_options_at(None);
        assert!(!o.maintenance_mode);
        assert_eq!(diags.len(), 1, "{diags:?}");
    }

    #[test]
    fn resource_tree() {
        let config = "<crm_config/><nodes/><resources>\
            <template id=\"t\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\"/>\
            <primitive id=\"ip\" template=\"t\"><instance_attributes id=\"ip-ia\">\
              <nvpair id=\"ip-ia-1\" name=\"ip\" value=\"10.0.0.1\"/></instance_attributes></primitive>\
            <group id=\"g\"><meta_attributes id=\"g-m\"><nvpair id=\"g-m-1\" name=\"target-role\" value=\"Started\"/></meta_attributes>\
              <primitive id=\"a\" class=\"lsb\" type=\"a\"><operations>\
                <op id=\"a-mon\" name=\"monitor\" interval=\"10s\" role=\"Slave\" timeout=\"20s\"/>\
                <op id=\"a-start\" name=\"start\" interval=\"0\"/></operations></primitive>\
              <primitive id=\"b\" class=\"systemd\" type=\"b\"/></group>\
            <clone id=\"c\"><group id=\"cg\"><primitive id=\"c1\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/></group></clone>\
            <master id=\"m\"><primitive id=\"s\" class=\"ocf\" provider=\"pacemaker\" type=\"Stateful\"/></master>\
            <bundle id=\"bun\"><podman image=\"img\" replicas=\"2\"/>\
              <network ip-range-start=\"10.0.0.10\"><port-mapping id=\"pm\" port=\"80\"/></network>\
              <storage><storage-mapping id=\"sm\" source-dir=\"/a\" target-dir=\"/b\" options=\"rw\"/></storage>\
              <primitive id=\"web\" class=\"ocf\" provider=\"heartbeat\" type=\"apache\"/></bundle>\
            </resources><constraints/>";
        let d = doc(config, "");
        let cib = Cib::from_document(&d).unwrap();
        assert!(cib.diagnostics.is_empty(), "{:?}", errors(&cib));
        let ids: Vec<_> = cib.primitives().iter().map(|p| p.id).collect();
        assert_eq!(ids, ["ip", "a", "b", "c1", "s", "web"]);
        assert_eq!(cib.templates.len(), 1);
        let Resource::Primitive(ip) = &cib.resources[0] else {
            panic!()
        };
        assert_eq!(ip.agent.unwrap().to_string(), "ocf:heartbeat:IPaddr2");
        assert_eq!(ip.template, Some("t"));
        assert_eq!(
            unconditional_values(&ip.instance_attributes).get("ip"),
            Some(&"10.0.0.1")
        );
        let Resource::Group(g) = &cib.resources[1] else {
            panic!()
        };
        let mon = &g.children[0].ops[0];
        assert_eq!(
            (mon.name, mon.interval_ms, mon.role, mon.timeout),
            (Some("monitor"), 10_000, Some(Role::Unpromoted), Some("20s"))
        );
        let Resource::Clone(m) = &cib.resources[3] else {
            panic!()
        };
        assert!(m.legacy_master);
        let Resource::Bundle(bun) = &cib.resources[4] else {
            panic!()
        };
        assert_eq!(bun.container_kind, Some(ContainerKind::Podman));
        assert_eq!(bun.port_mappings.len(), 1);
        assert_eq!(bun.storage_mappings.len(), 1);
        let rids: Vec<_> = cib.resource_ids().into_keys().collect();
        assert_eq!(
            rids,
            ["a", "b", "bun", "c", "c1", "cg", "g", "ip", "m", "s", "web"]
        );
    }

    #[test]
    fn constraints() {
        let config = "<crm_config/><nodes><node id=\"n1\" uname=\"node1\"/></nodes><resources>\
            <primitive id=\"a\" class=\"lsb\" type=\"a\"/><primitive id=\"b\" class=\"lsb\" type=\"b\"/>\
            </resources><constraints>\
            <rsc_location id=\"l1\" rsc=\"a\" node=\"node1\" score=\"-INFINITY\" resource-discovery=\"never\"/>\
            <rsc_location id=\"l2\" rsc-pattern=\"^b\" role=\"Master\"><rule id=\"l2-r\" score=\"10\">\
              <expression id=\"l2-e\" attribute=\"#uname\" operation=\"eq\" value=\"node1\"/></rule></rsc_location>\
            <rsc_colocation id=\"c1\" rsc=\"a\" with-rsc=\"b\" score=\"100\" with-rsc-role=\"Promoted\" \
              node-attribute=\"rack\" influence=\"false\"/>\
            <rsc_order id=\"o1\" first=\"a\" then=\"b\" first-action=\"promote\" kind=\"Serialize\"/>\
            <rsc_order id=\"o2\" score=\"0\" symmetrical=\"false\"><resource_set id=\"s1\" sequential=\"false\">\
              <resource_ref id=\"a\"/><resource_ref id=\"b\"/></resource_set></rsc_order>\
            <rsc_ticket id=\"t1\" rsc=\"a\" ticket=\"T\" loss-policy=\"demote\"/>\
            </constraints>";
        let d = doc(config, "");
        let cib = Cib::from_document(&d).unwrap();
        let msgs = errors(&cib);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].contains("score in an ordering is deprecated"),
            "{msgs:?}"
        );
        let [
            Constraint::Location(l1),
            Constraint::Location(l2),
            Constraint::Colocation(c1),
            Constraint::Order(o1),
            Constraint::Order(o2),
            Constraint::Ticket(t1),
        ] = &cib.constraints[..]
        else {
            panic!("{:?}", cib.constraints)
        };
        assert_eq!(
            (l1.node, l1.score, l1.discovery),
            (Some("node1"), Some(Score::NEG_INFINITY), Discovery::Never)
        );
        assert_eq!(
            (l2.rsc_pattern, l2.role, l2.rules.len()),
            (Some("^b"), Some(Role::Promoted), 1)
        );
        assert_eq!(
            (c1.score, c1.with_rsc_role, c1.node_attribute, c1.influence),
            (
                Some(Score::new(100)),
                Some(Role::Promoted),
                "rack",
                Some(false)
            )
        );
        assert_eq!(
            (
                o1.first_action,
                o1.then_action,
                o1.kind,
                o1.is_symmetrical()
            ),
            (
                ConstraintAction::Promote,
                ConstraintAction::Promote,
                OrderKind::Serialize,
                false
            )
        );
        assert_eq!(
            (o2.kind, o2.is_symmetrical(), o2.sets.len()),
            (OrderKind::Optional, false, 1)
        );
        let ids: Vec<_> = o2.sets[0].resources.iter().map(|(_, id)| *id).collect();
        assert_eq!((ids, o2.sets[0].sequential), (vec!["a", "b"], Some(false)));
        assert_eq!((t1.ticket, t1.loss_policy), (Some("T"), LossPolicy::Demote));
    }

    #[test]
    fn status_section() {
        let status = "<node_state id=\"n1\" uname=\"node1\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">\
            <transient_attributes id=\"n1\"><instance_attributes id=\"st-n1\">\
              <nvpair id=\"f1\" name=\"fail-count-web#monitor_10000\" value=\"3\"/>\
              <nvpair id=\"f2\" name=\"last-failure-web#monitor_10000\" value=\"1699999999\"/>\
              <nvpair id=\"f3\" name=\"fail-count-db:1#migrate_to_0\" value=\"INFINITY\"/>\
              <nvpair id=\"f4\" name=\"fail-count-old\" value=\"1\"/>\
              <nvpair id=\"f5\" name=\"probe_complete\" value=\"true\"/>\
            </instance_attributes></transient_attributes>\
            <lrm id=\"n1\"><lrm_resources><lrm_resource id=\"web\" class=\"ocf\" provider=\"heartbeat\" type=\"apache\">\
              <lrm_rsc_op id=\"web_last_0\" operation=\"start\" interval=\"0\" call-id=\"4\" rc-code=\"0\" op-status=\"0\" \
                transition-key=\"3:7:0:6f2a8f8c-5e5c-4a4e-9f0b-3c1d2e3f4a5b\" \
                transition-magic=\"0:0;3:7:0:6f2a8f8c-5e5c-4a4e-9f0b-3c1d2e3f4a5b\" \
                last-rc-change=\"1699999000\" op-digest=\"abc\"/>\
              <lrm_rsc_op id=\"web_monitor_10000\" operation=\"monitor\" interval=\"10000\" call-id=\"5\" rc-code=\"7\" op-status=\"0\" \
                transition-key=\"4:7:0:6f2a8f8c-5e5c-4a4e-9f0b-3c1d2e3f4a5b\"/>\
            </lrm_resource></lrm_resources></lrm></node_state>\
            <node_state id=\"n2\" uname=\"node2\" in_ccm=\"1700000000\" crmd=\"0\"/>\
            <node_state id=\"n3\" uname=\"node3\" in_ccm=\"sometimes\"/>\
            <tickets><ticket_state id=\"T\" granted=\"true\" last-granted=\"1699990000\"/></tickets>";
        let d = doc(BASE, status);
        let cib = Cib::from_document(&d).unwrap();
        let msgs = errors(&cib);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(
            msgs[0].contains("'sometimes' is not a valid in_ccm"),
            "{msgs:?}"
        );
        let [n1, n2, n3] = &cib.status.node_states[..] else {
            panic!()
        };
        assert_eq!(
            (n1.in_ccm, n1.crmd),
            (Presence::Up { since: None }, Presence::Up { since: None })
        );
        assert_eq!(
            (n1.join, n1.expected),
            (Some(JoinState::Member), Some(JoinState::Member))
        );
        assert_eq!(
            (n2.in_ccm, n2.crmd),
            (
                Presence::Up {
                    since: Some(1_700_000_000)
                },
                Presence::Down
            )
        );
        assert_eq!((n3.in_ccm, n3.crmd), (Presence::Invalid, Presence::Absent));
        let fa: Vec<_> = n1
            .fail_attrs
            .iter()
            .map(|f| (f.kind, f.resource, f.base_resource(), f.op, f.number))
            .collect();
        assert_eq!(
            fa,
            [
                (
                    FailAttrKind::FailCount,
                    "web",
                    "web",
                    Some(("monitor", 10_000)),
                    Some(3)
                ),
                (
                    FailAttrKind::LastFailure,
                    "web",
                    "web",
                    Some(("monitor", 10_000)),
                    Some(1_699_999_999)
                ),
                (
                    FailAttrKind::FailCount,
                    "db:1",
                    "db",
                    Some(("migrate_to", 0)),
                    Some(1_000_000)
                ),
                (FailAttrKind::FailCount, "old", "old", None, Some(1)),
            ]
        );
        let hist: Vec<_> = cib.status.history().collect();
        assert_eq!(hist.len(), 2);
        let (_, r, op) = hist[0];
        assert_eq!((r.id, r.agent_type), ("web", Some("apache")));
        assert_eq!(
            (
                op.operation,
                op.call_id,
                op.rc_code,
                op.op_status,
                op.target_rc(),
                op.last_rc_change
            ),
            (
                Some("start"),
                Some(4),
                Some(0),
                Some(OpStatus::Done),
                0,
                Some(1_699_999_000)
            )
        );
        let key = op.transition_key.unwrap();
        assert_eq!(
            (key.action_id, key.transition_id, key.uuid.len()),
            (3, 7, 36)
        );
        assert_eq!(op.transition_magic.unwrap().rc, 0);
        assert_eq!(hist[1].2.interval_ms, 10_000);
        assert_eq!(cib.status.tickets[0].id, "T");
        assert!(cib.status.tickets[0].granted);
        assert_eq!(cib.status.tickets[0].last_granted, Some(1_699_990_000));
    }

    #[test]
    fn decoders() {
        assert_eq!(FailAttr::parse("fail-count-x#bad", "1"), None);
        assert_eq!(FailAttr::parse("fail-count-x#op_1s", "1"), None);
        assert_eq!(FailAttr::parse("other", "1"), None);
        assert_eq!(TransitionKey::parse("1:2"), None);
        assert_eq!(TransitionKey::parse("1:2:x:abc"), None);
        assert_eq!(TransitionKey::parse("1:2:7:abc").unwrap().target_rc, 7);
        assert_eq!(
            TransitionMagic::parse("2:1;1:2:7:abc").unwrap().op_status,
            2
        );
        assert_eq!(strip_instance("a:12"), "a");
        assert_eq!(strip_instance("a:b"), "a:b");
        for (s, want) in [
            ("INFINITY", Some(Score::INFINITY)),
            ("+INFINITY", Some(Score::INFINITY)),
            ("-INFINITY", Some(Score::NEG_INFINITY)),
            ("infinity", None),
            ("12abc", Some(Score::new(12))),
            ("Red", Some(Score::NEG_INFINITY)),
            ("", None),
            ("5000000", Some(Score::INFINITY)),
        ] {
            assert_eq!(parse_score(s), want, "{s}");
        }
        for (s, want) in [("Yes", Some(true)), ("0", Some(false)), ("maybe", None)] {
            assert_eq!(parse_bool(s), want, "{s}");
        }
        for (s, want) in [
            ("80%", true),
            (" 5.5%", true),
            (".5%", true),
            ("%", true),
            ("80", false),
            ("-1%", false),
            ("1.2.3%", false),
            ("x%", false),
        ] {
            assert_eq!(option_value_valid(OptKind::Percentage, s), want, "{s}");
        }
    }

    #[test]
    fn not_a_cib() {
        let d = Document::parse("<foo/>").unwrap();
        let e = Cib::from_document(&d).unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "1:1: <foo>: the root element must be <cib>, not <foo>"
        );
        let d = Document::parse("<cib><status/></cib>").unwrap();
        assert!(
            Cib::from_document(&d).unwrap_err()[0]
                .message
                .contains("no <configuration>")
        );
    }
}
