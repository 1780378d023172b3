//! Assigning resources to nodes: node criteria (locations, stickiness,
//! failure thresholds), colocations and the choice of the best node.

use std::collections::BTreeMap;

use vigil_types::{Role, Score};

use crate::Scheduler;
use crate::model::*;

/// Pacemaker marks nodes a clone must not use with this sentinel score.
const INFINITY_HACK: i32 = Score::INFINITY_VALUE * -100;

/// Colocation effects a dependent can feel.
#[derive(PartialEq, Eq)]
enum Affects {
    Nothing,
    Location,
    Role,
}

impl Scheduler {
    pub(crate) fn apply_node_criteria(&mut self) {
        for l in (0..self.locations.len()).rev() {
            let rsc = self.locations[l].rsc;
            self.apply_location(rsc, l, None);
        }
        for r in self.top.clone() {
            self.apply_stickiness(r);
        }
        for n in 0..self.nodes.len() {
            for r in self.top.clone() {
                self.check_failure_threshold(r, n);
                self.apply_exclusive_discovery(r, n);
            }
        }
    }

    fn apply_stickiness(&mut self, r: RscId) {
        let children = self.children_of(r);
        if !children.is_empty() {
            for c in children {
                self.apply_stickiness(c);
            }
            return;
        }
        let rsc = &self.resources[r];
        if !rsc.flags.managed || rsc.stickiness < 1 || rsc.running_on.len() != 1 {
            return;
        }
        let node = rsc.running_on[0];
        if !self.settings.symmetric && !rsc.allowed.contains_key(&node) {
            return;
        }
        let s = Score::new(rsc.stickiness as i64);
        self.resource_location(r, Some(node), s);
    }

    /// Children for scheduling purposes (clone instances for clones).
    pub(crate) fn children_of(&self, r: RscId) -> Vec<RscId> {
        match self.resources[r].variant {
            Variant::Clone => self.instances.get(&r).cloned().unwrap_or_default(),
            _ => self.resources[r].children.clone(),
        }
    }

    fn check_failure_threshold(&mut self, r: RscId, n: NodeId) {
        let children = self.children_of(r);
        if !children.is_empty() {
            for c in children {
                self.check_failure_threshold(c, n);
            }
            return;
        }
        let clear_exists = self
            .task_actions(r, "clear_failcount")
            .iter()
            .any(|a| self.actions[*a].node == Some(n));
        if clear_exists {
            return;
        }
        if let Some(failed) = self.threshold_reached(r, n) {
            self.resource_location(failed, Some(n), Score::NEG_INFINITY);
        }
    }

    /// The resource to ban from `n` when `r` reached its migration
    /// threshold there.
    pub(crate) fn threshold_reached(&self, r: RscId, n: NodeId) -> Option<RscId> {
        let rsc = &self.resources[r];
        if rsc.migration_threshold == 0 || rsc.flags.ignore_failure {
            return None;
        }
        let (mut count, _) = self.failcount(n, r, true);
        for &l in &rsc.launched {
            count += self.failcount(n, l, true).0;
        }
        if count <= 0 {
            return None;
        }
        let ban = if rsc.flags.unique { r } else { self.top_of(r) };
        let remaining = rsc.migration_threshold as i64 - count as i64;
        (remaining <= 0).then_some(ban)
    }

    fn apply_exclusive_discovery(&mut self, r: RscId, n: NodeId) {
        let top = self.top_of(r);
        if !(self.resources[r].flags.exclusive_probes || self.resources[top].flags.exclusive_probes)
        {
            return;
        }
        for c in self.children_of(r) {
            self.apply_exclusive_discovery(c, n);
        }
        let mode = self.resources[r]
            .probe_mode
            .get(&n)
            .copied()
            .unwrap_or_default();
        if let Some(s) = self.resources[r].allowed.get_mut(&n)
            && mode != ProbeMode::Exclusive
        {
            *s = Score::NEG_INFINITY;
        }
    }

    pub(crate) fn assign_resources(&mut self) {
        for r in self.top.clone() {
            self.assign(r, None, true);
        }
    }

    pub(crate) fn assign(
        &mut self,
        r: RscId,
        prefer: Option<NodeId>,
        stop_if_fail: bool,
    ) -> Option<NodeId> {
        match self.resources[r].variant {
            Variant::Primitive => self.assign_primitive(r, prefer, stop_if_fail),
            Variant::Group => self.assign_group(r, prefer, stop_if_fail),
            Variant::Clone | Variant::Bundle => self.assign_leave_as_is(r),
        }
    }

    /// Collective resources not yet scheduled in full keep every instance
    /// where it is, as long as its node can still host it.
    fn assign_leave_as_is(&mut self, r: RscId) -> Option<NodeId> {
        if !self.resources[r].flags.unassigned {
            return None;
        }
        self.resources[r].flags.unassigned = false;
        for c in self.children_of(r) {
            let rsc = &self.resources[c];
            let node = rsc.running_on.first().copied();
            let keep = node.filter(|n| self.nodes[*n].available() || !rsc.flags.managed);
            let role = self.resources[c].orig_role;
            let rsc = &mut self.resources[c];
            rsc.flags.unassigned = false;
            rsc.assigned = keep;
            if rsc.next_role == Role::Unknown || keep.is_none() {
                rsc.next_role = if keep.is_some() { role } else { Role::Stopped };
            }
            if let Some(n) = keep {
                self.nodes[n].num_resources += 1;
            }
        }
        None
    }

    fn assign_group(
        &mut self,
        r: RscId,
        prefer: Option<NodeId>,
        stop_if_fail: bool,
    ) -> Option<NodeId> {
        if !self.resources[r].flags.unassigned {
            return self.resources[r].assigned;
        }
        if self.resources[r].flags.assigning {
            return None;
        }
        let children = self.resources[r].children.clone();
        if children.is_empty() {
            self.resources[r].flags.unassigned = false;
            return None;
        }
        self.resources[r].flags.assigning = true;
        let first = children[0];
        self.resources[r].orig_role = self.resources[first].orig_role;
        self.log_scores("pcmk__group_assign", r);
        let mut first_assigned = None;
        for m in children {
            let node = self.assign(m, prefer, stop_if_fail);
            if first_assigned.is_none() {
                first_assigned = node;
            }
        }
        self.resources[r].next_role = self.resources[first].next_role;
        self.resources[r].flags.assigning = false;
        self.resources[r].flags.unassigned = false;
        if !self.resources[r].group_colocated {
            return None;
        }
        first_assigned
    }

    fn assign_primitive(
        &mut self,
        r: RscId,
        prefer: Option<NodeId>,
        stop_if_fail: bool,
    ) -> Option<NodeId> {
        if let Some(p) = self.resources[r].parent
            && !self.resources[p].flags.assigning
        {
            self.assign(p, prefer, stop_if_fail);
        }
        if !self.resources[r].flags.unassigned {
            return self.resources[r].assigned;
        }
        if self.resources[r].flags.assigning {
            return None;
        }
        self.resources[r].flags.assigning = true;
        let this_with = self.this_with_colocations(r);
        let with_this = self.with_this_colocations(r);
        for &c in &this_with {
            if self.colocations[c].score.is_infinite() {
                self.apply_this_with(c, r);
            }
        }
        for &c in &with_this {
            if self.colocations[c].score.is_infinite() {
                self.add_dependent_scores(c, r);
            }
        }
        for &c in &this_with {
            if !self.colocations[c].score.is_infinite() {
                self.apply_this_with(c, r);
            }
        }
        for &c in &with_this {
            if !self.colocations[c].score.is_infinite() {
                self.add_dependent_scores(c, r);
            }
        }
        if self.resources[r].next_role == Role::Stopped {
            self.resource_location(r, None, Score::NEG_INFINITY);
        } else if self.resources[r].next_role > self.resources[r].orig_role
            && !self.settings.quorate
            && self.settings.no_quorum_policy == NoQuorumPolicy::Freeze
        {
            self.resources[r].next_role = self.resources[r].orig_role;
        }
        self.log_scores("pcmk__primitive_assign", r);
        if self.settings.fencing_enabled && !self.settings.have_fencing {
            self.resources[r].flags.managed = false;
        }
        if !self.resources[r].flags.managed {
            self.resources[r].next_role = self.resources[r].orig_role;
            let to = self.current_node(r);
            self.assign_to(r, to, true, stop_if_fail);
        } else if self.settings.stop_all {
            self.assign_to(r, None, true, stop_if_fail);
        } else {
            self.assign_best_node(r, prefer, stop_if_fail);
        }
        self.resources[r].flags.assigning = false;
        self.resources[r].assigned
    }

    /// Records allocation scores as crm_simulate -s prints them: the
    /// resource's and, recursively, its children's (never for removed
    /// resources).
    fn log_scores(&mut self, func: &'static str, r: RscId) {
        if self.resources[r].flags.removed {
            return;
        }
        let entries: Vec<_> = self.resources[r]
            .allowed
            .iter()
            .map(|(n, s)| (func, r, *n, *s))
            .collect();
        self.scores.extend(entries);
        for c in self.children_of(r) {
            self.log_scores(func, c);
        }
    }

    /// Whether `n` can run resources, optionally requiring a non-negative
    /// score in `r`'s allowed table.
    fn node_available(&self, n: NodeId, score: Option<Score>) -> bool {
        self.nodes[n].available() && score.is_none_or(|s| s.value() >= 0)
    }

    /// Allowed nodes sorted best first (Pacemaker's pcmk__sort_nodes()).
    fn sorted_allowed(&self, r: RscId) -> Vec<(NodeId, Score)> {
        let current = self.current_node(r);
        let mut v: Vec<(NodeId, Score)> = self.resources[r]
            .allowed
            .iter()
            .map(|(n, s)| (*n, *s))
            .collect();
        v.sort_by(|a, b| self.compare_nodes(*a, *b, current));
        v
    }

    fn compare_nodes(
        &self,
        a: (NodeId, Score),
        b: (NodeId, Score),
        preferred: Option<NodeId>,
    ) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        let sa = if self.nodes[a.0].available() {
            a.1
        } else {
            Score::NEG_INFINITY
        };
        let sb = if self.nodes[b.0].available() {
            b.1
        } else {
            Score::NEG_INFINITY
        };
        match sb.cmp(&sa) {
            Equal => {}
            o => return o,
        }
        if self.settings.placement_strategy != "minimal" {
            match self.nodes[a.0]
                .num_resources
                .cmp(&self.nodes[b.0].num_resources)
            {
                Equal => {}
                o => return o,
            }
            if let Some(p) = preferred {
                if p == a.0 {
                    return Less;
                } else if p == b.0 {
                    return Greater;
                }
            }
        }
        self.nodes[a.0]
            .uname
            .as_bytes()
            .cmp(self.nodes[b.0].uname.as_bytes())
    }

    fn assign_best_node(&mut self, r: RscId, prefer: Option<NodeId>, stop_if_fail: bool) -> bool {
        if !self.resources[r].flags.unassigned {
            return self.resources[r].assigned.is_some();
        }
        let nodes = self.sorted_allowed(r);
        let best = nodes.first().copied();
        let mut chosen: Option<(NodeId, Score)> = None;
        if let (Some(p), Some(best)) = (prefer, best)
            && let Some(s) = self.resources[r].allowed.get(&p).copied()
            && s >= best.1
            && self.node_available(p, Some(s))
        {
            chosen = Some((p, s));
        }
        if chosen.is_none()
            && let Some(b) = best
        {
            chosen = Some(b);
            let parent_unique_clone = self.resources[r].parent.is_some_and(|p| {
                self.resources[p].variant == Variant::Clone && self.resources[r].flags.unique
            });
            if !parent_unique_clone
                && b.1.value() > 0
                && self.node_available(b.0, None)
                && let Some(running) = self.current_node(r)
                && self.node_available(running, Some(Score::ZERO))
            {
                for &(n, s) in &nodes[1..] {
                    if s != b.1 {
                        break;
                    }
                    if n == running {
                        chosen = Some((n, s));
                    }
                }
            }
        }
        self.assign_to_scored(r, chosen, false, stop_if_fail);
        self.resources[r].assigned.is_some()
    }

    /// Pacemaker's pcmk__assign_resource() with the node's own score.
    pub(crate) fn assign_to(
        &mut self,
        r: RscId,
        node: Option<NodeId>,
        force: bool,
        stop_if_fail: bool,
    ) -> bool {
        let scored = node.map(|n| {
            (
                n,
                self.resources[r]
                    .allowed
                    .get(&n)
                    .copied()
                    .unwrap_or(self.nodes[n].weight),
            )
        });
        self.assign_to_scored(r, scored, force, stop_if_fail)
    }

    fn assign_to_scored(
        &mut self,
        r: RscId,
        node: Option<(NodeId, Score)>,
        force: bool,
        stop_if_fail: bool,
    ) -> bool {
        let children = self.children_of(r);
        if !children.is_empty() {
            let mut changed = false;
            for c in children {
                changed |= self.assign_to_scored(c, node, force, stop_if_fail);
            }
            return changed;
        }
        let mut node = node;
        if let Some((n, s)) = node
            && !force
            && (s.value() < 0 || !self.node_available(n, Some(s)))
        {
            if stop_if_fail {
                self.resources[r].next_role = Role::Stopped;
            }
            node = None;
        }
        let changed = self.resources[r].assigned != node.map(|x| x.0);
        if let Some(old) = self.resources[r].assigned.take() {
            self.nodes[old].num_resources -= 1;
        }
        self.resources[r].flags.unassigned = false;
        match node {
            None => {
                if !stop_if_fail {
                    return changed;
                }
                self.resources[r].next_role = Role::Stopped;
                for a in self.resources[r].actions.clone() {
                    let act = &mut self.actions[a];
                    if act.task == "stop" {
                        act.flags.0 &= !AFlags::OPTIONAL;
                    } else if act.task == "start"
                        || (act.interval_ms != 0 && act.target_rc != Some(7))
                    {
                        act.flags.0 &= !AFlags::RUNNABLE;
                    }
                }
            }
            Some((n, _)) => {
                self.resources[r].assigned = Some(n);
                self.nodes[n].num_resources += 1;
            }
        }
        changed
    }

    // ---- colocation lists ----

    /// Colocations where `r` is the dependent, as assignment considers them.
    pub(crate) fn this_with_colocations(&self, r: RscId) -> Vec<ColocId> {
        let mut list = Vec::new();
        self.this_with_into(r, r, &mut list);
        list
    }

    pub(crate) fn with_this_colocations(&self, r: RscId) -> Vec<ColocId> {
        let mut list = Vec::new();
        self.with_this_into(r, r, &mut list);
        list
    }

    /// Adds `addition` to `list` the way Pacemaker's list helpers do: a copy
    /// when the list is empty, otherwise one sorted insertion per element of
    /// the first element (a quirk kept for identical results).
    fn add_coloc_list(&self, list: &mut Vec<ColocId>, addition: &[ColocId], dependent: bool) {
        if list.is_empty() {
            list.extend_from_slice(addition);
            return;
        }
        for _ in addition {
            self.insert_sorted(list, addition[0], dependent);
        }
    }

    fn this_with_into(&self, r: RscId, orig: RscId, list: &mut Vec<ColocId>) {
        let rsc = &self.resources[r];
        match rsc.variant {
            Variant::Primitive => {
                if r == orig {
                    self.add_coloc_list(list, &rsc.this_with, false);
                    if let Some(p) = rsc.parent {
                        self.this_with_into(p, orig, list);
                    }
                } else {
                    for &c in &rsc.this_with {
                        if self.colocations[c].explicit {
                            self.insert_sorted(list, c, false);
                        }
                    }
                }
            }
            Variant::Group => {
                if rsc.children.is_empty() {
                    return;
                }
                if r == orig || orig == rsc.children[0] {
                    self.add_coloc_list(list, &rsc.this_with, false);
                    if let Some(p) = rsc.parent {
                        self.this_with_into(p, orig, list);
                    }
                    if !rsc.group_colocated {
                        return;
                    }
                    for &m in &rsc.children {
                        if m != orig {
                            self.this_with_into(m, orig, list);
                        }
                    }
                    return;
                }
                for &m in &rsc.children {
                    if m == orig {
                        break;
                    }
                    if !self.resources[m].flags.managed {
                        for &c in &rsc.this_with {
                            if self.colocations[c].score.is_pos_infinity() {
                                self.insert_sorted(list, c, false);
                            }
                        }
                        break;
                    }
                }
            }
            Variant::Clone | Variant::Bundle => {
                for &c in &rsc.this_with {
                    if r == orig || self.colocations[c].explicit {
                        self.insert_sorted(list, c, false);
                    }
                }
            }
        }
    }

    fn with_this_into(&self, r: RscId, orig: RscId, list: &mut Vec<ColocId>) {
        let rsc = &self.resources[r];
        match rsc.variant {
            Variant::Primitive => {
                if r == orig {
                    self.add_coloc_list(list, &rsc.with_this, true);
                    if let Some(p) = rsc.parent {
                        self.with_this_into(p, orig, list);
                    }
                } else {
                    for &c in &rsc.with_this {
                        if self.colocations[c].explicit {
                            self.insert_sorted(list, c, true);
                        }
                    }
                }
            }
            Variant::Group => {
                let Some(&last) = rsc.children.last() else {
                    return;
                };
                if orig != r && orig != last {
                    return;
                }
                self.add_coloc_list(list, &rsc.with_this, true);
                if let Some(p) = rsc.parent {
                    self.with_this_into(p, orig, list);
                }
                if !rsc.group_colocated {
                    return;
                }
                for &m in &rsc.children {
                    if m != orig {
                        self.with_this_into(m, orig, list);
                    }
                }
            }
            Variant::Clone | Variant::Bundle => {
                for &c in &rsc.with_this {
                    if r == orig || self.colocations[c].explicit {
                        self.insert_sorted(list, c, true);
                    }
                }
            }
        }
    }

    // ---- applying colocations ----

    fn any_available(&self, nodes: &BTreeMap<NodeId, Score>) -> bool {
        nodes.iter().any(|(n, s)| self.node_available(*n, Some(*s)))
    }

    fn apply_this_with(&mut self, c: ColocId, r: RscId) {
        let col = self.colocations[c].clone();
        let other = col.primary;
        let archive = (col.dependent_role >= Role::Promoted
            || (col.score.value() < 0 && !col.score.is_neg_infinity()))
        .then(|| self.resources[r].allowed.clone());
        if self.resources[other].flags.unassigned {
            self.assign(other, None, true);
        }
        self.apply_coloc_score(r, other, c);
        if let Some(archive) = archive
            && !self.any_available(&self.resources[r].allowed)
        {
            self.resources[r].allowed = archive;
        }
    }

    /// Applies colocation `c` (dependent `dep`, primary `pri`) to the
    /// dependent's scores, on behalf of the primary's kind.
    fn apply_coloc_score(&mut self, dep: RscId, pri: RscId, c: ColocId) {
        match self.resources[pri].variant {
            Variant::Primitive => match self.colocation_affects(dep, pri, c) {
                Affects::Location => self.apply_coloc_to_scores(dep, pri, c),
                Affects::Role | Affects::Nothing => {}
            },
            Variant::Group => {
                if self.resources[pri].flags.unassigned {
                    return;
                }
                let children = self.resources[pri].children.clone();
                if self.resources[pri].group_colocated {
                    let member = if self.colocations[c].score.is_pos_infinity() {
                        children.last().copied()
                    } else {
                        children.first().copied()
                    };
                    if let Some(m) = member {
                        self.apply_coloc_score(dep, m, c);
                    }
                } else if !self.colocations[c].score.is_pos_infinity() {
                    for m in children {
                        self.apply_coloc_score(dep, m, c);
                    }
                }
            }
            Variant::Clone | Variant::Bundle => self.apply_coloc_with_collective(dep, pri, c),
        }
    }

    /// Colocation with a clone whose instances stay where they are: only
    /// nodes with an instance (in the right role) qualify.
    fn apply_coloc_with_collective(&mut self, dep: RscId, pri: RscId, c: ColocId) {
        let col = self.colocations[c].clone();
        if !self.resources[dep].flags.unassigned {
            return;
        }
        let mut hosts: Vec<NodeId> = Vec::new();
        for i in self.children_of(pri) {
            let inst = &self.resources[i];
            let Some(n) = inst.assigned else { continue };
            if col.primary_role != Role::Unknown && inst.next_role != col.primary_role {
                continue;
            }
            hosts.push(n);
        }
        let allowed: Vec<NodeId> = self.resources[dep].allowed.keys().copied().collect();
        for n in allowed {
            let has = hosts.contains(&n);
            let s = self.resources[dep].allowed.get_mut(&n).expect("key exists");
            if col.score.is_pos_infinity() {
                if !has {
                    *s = Score::NEG_INFINITY;
                }
            } else if has {
                *s += col.score;
            }
        }
    }

    fn colocation_affects(&self, dep: RscId, pri: RscId, c: ColocId) -> Affects {
        let col = &self.colocations[c];
        if self.resources[pri].flags.unassigned {
            return Affects::Nothing;
        }
        if col.dependent_role >= Role::Unpromoted
            && self.resources[dep].parent.is_some()
            && self.is_promotable(dep)
            && !self.resources[dep].flags.unassigned
        {
            return Affects::Role;
        }
        if !self.resources[dep].flags.unassigned {
            return Affects::Nothing;
        }
        if col.dependent_role != Role::Unknown
            && col.dependent_role != self.resources[dep].next_role
        {
            return Affects::Nothing;
        }
        if col.primary_role != Role::Unknown && col.primary_role != self.resources[pri].next_role {
            return Affects::Nothing;
        }
        Affects::Location
    }

    fn node_attr(&self, n: NodeId, attr: &str) -> Option<&str> {
        self.nodes[n].attrs.get(attr).map(String::as_str)
    }

    fn apply_coloc_to_scores(&mut self, dep: RscId, pri: RscId, c: ColocId) {
        let col = self.colocations[c].clone();
        let attr = col.node_attribute.as_str();
        let primary_node = self.resources[pri].assigned;
        let value = primary_node.and_then(|n| self.node_attr(n, attr).map(str::to_string));
        if primary_node.is_none() && col.score.value() < 0 {
            return;
        }
        let mut work = self.resources[dep].allowed.clone();
        for (n, s) in work.iter_mut() {
            if primary_node.is_none() {
                *s = (-col.score) + *s;
                continue;
            }
            let v = self.node_attr(*n, attr);
            let matches = match (v, value.as_deref()) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                (None, None) => true,
                _ => false,
            };
            if matches {
                if !col.score.is_pos_infinity() {
                    *s = col.score + *s;
                }
                continue;
            }
            if col.score.is_pos_infinity() {
                *s = Score::NEG_INFINITY;
            }
        }
        if col.score.is_infinite() || self.any_available(&work) {
            self.resources[dep].allowed = work;
        }
    }

    fn has_influence(&self, c: ColocId) -> bool {
        let col = &self.colocations[c];
        col.influence || self.resources[col.primary].running_on.is_empty()
    }

    fn add_dependent_scores(&mut self, c: ColocId, primary: RscId) {
        let col = self.colocations[c].clone();
        if !self.has_influence(c) {
            return;
        }
        let factor = col.score.value() as f32 / Score::INFINITY_VALUE as f32;
        let nonnegative = self.resources[primary].variant == Variant::Clone;
        let mut nodes = self.resources[primary].allowed.clone();
        self.add_colocated_node_scores(col.dependent, &mut nodes, c, factor, true, nonnegative);
        self.resources[primary].allowed = nodes;
    }

    /// Pacemaker's pcmk__add_colocated_node_scores() (the "with this"
    /// direction): folds `source`'s preferences into `nodes`, attenuated by
    /// `factor`, following colocation chains.
    #[allow(clippy::too_many_arguments)]
    fn add_colocated_node_scores(
        &mut self,
        source: RscId,
        nodes: &mut BTreeMap<NodeId, Score>,
        c: ColocId,
        factor: f32,
        active: bool,
        nonnegative: bool,
    ) {
        if self.resources[source].variant == Variant::Group {
            if self.resources[source].flags.updating_nodes {
                return;
            }
            self.resources[source].flags.updating_nodes = true;
            if let Some(&first) = self.resources[source].children.first() {
                self.add_colocated_node_scores(first, nodes, c, factor, active, nonnegative);
            }
            self.resources[source].flags.updating_nodes = false;
            return;
        }
        if self.resources[source].flags.updating_nodes {
            return;
        }
        self.resources[source].flags.updating_nodes = true;
        let mut work = nodes.clone();
        self.add_node_scores_matching_attr(&mut work, source, c, factor, nonnegative);
        if self.any_available(&work) {
            let colocations = self.with_this_colocations(source);
            for cc in colocations {
                if !self.has_influence(cc) {
                    continue;
                }
                let other_factor = factor * self.colocations[cc].score.value() as f32
                    / Score::INFINITY_VALUE as f32;
                let other = self.colocations[cc].dependent;
                self.add_colocated_node_scores(
                    other,
                    &mut work,
                    cc,
                    other_factor,
                    true,
                    nonnegative,
                );
            }
        } else if active {
            self.resources[source].flags.updating_nodes = false;
            return;
        }
        if nonnegative {
            for s in work.values_mut() {
                if s.value() == INFINITY_HACK {
                    *s = Score::new(1);
                }
            }
        }
        *nodes = work;
        self.resources[source].flags.updating_nodes = false;
    }

    /// For each value of `attr`, the best score `rsc` has on an available
    /// node with that value (absent values under `None`; values compared
    /// case-insensitively), as Pacemaker's best_node_score_matching_attr()
    /// computes it, for all values at once.
    fn best_scores_by_attr(
        &self,
        c: ColocId,
        rsc: RscId,
        attr: &str,
    ) -> std::collections::HashMap<Option<String>, Score> {
        let col = &self.colocations[c];
        let mut adjusted: Option<BTreeMap<NodeId, Score>> = None;
        if rsc == col.dependent
            && col.explicit
            && let Some(p) = self.resources[rsc].parent
            && self.resources[p].variant == Variant::Group
            && self.resources[p].children.first() != Some(&rsc)
        {
            // Later group members did not get the group's location scores;
            // consider them here.
            let mut allowed = self.resources[rsc].allowed.clone();
            for l in (0..self.locations.len()).rev() {
                if self.locations[l].rsc == p {
                    let role = self.locations[l].role_filter;
                    if role > Role::Unknown && role != self.resources[rsc].next_role {
                        continue;
                    }
                    for &(n, s) in &self.locations[l].nodes {
                        let e = allowed.entry(n).or_insert(Score::ZERO);
                        *e += s;
                    }
                }
            }
            adjusted = Some(allowed);
        }
        let allowed = adjusted.as_ref().unwrap_or(&self.resources[rsc].allowed);
        let mut best: std::collections::HashMap<Option<String>, Score> = Default::default();
        for (n, s) in allowed {
            if !self.nodes[*n].available() {
                continue;
            }
            let key = self.node_attr(*n, attr).map(str::to_ascii_lowercase);
            let e = best.entry(key).or_insert(Score::NEG_INFINITY);
            if *s > *e {
                *e = *s;
            }
        }
        best
    }

    fn allowed_on_one(&self, r: RscId) -> bool {
        self.resources[r]
            .allowed
            .values()
            .filter(|s| s.value() >= 0)
            .count()
            == 1
    }

    fn add_node_scores_matching_attr(
        &mut self,
        work: &mut BTreeMap<NodeId, Score>,
        source: RscId,
        c: ColocId,
        factor: f32,
        only_positive: bool,
    ) {
        let col = self.colocations[c].clone();
        let attr = col.node_attribute.clone();
        let best = self.best_scores_by_attr(c, source, &attr);
        let keys: Vec<NodeId> = work.keys().copied().collect();
        for n in keys {
            let value = self.node_attr(n, &attr).map(str::to_ascii_lowercase);
            let score = best.get(&value).copied().unwrap_or(Score::NEG_INFINITY);
            if factor < 0.0 && score.value() < 0 {
                let primary = &self.resources[col.primary];
                if primary.stickiness >= -score.value()
                    || !self.has_influence(c)
                    || !self.allowed_on_one(col.dependent)
                {
                    continue;
                }
            }
            let cur = work[&n];
            if cur.value() == INFINITY_HACK {
                continue;
            }
            let delta_f = factor * score.value() as f32;
            let mut delta = if delta_f < 0.0 {
                (delta_f - 0.5) as i32
            } else {
                (delta_f + 0.5) as i32
            };
            if delta == 0 && score.value() != 0 {
                if factor > 0.0 {
                    delta = 1;
                } else if factor < 0.0 {
                    delta = -1;
                }
            }
            let new = Score::new(delta as i64) + cur;
            if only_positive && new.value() < 0 && cur.value() > 0 {
                work.insert(n, Score::from_raw(INFINITY_HACK));
                continue;
            }
            if only_positive && new.value() < 0 && cur.value() == 0 {
                continue;
            }
            work.insert(n, new);
        }
    }
}
