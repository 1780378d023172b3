//! Validation of a CIB: what is wrong, where, and what to do about it.
//!
//! [`validate`] returns every [`Diagnostic`] for a document: the problems the
//! typed model ([`crate::model`]) meets while reading values (invalid scores,
//! roles, kinds, actions, intervals, cluster option values, resources
//! without class or type, missing sections) and the cross-reference checks
//! done here:
//!
//! - ids used twice in the configuration (both places are named);
//! - `id-ref`s that name nothing, or an element of another kind;
//! - primitives whose `template` does not exist, tags whose `obj_ref`s name
//!   nothing;
//! - constraints naming resources that do not exist (`rsc`, `with-rsc`,
//!   `first`, `then`, `resource_ref`), `rsc-pattern`s that are not valid
//!   regular expressions or match no resource, and location constraints on
//!   nodes that are not configured (Pacemaker ignores those quietly);
//! - operations defined twice with the same name and interval.
//!
//! Severity follows Pacemaker: what it rejects or ignores as a configuration
//! error is an [`Severity::Error`]; what it accepts with a warning (or
//! silently ignores, while probably not what was meant) is a
//! [`Severity::Warning`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::{Cib, Constraint, Primitive, Resource, ResourceSet};
use crate::time;
use crate::xml::{Document, Element, Pos};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Pacemaker rejects or ignores the element, or the configuration does
    /// not mean what it says.
    Error,
    /// Accepted, but deprecated, doubtful or without effect.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem with a CIB: how bad, where (position, element name and id)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Pos,
    pub element: String,
    pub id: Option<String>,
    pub message: String,
}

impl Diagnostic {
    fn new(severity: Severity, el: &Element, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            pos: el.pos,
            element: el.name.clone(),
            id: el
                .attr("id")
                .or_else(|| el.attr("id-ref"))
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            message: message.into(),
        }
    }

    /// An error about `el`.
    pub fn error(el: &Element, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, el, message)
    }

    /// A warning about `el`.
    pub fn warning(el: &Element, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, el, message)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `12:5: <rsc_colocation id="c1">: resource 'web' does not exist`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(
                f,
                "{}: <{} id=\"{}\">: {}",
                self.pos, self.element, id, self.message
            ),
            None => write!(f, "{}: <{}>: {}", self.pos, self.element, self.message),
        }
    }
}

/// Every problem found in `doc`, sorted by position.
pub fn validate(doc: &Document) -> Vec<Diagnostic> {
    match Cib::from_document(doc) {
        Ok(cib) => cib.diagnostics,
        Err(diags) => diags,
    }
}

/// The cross-reference checks, run by [`Cib::from_document`] once the model
/// is built.
pub(crate) fn check_model(cib: &Cib<'_>, out: &mut Vec<Diagnostic>) {
    let mut c = Checker::new(cib, out);
    c.duplicate_ids(cib.configuration, "");
    c.id_refs();
    c.templates_and_ops();
    c.tags();
    c.nodes();
    c.constraints();
}

/// Whether `id` is an XML id (an NCName, as the CIB schema's `ID` type
/// demands).
fn is_xml_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Elements whose `id` attribute refers to something else instead of naming
/// the element itself (their parent's name, or "" for any parent).
const ID_IS_REFERENCE: &[(&str, &str)] = &[
    // A node's id is the cluster layer's node id (text, not an XML ID); a
    // remote node's entry shares the id of its connection resource.
    ("node", "nodes"),
    ("resource_ref", ""),
    ("obj_ref", ""),
    ("role_ref", ""),
    ("acl_target", ""),
    ("acl_user", ""),
    ("role", "acl_target"),
    ("role", "acl_group"),
    ("role", "acl_user"),
];

/// Actions that cannot recur (an `op` with an interval is ignored).
const CANNOT_RECUR: &[&str] = &[
    "stop",
    "start",
    "demote",
    "promote",
    "reload-agent",
    "migrate_to",
    "migrate_from",
];

struct Checker<'c, 'a> {
    cib: &'c Cib<'a>,
    out: &'c mut Vec<Diagnostic>,
    /// First element with each id (for duplicate detection).
    seen: BTreeMap<&'a str, &'a Element>,
    /// Resource ids at any depth.
    resources: BTreeMap<&'a str, &'a Element>,
    templates: BTreeSet<&'a str>,
    tags: BTreeSet<&'a str>,
    bundles: Vec<&'a str>,
    /// Node names a location constraint may use besides bundle replicas
    /// (`BUNDLE-N`): configured nodes, remote nodes (ocf:pacemaker:remote
    /// primitives) and guest nodes (`remote-node` meta-attributes).
    node_names: BTreeSet<&'a str>,
}

impl<'c, 'a> Checker<'c, 'a> {
    fn new(cib: &'c Cib<'a>, out: &'c mut Vec<Diagnostic>) -> Self {
        let bundles = cib
            .resources
            .iter()
            .filter_map(|r| match r {
                Resource::Bundle(b) => Some(b.id),
                _ => None,
            })
            .collect();
        let mut node_names: BTreeSet<&'a str> = cib.nodes.iter().map(|n| n.uname).collect();
        for p in cib.primitives() {
            if p.agent.is_some_and(|a| {
                a.class == "ocf" && a.provider == Some("pacemaker") && a.agent_type == "remote"
            }) {
                node_names.insert(p.id);
            }
            for set in &p.meta_attributes {
                for nv in &set.pairs {
                    if nv.name == Some("remote-node")
                        && let Some(v) = nv.value
                    {
                        node_names.insert(v);
                    }
                }
            }
        }
        Checker {
            node_names,
            resources: cib.resource_ids(),
            templates: cib.templates.iter().map(|t| t.id).collect(),
            tags: cib.tags.iter().map(|t| t.id).collect(),
            bundles,
            cib,
            out,
            seen: BTreeMap::new(),
        }
    }

    fn error(&mut self, el: &Element, message: impl Into<String>) {
        self.out.push(Diagnostic::error(el, message));
    }

    fn warning(&mut self, el: &Element, message: impl Into<String>) {
        self.out.push(Diagnostic::warning(el, message));
    }

    fn duplicate_ids(&mut self, el: &'a Element, parent: &str) {
        let is_ref = ID_IS_REFERENCE
            .iter()
            .any(|(name, p)| *name == el.name && (p.is_empty() || *p == parent));
        if !is_ref && let Some(id) = el.attr("id").filter(|s| !s.is_empty()) {
            if !is_xml_id(id) {
                let msg = format!(
                    "id '{id}' is not a valid XML id; an id starts with a letter or '_' and \
                     holds only letters, digits, '.', '-' and '_'"
                );
                self.error(el, msg);
            }
            match self.seen.get(id) {
                Some(first) => {
                    let msg = format!(
                        "id '{id}' is already used by <{}> at {}; ids must be unique, rename one of them",
                        first.name, first.pos
                    );
                    self.error(el, msg);
                }
                None => {
                    self.seen.insert(id, el);
                }
            }
        }
        for child in el.elements() {
            self.duplicate_ids(child, &el.name);
        }
    }

    fn id_refs(&mut self) {
        for el in self.cib.configuration.descendants() {
            let Some(r) = el.attr("id-ref") else { continue };
            match self.seen.get(r).copied() {
                None => {
                    let msg = format!(
                        "id-ref '{r}' names nothing; it must be the id of another <{}>",
                        el.name
                    );
                    self.error(el, msg);
                }
                Some(t) if t.name != el.name => {
                    let msg = format!(
                        "id-ref '{r}' names a <{}> at {}, not a <{}>",
                        t.name, t.pos, el.name
                    );
                    self.error(el, msg);
                }
                Some(_) => {}
            }
        }
    }

    fn templates_and_ops(&mut self) {
        let cib = self.cib;
        let mut prims: Vec<&Primitive<'a>> = cib.primitives();
        prims.extend(cib.templates.iter());
        for p in prims {
            if let Some(t) = p.template
                && !self.templates.contains(t)
            {
                let msg = match self.resources.get(t) {
                    Some(e) => format!("template '{t}' names a <{}>, not a <template>", e.name),
                    None => format!(
                        "template '{t}' does not exist; define <template id=\"{t}\"> or set class and type"
                    ),
                };
                self.error(p.element, msg);
            }
            // Pacemaker checks recurring operations only: one per name and
            // interval, whatever the role.
            let mut by_key: BTreeMap<(&str, u64), &Element> = BTreeMap::new();
            for op in &p.ops {
                let Some(name) = op.name else { continue };
                if op.id.is_none() || op.interval_ms == 0 {
                    continue;
                }
                if CANNOT_RECUR.contains(&name) {
                    let msg = format!(
                        "{name} cannot be a recurring operation; Pacemaker ignores it (set interval to 0)"
                    );
                    self.error(op.element, msg);
                    continue;
                }
                match by_key.get(&(name, op.interval_ms)) {
                    Some(first) => {
                        let msg = format!(
                            "operation {name} with interval {} is already defined by op '{}' at {}; \
                             Pacemaker ignores this one. Use each name and interval once per \
                             resource (give each role its own interval)",
                            time::readable_interval(op.interval_ms),
                            first.attr("id").unwrap_or_default(),
                            first.pos
                        );
                        self.error(op.element, msg);
                    }
                    None => {
                        by_key.insert((name, op.interval_ms), op.element);
                    }
                }
            }
        }
    }

    fn tags(&mut self) {
        let cib = self.cib;
        for tag in &cib.tags {
            for (el, r) in &tag.refs {
                if !self.seen.contains_key(r) {
                    let msg = format!("tag '{}' refers to '{r}', which does not exist", tag.id);
                    self.error(el, msg);
                }
            }
        }
    }

    fn nodes(&mut self) {
        let cib = self.cib;
        let mut names: BTreeMap<&str, &Element> = BTreeMap::new();
        for n in &cib.nodes {
            match names.get(n.uname) {
                Some(first) => {
                    let msg = format!(
                        "node name '{}' is already used by the node at {}; node names must be unique",
                        n.uname, first.pos
                    );
                    self.warning(n.element, msg);
                }
                None => {
                    names.insert(n.uname, n.element);
                }
            }
        }
    }

    /// Whether `id` names something a constraint may refer to: a resource
    /// (or one of its clone instances, or a resource a bundle generates), a
    /// template or a tag.
    fn constrainable(&self, id: &str) -> bool {
        if self.resources.contains_key(id) || self.templates.contains(id) || self.tags.contains(id)
        {
            return true;
        }
        let base = crate::model::strip_instance(id);
        if base != id && self.resources.contains_key(base) {
            return true;
        }
        self.bundles.iter().any(|b| {
            id.strip_prefix(b)
                .is_some_and(|rest| rest.starts_with('-') && rest.len() > 1)
        })
    }

    fn check_rsc(&mut self, el: &Element, attr: &str, id: Option<&str>) {
        let Some(id) = id else { return };
        if !self.constrainable(id) {
            let msg = format!(
                "resource '{id}' does not exist ({attr}); Pacemaker ignores this constraint"
            );
            self.error(el, msg);
        }
    }

    fn check_sets(&mut self, sets: &[ResourceSet<'a>]) {
        for set in sets {
            for (el, id) in &set.resources {
                if !self.constrainable(id) {
                    let msg = format!(
                        "resource '{id}' does not exist; Pacemaker ignores the constraint this set belongs to"
                    );
                    self.error(el, msg);
                }
            }
        }
    }

    fn known_node(&self, name: &str) -> bool {
        self.node_names.contains(name)
            || self.bundles.iter().any(|b| {
                name.strip_prefix(b)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            })
    }

    fn constraints(&mut self) {
        let cib = self.cib;
        for con in &cib.constraints {
            let el = con.element();
            self.check_sets(con.sets());
            match con {
                Constraint::Location(l) => {
                    self.check_rsc(el, "rsc", l.rsc);
                    if let Some(p) = l.rsc_pattern {
                        self.check_pattern(el, p);
                    }
                    if let Some(node) = l.node
                        && !self.known_node(node)
                    {
                        let msg = format!(
                            "node '{node}' is not configured; Pacemaker ignores this constraint \
                             (add the node or fix the name)"
                        );
                        self.warning(el, msg);
                    }
                }
                Constraint::Colocation(c) => {
                    self.check_rsc(el, "rsc", c.rsc);
                    self.check_rsc(el, "with-rsc", c.with_rsc);
                }
                Constraint::Order(o) => {
                    self.check_rsc(el, "first", o.first);
                    self.check_rsc(el, "then", o.then);
                }
                Constraint::Ticket(t) => self.check_rsc(el, "rsc", t.rsc),
            }
        }
    }

    fn check_pattern(&mut self, el: &Element, pattern: &str) {
        let (inverted, body) = match pattern.strip_prefix('!') {
            Some(b) => (true, b),
            None => (false, pattern),
        };
        let re = match regex_lite::Regex::new(body) {
            Ok(re) => re,
            Err(e) => {
                let msg = format!(
                    "rsc-pattern '{pattern}' is not a valid regular expression ({e}); \
                     Pacemaker ignores this constraint"
                );
                self.error(el, msg);
                return;
            }
        };
        let cib = self.cib;
        let any = cib
            .resources
            .iter()
            .any(|r| re.is_match(r.id()) != inverted);
        if !any {
            let msg = format!(
                "rsc-pattern '{pattern}' matches no top-level resource; the constraint does nothing"
            );
            self.warning(el, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cib(config: &str) -> String {
        format!(
            "<cib admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\">\n<configuration>\n\
             <crm_config/>\n<nodes>\n<node id=\"1\" uname=\"node1\"/>\n</nodes>\n{config}\n\
             </configuration>\n<status/>\n</cib>"
        )
    }

    /// Validates each input and compares the rendered diagnostics, prefixed
    /// by `E ` or `W `.
    fn check(cases: &[(&str, &[&str])]) {
        for (input, expected) in cases {
            let doc = Document::parse(input).unwrap_or_else(|e| panic!("{e}\n{input}"));
            let got: Vec<String> = validate(&doc)
                .iter()
                .map(|d| {
                    let s = if d.is_error() { "E" } else { "W" };
                    format!("{s} {d}")
                })
                .collect();
            assert_eq!(got, *expected, "\n{input}");
        }
    }

    const RSC: &str = "<resources>\n\
        <primitive id=\"a\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>\n\
        <primitive id=\"b\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>\n\
        </resources>";

    #[test]
    fn clean_cib_has_no_diagnostics() {
        check(&[(
            &cib(&format!(
                "{RSC}\n<constraints>\n\
             <rsc_colocation id=\"c\" rsc=\"a\" with-rsc=\"b\" score=\"INFINITY\"/>\n\
             <rsc_location id=\"l\" rsc=\"a\" node=\"node1\" score=\"10\"/>\n\
             <rsc_order id=\"o\" first=\"a\" then=\"b\" kind=\"Optional\"/>\n\
             </constraints>"
            )),
            &[],
        )]);
    }

    #[test]
    fn structure() {
        check(&[
            (
                "<cib>\n<configuration>\n<crm_config/>\n<nodes/>\n<resources/>\n</configuration>\n</cib>",
                &[
                    "E 1:1: <cib>: the <status> section is missing; add an empty <status/>",
                    "W 1:1: <cib>: admin_epoch is missing; 0 is assumed",
                    "W 1:1: <cib>: epoch is missing; 0 is assumed",
                    "W 1:1: <cib>: num_updates is missing; 0 is assumed",
                    "E 2:1: <configuration>: the <constraints> section is missing; add an empty <constraints/>",
                ],
            ),
            (
                "<cib epoch=\"x\" admin_epoch=\"0\" num_updates=\"0\" have-quorum=\"perhaps\"><status/></cib>",
                &[
                    "E 1:1: <cib>: there is no <configuration> section; a CIB needs <configuration> with <crm_config>, <nodes>, <resources> and <constraints>",
                ],
            ),
            (
                "<cib epoch=\"x\" admin_epoch=\"0\" num_updates=\"0\" have-quorum=\"perhaps\"><configuration>\
                 <crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>",
                &[
                    "E 1:1: <cib>: 'x' is not a valid epoch (a non-negative integer); 0 is assumed",
                    "E 1:1: <cib>: 'perhaps' is not a valid have-quorum; use true or false",
                ],
            ),
        ]);
    }

    #[test]
    fn ids_must_be_xml_ids() {
        assert!(is_xml_id("web-1.a_b") && is_xml_id("_x") && is_xml_id("é"));
        assert!(!is_xml_id("1web") && !is_xml_id("has space") && !is_xml_id("a:b"));
        let doc = Document::parse(&cib(
            "<resources><primitive id=\"has space\" class=\"lsb\" type=\"a\"/></resources><constraints/>",
        ))
        .unwrap();
        let d = validate(&doc);
        assert!(
            d.iter()
                .any(|d| d.is_error() && d.message.contains("not a valid XML id")),
            "{d:?}"
        );
    }

    #[test]
    fn duplicate_ids_and_id_refs() {
        check(&[
            (
                &cib(
                    "<resources>\n<primitive id=\"a\" class=\"lsb\" type=\"a\">\n\
                      <meta_attributes id=\"a\"/>\n</primitive>\n</resources>\n<constraints/>",
                ),
                &[
                    "E 9:1: <meta_attributes id=\"a\">: id 'a' is already used by <primitive> at 8:1; ids must be unique, rename one of them",
                ],
            ),
            (
                &cib(
                    "<resources>\n<primitive id=\"a\" class=\"lsb\" type=\"a\">\n\
                      <meta_attributes id-ref=\"nowhere\"/>\n\
                      <instance_attributes id-ref=\"a\"/>\n\
                      </primitive>\n</resources>\n<constraints/>",
                ),
                &[
                    "E 9:1: <meta_attributes id=\"nowhere\">: id-ref 'nowhere' names nothing; it must be the id of another <meta_attributes>",
                    "E 10:1: <instance_attributes id=\"a\">: id-ref 'a' names a <primitive> at 8:1, not a <instance_attributes>",
                ],
            ),
        ]);
    }

    #[test]
    fn resources() {
        check(&[
            (
                &cib(
                    "<resources>\n<primitive id=\"a\" class=\"ocf\" type=\"Dummy\"/>\n\
                      <primitive id=\"b\" provider=\"x\"/>\n\
                      <primitive id=\"c\" template=\"t\"/>\n\
                      <group id=\"g\"/>\n\
                      <clone id=\"cl\"/>\n\
                      </resources>\n<constraints/>",
                ),
                &[
                    "E 8:1: <primitive id=\"a\">: ocf resource 'a' has no provider; set provider (e.g. heartbeat or pacemaker)",
                    "E 9:1: <primitive id=\"b\">: resource 'b' has no class and type; set class and type (e.g. class=\"ocf\" provider=\"heartbeat\" type=\"Dummy\") or a template",
                    "E 10:1: <primitive id=\"c\">: template 't' does not exist; define <template id=\"t\"> or set class and type",
                    "E 11:1: <group id=\"g\">: group 'g' has no primitives; add at least one or remove it",
                    "E 12:1: <clone id=\"cl\">: clone 'cl' has nothing to clone; add a primitive or a group",
                ],
            ),
            (
                &cib(
                    "<resources>\n<primitive id=\"a\" class=\"lsb\" type=\"a\">\n<operations>\n\
                      <op id=\"m1\" name=\"monitor\" interval=\"10s\"/>\n\
                      <op id=\"m2\" name=\"monitor\" interval=\"10000ms\" role=\"Boss\"/>\n\
                      <op id=\"m3\" name=\"monitor\" interval=\"often\"/>\n\
                      <op id=\"m4\" interval=\"5\"/>\n\
                      <op id=\"m5\" name=\"start\" interval=\"5\"/>\n\
                      <op id=\"m6\" name=\"start\" interval=\"0\"/>\n\
                      <op id=\"m7\" name=\"start\" interval=\"0\"/>\n\
                      </operations>\n</primitive>\n</resources>\n<constraints/>",
                ),
                &[
                    "E 11:1: <op id=\"m2\">: 'Boss' is not a valid role; use Stopped, Started, Unpromoted or Promoted",
                    "E 11:1: <op id=\"m2\">: operation monitor with interval 10s is already defined by op 'm1' at 10:1; Pacemaker ignores this one. Use each name and interval once per resource (give each role its own interval)",
                    "E 12:1: <op id=\"m3\">: 'often' is not a valid interval (not a valid time duration); 0 is used. Use e.g. 10s, 5min or PT10S",
                    "E 13:1: <op id=\"m4\">: this operation has no name; set name to the action (e.g. monitor)",
                    "E 14:1: <op id=\"m5\">: start cannot be a recurring operation; Pacemaker ignores it (set interval to 0)",
                ],
            ),
        ]);
    }

    #[test]
    fn dangling_constraint_references() {
        check(&[(
            &cib(&format!(
                "{RSC}\n<tags>\n<tag id=\"tg\">\n<obj_ref id=\"a\"/>\n<obj_ref id=\"ghost\"/>\n</tag>\n</tags>\n\
                 <constraints>\n\
                 <rsc_colocation id=\"c1\" rsc=\"web\" with-rsc=\"a\" score=\"10\"/>\n\
                 <rsc_order id=\"o1\" first=\"tg\" then=\"db\"/>\n\
                 <rsc_location id=\"l1\" rsc=\"a\" node=\"node9\" score=\"10\"/>\n\
                 <rsc_location id=\"l2\" rsc-pattern=\"^zz\" node=\"node1\" score=\"10\"/>\n\
                 <rsc_location id=\"l3\" rsc-pattern=\"(\" node=\"node1\" score=\"10\"/>\n\
                 <rsc_location id=\"l4\" rsc-pattern=\"!^zz\" node=\"node1\" score=\"10\"/>\n\
                 <rsc_ticket id=\"t1\" rsc=\"a:1\" ticket=\"T\"/>\n\
                 <rsc_order id=\"o2\">\n<resource_set id=\"s\">\n<resource_ref id=\"a\"/>\n<resource_ref id=\"nope\"/>\n\
                 </resource_set>\n</rsc_order>\n\
                 </constraints>"
            )),
            &[
                "E 14:1: <obj_ref id=\"ghost\">: tag 'tg' refers to 'ghost', which does not exist",
                "E 18:1: <rsc_colocation id=\"c1\">: resource 'web' does not exist (rsc); Pacemaker ignores this constraint",
                "E 19:1: <rsc_order id=\"o1\">: resource 'db' does not exist (then); Pacemaker ignores this constraint",
                "W 20:1: <rsc_location id=\"l1\">: node 'node9' is not configured; Pacemaker ignores this constraint (add the node or fix the name)",
                "W 21:1: <rsc_location id=\"l2\">: rsc-pattern '^zz' matches no top-level resource; the constraint does nothing",
                "E 22:1: <rsc_location id=\"l3\">: rsc-pattern '(' is not a valid regular expression (found open group without closing ')'); Pacemaker ignores this constraint",
                "E 28:1: <resource_ref id=\"nope\">: resource 'nope' does not exist; Pacemaker ignores the constraint this set belongs to",
            ],
        )]);
    }

    #[test]
    fn invalid_values_in_constraints() {
        check(&[(
            &cib(&format!(
                "{RSC}\n<constraints>\n\
                 <rsc_colocation id=\"c1\" rsc=\"a\" with-rsc=\"b\" score=\"lots\" rsc-role=\"Boss\"/>\n\
                 <rsc_order id=\"o1\" first=\"a\" then=\"b\" kind=\"Sometimes\" first-action=\"reload\"/>\n\
                 <rsc_location id=\"l1\" rsc=\"a\" node=\"node1\" score=\"x\" resource-discovery=\"maybe\"/>\n\
                 <rsc_location id=\"l2\" rsc=\"a\"/>\n\
                 <rsc_location id=\"l3\" rsc=\"a\"><rule id=\"r1\" score=\"big\" role=\"x\"/><rule id=\"r2\"/></rsc_location>\n\
                 <rsc_ticket id=\"t1\" rsc=\"a\" ticket=\"T\" loss-policy=\"panic\"/>\n\
                 <rsc_order id=\"o2\" first=\"a\"/>\n\
                 </constraints>"
            )),
            &[
                "E 12:1: <rsc_colocation id=\"c1\">: 'lots' is not a valid score (use an integer, INFINITY or -INFINITY); the constraint is ignored",
                "E 12:1: <rsc_colocation id=\"c1\">: 'Boss' is not a valid rsc-role; use Stopped, Started, Unpromoted or Promoted",
                "E 13:1: <rsc_order id=\"o1\">: 'Sometimes' is not a valid kind (Mandatory is used); use Mandatory, Optional or Serialize",
                "E 13:1: <rsc_order id=\"o1\">: 'reload' is not a valid first-action; use start, stop, promote or demote",
                "E 14:1: <rsc_location id=\"l1\">: 'x' is not a valid score (use an integer, INFINITY or -INFINITY); the constraint is ignored",
                "E 14:1: <rsc_location id=\"l1\">: 'maybe' is not a valid resource-discovery; use always, never or exclusive",
                "E 15:1: <rsc_location id=\"l2\">: this location constraint has neither node and score nor a rule; it does nothing",
                "E 16:31: <rule id=\"r1\">: 'big' is not a valid score (use an integer, INFINITY or -INFINITY); the rule is ignored",
                "E 16:31: <rule id=\"r1\">: 'x' is not a valid role; use Stopped, Started, Unpromoted or Promoted",
                "E 16:67: <rule id=\"r2\">: this location rule has neither score nor score-attribute and is ignored; set one",
                "E 17:1: <rsc_ticket id=\"t1\">: 'panic' is not a valid loss-policy; use stop, demote, fence or freeze",
                "E 18:1: <rsc_order id=\"o2\">: this ordering needs both first and then (or resource sets)",
            ],
        )]);
    }

    #[test]
    fn nodes_and_options() {
        check(&[(
            "<cib admin_epoch=\"0\" epoch=\"1\" num_updates=\"0\">\n<configuration>\n<crm_config>\n\
             <cluster_property_set id=\"cib-bootstrap-options\">\n\
             <nvpair id=\"o1\" name=\"symmetric-cluster\" value=\"sure\"/>\n\
             </cluster_property_set>\n</crm_config>\n<nodes>\n\
             <node id=\"1\" uname=\"n1\" type=\"ping\"/>\n\
             <node id=\"2\"/>\n\
             <node id=\"3\" uname=\"n3\" score=\"high\"/>\n\
             <node id=\"4\" uname=\"n3\"/>\n\
             </nodes>\n<resources/>\n<constraints/>\n</configuration>\n<status/>\n</cib>",
            &[
                "E 5:1: <nvpair id=\"o1\">: 'sure' is not a valid value for cluster option 'symmetric-cluster' (expected true or false); using the default 'true'",
                "E 9:1: <node id=\"1\">: node type 'ping' is not recognized and the node is ignored; use member or remote",
                "E 10:1: <node id=\"2\">: this node has no uname and is ignored; set uname to the node's name",
                "W 11:1: <node id=\"3\">: 'high' is not a valid score; 0 is used for this node",
                "W 12:1: <node id=\"4\">: node name 'n3' is already used by the node at 11:1; node names must be unique",
            ],
        )]);
    }

    #[test]
    fn display_format() {
        let doc = Document::parse("<a>\n    <rsc_colocation id=\"c1\"/></a>").unwrap();
        let el = doc.root.child("rsc_colocation").unwrap();
        let d = Diagnostic::error(el, "resource 'web' does not exist");
        assert_eq!(
            d.to_string(),
            "2:5: <rsc_colocation id=\"c1\">: resource 'web' does not exist"
        );
        assert_eq!(Severity::Warning.to_string(), "warning");
    }
}
