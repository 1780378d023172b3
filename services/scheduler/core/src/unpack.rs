//! From CIB XML to the scheduler's working state: options, nodes,
//! resources and the status section (node states and operation history).

use std::collections::BTreeMap;

use vigil_cib::rules::RuleContext;
use vigil_cib::time::parse_interval_ms;
use vigil_cib::xml::{Document, Element};
use vigil_types::{Role, Score};

use crate::Scheduler;
use crate::model::*;

pub(crate) fn is_true(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "on" | "yes" | "y" | "1"
    )
}

pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// Pacemaker's node name order: case-insensitive, digit runs numerically.
pub(crate) fn numeric_strcasecmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let a = a.as_bytes();
    let b = b.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na: u128 = std::str::from_utf8(&a[si..i])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let nb: u128 = std::str::from_utf8(&b[sj..j])
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            match na.cmp(&nb).then((i - si).cmp(&(j - sj))) {
                Equal => {}
                o => return o,
            }
        } else {
            match a[i].to_ascii_lowercase().cmp(&b[j].to_ascii_lowercase()) {
                Equal => {}
                o => return o,
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j)).then(Equal)
}

/// One history entry of an operation.
#[derive(Debug, Clone)]
pub(crate) struct HistoryOp<'a> {
    pub xml: &'a Element,
    pub id: String,
    pub task: String,
    pub interval_ms: u64,
    pub call_id: i64,
    pub rc: i32,
    pub status: i32,
    pub expected: i32,
    pub last_rc_change: Option<i64>,
}

pub(crate) fn decode_transition_key(key: &str) -> Option<i32> {
    // action:transition:target_rc:uuid
    let mut parts = key.splitn(4, ':');
    let _action = parts.next()?;
    let _transition = parts.next()?;
    parts.next()?.parse().ok()
}

fn op_key(rsc: &str, task: &str, interval_ms: u64) -> String {
    format!("{rsc}_{task}_{interval_ms}")
}

impl<'a> HistoryOp<'a> {
    /// One `lrm_rsc_op` entry, or `None` without an id or operation.
    pub(crate) fn from_element(op: &'a Element) -> Option<HistoryOp<'a>> {
        let num = |name: &str, default: i64| {
            op.attr(name)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default)
        };
        Some(HistoryOp {
            xml: op,
            id: op.attr("id")?.to_string(),
            task: op.attr("operation")?.to_string(),
            interval_ms: op
                .attr("interval")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            call_id: num("call-id", -1),
            rc: num("rc-code", -1) as i32,
            status: num("op-status", -99) as i32,
            expected: op
                .attr("transition-key")
                .and_then(decode_transition_key)
                .unwrap_or(-1),
            last_rc_change: op.attr("last-rc-change").and_then(|v| v.parse().ok()),
        })
    }

    /// A resource history entry's operations in Pacemaker's order (gathered
    /// newest-first, then stably sorted by call).
    pub(crate) fn sorted_from_entry(entry: &'a Element) -> Vec<HistoryOp<'a>> {
        let mut ops: Vec<HistoryOp<'a>> = entry
            .children_named("lrm_rsc_op")
            .filter_map(HistoryOp::from_element)
            .collect();
        ops.reverse();
        ops.sort_by(cmp_history_pub);
        ops
    }
}

/// Whether `a` sorts before `b` in Pacemaker's history order.
pub(crate) fn cmp_history_pub(a: &HistoryOp<'_>, b: &HistoryOp<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    let a_node = a.xml.attr("on_node");
    let b_node = b.xml.attr("on_node");
    let same_node = match (a_node, b_node) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        (None, None) => true,
        _ => false,
    };
    if same_node && a.id == b.id {
        return Equal;
    }
    let (ac, bc) = (a.call_id, b.call_id);
    if ac == -1 && bc == -1 {
        return Equal;
    }
    if same_node && ac >= 0 && ac < bc {
        return Less;
    }
    if same_node && bc >= 0 && ac > bc {
        return Greater;
    }
    if ac >= 0 && bc >= 0 && (!same_node || ac == bc) {
        let la = a.last_rc_change.unwrap_or(-1);
        let lb = b.last_rc_change.unwrap_or(-1);
        if la >= 0 && la < lb {
            return Less;
        }
        if lb >= 0 && la > lb {
            return Greater;
        }
        return Equal;
    }
    // One is pending: use the transition number from the magic.
    let decode = |x: &Element| -> Option<(String, i64)> {
        let magic = x.attr("transition-magic")?;
        let (_, key) = magic.split_once(';')?;
        let mut p = key.splitn(4, ':');
        let _action = p.next()?;
        let transition: i64 = p.next()?.parse().ok()?;
        let _rc = p.next()?;
        Some((p.next()?.to_string(), transition))
    };
    let (Some((au, aid)), Some((bu, bid))) = (decode(a.xml), decode(b.xml)) else {
        return Equal;
    };
    if !au.eq_ignore_ascii_case(&bu) || aid == bid {
        if bc == -1 {
            return Less;
        } else if ac == -1 {
            return Greater;
        }
    } else if (aid >= 0 && aid < bid) || bid == -1 {
        return Less;
    } else if (bid >= 0 && aid > bid) || aid == -1 {
        return Greater;
    }
    Equal
}

impl Scheduler {
    /// Builds the working state from a CIB.
    pub(crate) fn unpack(&mut self, doc: &Document) {
        let cib = &doc.root;
        self.settings.quorate = cib.attr("have-quorum").is_some_and(is_true);
        let config = cib.child("configuration");
        let empty = Element::new("configuration");
        let config = config.unwrap_or(&empty);
        self.index_ids(config);

        self.unpack_options(config, cib);
        if let Some(nodes) = config.child("nodes") {
            self.unpack_nodes(nodes, cib);
        }
        let rsc_defaults = config.child("rsc_defaults").cloned();
        let op_defaults = config.child("op_defaults").cloned();
        self.rsc_defaults = rsc_defaults;
        self.op_defaults = op_defaults;
        if let Some(resources) = config.child("resources") {
            self.unpack_resources(resources);
        }
        for r in self.top.clone() {
            self.unpack_launcher(r);
        }
        // Pacemaker sorts configured resources by priority (stably); removed
        // resources found in the status section are appended later.
        let mut top = self.top.clone();
        top.sort_by(|a, b| {
            self.resources[*b]
                .priority
                .cmp(&self.resources[*a].priority)
        });
        self.top = top;
        if let Some(tags) = config.child("tags") {
            for tag in tags.children_named("tag") {
                let Some(id) = tag.attr("id") else { continue };
                let refs: Vec<String> = tag
                    .children_named("obj_ref")
                    .filter_map(|r| r.attr("id").map(str::to_string))
                    .collect();
                self.tags.entry(id.to_string()).or_default().extend(refs);
            }
        }
        if let Some(status) = cib.child("status") {
            self.unpack_status(status);
        }
        self.apply_node_health();
        if let Some(constraints) = config.child("constraints") {
            self.unpack_constraints(constraints);
        }
    }

    /// Remembers every element with an id that something refers to.
    fn index_ids(&mut self, config: &Element) {
        let mut wanted = std::collections::BTreeSet::new();
        for e in config.descendants() {
            if let Some(r) = e.attr("id-ref") {
                wanted.insert(r.to_string());
            }
        }
        if wanted.is_empty() {
            return;
        }
        for e in config.descendants() {
            if let Some(id) = e.attr("id")
                && wanted.contains(id)
                && e.attr("id-ref").is_none()
            {
                self.ids.entry(id.to_string()).or_insert_with(|| e.clone());
            }
        }
    }

    fn option(&self, name: &str) -> Option<&str> {
        self.settings.options.get(name).map(String::as_str)
    }

    fn option_bool(&self, names: &[&str], default: bool) -> bool {
        for n in names {
            if let Some(v) = self.option(n) {
                return parse_bool(v).unwrap_or(default);
            }
        }
        default
    }

    fn unpack_options(&mut self, config: &Element, cib: &Element) {
        let mut options = BTreeMap::new();
        if let Some(crm) = config.child("crm_config") {
            let ctx = RuleContext {
                now: self.now_dt(),
                ..Default::default()
            };
            // "cib-bootstrap-options" takes precedence among equal scores.
            self.nvpairs_first(crm, "cluster_property_set", &ctx, &mut options);
        }
        self.settings.options = options;
        let s = &mut self.settings;
        let _ = s;
        self.settings.fencing_enabled =
            self.option_bool(&["fencing-enabled", "stonith-enabled"], true);
        self.settings.symmetric = self.option_bool(&["symmetric-cluster"], true);
        self.settings.stop_all = self.option_bool(&["stop-all-resources"], false);
        self.settings.stop_removed =
            self.option_bool(&["stop-removed-resources", "stop-orphan-resources"], true);
        self.settings.maintenance = self.option_bool(&["maintenance-mode"], false);
        self.settings.startup_fencing = self.option_bool(&["startup-fencing"], true);
        self.settings.probe_resources = self.option_bool(&["enable-startup-probes"], true);
        self.settings.concurrent_fencing = self.option_bool(&["concurrent-fencing"], true);
        self.settings.start_failure_fatal = self.option_bool(&["start-failure-is-fatal"], true);
        self.settings.shutdown_lock = self.option_bool(&["shutdown-lock"], false);
        if self.option_bool(&["have-watchdog"], false) {
            self.settings.have_fencing = true;
        }
        self.settings.fence_action = self
            .option("fencing-action")
            .or_else(|| self.option("stonith-action"))
            .unwrap_or("reboot")
            .to_string();
        if self.settings.fence_action == "poweroff" {
            self.settings.fence_action = "off".into();
        }
        self.settings.placement_strategy = self
            .option("placement-strategy")
            .unwrap_or("default")
            .to_ascii_lowercase();
        self.settings.priority_fencing_ms = self
            .option("priority-fencing-delay")
            .and_then(parse_interval_ms)
            .unwrap_or(0);
        let nqp = self
            .option("no-quorum-policy")
            .unwrap_or("stop")
            .to_ascii_lowercase();
        self.settings.no_quorum_policy = match nqp.as_str() {
            "ignore" => NoQuorumPolicy::Ignore,
            "freeze" => NoQuorumPolicy::Freeze,
            "demote" => NoQuorumPolicy::Demote,
            "fence" | "suicide" => {
                if self.settings.fencing_enabled {
                    let panic = cib
                        .attr("no-quorum-panic")
                        .and_then(|v| v.parse::<i32>().ok())
                        .unwrap_or(0);
                    if panic != 0 || self.settings.quorate {
                        NoQuorumPolicy::Fence
                    } else {
                        NoQuorumPolicy::Stop
                    }
                } else {
                    NoQuorumPolicy::Stop
                }
            }
            _ => NoQuorumPolicy::Stop,
        };
        // Unfencing is enabled when any resource (or the defaults) needs it.
        let mut unfencing = false;
        for sect in ["resources", "rsc_defaults"] {
            if let Some(r) = config.child(sect) {
                for e in r.descendants() {
                    if e.name == "nvpair"
                        && matches!(e.attr("name"), Some("provides") | Some("requires"))
                        && e.attr("value") == Some("unfencing")
                    {
                        unfencing = true;
                    }
                }
            }
        }
        self.settings.enable_unfencing = unfencing;
    }

    /// Cluster options: the bootstrap set first, then by score.
    fn nvpairs_first(
        &mut self,
        parent: &Element,
        set_name: &str,
        ctx: &RuleContext<'_>,
        into: &mut BTreeMap<String, String>,
    ) {
        self.nvpairs_opts(
            parent,
            set_name,
            Some("cib-bootstrap-options"),
            ctx,
            into,
            false,
        );
    }

    fn unpack_nodes(&mut self, nodes: &Element, cib: &Element) {
        let dc = cib.attr("dc-uuid");
        let mut list: Vec<Node> = Vec::new();
        let mut xmls = Vec::new();
        for n in nodes.children_named("node") {
            let Some(id) = n.attr("id") else {
                self.diag
                    .errors
                    .push(format!("{}: <node> without an id is ignored", n.pos));
                continue;
            };
            let ty = n.attr("type").unwrap_or("member");
            if !matches!(ty, "member" | "normal" | "remote") {
                self.diag.errors.push(format!(
                    "{}: node {id} has unknown type '{ty}' and is ignored",
                    n.pos
                ));
                continue;
            }
            if ty == "remote" {
                // Remote nodes are scheduled in part 2.
                continue;
            }
            let uname = n.attr("uname").unwrap_or(id).to_string();
            let weight = n
                .attr("score")
                .and_then(|s| s.parse::<Score>().ok())
                .unwrap_or(Score::ZERO);
            let node = Node {
                id: id.to_string(),
                uname,
                weight,
                unclean: self.settings.fencing_enabled && self.settings.startup_fencing,
                ..Default::default()
            };
            list.push(node);
            xmls.push(n.clone());
        }
        // Pacemaker keeps nodes sorted by name.
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by(|a, b| numeric_strcasecmp(&list[*a].uname, &list[*b].uname));
        let mut dc_found = false;
        for i in order {
            let mut node = list[i].clone();
            node.attrs.insert("#uname".into(), node.uname.clone());
            node.attrs.insert("#id".into(), node.id.clone());
            node.attrs.insert("#kind".into(), "cluster".into());
            if !dc_found && dc.is_some_and(|d| d.eq_ignore_ascii_case(&node.id)) {
                dc_found = true;
                node.is_dc = true;
                node.attrs.insert("#is_dc".into(), "true".into());
            } else {
                node.attrs.insert("#is_dc".into(), "false".into());
            }
            if let Some(name) = self.settings.options.get("cluster-name").cloned() {
                node.attrs.insert("#cluster-name".into(), name);
            }
            let ctx = RuleContext {
                now: self.now_dt(),
                ..Default::default()
            };
            let mut attrs = node.attrs.clone();
            self.nvpairs(&xmls[i], "instance_attributes", &ctx, &mut attrs, false);
            node.attrs = attrs;
            if !node.attrs.contains_key("#site-name")
                && let Some(site) = node
                    .attrs
                    .get("site-name")
                    .or(self.settings.options.get("cluster-name"))
                    .cloned()
            {
                node.attrs.insert("#site-name".into(), site);
            }
            self.nodes.push(node);
        }
        self.dc = self.nodes.iter().position(|n| n.is_dc);
    }

    pub(crate) fn find_node(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.uname.eq_ignore_ascii_case(name))
            .or_else(|| self.nodes.iter().position(|n| n.id == name))
    }

    fn find_node_any(&self, id: &str, uname: Option<&str>) -> Option<NodeId> {
        if let Some(i) = self.nodes.iter().position(|n| n.id == id) {
            return Some(i);
        }
        uname.and_then(|u| {
            self.nodes
                .iter()
                .position(|n| n.uname.eq_ignore_ascii_case(u))
        })
    }

    fn unpack_resources(&mut self, resources: &Element) {
        for child in resources.elements() {
            match child.name.as_str() {
                "primitive" | "group" | "clone" | "master" | "bundle" => {
                    if let Some(id) = self.unpack_resource(child, None) {
                        self.top.push(id);
                    }
                }
                "template" => {
                    if let Some(id) = child.attr("id") {
                        self.templates.insert(id.to_string(), child.clone());
                    }
                }
                _ => {}
            }
        }
    }

    /// Expands `template="..."` into a primitive's definition.
    fn expand_template(&mut self, xml: &Element) -> Element {
        let Some(tid) = xml.attr("template") else {
            return xml.clone();
        };
        let Some(t) = self.templates.get(tid).cloned() else {
            self.diag.errors.push(format!(
                "{}: primitive {} uses template '{tid}', which does not exist",
                xml.pos,
                xml.attr("id").unwrap_or("?")
            ));
            return xml.clone();
        };
        if let Some(id) = xml.attr("id") {
            self.tags
                .entry(tid.to_string())
                .or_default()
                .push(id.to_string());
        }
        let mut out = xml.clone();
        for (k, v) in &t.attrs {
            if k != "id" && out.attr(k).is_none() {
                out.set_attr(k, v.clone());
            }
        }
        out.remove_attr("template");
        // Template blocks come after the primitive's own (lower precedence);
        // operations are merged by name+role, the primitive's winning.
        let mut own_ops = out.child("operations").cloned();
        let mut new_children = Vec::new();
        for n in &out.children {
            if let vigil_cib::xml::Node::Element(e) = n
                && e.name == "operations"
            {
                continue;
            }
            new_children.push(n.clone());
        }
        for e in t.elements() {
            if e.name == "operations" {
                let ops = own_ops.get_or_insert_with(|| Element::new("operations"));
                for op in e.children_named("op") {
                    let key = |o: &Element| {
                        let role = o.attr("role").unwrap_or("");
                        let role = match role {
                            "Started" | "Unpromoted" | "Slave" => "",
                            r => r,
                        };
                        format!("{}-{}", o.attr("name").unwrap_or(""), role)
                    };
                    let k = key(op);
                    if !ops.children_named("op").any(|o| key(o) == k) {
                        ops.push(op.clone());
                    }
                }
            } else {
                new_children.push(vigil_cib::xml::Node::Element(e.clone()));
            }
        }
        if let Some(ops) = own_ops {
            new_children.push(vigil_cib::xml::Node::Element(ops));
        }
        out.children = new_children;
        out
    }

    fn unpack_resource(&mut self, xml: &Element, parent: Option<RscId>) -> Option<RscId> {
        let Some(id) = xml.attr("id") else {
            self.diag.errors.push(format!(
                "{}: <{}> without an id is ignored",
                xml.pos, xml.name
            ));
            return None;
        };
        let xml = if xml.name == "primitive" {
            self.expand_template(xml)
        } else {
            xml.clone()
        };
        let variant = match xml.name.as_str() {
            "primitive" => Variant::Primitive,
            "group" => Variant::Group,
            "clone" | "master" => Variant::Clone,
            _ => Variant::Bundle,
        };
        let idx = self.resources.len();
        let mut rsc = Resource {
            id: id.to_string(),
            variant,
            parent,
            children: Vec::new(),
            xml: xml.clone(),
            class: xml.attr("class").unwrap_or("").to_string(),
            provider: xml.attr("provider").map(str::to_string),
            agent: xml.attr("type").unwrap_or("").to_string(),
            meta: BTreeMap::new(),
            params: BTreeMap::new(),
            ops: Vec::new(),
            priority: 0,
            stickiness: 0,
            migration_threshold: Score::INFINITY_VALUE,
            failure_timeout_ms: 0,
            requires: Requires::Nothing,
            multiple_active: MultipleActive::Restart,
            flags: RscFlags {
                managed: !self.settings.maintenance,
                unassigned: true,
                ..Default::default()
            },
            orig_role: Role::Stopped,
            next_role: Role::Unknown,
            running_on: Vec::new(),
            allowed: BTreeMap::new(),
            probe_mode: BTreeMap::new(),
            assigned: None,
            probed: Default::default(),
            this_with: Vec::new(),
            with_this: Vec::new(),
            actions: Vec::new(),
            by_uuid: Default::default(),
            by_task: Default::default(),
            locations: Vec::new(),
            pending_task: None,
            group_ordered: true,
            group_colocated: true,
            launcher: None,
            launched: Vec::new(),
        };
        // Meta attributes: the element's own attributes, its blocks, the
        // parents' blocks, rsc_defaults, then anything the parent has.
        let mut meta = BTreeMap::new();
        for (k, v) in &xml.attrs {
            meta.insert(k.clone(), v.clone());
        }
        let ctx = RuleContext {
            now: self.now_dt(),
            rsc_class: Some(rsc.class.as_str()),
            rsc_provider: rsc.provider.as_deref(),
            rsc_type: Some(rsc.agent.as_str()),
            ..Default::default()
        };
        self.nvpairs(&xml, "meta_attributes", &ctx, &mut meta, false);
        let mut p = parent;
        while let Some(pi) = p {
            let pxml = self.resources[pi].xml.clone();
            let mut pm = BTreeMap::new();
            self.nvpairs(&pxml, "meta_attributes", &ctx, &mut pm, false);
            for (k, v) in pm {
                meta.entry(k).or_insert(v);
            }
            p = self.resources[pi].parent;
        }
        if let Some(d) = self.rsc_defaults.clone() {
            self.nvpairs(&d, "meta_attributes", &ctx, &mut meta, false);
        }
        if let Some(pi) = parent {
            for (k, v) in self.resources[pi].meta.clone() {
                meta.entry(k).or_insert(v);
            }
        }
        rsc.meta = meta;
        let m = |k: &str| rsc.meta.get(k).map(String::as_str);
        rsc.priority = m("priority")
            .and_then(|v| v.parse::<Score>().ok())
            .map_or(0, Score::value);
        rsc.flags.critical = m("critical").is_none_or(is_true);
        if let Some(v) = m("is-managed")
            && v != "default"
        {
            rsc.flags.managed = is_true(v);
        }
        if m("maintenance").is_some_and(is_true) || self.settings.maintenance {
            rsc.flags.managed = false;
            rsc.flags.maintenance = true;
        }
        rsc.flags.migratable = m("allow-migrate").is_some_and(is_true);
        rsc.flags.unique = true;
        if let Some(pi) = parent {
            let top = self.top_of(pi);
            if self.resources[top].variant == Variant::Clone {
                rsc.flags.unique = m("globally-unique").is_some_and(is_true);
            }
        }
        rsc.multiple_active = match m("multiple-active").map(|s| s.to_ascii_lowercase()) {
            Some(s) if s == "stop_only" => MultipleActive::StopOnly,
            Some(s) if s == "block" => MultipleActive::Block,
            Some(s) if s == "stop_unexpected" => MultipleActive::StopUnexpected,
            _ => MultipleActive::Restart,
        };
        rsc.stickiness = match m("resource-stickiness") {
            Some("default") | None => 0,
            Some(v) => v.parse::<Score>().map_or(0, Score::value),
        };
        rsc.migration_threshold = match m("migration-threshold") {
            Some("default") | None => Score::INFINITY_VALUE,
            Some(v) => match v.parse::<Score>() {
                Ok(s) if s.value() >= 0 => s.value(),
                _ => Score::INFINITY_VALUE,
            },
        };
        if rsc.class.eq_ignore_ascii_case("stonith") {
            self.settings.have_fencing = true;
            rsc.flags.fence_device = true;
        }
        rsc.requires = self.unpack_requires(&rsc, m("requires"));
        if let Some(v) = m("failure-timeout") {
            rsc.failure_timeout_ms = parse_interval_ms(v).unwrap_or(0);
        }
        if variant == Variant::Group {
            rsc.group_ordered = m("ordered").is_none_or(is_true);
            rsc.group_colocated = m("collocated").is_none_or(is_true);
        }
        if variant == Variant::Primitive {
            let ctx = RuleContext {
                now: self.now_dt(),
                ..Default::default()
            };
            let mut params = BTreeMap::new();
            self.nvpairs(&xml, "instance_attributes", &ctx, &mut params, false);
            let mut p = parent;
            while let Some(pi) = p {
                let pxml = self.resources[pi].xml.clone();
                self.nvpairs(&pxml, "instance_attributes", &ctx, &mut params, false);
                p = self.resources[pi].parent;
            }
            rsc.params = params;
            rsc.ops = self.unpack_ops(&xml);
        }
        self.rsc_by_id.entry(rsc.id.clone()).or_insert(idx);
        self.resources.push(rsc);
        if let Some(r) = self.target_role(idx) {
            self.resources[idx].next_role = r;
        }
        match variant {
            Variant::Group => {
                for c in xml.children_named("primitive") {
                    if let Some(ci) = self.unpack_resource(c, Some(idx)) {
                        self.resources[idx].children.push(ci);
                    }
                }
            }
            Variant::Clone => {
                // Part 1 keeps clone instances as found in the status section;
                // the template child is unpacked to know its definition.
                if let Some(c) = xml
                    .elements()
                    .find(|e| matches!(e.name.as_str(), "primitive" | "group"))
                    && let Some(ci) = self.unpack_resource(c, Some(idx))
                {
                    self.resources[idx].children.push(ci);
                }
            }
            Variant::Bundle => {
                if let Some(c) = xml.child("primitive")
                    && let Some(ci) = self.unpack_resource(c, Some(idx))
                {
                    self.resources[idx].children.push(ci);
                }
            }
            Variant::Primitive => {}
        }
        // Symmetric clusters allow every node by default.
        if self.settings.symmetric {
            self.resource_location_all(idx, Score::ZERO, true);
        }
        Some(idx)
    }

    /// Node health (`#health*` attributes) becomes a location score of every
    /// resource on the node, by `node-health-strategy`.
    fn apply_node_health(&mut self) {
        let strategy = self
            .option("node-health-strategy")
            .unwrap_or("none")
            .to_ascii_lowercase();
        let score_opt = |s: &Self, name: &str, default: Score| {
            s.option(name)
                .and_then(|v| v.parse::<Score>().ok())
                .unwrap_or(default)
        };
        let colours = match strategy.as_str() {
            "none" => return,
            "migrate-on-red" => vigil_types::HealthScores {
                red: Score::NEG_INFINITY,
                yellow: Score::ZERO,
                green: Score::ZERO,
            },
            "only-green" => vigil_types::HealthScores {
                red: Score::NEG_INFINITY,
                yellow: Score::NEG_INFINITY,
                green: Score::ZERO,
            },
            "progressive" | "custom" => vigil_types::HealthScores {
                red: score_opt(self, "node-health-red", Score::NEG_INFINITY),
                yellow: score_opt(self, "node-health-yellow", Score::ZERO),
                green: score_opt(self, "node-health-green", Score::ZERO),
            },
            other => {
                self.diag.errors.push(format!(
                    "node-health-strategy '{other}' is not valid; using none"
                ));
                return;
            }
        };
        let base = if strategy == "progressive" {
            score_opt(self, "node-health-base", Score::ZERO)
        } else {
            Score::ZERO
        };
        for n in 0..self.nodes.len() {
            let mut health = base;
            for (k, v) in &self.nodes[n].attrs {
                if k.starts_with("#health")
                    && let Ok(s) = Score::parse_with_health(v, &colours)
                {
                    health = s + health;
                }
            }
            if health == Score::ZERO {
                continue;
            }
            for r in self.top.clone() {
                let allow = self.resources[r]
                    .meta
                    .get("allow-unhealthy-nodes")
                    .is_some_and(|v| is_true(v));
                if health.value() < 0 && allow {
                    continue;
                }
                let l = self.locations.len();
                self.locations.push(Location {
                    id: strategy.clone(),
                    rsc: r,
                    role_filter: Role::Unknown,
                    probe_mode: ProbeMode::Always,
                    nodes: vec![(n, health)],
                });
                self.resources[r].locations.push(l);
            }
        }
    }

    /// The role `target-role` asks for, when it changes anything: Started
    /// (the default) and roles only promotable clones have are ignored.
    pub(crate) fn target_role(&mut self, r: RscId) -> Option<Role> {
        let v = self.resources[r].meta.get("target-role")?.clone();
        if v.eq_ignore_ascii_case("default") {
            return None;
        }
        let Some(role) = Role::parse(&v) else {
            self.diag.errors.push(format!(
                "ignoring target-role for {} because '{v}' is not valid",
                self.resources[r].id
            ));
            return None;
        };
        if role > Role::Started {
            if !self.is_promotable(r) {
                self.diag.errors.push(format!(
                    "ignoring target-role for {} because '{v}' only makes sense for promotable clones",
                    self.resources[r].id
                ));
                return None;
            }
            if role > Role::Unpromoted {
                return None;
            }
        }
        (role != Role::Started).then_some(role)
    }

    /// Links a resource to the resource that launches it.
    fn unpack_launcher(&mut self, r: RscId) {
        if !self.resources[r].children.is_empty() {
            for c in self.resources[r].children.clone() {
                self.unpack_launcher(c);
            }
            return;
        }
        let Some(id) = self.resources[r].meta.get("container").cloned() else {
            return;
        };
        match self.rsc_by_id.get(&id).copied() {
            Some(l) if l != r => {
                self.resources[r].launcher = Some(l);
                self.resources[l].launched.push(r);
            }
            _ => self.diag.errors.push(format!(
                "resource {}: unknown container '{id}'",
                self.resources[r].id
            )),
        }
    }

    fn unpack_requires(&self, rsc: &Resource, value: Option<&str>) -> Requires {
        match value.map(|s| s.to_ascii_lowercase()) {
            Some(v) if v == "nothing" => Requires::Nothing,
            Some(v) if v == "quorum" => Requires::Quorum,
            Some(v) if v == "fencing" => Requires::Fencing,
            Some(v) if v == "unfencing" => {
                if rsc.flags.fence_device || !self.settings.fencing_enabled {
                    Requires::Quorum
                } else {
                    Requires::Fencing
                }
            }
            _ => {
                if rsc.flags.fence_device {
                    Requires::Quorum
                } else if self.settings.enable_unfencing || self.settings.fencing_enabled {
                    Requires::Fencing
                } else if self.settings.no_quorum_policy == NoQuorumPolicy::Ignore {
                    Requires::Nothing
                } else {
                    Requires::Quorum
                }
            }
        }
    }

    fn unpack_ops(&mut self, xml: &Element) -> Vec<OpConfig> {
        let mut out = Vec::new();
        let Some(ops) = xml.child("operations") else {
            return out;
        };
        let ops = match ops.attr("id-ref") {
            Some(r) => match self.ids.get(r) {
                Some(e) => e.clone(),
                None => return out,
            },
            None => ops.clone(),
        };
        for op in ops.children_named("op") {
            let op = match op.attr("id-ref") {
                Some(r) => match self.ids.get(r) {
                    Some(e) => e.clone(),
                    None => continue,
                },
                None => op.clone(),
            };
            let name = op.attr("name").unwrap_or("").to_string();
            let interval_ms = op.attr("interval").and_then(parse_interval_ms).unwrap_or(0);
            let mut meta = BTreeMap::new();
            for (k, v) in &op.attrs {
                meta.insert(k.clone(), v.clone());
            }
            let ctx = RuleContext {
                now: self.now_dt(),
                ..Default::default()
            };
            self.nvpairs(&op, "meta_attributes", &ctx, &mut meta, false);
            let enabled = meta.get("enabled").is_none_or(|v| is_true(v));
            out.push(OpConfig {
                id: op.attr("id").unwrap_or("").to_string(),
                name,
                interval_ms,
                role: op.attr("role").and_then(Role::parse),
                enabled,
                meta,
                xml: op,
            });
        }
        out
    }

    pub(crate) fn top_of(&self, mut r: RscId) -> RscId {
        while let Some(p) = self.resources[r].parent {
            r = p;
        }
        r
    }

    /// Adds `score` for `rsc` (and its descendants) on every node.
    pub(crate) fn resource_location_all(&mut self, rsc: RscId, score: Score, symmetric: bool) {
        for n in 0..self.nodes.len() {
            self.resource_node_score(rsc, n, score, symmetric);
        }
    }

    pub(crate) fn resource_node_score(
        &mut self,
        rsc: RscId,
        node: NodeId,
        score: Score,
        symmetric_default: bool,
    ) {
        if symmetric_default
            && (self.resources[rsc].flags.exclusive_probes
                || self.resources[rsc].probe_mode.get(&node) == Some(&ProbeMode::Never))
        {
            return;
        }
        for c in self.resources[rsc].children.clone() {
            self.resource_node_score(c, node, score, symmetric_default);
        }
        let base = self.nodes[node].weight;
        let e = self.resources[rsc].allowed.entry(node).or_insert(base);
        *e += score;
    }

    /// Pacemaker's resource_location(): a score on one node or every node.
    pub(crate) fn resource_location(&mut self, rsc: RscId, node: Option<NodeId>, score: Score) {
        match node {
            Some(n) => self.resource_node_score(rsc, n, score, false),
            None => {
                self.resource_location_all(rsc, score, false);
                if score.is_neg_infinity() && self.resources[rsc].assigned.is_some() {
                    self.resources[rsc].assigned = None;
                }
            }
        }
    }

    fn unpack_status(&mut self, status: &Element) {
        for state in status.children_named("node_state") {
            self.unpack_node_state(state);
        }
        // Histories: online nodes first when fencing is off.
        let mut pending: Vec<&Element> = status.children_named("node_state").collect();
        loop {
            let mut progressed = false;
            pending.retain(|state| {
                let Some(id) = state.attr("id") else {
                    return false;
                };
                let Some(uname) = state.attr("uname") else {
                    return false;
                };
                let Some(n) = self.find_node_any(id, Some(uname)) else {
                    return false;
                };
                if self.nodes[n].unpacked {
                    return false;
                }
                if !self.settings.fencing_enabled
                    && !self.settings.shutdown_lock
                    && !self.nodes[n].online
                {
                    return true;
                }
                self.nodes[n].unpacked = true;
                self.unpack_node_lrm(n, state);
                progressed = true;
                false
            });
            if !progressed {
                break;
            }
        }
        // With fencing enabled, whatever is left (nothing, for cluster
        // nodes) is unpacked now; without it, offline nodes' history is
        // never trusted.
        if self.settings.fencing_enabled {
            for state in pending {
                let (Some(id), Some(uname)) = (state.attr("id"), state.attr("uname")) else {
                    continue;
                };
                let Some(n) = self.find_node_any(id, Some(uname)) else {
                    continue;
                };
                if !self.nodes[n].unpacked {
                    self.nodes[n].unpacked = true;
                    self.unpack_node_lrm(n, state);
                }
            }
        }
    }

    fn unpack_node_state(&mut self, state: &Element) {
        let Some(id) = state.attr("id") else {
            self.diag.errors.push(format!(
                "{}: node_state without an id is ignored",
                state.pos
            ));
            return;
        };
        let Some(n) = self.find_node_any(id, state.attr("uname")) else {
            return;
        };
        // Transient attributes override permanent ones.
        if let Some(t) = state.child("transient_attributes") {
            let ctx = RuleContext {
                now: self.now_dt(),
                ..Default::default()
            };
            let mut attrs = BTreeMap::new();
            self.nvpairs(t, "instance_attributes", &ctx, &mut attrs, false);
            for (k, v) in attrs {
                self.nodes[n].attrs.insert(k, v);
            }
        }
        let node = &mut self.nodes[n];
        if node.attrs.get("standby").is_some_and(|v| is_true(v)) {
            node.standby = true;
        }
        if node.attrs.get("maintenance").is_some_and(|v| is_true(v)) {
            node.maintenance = true;
        }
        node.unclean = false;
        node.seen = true;
        self.determine_online_status(state, n);
        if !self.settings.quorate
            && self.nodes[n].online
            && self.settings.no_quorum_policy == NoQuorumPolicy::Fence
        {
            self.fence_node(n, "cluster does not have quorum", false);
        }
    }

    fn determine_online_status(&mut self, state: &Element, n: NodeId) {
        let shutdown_attr = self.nodes[n].attrs.get("shutdown").cloned();
        let node = &mut self.nodes[n];
        node.shutdown = false;
        if shutdown_attr
            .as_deref()
            .is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
        {
            node.shutdown = true;
        } else if state
            .attr("expected")
            .is_some_and(|e| e.eq_ignore_ascii_case("member"))
        {
            node.expected_up = true;
        }
        let online = if !self.settings.fencing_enabled {
            self.online_no_fencing(state, n)
        } else {
            self.online_fencing(state, n)
        };
        let node = &mut self.nodes[n];
        if online {
            node.online = true;
        } else {
            node.weight = Score::NEG_INFINITY;
        }
        if online && node.shutdown {
            node.weight = Score::NEG_INFINITY;
        }
    }

    fn member_time(&self, state: &Element) -> i64 {
        match state.attr("in_ccm") {
            None => -1,
            Some(v) => match parse_bool(v) {
                Some(true) => self.settings.now.max(1),
                Some(false) => 0,
                None => v.parse::<i64>().ok().filter(|x| *x >= 0).unwrap_or(-1),
            },
        }
    }

    fn online_time(state: &Element) -> i64 {
        match state.attr("crmd") {
            None => 0,
            Some(v) if v.eq_ignore_ascii_case("offline") => 0,
            Some(v) if v.eq_ignore_ascii_case("online") => 1,
            Some(v) => v.parse::<i64>().ok().filter(|x| *x >= 0).unwrap_or(0),
        }
    }

    fn online_no_fencing(&mut self, state: &Element, n: NodeId) -> bool {
        let join = state.attr("join");
        let member = self.member_time(state);
        let online = Self::online_time(state);
        if member <= 0 {
            false
        } else if online > 0 {
            join.is_some_and(|j| j.eq_ignore_ascii_case("member"))
        } else if !self.nodes[n].expected_up {
            false
        } else {
            self.fence_node(n, "peer is unexpectedly down", false);
            false
        }
    }

    fn online_fencing(&mut self, state: &Element, n: NodeId) -> bool {
        let terminate = self.nodes[n].attrs.get("terminate").is_some_and(|v| {
            parse_bool(v).unwrap_or_else(|| v.parse::<i64>().is_ok_and(|x| x > 0))
        });
        let join = state.attr("join");
        let expected = state.attr("expected");
        let member = self.member_time(state);
        let online = Self::online_time(state);
        if self.nodes[n].shutdown {
            return online > 0;
        }
        if member < 0 {
            self.fence_node(n, "peer has not been seen by the cluster", false);
            return false;
        }
        if join == Some("banned") {
            self.fence_node(n, "peer failed Pacemaker membership criteria", false);
        } else if terminate {
            if member <= 0 && online <= 0 && join == Some("down") {
                return false;
            }
            self.fence_node(n, "fencing was requested", false);
        } else if expected.is_none_or(|e| e == "down") {
            if member > 0 || online > 0 {
                self.nodes[n].standby = true;
                self.nodes[n].pending = true;
            }
        } else if member <= 0 {
            self.fence_node(n, "peer is no longer part of the cluster", true);
        } else if online <= 0 {
            self.fence_node(n, "peer process is no longer available", false);
        } else if join == Some("member") {
            // active
        } else if matches!(join, Some("pending") | Some("down")) {
            self.nodes[n].standby = true;
            self.nodes[n].pending = true;
        } else {
            self.fence_node(n, "peer was in an unknown state", false);
        }
        member > 0
    }

    /// Marks a node unclean and schedules its fencing (Pacemaker's
    /// pe_fence_node()).
    pub(crate) fn fence_node(&mut self, n: NodeId, reason: &str, priority_delay: bool) {
        if self.nodes[n].unclean {
            return;
        }
        self.nodes[n].unclean = true;
        self.fence_op(n, None, true, Some(reason), priority_delay);
    }

    fn unpack_node_lrm(&mut self, n: NodeId, state: &Element) {
        let Some(lrm) = state.child("lrm") else {
            return;
        };
        let Some(list) = lrm.child("lrm_resources") else {
            return;
        };
        for entry in list.children_named("lrm_resource") {
            self.unpack_lrm_resource(n, entry);
        }
    }

    /// Finds (or for clones, picks an instance of) the resource a history
    /// entry belongs to.
    fn find_history_rsc(&mut self, n: NodeId, id: &str) -> Option<RscId> {
        let in_clone = |s: &Scheduler, r: RscId| {
            s.resources[r].parent.is_some_and(|p| {
                let top = s.top_of(p);
                s.resources[top].variant == Variant::Clone
            })
        };
        if let Some(&r) = self.rsc_by_id.get(id)
            && self.resources[r].variant == Variant::Primitive
            && !in_clone(self, r)
        {
            return Some(r);
        }
        // A clone instance.
        let base = id.split(':').next().unwrap_or(id);
        let template = *self.rsc_by_id.get(base)?;
        if self.resources[template].variant != Variant::Primitive || !in_clone(self, template) {
            return None;
        }
        let clone = self.top_of(template);
        Some(self.clone_instance_for(clone, template, id, n))
    }

    /// The clone instance primitive for history entry `id` on node `n`,
    /// created on first use.
    fn clone_instance_for(&mut self, clone: RscId, template: RscId, id: &str, n: NodeId) -> RscId {
        let base = &self.resources[template].id;
        let explicit = id.contains(':').then(|| id.to_string());
        // Reuse an instance of this template on the same node (anonymous).
        let existing: Vec<RscId> = self.instances.get(&clone).cloned().unwrap_or_default();
        if let Some(name) = &explicit {
            if let Some(r) = existing.iter().find(|r| &self.resources[**r].id == name) {
                return *r;
            }
        } else {
            for r in &existing {
                if self.resources[*r].running_on.contains(&n)
                    && self.instance_template.get(r) == Some(&template)
                {
                    return *r;
                }
            }
        }
        let num = existing
            .iter()
            .filter(|r| self.instance_template.get(r) == Some(&template))
            .count();
        let name = explicit.unwrap_or_else(|| format!("{base}:{num}"));
        let mut inst = self.resources[template].clone();
        inst.id = name;
        inst.children.clear();
        inst.actions.clear();
        inst.by_uuid.clear();
        inst.by_task.clear();
        let idx = self.resources.len();
        self.resources.push(inst);
        self.instances.entry(clone).or_default().push(idx);
        self.instance_template.insert(idx, template);
        idx
    }

    fn unpack_lrm_resource(&mut self, n: NodeId, entry: &Element) {
        let Some(rid) = entry.attr("id") else {
            self.diag.errors.push(format!(
                "{}: lrm_resource without an id is ignored",
                entry.pos
            ));
            return;
        };
        let ops = HistoryOp::sorted_from_entry(entry);
        if ops.is_empty() {
            return;
        }
        let rsc = match self.find_history_rsc(n, rid) {
            Some(r) => r,
            None if self.is_bundle_generated(rid) => {
                // Bundles' implicit resources are scheduled in part 2; until
                // then their history is left alone rather than treated as
                // removed resources to stop.
                return;
            }
            None => self.removed_resource(entry, rid),
        };
        let saved_role = self.resources[rsc].orig_role;
        self.resources[rsc].orig_role = Role::Unknown;
        let mut on_fail = OnFail::Ignore;
        let mut last_failure: Option<usize> = None;
        for i in 0..ops.len() {
            self.unpack_rsc_op(rsc, n, &ops, i, &mut last_failure, &mut on_fail);
        }
        let (start_index, stop_index) = active_ops(&ops);
        self.process_recurring(n, rsc, start_index, stop_index, &ops);
        self.process_rsc_state(rsc, n, on_fail);
        if let Some(req) = self.target_role(rsc) {
            let next = self.resources[rsc].next_role;
            if next == Role::Unknown || req < next {
                self.resources[rsc].next_role = req;
            }
        }
        if saved_role > self.resources[rsc].orig_role {
            self.resources[rsc].orig_role = saved_role;
        }
    }

    /// Whether a history id names a resource a configured bundle generates
    /// (its containers, IP addresses, remote connections or replicas).
    fn is_bundle_generated(&self, rid: &str) -> bool {
        self.resources.iter().any(|r| {
            r.variant == Variant::Bundle
                && rid.len() > r.id.len()
                && rid.starts_with(r.id.as_str())
                && rid.as_bytes()[r.id.len()] == b'-'
        }) || self.resources.iter().any(|r| {
            r.parent
                .is_some_and(|p| self.resources[p].variant == Variant::Bundle)
                && rid.split(':').next() == Some(r.id.as_str())
        })
    }

    /// A history entry for a resource no longer configured: an orphan that
    /// must be stopped.
    fn removed_resource(&mut self, entry: &Element, rid: &str) -> RscId {
        let mut xml = Element::new("primitive");
        xml.set_attr("id", rid);
        for a in ["class", "provider", "type"] {
            if let Some(v) = entry.attr(a) {
                xml.set_attr(a, v);
            }
        }
        let idx = self
            .unpack_resource(&xml, None)
            .expect("a built primitive has an id");
        self.resources[idx].flags.removed = true;
        if self.settings.stop_removed {
            self.resource_location(idx, None, Score::NEG_INFINITY);
        } else {
            self.resources[idx].flags.managed = false;
        }
        self.top.push(idx);
        idx
    }

    fn process_recurring(
        &mut self,
        n: NodeId,
        rsc: RscId,
        start_index: i64,
        stop_index: i64,
        ops: &[HistoryOp<'_>],
    ) {
        for (counter, op) in ops.iter().enumerate() {
            let counter = counter as i64;
            if !self.nodes[n].online {
                break;
            }
            if start_index < stop_index && counter <= stop_index {
                continue;
            }
            if counter < start_index {
                continue;
            }
            if op.interval_ms == 0 || op.status == -1 {
                continue;
            }
            let key = op_key(&self.resources[rsc].id, &op.task, op.interval_ms);
            self.custom_action(Some(rsc), key, &op.task, Some(n), true);
        }
    }

    pub(crate) fn now_dt(&self) -> Option<vigil_cib::time::DateTime> {
        Some(vigil_cib::time::DateTime::from_epoch_seconds(
            self.settings.now,
        ))
    }
}

pub(crate) fn active_ops(ops: &[HistoryOp<'_>]) -> (i64, i64) {
    let mut stop_index = -1i64;
    let mut start_index = -1i64;
    let mut implied_monitor_start = -1i64;
    let mut implied_clone_start = -1i64;
    for (counter, op) in ops.iter().enumerate() {
        let counter = counter as i64;
        let task = op.task.to_ascii_lowercase();
        if task == "stop" && op.status == 0 {
            stop_index = counter;
        } else if task == "start" || task == "migrate_from" {
            start_index = counter;
        } else if implied_monitor_start <= stop_index && task == "monitor" {
            if op.rc == 0 || op.rc == 8 {
                implied_monitor_start = counter;
            }
        } else if task == "promote" || task == "demote" {
            implied_clone_start = counter;
        }
    }
    if start_index == -1 {
        if implied_clone_start != -1 {
            start_index = implied_clone_start;
        } else if implied_monitor_start != -1 {
            start_index = implied_monitor_start;
        }
    }
    (start_index, stop_index)
}
