//! The transition graph: one synapse per graph action, numbered the way
//! Pacemaker numbers them (resources first, each with its own actions
//! newest first and then its children's, then every remaining action
//! newest first), the inputs each synapse waits for, the graph XML, and
//! crm_simulate's execution of the graph.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::Scheduler;
use crate::model::*;

/// One step of the graph: an action and the actions it waits for.
#[derive(Debug, Clone)]
pub(super) struct Synapse {
    pub action: ActionId,
    pub inputs: Vec<ActionId>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct Graph {
    pub synapses: Vec<Synapse>,
}

/// Escapes a value for an XML attribute.
fn xml_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

impl Scheduler {
    /// The synapses of the transition graph, in Pacemaker's order.
    pub(super) fn build_graph(&self) -> Graph {
        let mut added = vec![false; self.actions.len()];
        let mut order = Vec::new();
        for &r in &self.top {
            self.add_rsc_to_graph(r, &mut added, &mut order);
        }
        for a in (0..self.actions.len()).rev() {
            self.add_action_to_graph(a, &mut added, &mut order);
        }
        let synapses = order
            .into_iter()
            .map(|a| Synapse {
                action: a,
                inputs: self.graph_inputs(a),
            })
            .collect();
        Graph { synapses }
    }

    fn add_action_to_graph(&self, a: ActionId, added: &mut [bool], order: &mut Vec<ActionId>) {
        if added[a] || !self.in_graph(a) {
            return;
        }
        added[a] = true;
        order.push(a);
    }

    /// A resource's actions (newest first) and its children's; clones
    /// add their instances before themselves.
    fn add_rsc_to_graph(&self, r: RscId, added: &mut [bool], order: &mut Vec<ActionId>) {
        let rsc = &self.resources[r];
        let mut own: Vec<ActionId> = rsc.actions.clone();
        own.sort_unstable_by(|a, b| b.cmp(a));
        own.dedup();
        match rsc.variant {
            Variant::Clone | Variant::Bundle => {
                let mut instances = self.children_of(r);
                if self.rsc_unique(instances.first().copied().unwrap_or(r)) {
                    // Unique instances exist in the order of their numbers.
                    instances.sort_by_key(|i| {
                        self.resources[*i]
                            .id
                            .rsplit_once(':')
                            .and_then(|(_, n)| n.parse::<u32>().ok())
                            .unwrap_or(u32::MAX)
                    });
                }
                for c in instances {
                    self.add_rsc_to_graph(c, added, order);
                }
                for &c in &rsc.children {
                    self.add_rsc_to_graph(c, added, order);
                }
                for a in own {
                    self.add_action_to_graph(a, added, order);
                }
            }
            Variant::Primitive | Variant::Group => {
                for a in own {
                    self.add_action_to_graph(a, added, order);
                }
                for &c in &rsc.children {
                    self.add_rsc_to_graph(c, added, order);
                }
            }
        }
    }

    /// The inputs of a graph action, by id, their ordering flags merged.
    fn graph_inputs(&self, a: ActionId) -> Vec<ActionId> {
        let mut merged: BTreeMap<ActionId, u32> = BTreeMap::new();
        for &(b, f) in &self.actions[a].before {
            *merged.entry(b).or_insert(0) |= f;
        }
        merged
            .into_iter()
            .filter(|(b, f)| self.input_in_graph(a, *b, *f))
            .map(|(b, _)| b)
            .collect()
    }

    /// Whether an ordering makes `input` an input of `a` in the graph.
    fn input_in_graph(&self, a: ActionId, input: ActionId, flags: u32) -> bool {
        let act = &self.actions[a];
        let inp = &self.actions[input];
        if flags == ar::NONE {
            return false;
        }
        let weak = ar::THEN_IMPLIES_FIRST_GRAPHED | ar::FIRST_IMPLIES_THEN_GRAPHED | ar::ORDERED;
        if !inp.runnable() && flags & !weak == 0 {
            return false;
        }
        if !inp.runnable() && flags & ar::MIN_RUNNABLE != 0 {
            return false;
        }
        if flags & ar::UNMIGRATABLE_THEN_BLOCKS != 0 && !inp.runnable() {
            return false;
        }
        if flags == ar::ORDERED
            && inp.flags.has(AFlags::MIGRATABLE)
            && inp.uuid.ends_with("_stop_0")
        {
            return false;
        }
        let same_node = |x: Option<NodeId>, y: Option<NodeId>| x.is_some() && x == y;
        if flags == ar::IF_ON_SAME_NODE_OR_TARGET {
            if let Some(r) = act.rsc
                && act.task == "migrate_to"
            {
                return same_node(inp.node, self.resources[r].assigned);
            }
            return same_node(inp.node, act.node) && !inp.optional();
        }
        if flags == ar::IF_REQUIRED_ON_SAME_NODE {
            if inp.node.is_some() && act.node.is_some() && inp.node != act.node {
                return false;
            }
            return !inp.optional();
        }
        if let (Some(ir), Some(ar_)) = (inp.rsc, act.rsc)
            && ir != ar_
            && self.resources[ir].flags.failed
            && !self.resources[ir].flags.managed
            && inp.uuid.ends_with("_stop_0")
            && self.resources[ar_].variant == Variant::Clone
        {
            return false;
        }
        if inp.optional() && !inp.flags.has(AFlags::ALWAYS_IN_GRAPH) && !self.in_graph(input) {
            return false;
        }
        true
    }

    /// The order in which crm_simulate runs the synapses: pass after pass
    /// over the synapse list, running each one whose inputs have all run
    /// (including those run earlier in the same pass).
    pub(super) fn execution_order(&self, graph: &Graph) -> Vec<ActionId> {
        let mut done = vec![false; self.actions.len()];
        let mut fired = vec![false; graph.synapses.len()];
        let mut order = Vec::new();
        loop {
            let mut progressed = false;
            for (i, syn) in graph.synapses.iter().enumerate() {
                if fired[i] || !syn.inputs.iter().all(|b| done[*b]) {
                    continue;
                }
                fired[i] = true;
                done[syn.action] = true;
                order.push(syn.action);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        order
    }

    /// The resource name a graph action carries: anonymous clone instances
    /// go by their configured id.
    fn graph_rsc_id(&self, r: RscId) -> String {
        let rsc = &self.resources[r];
        if rsc.flags.removed || self.rsc_unique(r) {
            rsc.id.clone()
        } else {
            rsc.xml.attr("id").unwrap_or(&rsc.id).to_string()
        }
    }

    /// The graph element an action becomes.
    fn graph_element(&self, a: ActionId) -> &'static str {
        let act = &self.actions[a];
        match act.task.as_str() {
            "stonith" if act.pseudo() => "pseudo_event",
            "stonith" | "do_shutdown" | "clear_failcount" | "lrm_delete" => "crm_event",
            _ if act.pseudo() => "pseudo_event",
            _ => "rsc_op",
        }
    }

    /// Whether the graph element of an action names its node.
    fn graph_has_node(&self, a: ActionId) -> bool {
        let act = &self.actions[a];
        act.node.is_some() && (act.task == "stonith" || !act.pseudo())
    }

    /// One line of "Executing Cluster Transition".
    pub(super) fn executed_line(&self, a: ActionId) -> String {
        let act = &self.actions[a];
        let node = act.node.map_or("", |n| self.nodes[n].uname.as_str());
        match self.graph_element(a) {
            "pseudo_event" => {
                if self.graph_has_node(a) {
                    format!("  * Pseudo action:   {} on {node}", act.uuid)
                } else {
                    format!("  * Pseudo action:   {}", act.uuid)
                }
            }
            "crm_event" if act.task == "stonith" => format!(
                "  * Fencing {node} ({})",
                act.meta.get("stonith_action").map_or("", String::as_str)
            ),
            "crm_event" => match act.rsc {
                Some(r) => format!(
                    "  * Cluster action:  {} for {} on {node}",
                    act.task,
                    self.graph_rsc_id(r)
                ),
                None => format!("  * Cluster action:  {} on {node}", act.task),
            },
            _ => {
                let name = act.rsc.map_or(String::new(), |r| self.graph_rsc_id(r));
                if act.interval_ms > 0 && !matches!(act.task.as_str(), "delete" | "meta-data") {
                    format!(
                        "  * Resource action: {name:<15} {}={} on {node}",
                        act.task, act.interval_ms
                    )
                } else {
                    format!("  * Resource action: {name:<15} {} on {node}", act.task)
                }
            }
        }
    }

    /// The opening of an action's graph element (its attributes).
    fn graph_action_attrs(&self, a: ActionId) -> String {
        let act = &self.actions[a];
        let mut s = format!(
            "id=\"{}\" operation=\"{}\" operation_key=\"{}\"",
            a + 1,
            xml_escape(&act.task),
            xml_escape(&self.graph_op_key(a))
        );
        if self.graph_has_node(a)
            && let Some(n) = act.node
        {
            let _ = write!(
                s,
                " on_node=\"{}\" on_node_uuid=\"{}\"",
                xml_escape(&self.nodes[n].uname),
                xml_escape(&self.nodes[n].id)
            );
        }
        s
    }

    /// The operation key of a graph action (a cancellation carries the key
    /// of the operation it cancels).
    fn graph_op_key(&self, a: ActionId) -> String {
        let act = &self.actions[a];
        if act.task == "cancel"
            && let Some(r) = act.rsc
        {
            let task = act.meta.get("task").map_or("monitor", String::as_str);
            return format!("{}_{task}_{}", self.resources[r].id, act.interval_ms);
        }
        act.uuid.clone()
    }

    /// The `<attributes>` of an action: its resource's parameters and its
    /// meta-attributes as `CRM_meta_` fields, sorted by name.
    fn graph_action_params(&self, a: ActionId) -> String {
        let act = &self.actions[a];
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let meta_name = |k: &str| format!("CRM_meta_{}", k.replace('-', "_"));
        if let Some(r) = act.rsc {
            let rsc = &self.resources[r];
            if rsc.variant == Variant::Primitive && (act.node.is_some() || !act.pseudo()) {
                for (k, v) in &rsc.params {
                    fields.insert(k.clone(), v.clone());
                }
            }
            let op_task = if act.task == "cancel" {
                act.meta.get("task").map_or("monitor", String::as_str)
            } else {
                act.task.as_str()
            };
            if act.task == "cancel" {
                fields.insert("CRM_meta_operation".into(), op_task.to_string());
            }
            let configured = rsc
                .ops
                .iter()
                .find(|o| o.name == op_task && o.interval_ms == act.interval_ms);
            if let Some(op) = configured {
                // Operation-specific instance attributes.
                if let Some(ia) = op.xml.child("instance_attributes") {
                    for nv in ia.children_named("nvpair") {
                        if let (Some(k), Some(v)) = (nv.attr("name"), nv.attr("value")) {
                            fields.insert(k.to_string(), v.to_string());
                        }
                    }
                }
                for (k, v) in &op.meta {
                    if matches!(
                        k.as_str(),
                        "id" | "name" | "interval" | "timeout" | "enabled" | "description"
                    ) {
                        continue;
                    }
                    fields.insert(meta_name(k), v.clone());
                }
            }
            if configured.is_some() || (act.interval_ms > 0 && act.task != "cancel") {
                fields.insert("CRM_meta_name".into(), op_task.to_string());
            }
            if act.interval_ms > 0 {
                fields.insert("CRM_meta_interval".into(), act.interval_ms.to_string());
            }
            if !act.pseudo() {
                let mut cur = Some(r);
                let mut launcher = None;
                while let Some(x) = cur {
                    if let Some(l) = self.resources[x].launcher {
                        launcher = Some(l);
                    }
                    cur = self.resources[x].parent;
                }
                if let Some(l) = launcher {
                    fields.insert("CRM_meta_container".into(), self.resources[l].id.clone());
                }
            }
            {
                fields.insert(
                    "CRM_meta_timeout".into(),
                    self.op_timeout_ms(r, op_task, act.interval_ms).to_string(),
                );
            }
            if !act.pseudo() && act.task == "monitor" && act.interval_ms == 0 {
                fields.insert("CRM_meta_op_target_rc".into(), "7".into());
            }
            // Clone meta-attributes for everything inside a clone.
            let top = self.top_of(r);
            if self.resources[top].variant == Variant::Clone && top != r {
                let cm = &self.resources[top].meta;
                let get = |k: &str, d: String| cm.get(k).cloned().unwrap_or(d);
                fields.insert(
                    "CRM_meta_clone_max".into(),
                    get("clone-max", self.nodes.len().to_string()),
                );
                fields.insert(
                    "CRM_meta_clone_node_max".into(),
                    get("clone-node-max", "1".into()),
                );
                fields.insert(
                    "CRM_meta_globally_unique".into(),
                    self.rsc_unique(r).to_string(),
                );
                fields.insert(
                    "CRM_meta_notify".into(),
                    cm.get("notify")
                        .map_or("false", |v| {
                            if crate::unpack::is_true(v) {
                                "true"
                            } else {
                                "false"
                            }
                        })
                        .to_string(),
                );
                if let Some(n) = self.resources[r].id.rsplit_once(':').map(|(_, n)| n)
                    && self.resources[r].variant == Variant::Primitive
                {
                    fields.insert("CRM_meta_clone".into(), n.to_string());
                }
            }
        }
        for (k, v) in &act.meta {
            // Bookkeeping of the scheduler's own, not part of the graph.
            if matches!(k.as_str(), "task" | "reschedule") {
                continue;
            }
            fields.insert(meta_name(k), v.clone());
        }
        if self.graph_has_node(a)
            && let Some(n) = act.node
        {
            fields.insert("CRM_meta_on_node".into(), self.nodes[n].uname.clone());
            fields.insert("CRM_meta_on_node_uuid".into(), self.nodes[n].id.clone());
        }
        if let Some(v) = fields.get_mut("CRM_meta_start_delay")
            && let Some(ms) = vigil_cib::time::parse_interval_ms(v)
        {
            *v = ms.to_string();
        }
        // The feature set is left out (regression graphs are compared
        // without it), keeping the space it was separated by.
        fields.insert("crm_feature_set".into(), String::new());
        let mut s = String::from("<attributes");
        for (k, v) in &fields {
            if k == "crm_feature_set" {
                s.push(' ');
            } else {
                let _ = write!(s, " {}=\"{}\"", xml_escape(k), xml_escape(v));
            }
        }
        s.push_str("/>");
        s
    }

    /// The transition graph XML.
    pub(super) fn render_graph(&self, graph: &Graph) -> String {
        let option = |k: &str, d: &str| {
            self.settings
                .options
                .get(k)
                .cloned()
                .unwrap_or_else(|| d.to_string())
        };
        let mut s = format!(
            "<transition_graph cluster-delay=\"{}\" fencing-timeout=\"{}\" failed-stop-offset=\"INFINITY\" failed-start-offset=\"{}\"  transition_id=\"1\">\n",
            xml_escape(&option("cluster-delay", "60s")),
            xml_escape(
                &self
                    .settings
                    .options
                    .get("fencing-timeout")
                    .or_else(|| self.settings.options.get("stonith-timeout"))
                    .cloned()
                    .unwrap_or_else(|| "60s".into())
            ),
            if self.settings.start_failure_fatal {
                "INFINITY"
            } else {
                "1"
            }
        );
        if graph.synapses.is_empty() {
            s.truncate(s.trim_end().len() - 1);
            s.push_str("/>\n");
            return s;
        }
        for (sid, syn) in graph.synapses.iter().enumerate() {
            let a = syn.action;
            let act = &self.actions[a];
            let priority = act.rsc.map_or(0, |r| self.resources[r].priority);
            if priority > 0 {
                let _ = writeln!(s, "  <synapse id=\"{sid}\" priority=\"{priority}\">");
            } else {
                let _ = writeln!(s, "  <synapse id=\"{sid}\">");
            }
            s.push_str("    <action_set>\n");
            let elem = self.graph_element(a);
            let _ = writeln!(s, "      <{elem} {}>", self.graph_action_attrs(a));
            if let Some(r) = act.rsc
                && elem != "pseudo_event"
            {
                let rsc = &self.resources[r];
                let mut p = format!(
                    "        <primitive id=\"{}\"",
                    xml_escape(&self.graph_rsc_id(r))
                );
                if rsc.id != self.graph_rsc_id(r) {
                    let _ = write!(p, " long-id=\"{}\"", xml_escape(&rsc.id));
                }
                let _ = write!(p, " class=\"{}\"", xml_escape(&rsc.class));
                if let Some(pr) = &rsc.provider {
                    let _ = write!(p, " provider=\"{}\"", xml_escape(pr));
                }
                let _ = writeln!(p, " type=\"{}\"/>", xml_escape(&rsc.agent));
                s.push_str(&p);
            }
            let _ = writeln!(s, "        {}", self.graph_action_params(a));
            if elem == "crm_event"
                && let Some(n) = act.node
                && (act.task == "do_shutdown"
                    || (act.task == "stonith"
                        && act.meta.get("stonith_action").is_some_and(|o| o != "on")))
            {
                let _ = writeln!(
                    s,
                    "        <downed>\n          <node id=\"{}\"/>\n        </downed>",
                    xml_escape(&self.nodes[n].id)
                );
            }
            let _ = writeln!(s, "      </{elem}>");
            s.push_str("    </action_set>\n");
            if syn.inputs.is_empty() {
                s.push_str("    <inputs/>\n");
            } else {
                s.push_str("    <inputs>\n");
                for &b in &syn.inputs {
                    let _ = writeln!(
                        s,
                        "      <trigger>\n        <{} {}/>\n      </trigger>",
                        self.graph_element(b),
                        self.graph_action_attrs(b)
                    );
                }
                s.push_str("    </inputs>\n");
            }
            s.push_str("  </synapse>\n");
        }
        s.push_str("</transition_graph>\n");
        s
    }
}
