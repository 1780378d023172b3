//! The CIB status section as the controller writes it: a node's
//! operation history (`lrm_resource` with `lrm_rsc_op` entries) in the form
//! Pacemaker's scheduler reads, so that the scheduler decides from what
//! the executors report.

use std::collections::BTreeMap;

use vigil_cib::xml::Element;

/// The CRM feature set written with each entry.
pub const FEATURE_SET: &str = vigil_scheduler::digest::CURRENT_FEATURE_SET;

/// A transition key: which action of which transition an operation was,
/// what result it expected, and which DC asked (`ACTION:TRANSITION:RC:UUID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionKey {
    pub action: u32,
    pub transition: u64,
    pub target_rc: i32,
    pub uuid: String,
}

impl TransitionKey {
    pub fn parse(s: &str) -> Option<TransitionKey> {
        let mut parts = s.splitn(4, ':');
        Some(TransitionKey {
            action: parts.next()?.parse().ok()?,
            transition: parts.next()?.parse().ok()?,
            target_rc: parts.next()?.parse().ok()?,
            uuid: parts.next()?.to_string(),
        })
    }
}

impl std::fmt::Display for TransitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.action, self.transition, self.target_rc, self.uuid
        )
    }
}

/// One operation result to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    pub resource: String,
    pub class: String,
    pub provider: Option<String>,
    pub kind: String,
    pub operation: String,
    pub interval_ms: u64,
    pub node: String,
    /// The transition key the operation ran under (none for operations
    /// the cluster did not ask for, such as probes at join).
    pub key: Option<TransitionKey>,
    pub rc: i32,
    pub op_status: i32,
    pub exit_reason: String,
    /// The executor's call id; -1 for an operation still running
    /// (recorded as pending).
    pub call_id: i64,
    pub last_run: i64,
    pub last_rc_change: i64,
    pub exec_ms: u64,
    pub queue_ms: u64,
    /// `op-digest`: the digest of the parameters it ran with.
    pub digest: Option<String>,
    /// Whether it failed (the executor's judgement against the expected
    /// result).
    pub failed: bool,
}

/// The digest of an operation's parameters as the scheduler compares it
/// (`op-digest`): the parameters and, for recurring operations, the
/// interval and timeout.
pub fn op_digest(
    params: &BTreeMap<String, String>,
    interval_ms: u64,
    timeout_ms: u64,
    fencing: bool,
) -> String {
    let none = BTreeMap::new();
    let input = vigil_scheduler::digest::DigestInput {
        params,
        op_params: &none,
        interval_ms: u32::try_from(interval_ms).unwrap_or(u32::MAX),
        timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
        fencing,
        cib_feature_set: Some(FEATURE_SET),
    };
    vigil_scheduler::digest::compute_digests(&input, None, false).all
}

impl OpResult {
    /// `RSC_OPERATION_INTERVAL`.
    pub fn operation_key(&self) -> String {
        format!("{}_{}_{}", self.resource, self.operation, self.interval_ms)
    }

    /// The `lrm_rsc_op` entry with id `id`.
    pub fn entry(&self, id: &str) -> Element {
        let mut e = Element::new("lrm_rsc_op");
        let set = |e: &mut Element, k: &str, v: String| e.set_attr(k, v);
        set(&mut e, "id", id.to_string());
        set(&mut e, "operation_key", self.operation_key());
        set(&mut e, "operation", self.operation.clone());
        set(&mut e, "crm-debug-origin", "vigil-controld".into());
        set(&mut e, "crm_feature_set", FEATURE_SET.into());
        if let Some(k) = &self.key {
            set(&mut e, "transition-key", k.to_string());
            set(
                &mut e,
                "transition-magic",
                format!("{}:{};{k}", self.op_status, self.rc),
            );
        }
        if !self.exit_reason.is_empty() {
            set(&mut e, "exit-reason", self.exit_reason.clone());
        }
        set(&mut e, "on_node", self.node.clone());
        set(&mut e, "call-id", self.call_id.to_string());
        set(&mut e, "rc-code", self.rc.to_string());
        set(&mut e, "op-status", self.op_status.to_string());
        set(&mut e, "interval", self.interval_ms.to_string());
        if self.interval_ms == 0 {
            set(&mut e, "last-run", self.last_run.to_string());
        }
        set(&mut e, "last-rc-change", self.last_rc_change.to_string());
        set(&mut e, "exec-time", self.exec_ms.to_string());
        set(&mut e, "queue-time", self.queue_ms.to_string());
        if let Some(d) = &self.digest {
            set(&mut e, "op-digest", d.clone());
        }
        e
    }
}

/// The `op-status` of an operation still running.
pub const PENDING: i32 = -1;
/// The `op-status` of an operation that timed out.
pub const TIMED_OUT: i32 = 2;
/// The `op-status` of an operation that could not be run.
pub const EXEC_ERROR: i32 = 4;
/// The `rc-code` of an operation with no result yet (or none at all).
pub const RC_UNKNOWN: i32 = 193;
/// OCF's generic error.
pub const RC_ERROR: i32 = 1;

/// Records `r` in a node's `lrm_resources` element, as Pacemaker keeps
/// history: one `RSC_last_0` for the last one-shot operation, one
/// `RSC_OPERATION_INTERVAL` per recurring operation, and
/// `RSC_last_failure_0` for the last failure (kept until a cleanup). A
/// successful stop (or migrate_to) drops the resource's recurring entries:
/// they ended with it. A result older (by call id) than the one recorded
/// in its place changes nothing, so results replayed out of order leave
/// the newest; a pending entry (call id -1) always takes its place.
pub fn record(lrm_resources: &mut Element, r: &OpResult) {
    let found = lrm_resources
        .elements()
        .position(|e| e.name == "lrm_resource" && e.attr("id") == Some(r.resource.as_str()));
    let rsc = match found {
        Some(i) => lrm_resources.elements_mut().nth(i).expect("found above"),
        None => {
            let mut e = Element::new("lrm_resource");
            e.set_attr("id", r.resource.clone());
            e.set_attr("type", r.kind.clone());
            e.set_attr("class", r.class.clone());
            if let Some(p) = &r.provider {
                e.set_attr("provider", p.clone());
            }
            lrm_resources.push(e)
        }
    };
    let id = if r.interval_ms > 0 {
        r.operation_key()
    } else {
        format!("{}_last_0", r.resource)
    };
    if !put(rsc, r.entry(&id), r.call_id) {
        return;
    }
    if r.failed {
        put(
            rsc,
            r.entry(&format!("{}_last_failure_0", r.resource)),
            r.call_id,
        );
    }
    if r.interval_ms == 0 && !r.failed && matches!(r.operation.as_str(), "stop" | "migrate_to") {
        rsc.children.retain(|n| match n {
            vigil_cib::xml::Node::Element(e) => {
                e.name != "lrm_rsc_op"
                    || e.attr("interval").is_none_or(|i| i == "0")
                    || e.attr("id")
                        .is_some_and(|id| id.ends_with("_last_failure_0"))
            }
            _ => true,
        });
    }
}

/// Replaces (or adds) the entry with the same id, unless the one there
/// is newer (a higher call id than `call_id`, both real): whether it was
/// put.
fn put(rsc: &mut Element, entry: Element, call_id: i64) -> bool {
    let id = entry.attr("id").unwrap_or_default().to_string();
    for e in rsc.elements_mut() {
        if e.name == "lrm_rsc_op" && e.attr("id") == Some(id.as_str()) {
            let old: i64 = e.attr("call-id").and_then(|c| c.parse().ok()).unwrap_or(-1);
            if call_id >= 0 && old > call_id {
                return false;
            }
            *e = entry;
            return true;
        }
    }
    rsc.push(entry);
    true
}

/// Drops a resource's `RSC_last_failure_0` (a cleared fail count):
/// whether there was one.
pub fn forget_last_failure(lrm_resources: &mut Element, resource: &str) -> bool {
    let id = format!("{resource}_last_failure_0");
    let mut found = false;
    for rsc in lrm_resources.elements_mut() {
        if rsc.name == "lrm_resource" && rsc.attr("id") == Some(resource) {
            rsc.children.retain(|n| match n {
                vigil_cib::xml::Node::Element(e) if e.attr("id") == Some(id.as_str()) => {
                    found = true;
                    false
                }
                _ => true,
            });
        }
    }
    found
}

/// Drops the entry of a cancelled recurring operation (its key,
/// `RSC_OPERATION_INTERVAL`), so that the scheduler schedules it again
/// when it is wanted: whether there was one.
pub fn forget_recurring(lrm_resources: &mut Element, resource: &str, key: &str) -> bool {
    let mut found = false;
    for rsc in lrm_resources.elements_mut() {
        if rsc.name == "lrm_resource" && rsc.attr("id") == Some(resource) {
            rsc.children.retain(|n| match n {
                vigil_cib::xml::Node::Element(e) if e.attr("id") == Some(key) => {
                    found = true;
                    false
                }
                _ => true,
            });
        }
    }
    found
}

/// The `lrm_resource` of `resource` in `lrm_resources`, if recorded.
pub fn resource_entry<'a>(lrm_resources: &'a Element, resource: &str) -> Option<&'a Element> {
    lrm_resources
        .elements()
        .find(|e| e.name == "lrm_resource" && e.attr("id") == Some(resource))
}

/// A `node_state` element for a node the controller reports on, with an
/// empty history (`lrm` / `lrm_resources`) when it has none yet.
pub fn node_state(id: &str, uname: &str, online: bool) -> Element {
    let mut ns = Element::new("node_state");
    ns.set_attr("id", id);
    ns.set_attr("uname", uname);
    ns.set_attr("in_ccm", if online { "true" } else { "false" });
    ns.set_attr("crmd", if online { "online" } else { "offline" });
    ns.set_attr("crm-debug-origin", "vigil-controld");
    ns.set_attr("join", if online { "member" } else { "down" });
    ns.set_attr("expected", if online { "member" } else { "down" });
    let mut lrm = Element::new("lrm");
    lrm.set_attr("id", id);
    lrm.push(Element::new("lrm_resources"));
    ns.push(lrm);
    ns
}

/// The `lrm_resources` of a `node_state` (created when missing).
pub fn lrm_resources(node_state: &mut Element) -> &mut Element {
    let id = node_state.attr("id").unwrap_or_default().to_string();
    if node_state.child("lrm").is_none() {
        let mut lrm = Element::new("lrm");
        lrm.set_attr("id", id);
        node_state.push(lrm);
    }
    let lrm = node_state.child_mut("lrm").expect("added above");
    if lrm.child("lrm_resources").is_none() {
        lrm.push(Element::new("lrm_resources"));
    }
    lrm.child_mut("lrm_resources").expect("added above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_cib::xml::Document;
    use vigil_scheduler::{Options, Scheduler};

    fn result(op: &str, interval_ms: u64, rc: i32, call_id: i64) -> OpResult {
        let params = BTreeMap::from([("state".to_string(), "/run/web.state".to_string())]);
        OpResult {
            resource: "web".into(),
            class: "ocf".into(),
            provider: Some("heartbeat".into()),
            kind: "Dummy".into(),
            operation: op.into(),
            interval_ms,
            node: "n1".into(),
            key: Some(TransitionKey {
                action: 4,
                transition: 2,
                target_rc: 0,
                uuid: "dc-uuid".into(),
            }),
            rc,
            op_status: 0,
            exit_reason: String::new(),
            call_id,
            last_run: 1_700_000_000,
            last_rc_change: 1_700_000_000,
            exec_ms: 10,
            queue_ms: 0,
            digest: Some(op_digest(
                &params,
                interval_ms,
                if interval_ms > 0 { 20_000 } else { 0 },
                false,
            )),
            failed: rc != 0 && !(op == "monitor" && interval_ms == 0),
        }
    }

    const CIB: &str = r#"<cib crm_feature_set="3.20.5" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0" have-quorum="1" dc-uuid="1">
  <configuration>
    <crm_config><cluster_property_set id="o"><nvpair id="o1" name="stonith-enabled" value="false"/></cluster_property_set></crm_config>
    <nodes><node id="1" uname="n1"/><node id="2" uname="n2"/></nodes>
    <resources>
      <primitive id="web" class="ocf" provider="heartbeat" type="Dummy">
        <instance_attributes id="web-a"><nvpair id="web-s" name="state" value="/run/web.state"/></instance_attributes>
        <operations><op id="web-m" name="monitor" interval="10s" timeout="20s"/></operations>
      </primitive>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>"#;

    fn schedule(states: Vec<Element>) -> (Vec<String>, String) {
        let mut doc = Document::parse(CIB).unwrap();
        let status = doc.root.child_mut("status").unwrap();
        for s in states {
            status.push(s);
        }
        let s = Scheduler::run(
            &doc,
            &Options {
                now: Some(1_700_000_100),
            },
        );
        (s.transition_summary(), s.graph_xml())
    }

    #[test]
    fn the_scheduler_reads_what_the_controller_records() {
        let mut n1 = node_state("1", "n1", true);
        let n2 = {
            let mut n = node_state("2", "n2", true);
            let mut probe = result("monitor", 0, 7, 1);
            probe.node = "n2".into();
            record(lrm_resources(&mut n), &probe);
            n
        };
        record(lrm_resources(&mut n1), &result("monitor", 0, 7, 1));
        record(lrm_resources(&mut n1), &result("start", 0, 0, 2));
        record(lrm_resources(&mut n1), &result("monitor", 10_000, 0, 3));
        let (summary, graph) = schedule(vec![n1.clone(), n2.clone()]);
        assert!(
            summary.is_empty(),
            "web runs on n1 as recorded: {summary:?}\n{graph}"
        );
        // A failed monitor is recorded as the last failure, and the
        // scheduler recovers the resource.
        record(lrm_resources(&mut n1), &result("monitor", 10_000, 7, 4));
        let ids: Vec<&str> = n1
            .descendants()
            .filter(|e| e.name == "lrm_rsc_op")
            .filter_map(|e| e.attr("id"))
            .collect();
        assert_eq!(
            ids,
            ["web_last_0", "web_monitor_10000", "web_last_failure_0"]
        );
        let (summary, _) = schedule(vec![n1.clone(), n2]);
        assert_eq!(summary.len(), 1, "{summary:?}");
        assert!(
            summary[0].contains("Recover") && summary[0].contains("web"),
            "{summary:?}"
        );
        // A stop ends the recurring monitor's entry.
        record(lrm_resources(&mut n1), &result("stop", 0, 0, 5));
        let ids: Vec<&str> = n1
            .descendants()
            .filter(|e| e.name == "lrm_rsc_op")
            .filter_map(|e| e.attr("id"))
            .collect();
        assert_eq!(ids, ["web_last_0", "web_last_failure_0"]);
    }

    #[test]
    fn older_results_do_not_replace_newer_ones_and_pending_is_recorded() {
        let mut n1 = node_state("1", "n1", true);
        let lrm = lrm_resources(&mut n1);
        record(lrm, &result("start", 0, 0, 5));
        // A failure replayed after (older call id): the last operation
        // stays the start.
        record(lrm, &result("monitor", 0, 1, 3));
        let last = |lrm: &Element| {
            let e = resource_entry(lrm, "web")
                .unwrap()
                .elements()
                .find(|e| e.attr("id") == Some("web_last_0"))
                .unwrap()
                .clone();
            (
                e.attr("operation").unwrap().to_string(),
                e.attr("call-id").unwrap().to_string(),
                e.attr("op-status").unwrap().to_string(),
            )
        };
        assert_eq!(last(lrm), ("start".into(), "5".into(), "0".into()));
        // A stop running: pending, whatever came before.
        let mut pending = result("stop", 0, RC_UNKNOWN, -1);
        pending.op_status = PENDING;
        pending.failed = false;
        record(lrm, &pending);
        assert_eq!(last(lrm), ("stop".into(), "-1".into(), "-1".into()));
        // Its result replaces it.
        record(lrm, &result("stop", 0, 0, 6));
        assert_eq!(last(lrm), ("stop".into(), "6".into(), "0".into()));
        // A failure, then its cleared fail count.
        record(lrm, &result("start", 0, 1, 7));
        record(lrm, &result("monitor", 10_000, 0, 8));
        assert!(forget_recurring(lrm, "web", "web_monitor_10000"));
        assert!(!forget_recurring(lrm, "web", "web_monitor_10000"));
        assert!(forget_last_failure(lrm, "web"));
        assert!(!forget_last_failure(lrm, "web"));
        assert_eq!(last(lrm), ("start".into(), "7".into(), "0".into()));
    }

    #[test]
    fn transition_keys() {
        let k = TransitionKey::parse("12:4:0:871e5928-80bf-4347").unwrap();
        assert_eq!((k.action, k.transition, k.target_rc), (12, 4, 0));
        assert_eq!(k.to_string(), "12:4:0:871e5928-80bf-4347");
        assert!(TransitionKey::parse("x:1:0:u").is_none());
        let e = result("start", 0, 1, 9).entry("web_last_0");
        assert_eq!(e.attr("transition-magic"), Some("0:1;4:2:0:dc-uuid"));
        assert_eq!(e.attr("last-run"), Some("1700000000"));
    }
}
