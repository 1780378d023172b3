//! The other crm_simulate sections: cluster status before and after the
//! transition, the executed actions, allocation scores and the graph XML.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use vigil_types::Role;

use crate::Scheduler;
use crate::model::*;

impl Scheduler {
    /// Allocation score lines (`crm_simulate -s`).
    pub fn score_lines(&self) -> Vec<String> {
        self.scores.clone()
    }

    /// Whether an action is part of the transition graph.
    pub fn in_graph(&self, a: ActionId) -> bool {
        let act = &self.actions[a];
        if act.optional() && !act.flags.has(AFlags::ALWAYS_IN_GRAPH) {
            return false;
        }
        if !act.runnable() {
            return false;
        }
        if act.pseudo() {
            return true;
        }
        if let Some(r) = act.rsc
            && !self.resources[r].flags.managed
            && act.interval_ms == 0
            && act.task != "monitor"
        {
            return false;
        }
        match act.node {
            None => act.rsc.is_none(),
            Some(n) => {
                self.nodes[n].online || act.task == "stonith" || act.flags.has(AFlags::ON_DC)
            }
        }
    }

    /// Graph actions in an order that respects their ordering inputs.
    fn graph_order(&self) -> Vec<ActionId> {
        let in_graph: Vec<bool> = (0..self.actions.len()).map(|a| self.in_graph(a)).collect();
        let mut done = vec![false; self.actions.len()];
        let mut order = Vec::new();
        loop {
            let mut progressed = false;
            for a in 0..self.actions.len() {
                if !in_graph[a] || done[a] {
                    continue;
                }
                let ready = self.actions[a]
                    .before
                    .iter()
                    .all(|(b, f)| *f == ar::NONE || !in_graph[*b] || done[*b]);
                if ready {
                    done[a] = true;
                    order.push(a);
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
        // Anything left is in a loop; list it anyway.
        for a in 0..self.actions.len() {
            if in_graph[a] && !done[a] {
                order.push(a);
            }
        }
        order
    }

    /// "Executing Cluster Transition" lines.
    pub fn executed_actions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in self.graph_order() {
            let act = &self.actions[a];
            let node = act.node.map_or("", |n| self.nodes[n].uname.as_str());
            let line = if act.pseudo() {
                format!("  * Pseudo action:   {}", act.uuid)
            } else if act.task == "stonith" {
                format!(
                    "  * Fencing {node} ({})",
                    act.meta.get("stonith_action").map_or("", String::as_str)
                )
            } else if let Some(r) = act.rsc {
                let task = if act.interval_ms > 0 {
                    format!("{}={}", act.task, act.interval_ms)
                } else {
                    act.task.clone()
                };
                format!(
                    "  * Resource action: {:<15} {task} on {node}",
                    self.resources[r].id
                )
            } else {
                format!("  * Cluster action:  {} on {node}", act.task)
            };
            out.push(line);
        }
        out
    }

    /// Where each primitive is after the transition runs to completion.
    fn revised_state(&self, r: RscId) -> (Role, Vec<NodeId>) {
        let rsc = &self.resources[r];
        if !rsc.flags.managed {
            return (rsc.orig_role, rsc.running_on.clone());
        }
        let stopped_somewhere: BTreeSet<NodeId> = rsc
            .actions
            .iter()
            .filter(|a| self.actions[**a].task == "stop" && self.in_graph(**a))
            .filter_map(|a| self.actions[*a].node)
            .collect();
        let started: Option<NodeId> = rsc
            .actions
            .iter()
            .find(|a| self.actions[**a].task == "start" && self.in_graph(**a))
            .and_then(|a| self.actions[*a].node);
        let mut nodes: Vec<NodeId> = rsc
            .running_on
            .iter()
            .copied()
            .filter(|n| !stopped_somewhere.contains(n))
            .collect();
        if let Some(n) = started
            && !nodes.contains(&n)
        {
            nodes.push(n);
        }
        let role = if nodes.is_empty() {
            Role::Stopped
        } else if rsc.next_role > Role::Started && rsc.assigned.is_some() {
            rsc.next_role
        } else if rsc.orig_role > Role::Stopped && started.is_none() {
            rsc.orig_role
        } else {
            Role::Started
        };
        (role, nodes)
    }

    /// The cluster status block, before (`revised == false`) or after the
    /// transition.
    pub fn cluster_status(&self, revised: bool) -> String {
        let mut s = String::from("  * Node List:\n");
        let mut online = Vec::new();
        let mut offline = Vec::new();
        let fenced: BTreeSet<NodeId> = if revised {
            self.actions
                .iter()
                .enumerate()
                .filter(|(i, a)| a.task == "stonith" && self.in_graph(*i))
                .filter_map(|(_, a)| a.node)
                .collect()
        } else {
            BTreeSet::new()
        };
        for (i, n) in self.nodes.iter().enumerate() {
            if fenced.contains(&i) {
                offline.push(n.uname.clone());
                continue;
            }
            if n.unclean {
                let _ = writeln!(
                    s,
                    "    * Node {}: UNCLEAN ({})",
                    n.uname,
                    if n.online { "online" } else { "offline" }
                );
            } else if n.pending && n.online {
                let _ = writeln!(s, "    * Node {}: pending", n.uname);
            } else if n.standby && n.online {
                let _ = writeln!(
                    s,
                    "    * Node {}: standby{}",
                    n.uname,
                    if n.standby_onfail { " (on-fail)" } else { "" }
                );
            } else if n.maintenance && n.online {
                let _ = writeln!(s, "    * Node {}: maintenance", n.uname);
            } else if n.online {
                online.push(n.uname.clone());
            } else {
                offline.push(n.uname.clone());
            }
        }
        if !online.is_empty() {
            let _ = writeln!(s, "    * Online: [ {} ]", online.join(" "));
        }
        if !offline.is_empty() {
            let _ = writeln!(s, "    * OFFLINE: [ {} ]", offline.join(" "));
        }
        s.push_str("\n  * Full List of Resources:\n");
        for &r in &self.top {
            if self.resources[r].flags.removed && self.resources[r].running_on.is_empty() {
                continue;
            }
            self.status_rsc(r, revised, "    ", &mut s);
        }
        s
    }

    fn agent_spec(&self, r: RscId) -> String {
        let rsc = &self.resources[r];
        match &rsc.provider {
            Some(p) => format!("{}:{}:{}", rsc.class, p, rsc.agent),
            None => format!("{}:{}", rsc.class, rsc.agent),
        }
    }

    fn status_rsc(&self, r: RscId, revised: bool, indent: &str, s: &mut String) {
        let rsc = &self.resources[r];
        match rsc.variant {
            Variant::Primitive => {
                let (role, nodes) = if revised {
                    self.revised_state(r)
                } else {
                    (rsc.orig_role, rsc.running_on.clone())
                };
                let unmanaged = if rsc.flags.managed {
                    ""
                } else {
                    " (unmanaged)"
                };
                let failed = !revised && rsc.flags.failed;
                let state = if nodes.is_empty() {
                    "Stopped".to_string()
                } else if failed {
                    let role_text = if role > Role::Started {
                        format!("FAILED {role}")
                    } else {
                        "FAILED".to_string()
                    };
                    let names: Vec<&str> = nodes
                        .iter()
                        .map(|n| self.nodes[*n].uname.as_str())
                        .collect();
                    format!("{role_text} {}", names.join(" "))
                } else {
                    let names: Vec<&str> = nodes
                        .iter()
                        .map(|n| self.nodes[*n].uname.as_str())
                        .collect();
                    let role = if role == Role::Unknown || role == Role::Stopped {
                        Role::Started
                    } else {
                        role
                    };
                    if names.len() > 1 {
                        format!("{role} [ {} ]", names.join(" "))
                    } else {
                        format!("{role} {}", names.join(" "))
                    }
                };
                let _ = writeln!(
                    s,
                    "{indent}* {}\t({}):\t {state}{unmanaged}",
                    rsc.id,
                    self.agent_spec(r)
                );
            }
            Variant::Group => {
                let _ = writeln!(s, "{indent}* Resource Group: {}:", rsc.id);
                let inner = format!("{indent}  ");
                for &c in &rsc.children {
                    self.status_rsc(c, revised, &inner, s);
                }
            }
            Variant::Clone | Variant::Bundle => {
                let child = rsc
                    .children
                    .first()
                    .map_or("", |c| self.resources[*c].id.as_str());
                let promotable = if self.is_promotable(r) {
                    " (promotable)"
                } else {
                    ""
                };
                let _ = writeln!(s, "{indent}* Clone Set: {} [{child}]{promotable}:", rsc.id);
                let mut by_role: std::collections::BTreeMap<Role, Vec<String>> = Default::default();
                for i in self.children_of(r) {
                    let (role, nodes) = if revised {
                        self.revised_state(i)
                    } else {
                        (
                            self.resources[i].orig_role,
                            self.resources[i].running_on.clone(),
                        )
                    };
                    for n in nodes {
                        by_role
                            .entry(role)
                            .or_default()
                            .push(self.nodes[n].uname.clone());
                    }
                }
                for (role, mut names) in by_role.into_iter().rev() {
                    names.sort_by(|a, b| crate::unpack::numeric_strcasecmp(a, b));
                    let _ = writeln!(s, "{indent}  * {role}: [ {} ]", names.join(" "));
                }
            }
        }
    }

    /// The transition graph in Pacemaker's XML form.
    pub fn graph_xml(&self) -> String {
        let order = self.graph_order();
        let index: std::collections::BTreeMap<ActionId, usize> =
            order.iter().enumerate().map(|(i, a)| (*a, i)).collect();
        let mut s = String::from(
            "<transition_graph cluster-delay=\"60s\" fencing-timeout=\"60s\" failed-stop-offset=\"INFINITY\" failed-start-offset=\"INFINITY\" transition_id=\"1\">\n",
        );
        for (sid, &a) in order.iter().enumerate() {
            let act = &self.actions[a];
            let _ = writeln!(s, "  <synapse id=\"{sid}\">");
            s.push_str("    <action_set>\n");
            let elem = if act.pseudo() {
                "pseudo_event"
            } else if act.rsc.is_some() {
                "rsc_op"
            } else {
                "crm_event"
            };
            let mut attrs = format!(
                "id=\"{}\" operation=\"{}\" operation_key=\"{}\"",
                a, act.task, act.uuid
            );
            if let Some(n) = act.node {
                let _ = write!(
                    attrs,
                    " on_node=\"{}\" on_node_uuid=\"{}\"",
                    self.nodes[n].uname, self.nodes[n].id
                );
            }
            let _ = writeln!(s, "      <{elem} {attrs}>");
            if let Some(r) = act.rsc {
                let rsc = &self.resources[r];
                let _ = writeln!(
                    s,
                    "        <primitive id=\"{}\" class=\"{}\"{} type=\"{}\"/>",
                    rsc.id,
                    rsc.class,
                    rsc.provider
                        .as_ref()
                        .map(|p| format!(" provider=\"{p}\""))
                        .unwrap_or_default(),
                    rsc.agent
                );
            }
            let _ = writeln!(s, "      </{elem}>");
            s.push_str("    </action_set>\n");
            s.push_str("    <inputs>\n");
            for (b, f) in &act.before {
                if *f != ar::NONE && index.contains_key(b) {
                    let _ = writeln!(
                        s,
                        "      <trigger>\n        <{} id=\"{}\" operation_key=\"{}\"/>\n      </trigger>",
                        if self.actions[*b].pseudo() {
                            "pseudo_event"
                        } else if self.actions[*b].rsc.is_some() {
                            "rsc_op"
                        } else {
                            "crm_event"
                        },
                        b,
                        self.actions[*b].uuid
                    );
                }
            }
            s.push_str("    </inputs>\n");
            s.push_str("  </synapse>\n");
        }
        s.push_str("</transition_graph>\n");
        s
    }
}
