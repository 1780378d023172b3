//! The other crm_simulate sections: cluster status before and after the
//! transition, the executed actions, allocation scores and the graph XML.
//!
//! - [`graph`] decides which actions become synapses of the transition
//!   graph, in which order and with which inputs, writes the graph XML and
//!   plays the graph the way crm_simulate does;
//! - [`status`] renders a cluster state in crm_mon's text layout;
//! - [`simulate`] builds the state shown before the transition (as unpacked)
//!   and after it (as the executed actions leave it);
//! - [`failures`] lists failed operations and fail counts for operators.

pub mod failures;
mod graph;
mod simulate;
mod status;

use crate::Scheduler;
use crate::model::*;

impl Scheduler {
    /// Allocation score lines (`crm_simulate -s`).
    /// How many allocation scores were recorded.
    pub fn score_count(&self) -> usize {
        self.scores.len()
    }

    pub fn score_lines(&self) -> Vec<String> {
        self.scores
            .iter()
            .map(|(func, r, n, s)| {
                format!(
                    "{func}: {} allocation score on {}: {s}",
                    self.resources[*r].id, self.nodes[*n].uname
                )
            })
            .collect()
    }

    /// Whether an action is part of the transition graph (Pacemaker's
    /// rules for adding an action to the graph).
    pub fn in_graph(&self, a: ActionId) -> bool {
        let act = &self.actions[a];
        if !act.runnable() {
            return false;
        }
        if act.optional() && !act.flags.has(AFlags::ALWAYS_IN_GRAPH) {
            return false;
        }
        // Unmanaged resources keep only their monitors and the
        // cancellation of recurring ones.
        if let Some(r) = act.rsc
            && !self.resources[r].flags.managed
            && act.task != "monitor"
            && act.interval_ms == 0
        {
            return false;
        }
        if act.pseudo() || act.task == "stonith" || act.task == "do_shutdown" {
            return true;
        }
        let Some(n) = act.node else {
            return false;
        };
        if act.flags.has(AFlags::ON_DC) {
            return true;
        }
        let node = &self.nodes[n];
        node.online && !node.unclean
    }

    /// "Executing Cluster Transition" lines, in the order crm_simulate
    /// executes the graph.
    pub fn executed_actions(&self) -> Vec<String> {
        let graph = self.build_graph();
        self.execution_order(&graph)
            .into_iter()
            .map(|a| self.executed_line(a))
            .collect()
    }

    /// The cluster status block, before (`revised == false`) or after the
    /// transition.
    pub fn cluster_status(&self, revised: bool) -> String {
        let snap = if revised {
            let graph = self.build_graph();
            let order = self.execution_order(&graph);
            self.revised_snapshot(&order)
        } else {
            self.current_snapshot()
        };
        self.render_status(&snap)
    }

    /// The transition graph in Pacemaker's XML form.
    pub fn graph_xml(&self) -> String {
        let graph = self.build_graph();
        self.render_graph(&graph)
    }

    /// Lines crm_simulate prints before "Current cluster status:" (after
    /// any "Using the original execution date" line): the maintenance-mode
    /// banner and the count of disabled and blocked resource instances,
    /// each followed by an empty line. Every entry is one output line.
    pub fn status_notices(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.settings.maintenance {
            out.push(String::new());
            out.push("              *** Resource management is DISABLED ***".to_string());
            out.push(
                "  The cluster will not attempt to start, stop or recover services".to_string(),
            );
            out.push(String::new());
        }
        let (instances, disabled, blocked) = self.instance_counts();
        if disabled > 0 || blocked > 0 {
            out.push(format!(
                "{disabled} of {instances} resource instances DISABLED and {blocked} BLOCKED from further action due to failure"
            ));
            out.push(String::new());
        }
        out
    }
}
