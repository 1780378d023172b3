//! What went wrong, for an operator: the failed operations the history
//! records (crm_mon's "Failed Resource Actions") and the fail counts per
//! resource and node.

use crate::Scheduler;

/// One failed operation as the history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAction {
    /// `RSC_OPERATION_INTERVAL`.
    pub operation_key: String,
    pub resource: String,
    pub node: String,
    pub rc: i32,
    /// The execution status (`op-status`).
    pub status: i32,
    pub exit_reason: String,
    pub call_id: i64,
    /// Seconds since the epoch (0 when not recorded).
    pub last_rc_change: i64,
    pub exec_ms: u64,
    pub queue_ms: u64,
}

/// A resource's fail count on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailCount {
    pub resource: String,
    pub node: String,
    /// The count (1000000 is INFINITY), with failures past
    /// `failure-timeout` left out.
    pub count: i32,
    /// When it last failed (seconds since the epoch).
    pub last_failure: i64,
    /// `migration-threshold` (0: none): at the count, it leaves the node.
    pub threshold: i32,
}

/// The words for an OCF exit status, as operators know them.
pub fn rc_text(rc: i32) -> &'static str {
    match rc {
        0 => "ok",
        1 => "error",
        2 => "invalid parameter",
        3 => "unimplemented feature",
        4 => "insufficient privileges",
        5 => "not installed",
        6 => "not configured",
        7 => "not running",
        8 => "promoted",
        9 => "promoted (failed)",
        190 => "degraded",
        191 => "promoted (degraded)",
        _ => "unknown",
    }
}

/// The words for an execution status (`op-status`).
pub fn status_text(status: i32) -> &'static str {
    match status {
        -1 => "pending",
        0 => "complete",
        1 => "cancelled",
        2 => "timed out",
        3 => "not supported",
        4 => "error",
        5 => "error (hard)",
        6 => "error (fatal)",
        7 => "not installed",
        8 => "not connected",
        9 => "invalid",
        10 => "no fence device",
        11 => "no secrets",
        _ => "unknown",
    }
}

impl Scheduler {
    /// The failed operations the history shows (cleared ones and those
    /// past their `failure-timeout` are not there), oldest first.
    pub fn failed_actions(&self) -> Vec<FailedAction> {
        let num = |e: &vigil_cib::xml::Element, k: &str| -> i64 {
            e.attr(k).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let mut out: Vec<FailedAction> = self
            .failed_ops
            .iter()
            .map(|(_, n, r, op)| FailedAction {
                operation_key: op.attr("operation_key").unwrap_or_default().to_string(),
                resource: self.resources[*r].id.clone(),
                node: self.nodes[*n].uname.clone(),
                rc: num(op, "rc-code") as i32,
                status: num(op, "op-status") as i32,
                exit_reason: op.attr("exit-reason").unwrap_or_default().to_string(),
                call_id: op
                    .attr("call-id")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(-1),
                last_rc_change: num(op, "last-rc-change"),
                exec_ms: num(op, "exec-time").max(0) as u64,
                queue_ms: num(op, "queue-time").max(0) as u64,
            })
            .collect();
        out.sort_by_key(|f| (f.last_rc_change, f.node.clone(), f.operation_key.clone()));
        out
    }

    /// Every resource's fail count on every node where it is not zero.
    pub fn fail_counts(&self) -> Vec<FailCount> {
        let mut out = Vec::new();
        for (r, rsc) in self.resources.iter().enumerate() {
            if !rsc.children.is_empty() {
                continue;
            }
            for (n, node) in self.nodes.iter().enumerate() {
                let (count, last_failure) = self.failcount(n, r, true);
                if count > 0 {
                    out.push(FailCount {
                        resource: rsc.id.clone(),
                        node: node.uname.clone(),
                        count,
                        last_failure,
                        threshold: rsc.migration_threshold,
                    });
                }
            }
        }
        out
    }
}
