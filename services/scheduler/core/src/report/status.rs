//! A cluster state in crm_mon's text layout, as crm_simulate prints it:
//! the node list, then the full list of resources.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use vigil_types::Role;

use super::simulate::{RscView, Snapshot};
use crate::Scheduler;
use crate::model::*;
use crate::unpack::{is_true, numeric_strcasecmp};

/// Text for an agent's exit status, as Pacemaker names them.
fn exit_text(rc: i32) -> &'static str {
    match rc {
        0 => "OK",
        1 => "Error occurred",
        2 => "Invalid parameter",
        3 => "Unimplemented",
        4 => "Insufficient privileges",
        5 => "Not installed",
        6 => "Not configured",
        7 => "Not running",
        8 => "Promoted",
        9 => "Failed in promoted role",
        _ => "Unknown exit status",
    }
}

/// What an in-flight action makes a resource's state read.
fn pending_state(task: &str) -> Option<&'static str> {
    match task {
        "start" => Some("Starting"),
        "stop" => Some("Stopping"),
        "migrate_to" | "migrate_from" => Some("Migrating"),
        "promote" => Some("Promoting"),
        "demote" => Some("Demoting"),
        _ => None,
    }
}

/// Collects the parenthesised flags after a resource's state.
#[derive(Default)]
struct Flags(Vec<String>);

impl Flags {
    fn add(&mut self, f: impl Into<String>) {
        self.0.push(f.into());
    }
    fn render(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.0.join(", "))
        }
    }
}

fn instance_number(id: &str) -> Option<u32> {
    id.rsplit_once(':').and_then(|(_, n)| n.parse().ok())
}

impl Scheduler {
    /// The whole status block.
    pub(super) fn render_status(&self, snap: &Snapshot) -> String {
        let mut out = String::new();
        let printed_nodes = self.render_nodes(snap, &mut out);
        if printed_nodes {
            out.push('\n');
        }
        out.push_str("  * Full List of Resources:\n");
        let before = out.len();
        for &r in &self.top {
            let rsc = &self.resources[r];
            if rsc.flags.removed && !self.rsc_partially_active(r, snap) {
                continue;
            }
            self.render_rsc(r, snap, "    ", &mut out);
        }
        if out.len() == before {
            out.push_str("    * No resources\n");
        }
        out
    }

    /// A node's health: negative for red, zero for yellow, positive for
    /// green (always green without a health strategy).
    fn node_health(&self, n: NodeId, snap: &Snapshot) -> i32 {
        let strategy = self
            .settings
            .options
            .get("node-health-strategy")
            .map_or("none".to_string(), |s| s.to_ascii_lowercase());
        let option_score = |name: &str| {
            self.settings
                .options
                .get(name)
                .and_then(|v| v.parse::<vigil_types::Score>().ok())
                .map_or(0, |s| s.value())
        };
        let neg_inf = -vigil_types::Score::INFINITY_VALUE;
        let (red, yellow, green) = match strategy.as_str() {
            "migrate-on-red" => (neg_inf, 0, 0),
            "only-green" => (neg_inf, neg_inf, 0),
            "progressive" | "custom" => (
                option_score("node-health-red"),
                option_score("node-health-yellow"),
                option_score("node-health-green"),
            ),
            _ => return 1,
        };
        if snap.wiped.contains(&n) {
            return 1;
        }
        let mut health = 1;
        for (k, v) in &self.nodes[n].attrs {
            if !k.starts_with("#health") {
                continue;
            }
            if v.eq_ignore_ascii_case("red") {
                return -1;
            }
            if v.eq_ignore_ascii_case("yellow") {
                health = 0;
                continue;
            }
            let Ok(score) = v.parse::<vigil_types::Score>() else {
                continue;
            };
            let score = score.value();
            if score <= red {
                return -1;
            }
            if score <= yellow && yellow != green {
                health = 0;
            }
        }
        health
    }

    /// The node list; false when there are no nodes to show.
    fn render_nodes(&self, snap: &Snapshot, out: &mut String) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        out.push_str("  * Node List:\n");
        let mut online = Vec::new();
        let mut offline = Vec::new();
        // Nodes where some primitive is active.
        let mut busy = BTreeSet::new();
        for (r, rv) in snap.rscs.iter().enumerate() {
            if self.resources[r].variant == Variant::Primitive {
                busy.extend(rv.active.iter().map(|(n, _)| *n));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let nv = &snap.nodes[i];
            let health = self.node_health(i, snap);
            let individual = nv.unclean
                || nv.pending
                || (nv.standby_onfail && nv.online)
                || nv.standby
                || nv.maintenance
                || health <= 0;
            if !individual {
                if nv.online {
                    online.push(node.uname.as_str());
                } else {
                    offline.push(node.uname.as_str());
                }
                continue;
            }
            let state = if nv.unclean {
                if nv.online {
                    "UNCLEAN (online)"
                } else if nv.pending {
                    "UNCLEAN (pending)"
                } else {
                    "UNCLEAN (offline)"
                }
            } else if nv.pending {
                "pending"
            } else if nv.standby_onfail && nv.online {
                "standby (on-fail)"
            } else if nv.standby {
                if !nv.online {
                    "OFFLINE (standby)"
                } else if busy.contains(&i) {
                    "standby (with active resources)"
                } else {
                    "standby"
                }
            } else if nv.maintenance {
                if nv.online {
                    "maintenance"
                } else {
                    "OFFLINE (maintenance)"
                }
            } else if nv.online {
                "online"
            } else {
                "OFFLINE"
            };
            let health_text = match health {
                h if h < 0 => " (health is RED)",
                0 => " (health is YELLOW)",
                _ => "",
            };
            let _ = writeln!(out, "    * Node {}: {state}{health_text}", node.uname);
        }
        if !online.is_empty() {
            let _ = writeln!(out, "    * Online: [ {} ]", online.join(" "));
        }
        if !offline.is_empty() {
            let _ = writeln!(out, "    * OFFLINE: [ {} ]", offline.join(" "));
        }
        true
    }

    /// Whether any primitive of a resource is active.
    fn rsc_partially_active(&self, r: RscId, snap: &Snapshot) -> bool {
        match self.resources[r].variant {
            Variant::Primitive => !snap.rscs[r].active.is_empty(),
            _ => self
                .children_of(r)
                .into_iter()
                .any(|c| self.rsc_partially_active(c, snap)),
        }
    }

    fn render_rsc(&self, r: RscId, snap: &Snapshot, indent: &str, out: &mut String) {
        match self.resources[r].variant {
            Variant::Primitive => {
                let name = self.printable_id(r);
                let line = self.primitive_line(r, &name, &snap.rscs[r], snap);
                let _ = writeln!(out, "{indent}* {line}");
            }
            Variant::Group => self.render_group(r, None, snap, indent, out),
            Variant::Clone | Variant::Bundle => self.render_clone(r, snap, indent, out),
        }
    }

    /// The name the status shows for a primitive: anonymous clone
    /// instances go by their configured id.
    pub(super) fn printable_id(&self, r: RscId) -> String {
        let rsc = &self.resources[r];
        if self.rsc_unique(r) {
            rsc.id.clone()
        } else {
            rsc.xml.attr("id").unwrap_or(&rsc.id).to_string()
        }
    }

    /// Whether the resource is managed, as unpacking the CIB sees it (the
    /// scheduler later unmanages everything when fencing is enabled but
    /// no device is configured; the status is shown before that).
    fn status_managed(&self, r: RscId) -> bool {
        let rsc = &self.resources[r];
        if rsc.flags.managed {
            return true;
        }
        if rsc.flags.blocked || rsc.flags.maintenance {
            return false;
        }
        if !(rsc.variant == Variant::Primitive
            && self.settings.fencing_enabled
            && !self.settings.have_fencing)
        {
            return false;
        }
        if rsc.flags.removed && !self.settings.stop_removed {
            return false;
        }
        match rsc.meta.get("is-managed") {
            Some(v) if v != "default" => is_true(v),
            _ => !self.settings.maintenance,
        }
    }

    /// A failed probe of `r` on `node` (any node when `None`) that is
    /// treated as "not running": its exit status.
    fn failed_probe_rc(&self, r: RscId, node: Option<NodeId>, snap: &Snapshot) -> Option<i32> {
        let template = self.instance_template.get(&r).copied();
        for (_, n, fr, op) in &self.failed_ops {
            if node.is_some_and(|m| m != *n) || snap.wiped.contains(n) {
                continue;
            }
            let same =
                *fr == r || template.is_some_and(|t| self.instance_template.get(fr) == Some(&t));
            if !same {
                continue;
            }
            if op.attr("operation") != Some("monitor")
                || op.attr("interval").is_some_and(|v| v != "0")
            {
                continue;
            }
            let rc: i32 = op.attr("rc-code").and_then(|v| v.parse().ok()).unwrap_or(0);
            let status: i32 = op
                .attr("op-status")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if rc == 5 || rc == 2 || status == 7 {
                return Some(rc);
            }
        }
        None
    }

    /// A primitive's line (without the bullet).
    fn primitive_line(&self, r: RscId, name: &str, rv: &RscView, snap: &Snapshot) -> String {
        let rsc = &self.resources[r];
        let nodes = rv.nodes();
        let multiple = nodes.len() > 1;
        let promotable = self.is_promotable(r);
        let mut node = if multiple {
            None
        } else {
            nodes.first().copied()
        };
        if node.is_none() && !multiple {
            node = rv.pending.as_ref().map(|(_, n)| *n);
        }
        let mut role = if nodes.is_empty() {
            Role::Stopped
        } else {
            rv.role()
        };
        if role == Role::Started && promotable {
            role = Role::Unpromoted;
        }
        let mut s = String::new();
        let (class, provider, agent) = self.agent_of(r);
        let _ = write!(s, "{name}\t({class}");
        if class.eq_ignore_ascii_case("ocf") {
            let _ = write!(s, ":{}", provider.unwrap_or(""));
        }
        let _ = write!(s, ":{agent}):\t");
        if rsc.flags.removed || rv.removed {
            s.push_str(" ORPHANED");
        }
        if rv.failed {
            s.push_str(" FAILED");
            if role > Role::Unpromoted {
                let _ = write!(s, " {role}");
            }
        } else {
            let pending = if snap.show_pending {
                rv.pending.as_ref().and_then(|(t, _)| pending_state(t))
            } else {
                None
            };
            match pending {
                Some(p) => {
                    let _ = write!(s, " {p}");
                }
                None => {
                    let _ = write!(s, " {role}");
                }
            }
        }
        if let Some(n) = node {
            let _ = write!(s, " {}", self.nodes[n].uname);
        }
        if role == Role::Stopped
            && let Some(rc) = self.failed_probe_rc(r, node, snap)
        {
            let _ = write!(s, " ({}) ", exit_text(rc));
        }
        let mut flags = Flags::default();
        if let Some(n) = node
            && !snap.nodes[n].online
            && snap.nodes[n].unclean
        {
            flags.add("UNCLEAN");
        }
        if snap.show_pending && rv.pending.as_ref().is_some_and(|(t, _)| t == "monitor") {
            flags.add("Monitoring");
        }
        if let Some(v) = rsc.meta.get("target-role") {
            match Role::parse(v) {
                Some(Role::Stopped) => flags.add("disabled"),
                Some(Role::Unpromoted) if promotable => flags.add(format!("target-role:{v}")),
                _ => {}
            }
        }
        if rsc.flags.blocked {
            flags.add("blocked");
        } else if rsc.flags.maintenance {
            flags.add("maintenance");
        } else if !self.status_managed(r) {
            flags.add("unmanaged");
        }
        if rsc.flags.ignore_failure {
            flags.add("failure ignored");
        }
        s.push_str(&flags.render());
        if multiple {
            if let Some(desc) = rsc.xml.attr("description") {
                let _ = write!(s, " ({desc})");
            }
            let names: Vec<&str> = nodes
                .iter()
                .map(|n| self.nodes[*n].uname.as_str())
                .collect();
            let _ = write!(s, " [ {} ]", names.join(" "));
        }
        s
    }

    /// A group, or one instance of a cloned group (`item` gives its name,
    /// members and the node it is restricted to).
    fn render_group(
        &self,
        r: RscId,
        item: Option<&Item>,
        snap: &Snapshot,
        indent: &str,
        out: &mut String,
    ) {
        let rsc = &self.resources[r];
        let mut attrs = Vec::new();
        if self.rsc_disabled(r) {
            attrs.push("disabled");
        }
        if rsc.flags.maintenance {
            attrs.push("maintenance");
        } else if !rsc.flags.managed {
            attrs.push("unmanaged");
        }
        let name = item.map_or(rsc.id.as_str(), |it| it.name.as_str());
        if attrs.is_empty() {
            let _ = writeln!(out, "{indent}* Resource Group: {name}:");
        } else {
            let _ = writeln!(
                out,
                "{indent}* Resource Group: {name} ({}):",
                attrs.join(", ")
            );
        }
        let inner = format!("{indent}  ");
        match item {
            None => {
                for &c in &rsc.children {
                    self.render_rsc(c, snap, &inner, out);
                }
            }
            Some(it) => {
                for &(member, inst) in &it.members {
                    let line = self.item_member_line(it, member, inst, snap);
                    let _ = writeln!(out, "{inner}* {line}");
                }
            }
        }
    }

    /// The line of one member of a clone instance.
    fn item_member_line(
        &self,
        it: &Item,
        template: RscId,
        inst: Option<RscId>,
        snap: &Snapshot,
    ) -> String {
        match inst {
            Some(i) => {
                let rv = it.view(i, snap);
                self.primitive_line(i, &self.printable_id(i), &rv, snap)
            }
            None => {
                // An instance that never ran has no resource of its own.
                let base = self.printable_id(template);
                let name = match (self.rsc_unique(template), it.number) {
                    (true, Some(n)) => format!("{base}:{n}"),
                    _ => base,
                };
                let rv = RscView {
                    removed: it.orphan,
                    ..RscView::default()
                };
                self.primitive_line(template, &name, &rv, snap)
            }
        }
    }

    /// A clone's instances as the status lists them.
    fn clone_items(&self, clone: RscId, snap: &Snapshot) -> Vec<Item> {
        let Some(&template) = self.resources[clone].children.first() else {
            return Vec::new();
        };
        let unique = self.clone_is_unique(clone);
        let members: Vec<RscId> = match self.resources[template].variant {
            Variant::Group => self.resources[template].children.clone(),
            _ => vec![template],
        };
        let base = &self.resources[template].id;
        let mut items: Vec<Item> = Vec::new();
        for i in self.children_of(clone) {
            let tmpl = self.instance_template.get(&i).copied().unwrap_or(template);
            let number = instance_number(&self.resources[i].id);
            let pos = items.iter().position(|it| {
                it.number == number && it.members.iter().any(|(m, x)| *m == tmpl && x.is_none())
            });
            let idx = match pos {
                Some(p) => p,
                None => {
                    items.push(Item {
                        number,
                        name: String::new(),
                        members: members.iter().map(|m| (*m, None)).collect(),
                        only: None,
                        orphan: false,
                    });
                    items.len() - 1
                }
            };
            if let Some(slot) = items[idx].members.iter_mut().find(|(m, _)| *m == tmpl) {
                slot.1 = Some(i);
            }
        }
        if unique {
            for n in 0..self.clone_max(clone) {
                if !items.iter().any(|it| it.number == Some(n)) {
                    items.push(Item {
                        number: Some(n),
                        name: String::new(),
                        members: members.iter().map(|m| (*m, None)).collect(),
                        only: None,
                        orphan: false,
                    });
                }
            }
        }
        if unique {
            items.sort_by_key(|it| it.number.unwrap_or(u32::MAX));
            for it in &mut items {
                it.name = match it.number {
                    Some(n) => format!("{base}:{n}"),
                    None => base.clone(),
                };
            }
            return items;
        }
        // Anonymous instances are interchangeable: one active on several
        // nodes is shown as one instance per node, numbered in order.
        let mut out = Vec::new();
        for it in items {
            let mut nodes: Vec<NodeId> = Vec::new();
            for (_, inst) in &it.members {
                for n in inst.map(|i| snap.rscs[i].nodes()).unwrap_or_default() {
                    if !nodes.contains(&n) {
                        nodes.push(n);
                    }
                }
            }
            if nodes.len() > 1 {
                for n in nodes {
                    out.push(Item {
                        only: Some(n),
                        ..it.clone()
                    });
                }
            } else {
                out.push(it);
            }
        }
        // Instances beyond what the clone allows (per node, then in all)
        // are orphans, listed after the others; fully active instances
        // are kept in preference to partially active ones.
        let max = self.clone_max(clone) as usize;
        let node_max: usize = self.resources[clone]
            .meta
            .get("clone-node-max")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let nodes_of = |it: &Item| -> BTreeSet<NodeId> {
            it.members
                .iter()
                .filter_map(|(_, i)| *i)
                .flat_map(|i| it.view(i, snap).nodes())
                .collect()
        };
        let fully = |it: &Item| {
            it.members
                .iter()
                .all(|(_, i)| i.is_some_and(|i| !it.view(i, snap).active.is_empty()))
        };
        let mut per_node: BTreeMap<NodeId, usize> = BTreeMap::new();
        let mut kept = 0;
        for pass in [true, false] {
            for it in out.iter_mut() {
                let nodes = nodes_of(it);
                if nodes.is_empty() || fully(it) != pass {
                    continue;
                }
                let full = nodes
                    .iter()
                    .any(|n| per_node.get(n).copied().unwrap_or(0) >= node_max);
                if full || kept >= max {
                    it.orphan = true;
                    continue;
                }
                kept += 1;
                for n in nodes {
                    *per_node.entry(n).or_insert(0) += 1;
                }
            }
        }
        let (mut normal, mut orphans): (Vec<Item>, Vec<Item>) =
            out.into_iter().partition(|it| !it.orphan);
        orphans.sort_by_key(|it| nodes_of(it).into_iter().next());
        // Inactive instances take no number: they are not shown.
        normal.sort_by_key(|it| nodes_of(it).is_empty());
        for (k, it) in normal.iter_mut().enumerate() {
            it.name = format!("{base}:{k}");
        }
        // Orphans are numbered after every instance the clone may have.
        let first = max.max(normal.len());
        for (k, it) in orphans.iter_mut().enumerate() {
            it.name = format!("{base}:{}", first + k);
        }
        normal.extend(orphans);
        normal
    }

    /// Whether the clone above `r` is globally unique (only possible when
    /// every agent in it supports unique instances).
    fn clone_is_unique(&self, r: RscId) -> bool {
        let top = self.top_of(r);
        if !self.resources[top]
            .meta
            .get("globally-unique")
            .is_some_and(|v| is_true(v))
        {
            return false;
        }
        let mut stack = vec![top];
        while let Some(x) = stack.pop() {
            let rsc = &self.resources[x];
            if rsc.variant == Variant::Primitive {
                let (class, _, _) = self.agent_of(x);
                if !(class.eq_ignore_ascii_case("ocf") || class.eq_ignore_ascii_case("stonith")) {
                    return false;
                }
            }
            stack.extend(rsc.children.iter().copied());
        }
        true
    }

    /// Whether a resource is a unique one (anything but an anonymous
    /// clone's instance).
    pub(super) fn rsc_unique(&self, r: RscId) -> bool {
        let mut cur = r;
        while let Some(p) = self.resources[cur].parent {
            if self.resources[p].variant == Variant::Clone {
                return self.clone_is_unique(p);
            }
            cur = p;
        }
        true
    }

    /// A primitive's agent: class, provider and type (taken from its
    /// template when the primitive itself names none).
    pub(super) fn agent_of(&self, r: RscId) -> (&str, Option<&str>, &str) {
        let rsc = &self.resources[r];
        if rsc.class.is_empty()
            && let Some(t) = rsc.xml.attr("template").and_then(|t| self.templates.get(t))
        {
            return (
                t.attr("class").unwrap_or(""),
                t.attr("provider"),
                t.attr("type").unwrap_or(""),
            );
        }
        (&rsc.class, rsc.provider.as_deref(), &rsc.agent)
    }

    /// The configured (or default) number of instances of a clone.
    fn clone_max(&self, clone: RscId) -> u32 {
        self.resources[clone]
            .meta
            .get("clone-max")
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.nodes.len() as u32)
    }

    fn render_clone(&self, r: RscId, snap: &Snapshot, indent: &str, out: &mut String) {
        let rsc = &self.resources[r];
        let template = rsc.children.first().copied();
        let child_id = template.map_or("", |t| self.resources[t].id.as_str());
        let unique = self.clone_is_unique(r);
        let promotable = self.is_promotable(r);
        let mut attrs = Vec::new();
        if promotable {
            attrs.push("promotable");
        }
        if unique {
            attrs.push("unique");
        }
        if self.rsc_disabled(r) {
            attrs.push("disabled");
        }
        if rsc.flags.maintenance {
            attrs.push("maintenance");
        } else if !rsc.flags.managed {
            attrs.push("unmanaged");
        }
        let kind = if rsc.variant == Variant::Bundle {
            "Container bundle set"
        } else {
            "Clone Set"
        };
        let header = if attrs.is_empty() {
            format!("{indent}* {kind}: {} [{child_id}]:\n", rsc.id)
        } else {
            format!(
                "{indent}* {kind}: {} [{child_id}] ({}):\n",
                rsc.id,
                attrs.join(", ")
            )
        };
        let inner = format!("{indent}  ");
        let mut body = String::new();
        let mut promoted: Vec<NodeId> = Vec::new();
        let mut started: Vec<NodeId> = Vec::new();
        let mut clone_nodes: BTreeSet<NodeId> = BTreeSet::new();
        for it in self.clone_items(r, snap) {
            let insts: Vec<RscId> = it.members.iter().filter_map(|(_, i)| *i).collect();
            let views: Vec<RscView> = insts.iter().map(|i| it.view(*i, snap)).collect();
            let active_members = views.iter().filter(|v| !v.active.is_empty()).count();
            let partially_active = active_members > 0;
            let fully_active = partially_active && active_members == it.members.len();
            let mut it_nodes: Vec<NodeId> = Vec::new();
            for v in &views {
                for n in v.nodes() {
                    clone_nodes.insert(n);
                    if !it_nodes.contains(&n) {
                        it_nodes.push(n);
                    }
                }
            }
            let print_full =
                if unique || (snap.show_pending && views.iter().any(|v| v.pending.is_some())) {
                    true
                } else if !partially_active {
                    false
                } else if insts.iter().zip(&views).any(|(i, v)| {
                    self.resources[*i].flags.removed
                        || v.removed
                        || !self.status_managed(*i)
                        || v.failed
                }) {
                    true
                } else if fully_active && it_nodes.len() == 1 {
                    let n = it_nodes[0];
                    if !snap.nodes[n].online && snap.nodes[n].unclean {
                        true
                    } else {
                        let role = views
                            .iter()
                            .map(RscView::role)
                            .max()
                            .unwrap_or(Role::Stopped);
                        if role > Role::Unpromoted {
                            promoted.push(n);
                        } else {
                            started.push(n);
                        }
                        false
                    }
                } else {
                    true
                };
            if !print_full {
                continue;
            }
            match template {
                Some(t) if self.resources[t].variant == Variant::Group => {
                    self.render_group(t, Some(&it), snap, &inner, &mut body);
                }
                _ => {
                    let Some(&(m, inst)) = it.members.first() else {
                        continue;
                    };
                    let line = self.item_member_line(&it, m, inst, snap);
                    let _ = writeln!(body, "{inner}* {line}");
                }
            }
        }
        let sort = |v: &mut Vec<NodeId>| {
            v.sort_by(|a, b| numeric_strcasecmp(&self.nodes[*a].uname, &self.nodes[*b].uname));
        };
        sort(&mut promoted);
        sort(&mut started);
        let names = |v: &[NodeId]| -> Vec<&str> {
            v.iter().map(|n| self.nodes[*n].uname.as_str()).collect()
        };
        if !promoted.is_empty() {
            let _ = writeln!(
                body,
                "{inner}* Promoted: [ {} ]",
                names(&promoted).join(" ")
            );
        }
        if !started.is_empty() {
            let label = if promotable {
                let configured = rsc.meta.get("target-role").and_then(|v| Role::parse(v));
                if configured == Some(Role::Unpromoted) {
                    "Unpromoted (target-role)"
                } else {
                    "Unpromoted"
                }
            } else {
                "Started"
            };
            let _ = writeln!(body, "{inner}* {label}: [ {} ]", names(&started).join(" "));
        }
        let active_instances = (promoted.len() + started.len()) as u32;
        if !unique && self.clone_max(r) > active_instances {
            let candidates: Vec<NodeId> = if self.settings.symmetric {
                (0..self.nodes.len()).collect()
            } else {
                let mut probed: BTreeSet<NodeId> = rsc.probed.clone();
                for (pr, n) in &snap.probed {
                    if self.top_of(*pr) == r {
                        probed.insert(*n);
                    }
                }
                probed.into_iter().collect()
            };
            let disabled =
                rsc.meta.get("target-role").and_then(|v| Role::parse(v)) == Some(Role::Stopped);
            let mut by_state: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
            for n in candidates {
                if clone_nodes.contains(&n) {
                    continue;
                }
                let state = match self.clone_failed_probe(r, n, snap) {
                    Some(rc) => format!("Stopped ({})", exit_text(rc)),
                    None if disabled => "Stopped (disabled)".to_string(),
                    None => "Stopped".to_string(),
                };
                by_state.entry(state).or_default().push(n);
            }
            for (state, mut list) in by_state {
                sort(&mut list);
                let _ = writeln!(body, "{inner}* {state}: [ {} ]", names(&list).join(" "));
            }
        }
        out.push_str(&header);
        out.push_str(&body);
    }

    /// A failed probe of any instance of a clone on a node.
    fn clone_failed_probe(&self, clone: RscId, n: NodeId, snap: &Snapshot) -> Option<i32> {
        let mut candidates: Vec<RscId> = self.children_of(clone);
        let mut stack: Vec<RscId> = self.resources[clone].children.clone();
        while let Some(x) = stack.pop() {
            candidates.push(x);
            stack.extend(self.resources[x].children.iter().copied());
        }
        candidates
            .into_iter()
            .find_map(|i| self.failed_probe_rc(i, Some(n), snap))
    }
}

/// One clone instance as the status shows it.
#[derive(Debug, Clone)]
struct Item {
    /// Instance number, when the resource's name carries one.
    number: Option<u32>,
    /// Instance name (`child:N`).
    name: String,
    /// Member templates and their instance resources (`None` for a member
    /// that never ran); one member for a cloned primitive.
    members: Vec<(RscId, Option<RscId>)>,
    /// The node the instance is restricted to, when one instance resource
    /// stands for several anonymous instances.
    only: Option<NodeId>,
    /// An instance beyond what the clone allows.
    orphan: bool,
}

impl Item {
    fn view(&self, i: RscId, snap: &Snapshot) -> RscView {
        let mut v = snap.rscs[i].clone();
        if let Some(n) = self.only {
            v.active.retain(|(m, _)| *m == n);
            if v.pending.as_ref().is_some_and(|(_, m)| *m != n) {
                v.pending = None;
            }
        }
        v.removed |= self.orphan;
        v
    }
}
