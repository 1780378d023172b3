//! Location, colocation and order constraints, with resource sets.

use vigil_cib::rules::RuleContext;
use vigil_cib::xml::Element;
use vigil_types::{Role, Score};

use crate::Scheduler;
use crate::actions::op_key;
use crate::model::*;
use crate::unpack::parse_bool;

#[derive(Clone, Copy, PartialEq, Eq)]
enum OrderKind {
    Optional,
    Mandatory,
    Serialize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Symmetry {
    Symmetric,
    Asymmetric,
    Inverse,
}

fn invert_action(a: &str) -> Option<&'static str> {
    Some(match a {
        "start" => "stop",
        "stop" => "start",
        "promote" => "demote",
        "demote" => "promote",
        "promoted" => "demoted",
        "demoted" => "promoted",
        "running" => "stopped",
        "stopped" => "running",
        _ => return None,
    })
}

fn is_up_action(a: &str) -> bool {
    matches!(a, "start" | "promote")
}

fn order_kind(xml: &Element) -> OrderKind {
    match xml.attr("kind") {
        None => match xml.attr("score") {
            Some(s) if s.parse::<Score>().map(|s| s.value()).unwrap_or(0) == 0 => {
                OrderKind::Optional
            }
            _ => OrderKind::Mandatory,
        },
        Some("Mandatory") => OrderKind::Mandatory,
        Some("Optional") => OrderKind::Optional,
        Some("Serialize") => OrderKind::Serialize,
        Some(_) => OrderKind::Mandatory,
    }
}

fn order_symmetry(
    xml: &Element,
    parent_kind: OrderKind,
    parent_symmetrical: Option<&str>,
) -> Symmetry {
    let kind = if xml.attr("kind").is_some() || xml.attr("score").is_some() {
        order_kind(xml)
    } else {
        parent_kind
    };
    let explicit = xml
        .attr("symmetrical")
        .and_then(parse_bool)
        .or_else(|| parent_symmetrical.and_then(parse_bool));
    match explicit {
        Some(true) if kind != OrderKind::Serialize => Symmetry::Symmetric,
        Some(_) => Symmetry::Asymmetric,
        None if kind == OrderKind::Serialize => Symmetry::Asymmetric,
        None => Symmetry::Symmetric,
    }
}

fn order_flags(kind: OrderKind, first: &str, sym: Symmetry) -> u32 {
    match kind {
        OrderKind::Optional => ar::ORDERED,
        OrderKind::Serialize => ar::SERIALIZE,
        OrderKind::Mandatory => {
            let mut f = ar::ORDERED;
            match sym {
                Symmetry::Asymmetric => f |= ar::ASYMMETRIC,
                Symmetry::Symmetric => {
                    f |= ar::FIRST_IMPLIES_THEN;
                    if is_up_action(first) {
                        f |= ar::UNRUNNABLE_FIRST_BLOCKS;
                    }
                }
                Symmetry::Inverse => f |= ar::THEN_IMPLIES_FIRST,
            }
            f
        }
    }
}

impl Scheduler {
    pub(crate) fn unpack_constraints(&mut self, constraints: &Element) {
        for c in constraints.elements() {
            let c = match c.attr("id-ref") {
                Some(r) => match self.ids.get(r) {
                    Some(e) => e.clone(),
                    None => continue,
                },
                None => c.clone(),
            };
            let Some(c) = self.expand_tags(&c) else {
                continue;
            };
            match c.name.as_str() {
                "rsc_order" => self.unpack_order(&c),
                "rsc_colocation" => self.unpack_colocation(&c),
                "rsc_location" => self.unpack_location(&c),
                _ => {}
            }
        }
    }

    /// The configured resource a constraint names (not clone instances).
    pub(crate) fn find_constraint_rsc(&self, id: &str) -> Option<RscId> {
        self.rsc_by_id.get(id).copied()
    }

    /// Rewrites references to tags and templates as resource sets, the way
    /// Pacemaker expands them; `None` when a reference is invalid.
    fn expand_tags(&mut self, xml: &Element) -> Option<Element> {
        let is_tag = |s: &Self, id: &str| !s.rsc_by_id.contains_key(id) && s.tags.contains_key(id);
        let valid = |s: &Self, id: &str| s.rsc_by_id.contains_key(id) || s.tags.contains_key(id);
        let has_sets = xml.children_named("resource_set").next().is_some();
        if has_sets {
            let mut out = xml.clone();
            for set in out.elements_mut().filter(|e| e.name == "resource_set") {
                let mut children = Vec::new();
                for n in std::mem::take(&mut set.children) {
                    match &n {
                        vigil_cib::xml::Node::Element(r) if r.name == "resource_ref" => {
                            let id = r.attr("id").unwrap_or("").to_string();
                            if !valid(self, &id) {
                                let msg = format!("'{id}' is not a valid resource or tag");
                                self.err(xml, msg);
                                return None;
                            }
                            if is_tag(self, &id) {
                                for m in self.tags[&id].clone() {
                                    let mut e = Element::new("resource_ref");
                                    e.set_attr("id", m);
                                    children.push(vigil_cib::xml::Node::Element(e));
                                }
                                continue;
                            }
                            children.push(n);
                        }
                        _ => children.push(n),
                    }
                }
                set.children = children;
            }
            return Some(out);
        }
        let (attrs, moves, convert): (&[&str], &[(&str, &str)], bool) = match xml.name.as_str() {
            "rsc_colocation" => (
                &["rsc", "with-rsc"],
                &[("rsc", "rsc-role"), ("with-rsc", "with-rsc-role")],
                true,
            ),
            "rsc_order" => (
                &["first", "then"],
                &[("first", "first-action"), ("then", "then-action")],
                true,
            ),
            "rsc_location" => (&["rsc"], &[("rsc", "role")], false),
            _ => return Some(xml.clone()),
        };
        let ids: Vec<Option<String>> = attrs
            .iter()
            .map(|a| xml.attr(a).map(str::to_string))
            .collect();
        if ids.iter().any(Option::is_none) {
            return Some(xml.clone());
        }
        let ids: Vec<String> = ids.into_iter().flatten().collect();
        for id in &ids {
            if !valid(self, id) {
                let msg = format!("'{id}' is not a valid resource or tag");
                self.err(xml, msg);
                return None;
            }
        }
        let tagged: Vec<bool> = ids.iter().map(|id| is_tag(self, id)).collect();
        if !tagged.iter().any(|t| *t) {
            return Some(xml.clone());
        }
        if xml.name == "rsc_colocation" && tagged.iter().all(|t| *t) {
            self.err(xml, "two templates or tags cannot be colocated".into());
            return None;
        }
        let mut out = xml.clone();
        for (i, attr) in attrs.iter().enumerate() {
            let id = &ids[i];
            if !tagged[i] && !convert {
                continue;
            }
            let mut set = Element::new("resource_set");
            set.set_attr("id", id.clone());
            if tagged[i] {
                for m in self.tags[id].clone() {
                    let mut e = Element::new("resource_ref");
                    e.set_attr("id", m);
                    set.push(e);
                }
                set.set_attr("sequential", "false");
            } else {
                let mut e = Element::new("resource_ref");
                e.set_attr("id", id.clone());
                set.push(e);
            }
            let (_, moved) = moves[i];
            if let Some(v) = out.remove_attr(moved) {
                let target = if xml.name == "rsc_order" {
                    "action"
                } else {
                    "role"
                };
                set.set_attr(target, v);
            }
            out.remove_attr(attr);
            out.push(set);
        }
        Some(out)
    }

    fn resolve_set(&self, set: &Element) -> Element {
        match set.attr("id-ref") {
            Some(r) => self.ids.get(r).cloned().unwrap_or_else(|| set.clone()),
            None => set.clone(),
        }
    }

    fn err(&mut self, xml: &Element, msg: String) {
        self.diag.errors.push(format!(
            "{}: constraint {}: {msg}",
            xml.pos,
            xml.attr("id").unwrap_or("without id")
        ));
    }

    // ---- locations ----

    fn unpack_location(&mut self, xml: &Element) {
        let sets: Vec<Element> = xml
            .children_named("resource_set")
            .map(|s| self.resolve_set(s))
            .collect();
        if !sets.is_empty() {
            for set in sets {
                let role = set.attr("role").map(str::to_string);
                let score = set.attr("score").map(str::to_string);
                for r in set.children_named("resource_ref") {
                    let Some(rid) = r.attr("id") else { continue };
                    match self.find_constraint_rsc(rid) {
                        Some(rsc) => self.unpack_rsc_location(
                            xml,
                            rsc,
                            role.as_deref(),
                            score.as_deref(),
                            None,
                        ),
                        None => self.err(xml, format!("resource '{rid}' does not exist")),
                    }
                }
            }
            return;
        }
        if let Some(rid) = xml.attr("rsc") {
            match self.find_constraint_rsc(rid) {
                Some(rsc) => self.unpack_rsc_location(xml, rsc, None, None, None),
                None => self.err(xml, format!("resource '{rid}' does not exist")),
            }
        }
        if let Some(pattern) = xml.attr("rsc-pattern") {
            let (invert, pat) = match pattern.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, pattern),
            };
            let re = match regex_lite::Regex::new(pat) {
                Ok(r) => r,
                Err(e) => {
                    self.err(xml, format!("rsc-pattern '{pattern}' is not valid: {e}"));
                    return;
                }
            };
            for rsc in self.top.clone() {
                let id = self.resources[rsc].id.clone();
                match re.captures(&id) {
                    Some(caps) if !invert => {
                        let subs: Vec<String> = caps
                            .iter()
                            .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
                            .collect();
                        self.unpack_rsc_location(xml, rsc, None, None, Some(subs));
                    }
                    None if invert => self.unpack_rsc_location(xml, rsc, None, None, None),
                    _ => {}
                }
            }
        }
    }

    fn parse_location_role(spec: Option<&str>) -> Option<Role> {
        match spec {
            None => Some(Role::Unknown),
            Some(s) => match Role::parse(s)? {
                Role::Started | Role::Unpromoted => Some(Role::Unknown),
                Role::Unknown => None,
                r => Some(r),
            },
        }
    }

    fn new_location(&mut self, id: &str, rsc: RscId, discovery: Option<&str>) -> usize {
        let probe_mode = match discovery.map(str::to_ascii_lowercase).as_deref() {
            None | Some("always") => ProbeMode::Always,
            Some("never") => ProbeMode::Never,
            Some("exclusive") => {
                self.resources[rsc].flags.exclusive_probes = true;
                ProbeMode::Exclusive
            }
            Some(other) => {
                self.diag.errors.push(format!(
                    "invalid resource-discovery value '{other}' in {id}"
                ));
                ProbeMode::Always
            }
        };
        let idx = self.locations.len();
        self.locations.push(Location {
            id: id.to_string(),
            rsc,
            role_filter: Role::Unknown,
            probe_mode,
            nodes: Vec::new(),
        });
        self.resources[rsc].locations.push(idx);
        idx
    }

    fn unpack_rsc_location(
        &mut self,
        xml: &Element,
        rsc: RscId,
        role_spec: Option<&str>,
        score: Option<&str>,
        submatches: Option<Vec<String>>,
    ) {
        let id = xml.attr("id").unwrap_or("").to_string();
        let discovery = xml.attr("resource-discovery");
        let score = score.or(xml.attr("score"));
        if let (Some(node), Some(score)) = (xml.attr("node"), score) {
            let Some(n) = self.find_node(node) else {
                return;
            };
            let Ok(score) = score.parse::<Score>() else {
                self.err(xml, format!("'{score}' is not a valid score"));
                return;
            };
            let role_spec = role_spec.or(xml.attr("role"));
            let Some(role) = Self::parse_location_role(role_spec) else {
                self.err(
                    xml,
                    format!("'{}' is not a valid role", role_spec.unwrap_or("")),
                );
                return;
            };
            let l = self.new_location(&id, rsc, discovery);
            self.locations[l].role_filter = role;
            self.locations[l].nodes.push((n, score));
            return;
        }
        let Some(rule) = xml.child("rule") else {
            return;
        };
        let rule = match rule.attr("id-ref") {
            Some(r) => match self.ids.get(r) {
                Some(e) => e.clone(),
                None => {
                    self.err(xml, format!("rule reference '{r}' does not exist"));
                    return;
                }
            },
            None => rule.clone(),
        };
        let Some(rule_id) = rule.attr("id").map(str::to_string) else {
            self.err(xml, "its rule has no id".into());
            return;
        };
        let Some(role) = Self::parse_location_role(rule.attr("role")) else {
            self.err(xml, format!("rule {rule_id} has an invalid role"));
            return;
        };
        let mut score_attr = rule.attr("score-attribute").map(str::to_string);
        if let (Some(attr), Some(subs)) = (&score_attr, &submatches) {
            let mut out = String::new();
            let mut chars = attr.chars().peekable();
            while let Some(c) = chars.next() {
                if (c == '%' || c == '\\')
                    && let Some(d) = chars.peek().and_then(|d| d.to_digit(10))
                {
                    chars.next();
                    out.push_str(subs.get(d as usize).map_or("", String::as_str));
                    continue;
                }
                out.push(c);
            }
            score_attr = Some(out);
        }
        let fixed_score = if score_attr.is_none() {
            match rule.attr("score").map(|s| s.parse::<Score>()) {
                Some(Ok(s)) => s,
                _ => {
                    self.err(xml, format!("rule {rule_id} has no valid score"));
                    return;
                }
            }
        } else {
            Score::ZERO
        };
        let l = self.new_location(&rule_id, rsc, discovery);
        self.locations[l].role_filter = role;
        let meta = self.resources[rsc].meta.clone();
        let params = self.resources[rsc].params.clone();
        for n in 0..self.nodes.len() {
            let attrs = self.nodes[n].attrs.clone();
            let ctx = RuleContext {
                now: self.now_dt(),
                node_attrs: Some(&attrs),
                rsc_params: Some(&params),
                rsc_meta: Some(&meta),
                rsc_id_submatches: submatches.as_deref(),
                ..Default::default()
            };
            if !self.rule_passes(&rule, &ctx) {
                continue;
            }
            let score = match &score_attr {
                Some(a) => match attrs.get(a).filter(|v| !v.is_empty()) {
                    None => continue,
                    Some(v) => match v.parse::<Score>() {
                        Ok(s) => s,
                        Err(_) => continue,
                    },
                },
                None => fixed_score,
            };
            self.locations[l].nodes.push((n, score));
        }
    }

    /// Applies one location constraint to its resource (and, for groups,
    /// its members).
    pub(crate) fn apply_location(
        &mut self,
        rsc: RscId,
        l: usize,
        nodes_override: Option<&[(NodeId, Score)]>,
    ) {
        match self.resources[rsc].variant {
            Variant::Group => {
                let orig: Vec<(NodeId, Score)> = nodes_override
                    .map(<[_]>::to_vec)
                    .unwrap_or_else(|| self.locations[l].nodes.clone());
                let zeroed: Vec<(NodeId, Score)> =
                    orig.iter().map(|(n, _)| (*n, Score::ZERO)).collect();
                self.apply_location_primitive(rsc, l, &orig);
                let colocated = self.resources[rsc].group_colocated;
                for (i, m) in self.resources[rsc].children.clone().into_iter().enumerate() {
                    let nodes = if colocated && i > 0 { &zeroed } else { &orig };
                    self.apply_location(m, l, Some(nodes));
                }
            }
            Variant::Clone | Variant::Bundle => {
                let orig: Vec<(NodeId, Score)> = nodes_override
                    .map(<[_]>::to_vec)
                    .unwrap_or_else(|| self.locations[l].nodes.clone());
                self.apply_location_primitive(rsc, l, &orig);
                for m in self.resources[rsc].children.clone() {
                    self.apply_location(m, l, Some(&orig));
                }
            }
            Variant::Primitive => {
                let nodes: Vec<(NodeId, Score)> = nodes_override
                    .map(<[_]>::to_vec)
                    .unwrap_or_else(|| self.locations[l].nodes.clone());
                self.apply_location_primitive(rsc, l, &nodes);
            }
        }
    }

    fn apply_location_primitive(&mut self, rsc: RscId, l: usize, nodes: &[(NodeId, Score)]) {
        let role = self.locations[l].role_filter;
        if role > Role::Unknown && role != self.resources[rsc].next_role {
            return;
        }
        let mode = self.locations[l].probe_mode;
        for &(n, score) in nodes {
            let r = &mut self.resources[rsc];
            match r.allowed.get_mut(&n) {
                None => {
                    let base = self.nodes[n].weight;
                    let _ = base;
                    r.allowed.insert(n, score);
                }
                Some(s) => *s += score,
            }
            let cur = r.probe_mode.entry(n).or_default();
            if *cur < mode {
                if mode == ProbeMode::Exclusive {
                    r.flags.exclusive_probes = true;
                }
                *cur = mode;
            }
        }
    }

    // ---- colocations ----

    fn unpack_influence(&self, rsc: RscId, influence: Option<&str>) -> bool {
        if let Some(b) = influence.and_then(parse_bool) {
            return b;
        }
        self.resources[rsc].flags.critical
    }

    fn unpack_colocation(&mut self, xml: &Element) {
        let Some(id) = xml.attr("id").map(str::to_string) else {
            self.diag.errors.push(format!(
                "{}: rsc_colocation without an id is ignored",
                xml.pos
            ));
            return;
        };
        let score = match xml.attr("score") {
            Some(s) => match s.parse::<Score>() {
                Ok(s) => s,
                Err(_) => {
                    self.err(xml, format!("'{s}' is not a valid score"));
                    return;
                }
            },
            None => Score::ZERO,
        };
        let influence = xml.attr("influence").map(str::to_string);
        let mut last: Option<Element> = None;
        for set in xml.children_named("resource_set") {
            let set = self.resolve_set(set);
            self.unpack_colocation_set(&set, score, &id, influence.as_deref());
            if let Some(prev) = &last {
                self.colocate_rsc_sets(&id, prev, &set, score, influence.as_deref());
            }
            last = Some(set);
        }
        if last.is_some() {
            return;
        }
        let (Some(dep), Some(pri)) = (xml.attr("rsc"), xml.attr("with-rsc")) else {
            self.err(xml, "it needs rsc and with-rsc".into());
            return;
        };
        let Some(dependent) = self.find_constraint_rsc(dep) else {
            self.err(xml, format!("resource '{dep}' does not exist"));
            return;
        };
        let Some(primary) = self.find_constraint_rsc(pri) else {
            self.err(xml, format!("resource '{pri}' does not exist"));
            return;
        };
        let inf = self.unpack_influence(dependent, influence.as_deref());
        self.new_colocation(
            &id,
            xml.attr("node-attribute"),
            score,
            dependent,
            primary,
            xml.attr("rsc-role"),
            xml.attr("with-rsc-role"),
            inf,
            true,
        );
    }

    fn set_refs(&mut self, set: &Element) -> Vec<Option<RscId>> {
        set.children_named("resource_ref")
            .map(|r| r.attr("id").and_then(|id| self.find_constraint_rsc(id)))
            .collect()
    }

    fn unpack_colocation_set(
        &mut self,
        set: &Element,
        score: Score,
        id: &str,
        influence: Option<&str>,
    ) {
        let set_id = set.attr("id").unwrap_or("").to_string();
        let role = set.attr("role").map(str::to_string);
        let local = match set.attr("score") {
            Some(s) => match s.parse::<Score>() {
                Ok(s) => s,
                Err(_) => return,
            },
            None => score,
        };
        if local == Score::ZERO {
            return;
        }
        let with_previous = set
            .attr("ordering")
            .is_none_or(|o| o.eq_ignore_ascii_case("group"));
        if set.attr("sequential").and_then(parse_bool) == Some(false) {
            return;
        }
        let refs = self.set_refs(set);
        let _ = id;
        if local.value() > 0 {
            let mut other: Option<RscId> = None;
            for r in refs {
                let Some(r) = r else { return };
                if let Some(o) = other {
                    let inf = self.unpack_influence(r, influence);
                    if with_previous {
                        self.new_colocation(
                            &set_id,
                            None,
                            local,
                            r,
                            o,
                            role.as_deref(),
                            role.as_deref(),
                            inf,
                            true,
                        );
                    } else {
                        self.new_colocation(
                            &set_id,
                            None,
                            local,
                            o,
                            r,
                            role.as_deref(),
                            role.as_deref(),
                            inf,
                            true,
                        );
                    }
                }
                other = Some(r);
            }
        } else {
            for (i, r) in refs.iter().enumerate() {
                let Some(r) = *r else { return };
                let inf = self.unpack_influence(r, influence);
                for o in refs[..i].iter().flatten() {
                    self.new_colocation(
                        &set_id,
                        None,
                        local,
                        r,
                        *o,
                        role.as_deref(),
                        role.as_deref(),
                        inf,
                        true,
                    );
                }
            }
        }
    }

    fn colocate_rsc_sets(
        &mut self,
        id: &str,
        set1: &Element,
        set2: &Element,
        score: Score,
        influence: Option<&str>,
    ) {
        if score == Score::ZERO {
            return;
        }
        let role1 = set1.attr("role").map(str::to_string);
        let role2 = set2.attr("role").map(str::to_string);
        let refs1 = self.set_refs(set1);
        let refs2 = self.set_refs(set2);
        let seq1 = set1.attr("sequential").and_then(parse_bool).unwrap_or(true);
        let seq2 = set2.attr("sequential").and_then(parse_bool).unwrap_or(true);
        let rsc1 = if seq1 {
            refs1.first().copied().flatten()
        } else {
            None
        };
        let rsc2 = if seq2 {
            refs2.last().copied().flatten()
        } else {
            None
        };
        let (r1, r2) = (role1.as_deref(), role2.as_deref());
        match (rsc1, rsc2) {
            (Some(a), Some(b)) => {
                let inf = self.unpack_influence(a, influence);
                self.new_colocation(id, None, score, a, b, r1, r2, inf, true);
            }
            (Some(a), None) => {
                let inf = self.unpack_influence(a, influence);
                for b in refs2.into_iter().flatten() {
                    self.new_colocation(id, None, score, a, b, r1, r2, inf, true);
                }
            }
            (None, Some(b)) => {
                for a in refs1.into_iter().flatten() {
                    let inf = self.unpack_influence(a, influence);
                    self.new_colocation(id, None, score, a, b, r1, r2, inf, true);
                }
            }
            (None, None) => {
                for a in refs1.into_iter().flatten() {
                    let inf = self.unpack_influence(a, influence);
                    for b in refs2.iter().copied().flatten() {
                        self.new_colocation(id, None, score, a, b, r1, r2, inf, true);
                    }
                }
            }
        }
    }

    /// Sort key for colocation lists: higher priority first, collective
    /// resources before primitives, then by id.
    fn coloc_cmp(&self, a: ColocId, b: ColocId, dependent: bool) -> std::cmp::Ordering {
        let pick = |c: ColocId| {
            if dependent {
                self.colocations[c].dependent
            } else {
                self.colocations[c].primary
            }
        };
        let (r1, r2) = (&self.resources[pick(a)], &self.resources[pick(b)]);
        let rank = |v: Variant| match v {
            Variant::Primitive => 0,
            Variant::Group => 1,
            Variant::Clone => 2,
            Variant::Bundle => 3,
        };
        r2.priority
            .cmp(&r1.priority)
            .then(rank(r2.variant).cmp(&rank(r1.variant)))
            .then_with(|| {
                if r1.variant == Variant::Clone {
                    let p1 = self.is_promotable(pick(a));
                    let p2 = self.is_promotable(pick(b));
                    p2.cmp(&p1)
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| r1.id.as_bytes().cmp(r2.id.as_bytes()))
    }

    pub(crate) fn is_promotable(&self, r: RscId) -> bool {
        let top = self.top_of(r);
        let t = &self.resources[top];
        t.xml.name == "master"
            || t.meta
                .get("promotable")
                .is_some_and(|v| crate::unpack::is_true(v))
    }

    /// Inserts a colocation into a sorted list (after its equals, as GLib's
    /// g_list_insert_sorted does).
    pub(crate) fn insert_sorted(&self, list: &mut Vec<ColocId>, c: ColocId, dependent: bool) {
        let pos = list
            .iter()
            .position(|x| self.coloc_cmp(c, *x, dependent) == std::cmp::Ordering::Less)
            .unwrap_or(list.len());
        list.insert(pos, c);
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_colocation(
        &mut self,
        id: &str,
        node_attr: Option<&str>,
        score: Score,
        dependent: RscId,
        primary: RscId,
        dependent_role: Option<&str>,
        primary_role: Option<&str>,
        influence: bool,
        explicit: bool,
    ) {
        let parse_role = |s: Option<&str>| -> Option<Role> {
            match s {
                None => Some(Role::Unknown),
                Some(s) => match Role::parse(s)? {
                    Role::Started => Some(Role::Unknown),
                    r => Some(r),
                },
            }
        };
        let (Some(drole), Some(prole)) = (parse_role(dependent_role), parse_role(primary_role))
        else {
            self.diag
                .errors
                .push(format!("colocation {id} has an invalid role"));
            return;
        };
        if score == Score::ZERO {
            return;
        }
        let c = self.colocations.len();
        self.colocations.push(Colocation {
            id: id.to_string(),
            dependent,
            primary,
            score,
            dependent_role: drole,
            primary_role: prole,
            node_attribute: node_attr.unwrap_or("#uname").to_string(),
            influence,
            explicit,
        });
        let mut list = std::mem::take(&mut self.resources[dependent].this_with);
        self.insert_sorted(&mut list, c, false);
        self.resources[dependent].this_with = list;
        let mut list = std::mem::take(&mut self.resources[primary].with_this);
        self.insert_sorted(&mut list, c, true);
        self.resources[primary].with_this = list;
        if score.is_neg_infinity() {
            self.anti_colocation_order(dependent, drole, primary, prole);
            self.anti_colocation_order(primary, prole, dependent, drole);
        }
    }

    fn anti_colocation_order(
        &mut self,
        first: RscId,
        first_role: Role,
        then: RscId,
        then_role: Role,
    ) {
        let first_tasks: Vec<&str> = if first_role == Role::Promoted {
            vec!["demote"]
        } else if first_role == Role::Unpromoted {
            vec!["stop", "promote"]
        } else {
            vec!["stop"]
        };
        let then_tasks: Vec<&str> = if then_role == Role::Promoted {
            vec!["promote"]
        } else if then_role == Role::Unpromoted {
            vec!["start", "demote"]
        } else {
            vec!["start"]
        };
        for f in &first_tasks {
            for t in &then_tasks {
                self.order_rsc_actions(first, f, then, t, ar::IF_REQUIRED_ON_SAME_NODE);
            }
        }
    }

    // ---- orderings ----

    /// Orders `first_task` of `first` before `then_task` of `then`.
    pub(crate) fn order_rsc_actions(
        &mut self,
        first: RscId,
        first_task: &str,
        then: RscId,
        then_task: &str,
        flags: u32,
    ) {
        let k1 = op_key(&self.resources[first].id, first_task, 0);
        let k2 = op_key(&self.resources[then].id, then_task, 0);
        self.new_ordering(
            Some(first),
            Some(k1),
            None,
            Some(then),
            Some(k2),
            None,
            flags,
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_ordering(
        &mut self,
        rsc1: Option<RscId>,
        task1: Option<String>,
        action1: Option<ActionId>,
        rsc2: Option<RscId>,
        task2: Option<String>,
        action2: Option<ActionId>,
        flags: u32,
    ) {
        let rsc1 = rsc1.or_else(|| action1.and_then(|a| self.actions[a].rsc));
        let rsc2 = rsc2.or_else(|| action2.and_then(|a| self.actions[a].rsc));
        let task1 = task1.or_else(|| action1.map(|a| self.actions[a].uuid.clone()));
        let task2 = task2.or_else(|| action2.map(|a| self.actions[a].uuid.clone()));
        self.orderings.push(Ordering {
            rsc1,
            task1,
            action1,
            rsc2,
            task2,
            action2,
            flags,
        });
    }

    fn unpack_order(&mut self, xml: &Element) {
        let Some(id) = xml.attr("id").map(str::to_string) else {
            self.diag
                .errors
                .push(format!("{}: rsc_order without an id is ignored", xml.pos));
            return;
        };
        let kind = order_kind(xml);
        let symmetry = order_symmetry(xml, kind, None);
        let invert = xml.attr("symmetrical").map(str::to_string);
        let mut last: Option<Element> = None;
        for set in xml.children_named("resource_set") {
            let set = self.resolve_set(set);
            self.unpack_order_set(&set, kind, invert.as_deref());
            if let Some(prev) = &last {
                self.order_rsc_sets(&id, prev, &set, kind, symmetry);
                if symmetry == Symmetry::Symmetric {
                    self.order_rsc_sets(&id, &set, prev, kind, Symmetry::Inverse);
                }
            }
            last = Some(set);
        }
        if last.is_some() {
            return;
        }
        let (Some(f), Some(t)) = (xml.attr("first"), xml.attr("then")) else {
            self.err(xml, "it needs first and then".into());
            return;
        };
        let Some(first) = self.find_constraint_rsc(f) else {
            self.err(xml, format!("resource '{f}' does not exist"));
            return;
        };
        let Some(then) = self.find_constraint_rsc(t) else {
            self.err(xml, format!("resource '{t}' does not exist"));
            return;
        };
        let action_first = xml.attr("first-action").unwrap_or("start").to_string();
        let action_then = xml
            .attr("then-action")
            .unwrap_or(action_first.as_str())
            .to_string();
        let flags = order_flags(kind, &action_first, symmetry);
        let min = self.minimum_first_instances(first, xml);
        if min > 0 {
            self.clone_min_ordering(&id, first, &action_first, then, &action_then, flags, min);
        } else {
            self.order_rsc_actions(first, &action_first, then, &action_then, flags);
        }
        if symmetry == Symmetry::Symmetric {
            let (Some(inv_first), Some(inv_then)) =
                (invert_action(&action_first), invert_action(&action_then))
            else {
                self.err(
                    xml,
                    "cannot invert it (specify the inverse manually)".into(),
                );
                return;
            };
            let flags = order_flags(kind, inv_first, Symmetry::Inverse);
            self.order_rsc_actions(then, inv_then, first, inv_first, flags);
        }
    }

    fn minimum_first_instances(&self, rsc: RscId, xml: &Element) -> usize {
        if self.resources[rsc].variant != Variant::Clone {
            return 0;
        }
        if let Some(v) = self.resources[rsc].meta.get("clone-min") {
            return v.parse::<i64>().unwrap_or(0).max(0) as usize;
        }
        if xml.attr("require-all").and_then(parse_bool) == Some(false) {
            return 1;
        }
        0
    }

    #[allow(clippy::too_many_arguments)]
    fn clone_min_ordering(
        &mut self,
        id: &str,
        first: RscId,
        action_first: &str,
        then: RscId,
        action_then: &str,
        flags: u32,
        min: usize,
    ) {
        let task = format!("clone-one-or-more:{id}");
        let met = self.pseudo_op(&task);
        self.actions[met].required_runnable_before = min;
        for child in self.clone_children(first) {
            let k = op_key(&self.resources[child].id, action_first, 0);
            self.new_ordering(
                Some(child),
                Some(k),
                None,
                None,
                None,
                Some(met),
                ar::MIN_RUNNABLE | ar::FIRST_IMPLIES_THEN_GRAPHED,
            );
        }
        let k = op_key(&self.resources[then].id, action_then, 0);
        self.new_ordering(
            None,
            None,
            Some(met),
            Some(then),
            Some(k),
            None,
            flags | ar::UNRUNNABLE_FIRST_BLOCKS,
        );
    }

    /// A runnable singleton pseudo-action.
    pub(crate) fn pseudo_op(&mut self, name: &str) -> ActionId {
        if let Some(a) = self.singletons.get(name) {
            return *a;
        }
        let a = self.custom_action(None, name.to_string(), name, None, true);
        self.actions[a].flags.0 |= AFlags::PSEUDO | AFlags::RUNNABLE;
        a
    }

    fn unpack_order_set(
        &mut self,
        set: &Element,
        parent_kind: OrderKind,
        parent_symmetrical: Option<&str>,
    ) {
        let action = set.attr("action").unwrap_or("start").to_string();
        let local_kind = if set.attr("kind").is_some() {
            order_kind(set)
        } else {
            parent_kind
        };
        let sequential = set.attr("sequential").is_none_or(crate::unpack::is_true);
        let symmetry = order_symmetry(set, parent_kind, parent_symmetrical);
        let flags = order_flags(local_kind, &action, symmetry);
        let refs: Vec<RscId> = self.set_refs(set).into_iter().flatten().collect();
        if refs.len() == 1 {
            return;
        }
        let mut last: Option<RscId> = None;
        for (i, &r) in refs.iter().enumerate() {
            if local_kind == OrderKind::Serialize {
                for &then in &refs[i + 1..] {
                    self.order_rsc_actions(r, &action, then, &action, flags);
                }
            } else if sequential {
                if let Some(l) = last {
                    self.order_rsc_actions(l, &action, r, &action, flags);
                }
                last = Some(r);
            }
        }
        if symmetry == Symmetry::Asymmetric {
            return;
        }
        let Some(inv) = invert_action(&action) else {
            return;
        };
        let flags = order_flags(local_kind, inv, Symmetry::Inverse);
        let mut last: Option<RscId> = None;
        for &r in &refs {
            if sequential {
                if let Some(l) = last {
                    self.order_rsc_actions(r, inv, l, inv, flags);
                }
                last = Some(r);
            }
        }
    }

    fn order_rsc_sets(
        &mut self,
        _id: &str,
        set1: &Element,
        set2: &Element,
        kind: OrderKind,
        symmetry: Symmetry,
    ) {
        let mut action1 = set1.attr("action").unwrap_or("start").to_string();
        let mut action2 = set2.attr("action").unwrap_or("start").to_string();
        let mut require_all = set1
            .attr("require-all")
            .and_then(parse_bool)
            .unwrap_or(true);
        if symmetry == Symmetry::Inverse {
            action1 = invert_action(&action1).unwrap_or("").to_string();
            action2 = invert_action(&action2).unwrap_or("").to_string();
        }
        if action1 == "stop" || action1 == "demote" {
            require_all = true;
        }
        let flags = order_flags(kind, &action1, symmetry);
        let refs1: Vec<RscId> = self.set_refs(set1).into_iter().flatten().collect();
        let refs2: Vec<RscId> = self.set_refs(set2).into_iter().flatten().collect();
        if !require_all {
            let task = format!("one-or-more:{}", set1.attr("id").unwrap_or(""));
            let unordered = self.pseudo_op(&task);
            self.actions[unordered].required_runnable_before = 1;
            for &r in &refs1 {
                let k = op_key(&self.resources[r].id, &action1, 0);
                self.new_ordering(
                    Some(r),
                    Some(k),
                    None,
                    None,
                    None,
                    Some(unordered),
                    ar::MIN_RUNNABLE | ar::FIRST_IMPLIES_THEN_GRAPHED,
                );
            }
            for &r in &refs2 {
                let k = op_key(&self.resources[r].id, &action2, 0);
                self.new_ordering(
                    None,
                    None,
                    Some(unordered),
                    Some(r),
                    Some(k),
                    None,
                    flags | ar::UNRUNNABLE_FIRST_BLOCKS,
                );
            }
            return;
        }
        let explicit_true = |s: &Element| s.attr("sequential").and_then(parse_bool) == Some(true);
        let mut rsc1 = None;
        let mut rsc2 = None;
        if explicit_true(set1) {
            rsc1 = if symmetry == Symmetry::Inverse {
                refs1.first().copied()
            } else {
                refs1.last().copied()
            };
        }
        if explicit_true(set2) {
            rsc2 = if symmetry == Symmetry::Inverse {
                refs2.last().copied()
            } else {
                refs2.first().copied()
            };
        }
        match (rsc1, rsc2) {
            (Some(a), Some(b)) => self.order_rsc_actions(a, &action1, b, &action2, flags),
            (Some(a), None) => {
                for &b in &refs2 {
                    self.order_rsc_actions(a, &action1, b, &action2, flags);
                }
            }
            (None, Some(b)) => {
                for &a in &refs1 {
                    self.order_rsc_actions(a, &action1, b, &action2, flags);
                }
            }
            (None, None) => {
                for &a in &refs1 {
                    for &b in &refs2 {
                        self.order_rsc_actions(a, &action1, b, &action2, flags);
                    }
                }
            }
        }
    }

    /// The instances of a clone (or the child of another collective).
    pub(crate) fn clone_children(&self, r: RscId) -> Vec<RscId> {
        if self.resources[r].variant == Variant::Clone {
            self.instances.get(&r).cloned().unwrap_or_default()
        } else {
            self.resources[r].children.clone()
        }
    }
}
