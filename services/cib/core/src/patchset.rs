//! Pacemaker's v2 patchsets: the difference between two CIBs, and applying one.
//!
//! A patchset is the `<diff format="2">` document that `crm_diff` prints and
//! that Pacemaker's CIB manager broadcasts after every change:
//!
//! ```xml
//! <diff format="2">
//!   <version>
//!     <source admin_epoch="0" epoch="5" num_updates="2"/>
//!     <target admin_epoch="0" epoch="6" num_updates="0"/>
//!   </version>
//!   <change operation="delete" path="/cib/configuration/constraints/rsc_order[@id='o1']"/>
//!   <change operation="modify" path="/cib">
//!     <change-list>
//!       <change-attr name="epoch" operation="set" value="6"/>
//!     </change-list>
//!     <change-result>
//!       <cib admin_epoch="0" epoch="6" num_updates="0"/>
//!     </change-result>
//!   </change>
//!   <change operation="create" path="/cib/configuration/resources" position="1">
//!     <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2"/>
//!   </change>
//!   <change operation="move" path="/cib/configuration/resources/primitive[@id='db']" position="0"/>
//! </diff>
//! ```
//!
//! The format, as Pacemaker writes and applies it:
//!
//! * A *path* names one node from the root: `/cib/configuration/resources`,
//!   each step an element name followed by `[@id='…']` when the element has
//!   an `id`. A step without an id matches any element of that name; the
//!   step `comment` also matches comment nodes.
//! * A *position* counts the element and comment children of a parent, from
//!   0; text is not counted (Pacemaker drops white space when it reads XML
//!   and keeps comments, so comments count).
//! * `create` names the parent and the position the new node will have; the
//!   new element (or comment) is the change's child. `delete` names the node;
//!   a deleted comment also has the position it has when the delete is
//!   applied. `modify` names an element and carries `<change-list>` (what
//!   happened to which attribute, for readers) and `<change-result>` (an
//!   empty copy of the element with all its resulting attributes, in order;
//!   this is what applying uses). `move` names the node and its new
//!   position.
//! * Applying goes through the changes in order, doing deletes and modifies
//!   at once and setting creates and moves aside (a moved node goes to the
//!   end of its parent's children meanwhile); then creates and moves are
//!   done in order of their positions, which are the final ones.
//!
//! [`diff`] makes patchsets that apply this way to give exactly the new tree
//! (up to white space between elements, which a patchset cannot carry):
//! children are matched by name and id (comments by content), the children
//! that keep their relative order stay, the others move, and where a path
//! would not name one element unambiguously (two siblings of the same name
//! without ids) the nearest element that can be named is replaced as a
//! whole instead. [`Patchset::apply`] follows Pacemaker's order of
//! application, so patchsets made by Pacemaker give what they give there,
//! but is stricter: a path that matches nothing or several nodes, and a
//! patchset that does not advance the version, are refused, and nothing is
//! changed unless everything applies.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::model::{CibVersion, VersionProblem};
use crate::xml::{Document, Element, Node};

/// A v2 patchset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patchset {
    /// The version the patchset applies to (`<version><source>`); `None` when
    /// the patchset has no version (`crm_diff --no-version`).
    pub source: Option<CibVersion>,
    /// The version the CIB has after it (`<version><target>`).
    pub target: Option<CibVersion>,
    /// The `digest` attribute of `<diff>` (`crm_diff --cib` adds one): kept,
    /// written back, not checked.
    pub digest: Option<String>,
    /// The changes, in the order they are written and applied.
    pub changes: Vec<Change>,
}

/// One `<change>` of a patchset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Adds `node` (an element or a comment) as a child of the element at
    /// `path`, so that it ends up at `position` among the element and
    /// comment children.
    Create {
        path: String,
        position: usize,
        node: Node,
    },
    /// Removes the node at `path`; `position` picks among comments (Pacemaker
    /// writes it for comments only, and elements ignore it).
    Delete {
        path: String,
        position: Option<usize>,
    },
    /// Replaces the attributes of the element at `path` with `result`, in
    /// that order. `attrs` lists what changed, for readers; applying uses
    /// `result` only, as Pacemaker does.
    Modify {
        path: String,
        attrs: Vec<AttrChange>,
        /// The name of the element, as written in `<change-result>`.
        element: String,
        result: Vec<(String, String)>,
    },
    /// Moves the node at `path` to `position` among its parent's element and
    /// comment children.
    Move { path: String, position: usize },
}

/// One `<change-attr>` of a modify change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrChange {
    pub name: String,
    pub op: AttrOp,
}

/// What happened to an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrOp {
    /// Added, changed, or moved within the element: its value now.
    Set(String),
    /// Removed.
    Unset,
}

/// Why a patchset cannot be read or applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The text is not well-formed XML.
    #[error("the patchset is not well-formed XML: {0}")]
    Xml(#[from] crate::xml::XmlError),
    /// The document is not a v2 patchset (wrong root, format, or version
    /// element).
    #[error("not a v2 patchset: {0}")]
    Format(String),
    /// A `<change>` cannot be read, or cannot be applied for a reason other
    /// than its path (such as a modify naming a comment). `change` counts
    /// from 1 among the `<change>` elements.
    #[error("change {change} ({operation} {path}): {message}")]
    BadChange {
        change: usize,
        operation: String,
        path: String,
        message: String,
    },
    /// A path is not of the form Pacemaker writes.
    #[error("change {change} ({operation}): path \"{path}\" is not a patchset path: {message}")]
    BadPath {
        change: usize,
        operation: String,
        path: String,
        message: String,
    },
    /// A path matches no node.
    #[error("change {change} ({operation}): path \"{path}\" matches nothing ({detail})")]
    NoMatch {
        change: usize,
        operation: String,
        path: String,
        detail: String,
    },
    /// A path matches several nodes.
    #[error(
        "change {change} ({operation}): path \"{path}\" is ambiguous: {count} nodes match \
         \"{step}\" under \"{parent}\""
    )]
    Ambiguous {
        change: usize,
        operation: String,
        path: String,
        step: String,
        parent: String,
        count: usize,
    },
    /// The CIB is older than the patchset's source: changes in between are
    /// missing, and the whole CIB must be fetched again.
    #[error(
        "the CIB is at version {current}, older than the patchset's source {patch_source}; \
         changes in between are missing"
    )]
    VersionTooOld {
        current: CibVersion,
        patch_source: CibVersion,
    },
    /// The CIB is newer than the patchset's source (the patchset is old, or
    /// already applied).
    #[error(
        "the CIB is at version {current}, newer than the patchset's source {patch_source}; \
         the patchset is old or already applied"
    )]
    VersionTooNew {
        current: CibVersion,
        patch_source: CibVersion,
    },
    /// The patchset's target is not newer than its source.
    #[error(
        "the patchset does not advance the version: target {patch_target} is not newer than source {patch_source}"
    )]
    VersionNotAdvanced {
        patch_source: CibVersion,
        patch_target: CibVersion,
    },
}

impl Change {
    /// The `path` of the change.
    pub fn path(&self) -> &str {
        match self {
            Change::Create { path, .. }
            | Change::Delete { path, .. }
            | Change::Modify { path, .. }
            | Change::Move { path, .. } => path,
        }
    }

    /// The `operation`: `create`, `delete`, `modify` or `move`.
    pub fn operation(&self) -> &'static str {
        match self {
            Change::Create { .. } => "create",
            Change::Delete { .. } => "delete",
            Change::Modify { .. } => "modify",
            Change::Move { .. } => "move",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.operation(), self.path())?;
        match self {
            Change::Create { position, .. } | Change::Move { position, .. } => {
                write!(f, " at {position}")
            }
            Change::Delete {
                position: Some(p), ..
            } => write!(f, " at {p}"),
            _ => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Writing and reading.

impl Patchset {
    /// True when the patchset has no changes.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The patchset as Pacemaker writes it: `<diff format="2">`.
    pub fn to_element(&self) -> Element {
        let mut diff = Element::new("diff");
        diff.set_attr("format", "2");
        if let Some(d) = &self.digest {
            diff.set_attr("digest", d.clone());
        }
        if self.source.is_some() || self.target.is_some() {
            let version = diff.push(Element::new("version"));
            for (name, v) in [("source", self.source), ("target", self.target)] {
                if let Some(v) = v {
                    let el = version.push(Element::new(name));
                    el.set_attr("admin_epoch", v.admin_epoch.to_string());
                    el.set_attr("epoch", v.epoch.to_string());
                    el.set_attr("num_updates", v.num_updates.to_string());
                }
            }
        }
        for change in &self.changes {
            let el = diff.push(Element::new("change"));
            el.set_attr("operation", change.operation());
            el.set_attr("path", change.path());
            match change {
                Change::Create { position, node, .. } => {
                    el.set_attr("position", position.to_string());
                    el.children.push(node.clone());
                }
                Change::Delete { position, .. } => {
                    if let Some(p) = position {
                        el.set_attr("position", p.to_string());
                    }
                }
                Change::Modify {
                    attrs,
                    element,
                    result,
                    ..
                } => {
                    let list = el.push(Element::new("change-list"));
                    for a in attrs {
                        let ca = list.push(Element::new("change-attr"));
                        ca.set_attr("name", a.name.clone());
                        match &a.op {
                            AttrOp::Set(v) => {
                                ca.set_attr("operation", "set");
                                ca.set_attr("value", v.clone());
                            }
                            AttrOp::Unset => ca.set_attr("operation", "unset"),
                        }
                    }
                    let res = el.push(Element::new("change-result"));
                    let copy = res.push(Element::new(element.clone()));
                    copy.attrs = result.clone();
                }
                Change::Move { position, .. } => {
                    el.set_attr("position", position.to_string());
                }
            }
        }
        diff
    }

    /// The patchset as XML text.
    pub fn to_xml(&self) -> String {
        self.to_element().to_xml()
    }

    /// Reads a patchset from XML text (as `crm_diff` prints it).
    pub fn from_xml(text: &str) -> Result<Patchset, PatchError> {
        let doc = Document::parse(text)?;
        Patchset::from_element(&doc.root)
    }

    /// Reads a `<diff format="2">` element, as Pacemaker and `crm_diff`
    /// write it (white space and comments between its parts are ignored).
    pub fn from_element(diff: &Element) -> Result<Patchset, PatchError> {
        if diff.name != "diff" {
            return Err(PatchError::Format(format!(
                "the root element is <{}>, not <diff>",
                diff.name
            )));
        }
        match diff.attr("format").map(str::trim) {
            Some("2") => {}
            Some(f) => {
                return Err(PatchError::Format(format!(
                    "format=\"{f}\" is not supported; only format=\"2\" patchsets are"
                )));
            }
            None => {
                return Err(PatchError::Format(
                    "<diff> has no format attribute (a format 1 patchset); only format=\"2\" \
                     patchsets are supported"
                        .into(),
                ));
            }
        }
        let mut patch = Patchset {
            digest: diff.attr("digest").map(str::to_string),
            ..Patchset::default()
        };
        let mut seen_version = false;
        for el in diff.elements() {
            match el.name.as_str() {
                "version" => {
                    if seen_version {
                        return Err(PatchError::Format("more than one <version>".into()));
                    }
                    seen_version = true;
                    for part in el.elements() {
                        let slot = match part.name.as_str() {
                            "source" => &mut patch.source,
                            "target" => &mut patch.target,
                            other => {
                                return Err(PatchError::Format(format!(
                                    "<version> has an unexpected <{other}>; expected <source> \
                                     and <target>"
                                )));
                            }
                        };
                        if slot.is_some() {
                            return Err(PatchError::Format(format!(
                                "<version> has more than one <{}>",
                                part.name
                            )));
                        }
                        *slot = Some(read_version(part)?);
                    }
                }
                "change" => {
                    let n = patch.changes.len() + 1;
                    patch.changes.push(read_change(el, n)?);
                }
                other => {
                    return Err(PatchError::Format(format!(
                        "unexpected <{other}> in <diff>; expected <version> and <change>"
                    )));
                }
            }
        }
        Ok(patch)
    }
}

fn read_version(el: &Element) -> Result<CibVersion, PatchError> {
    let (version, problems) = CibVersion::read(el);
    match problems.first() {
        None => Ok(version),
        Some(VersionProblem::Missing(attr)) => Err(PatchError::Format(format!(
            "<version><{}> has no {attr}",
            el.name
        ))),
        Some(VersionProblem::Invalid(attr, v)) => Err(PatchError::Format(format!(
            "<version><{}> has {attr}=\"{v}\", not a non-negative integer",
            el.name
        ))),
    }
}

/// The children of `el` that carry something: elements, comments, CDATA,
/// processing instructions and text that is not only white space.
fn significant(el: &Element) -> impl Iterator<Item = &Node> {
    el.children
        .iter()
        .filter(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()))
}

fn read_change(el: &Element, n: usize) -> Result<Change, PatchError> {
    let operation = el.attr("operation").unwrap_or("").to_string();
    let path = el.attr("path").unwrap_or("").to_string();
    let bad = |message: String| PatchError::BadChange {
        change: n,
        operation: if operation.is_empty() {
            "?".to_string()
        } else {
            operation.clone()
        },
        path: path.clone(),
        message,
    };
    if operation.is_empty() {
        return Err(bad("the change has no operation".into()));
    }
    if path.is_empty() {
        return Err(bad("the change has no path".into()));
    }
    let position = match el.attr("position") {
        None => None,
        Some(p) => Some(
            p.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("position \"{p}\" is not a non-negative integer")))?,
        ),
    };
    let need_position = || position.ok_or_else(|| bad("the change has no position".into()));
    match operation.as_str() {
        "create" => {
            let position = need_position()?;
            let mut content = significant(el);
            let node = match (content.next(), content.next()) {
                (Some(node @ (Node::Element(_) | Node::Comment(_))), None) => node.clone(),
                (None, _) => return Err(bad("the change has nothing to create".into())),
                (Some(_), None) => {
                    return Err(bad("only an element or a comment can be created".into()));
                }
                (Some(_), Some(_)) => {
                    return Err(bad("the change has more than one node to create".into()));
                }
            };
            Ok(Change::Create {
                path,
                position,
                node,
            })
        }
        "delete" => Ok(Change::Delete { path, position }),
        "move" => Ok(Change::Move {
            position: need_position()?,
            path,
        }),
        "modify" => {
            let mut attrs = Vec::new();
            if let Some(list) = el.child("change-list") {
                for ca in list.elements() {
                    if ca.name != "change-attr" {
                        return Err(bad(format!("unexpected <{}> in <change-list>", ca.name)));
                    }
                    let name = ca
                        .attr("name")
                        .ok_or_else(|| bad("a <change-attr> has no name".into()))?;
                    let op = match ca.attr("operation") {
                        Some("set") => AttrOp::Set(
                            ca.attr("value")
                                .ok_or_else(|| {
                                    bad(format!(
                                        "<change-attr name=\"{name}\" operation=\"set\"> has \
                                         no value"
                                    ))
                                })?
                                .to_string(),
                        ),
                        Some("unset") => AttrOp::Unset,
                        Some(other) => {
                            return Err(bad(format!(
                                "<change-attr name=\"{name}\"> has operation \"{other}\"; \
                                 expected set or unset"
                            )));
                        }
                        None => {
                            return Err(bad(format!(
                                "<change-attr name=\"{name}\"> has no operation"
                            )));
                        }
                    };
                    attrs.push(AttrChange {
                        name: name.to_string(),
                        op,
                    });
                }
            }
            let result = el
                .child("change-result")
                .ok_or_else(|| bad("the change has no <change-result>".into()))?;
            let copy = result
                .elements()
                .next()
                .ok_or_else(|| bad("<change-result> holds no element".into()))?;
            Ok(Change::Modify {
                path,
                attrs,
                element: copy.name.clone(),
                result: copy.attrs.clone(),
            })
        }
        other => Err(bad(format!(
            "unknown operation \"{other}\"; expected create, delete, modify or move"
        ))),
    }
}

// ---------------------------------------------------------------------------
// Paths.

/// One step of a path: an element name, and the id it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    name: String,
    id: Option<String>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(id) = &self.id {
            let q = if id.contains('\'') { '"' } else { '\'' };
            write!(f, "[@id={q}{id}{q}]")?;
        }
        Ok(())
    }
}

/// The path step naming `el`, or `None` when its id holds both kinds of
/// quote and cannot be written in a path.
fn step_of(el: &Element) -> Option<String> {
    let id = el.attr("id");
    if id.is_some_and(|id| id.contains('\'') && id.contains('"')) {
        return None;
    }
    Some(
        Step {
            name: el.name.clone(),
            id: id.map(str::to_string),
        }
        .to_string(),
    )
}

/// Parses `/name/name[@id='x']/...`.
fn parse_path(path: &str) -> Result<Vec<Step>, String> {
    let mut rest = path
        .strip_prefix('/')
        .ok_or_else(|| "it does not start with '/'".to_string())?;
    let mut steps = Vec::new();
    loop {
        let end = rest.find(['/', '[']).unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() {
            return Err(format!("step {} has no element name", steps.len() + 1));
        }
        if name.chars().any(char::is_whitespace) {
            return Err(format!(
                "step {} has white space in its name",
                steps.len() + 1
            ));
        }
        rest = &rest[end..];
        let mut id = None;
        if let Some(pred) = rest.strip_prefix('[') {
            let pred = pred.strip_prefix("@id=").ok_or_else(|| {
                format!(
                    "step {} ({name}) has a predicate other than [@id='...']",
                    steps.len() + 1
                )
            })?;
            let quote = pred
                .chars()
                .next()
                .filter(|c| *c == '\'' || *c == '"')
                .ok_or_else(|| {
                    format!("the id of step {} ({name}) is not quoted", steps.len() + 1)
                })?;
            let value = &pred[1..];
            let close = value.find(quote).ok_or_else(|| {
                format!("the id of step {} ({name}) is not closed", steps.len() + 1)
            })?;
            id = Some(value[..close].to_string());
            rest = value[close + 1..].strip_prefix(']').ok_or_else(|| {
                format!("step {} ({name}) has no ']' after its id", steps.len() + 1)
            })?;
        }
        steps.push(Step {
            name: name.to_string(),
            id,
        });
        if rest.is_empty() {
            return Ok(steps);
        }
        rest = rest
            .strip_prefix('/')
            .ok_or_else(|| format!("unexpected \"{rest}\" after step {}", steps.len()))?;
    }
}

// ---------------------------------------------------------------------------
// Applying.

/// The tree being patched, with stable handles for its nodes (a moved or
/// created node keeps its handle, as Pacemaker keeps node pointers).
struct Arena {
    slots: Vec<Slot>,
}

struct Slot {
    /// The node; an element's children are in `children` instead.
    node: Node,
    children: Vec<usize>,
    parent: Option<usize>,
}

const ROOT: usize = 0;

impl Arena {
    fn new(root: &Element) -> Arena {
        let mut arena = Arena { slots: Vec::new() };
        arena.add(Node::Element(root.clone()), None);
        arena
    }

    fn add(&mut self, node: Node, parent: Option<usize>) -> usize {
        let id = self.slots.len();
        match node {
            Node::Element(mut e) => {
                let kids = std::mem::take(&mut e.children);
                self.slots.push(Slot {
                    node: Node::Element(e),
                    children: Vec::with_capacity(kids.len()),
                    parent,
                });
                for k in kids {
                    let c = self.add(k, Some(id));
                    self.slots[id].children.push(c);
                }
            }
            other => self.slots.push(Slot {
                node: other,
                children: Vec::new(),
                parent,
            }),
        }
        id
    }

    fn take(&mut self, id: usize) -> Node {
        let node = std::mem::replace(&mut self.slots[id].node, Node::Text(String::new()));
        match node {
            Node::Element(mut e) => {
                let kids = std::mem::take(&mut self.slots[id].children);
                e.children = kids.into_iter().map(|k| self.take(k)).collect();
                Node::Element(e)
            }
            other => other,
        }
    }

    fn element(&self, id: usize) -> Option<&Element> {
        match &self.slots[id].node {
            Node::Element(e) => Some(e),
            _ => None,
        }
    }

    fn counted(&self, id: usize) -> bool {
        matches!(self.slots[id].node, Node::Element(_) | Node::Comment(_))
    }

    /// The position of `id` among its parent's element and comment
    /// children.
    fn position(&self, id: usize) -> usize {
        let Some(parent) = self.slots[id].parent else {
            return 0;
        };
        self.slots[parent]
            .children
            .iter()
            .take_while(|&&c| c != id)
            .filter(|&&c| self.counted(c))
            .count()
    }

    /// The index in `parent`'s children of the first child (of any kind)
    /// that has `position` element and comment children before it.
    fn index_at_position(&self, parent: usize, position: usize) -> Option<usize> {
        let mut before = 0;
        for (i, &c) in self.slots[parent].children.iter().enumerate() {
            if before == position {
                return Some(i);
            }
            if self.counted(c) {
                before += 1;
            }
        }
        None
    }

    fn detach(&mut self, id: usize) {
        if let Some(parent) = self.slots[id].parent.take() {
            self.slots[parent].children.retain(|&c| c != id);
        }
    }

    /// True when `id` is still in the tree.
    fn attached(&self, mut id: usize) -> bool {
        while let Some(p) = self.slots[id].parent {
            id = p;
        }
        id == ROOT
    }

    fn describe(&self, id: usize) -> String {
        let mut steps = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur {
            steps.push(match &self.slots[c].node {
                Node::Element(e) => step_of(e).unwrap_or_else(|| e.name.clone()),
                _ => "comment".to_string(),
            });
            cur = self.slots[c].parent;
        }
        steps.reverse();
        format!("/{}", steps.join("/"))
    }
}

/// Why a path found no single node.
enum Lookup {
    Bad(String),
    NoMatch(String),
    Ambiguous {
        step: String,
        parent: String,
        count: usize,
    },
}

impl Arena {
    /// The node at `path`; `comment_position` picks a comment for a delete.
    fn find(&self, path: &str, comment_position: Option<usize>) -> Result<usize, Lookup> {
        let steps = parse_path(path).map_err(Lookup::Bad)?;
        let root = self.element(ROOT).map(|e| (e.name.as_str(), e.attr("id")));
        let first = &steps[0];
        match root {
            Some((name, id))
                if name == first.name && (first.id.is_none() || first.id.as_deref() == id) => {}
            _ => {
                return Err(Lookup::NoMatch(format!("the root element is not {first}")));
            }
        }
        let mut cur = ROOT;
        let last = steps.len() - 1;
        for (k, step) in steps.iter().enumerate().skip(1) {
            let mut found = None;
            let mut count = 0;
            for &c in &self.slots[cur].children {
                let hit = match &self.slots[c].node {
                    Node::Element(e) => {
                        e.name == step.name
                            && (step.id.is_none() || step.id.as_deref() == e.attr("id"))
                    }
                    Node::Comment(_) => {
                        k == last
                            && step.name == "comment"
                            && step.id.is_none()
                            && comment_position.is_none_or(|p| self.position(c) == p)
                    }
                    _ => false,
                };
                if hit {
                    count += 1;
                    found.get_or_insert(c);
                }
            }
            match (found, count) {
                (Some(c), 1) => cur = c,
                (None, _) => {
                    let what = match (step.name == "comment" && k == last, comment_position) {
                        (true, Some(p)) => format!("no {step} at position {p}"),
                        _ => format!("no {step}"),
                    };
                    return Err(Lookup::NoMatch(format!(
                        "{what} under {}",
                        self.describe(cur)
                    )));
                }
                (Some(_), count) => {
                    return Err(Lookup::Ambiguous {
                        step: step.to_string(),
                        parent: self.describe(cur),
                        count,
                    });
                }
            }
        }
        Ok(cur)
    }
}

impl Patchset {
    /// Applies the patchset to `cib` (the `<cib>` element) as Pacemaker
    /// does, after checking that `cib` is at the patchset's source version
    /// ([`Patchset::check_version`]). On any error `cib` is left unchanged.
    pub fn apply(&self, cib: &mut Element) -> Result<(), PatchError> {
        self.check_version(cib)?;
        self.apply_without_version_check(cib)
    }

    /// Applies the patchset to `cib` without looking at versions (as
    /// `crm_diff --patch` without `--cib` does). On any error `cib` is left
    /// unchanged.
    pub fn apply_without_version_check(&self, cib: &mut Element) -> Result<(), PatchError> {
        let mut arena = Arena::new(cib);
        self.apply_to(&mut arena)?;
        if let Node::Element(e) = arena.take(ROOT) {
            *cib = e;
        }
        Ok(())
    }

    /// Checks that the patchset applies to a CIB at the version of `cib`, as
    /// Pacemaker does: the CIB must be at the source version, and the target
    /// must be newer. A missing source counts as the CIB's version, a missing
    /// target as the CIB's version with one more update (so a patchset
    /// without versions passes). Version attributes of `cib` that are missing
    /// or invalid count as 0.
    pub fn check_version(&self, cib: &Element) -> Result<(), PatchError> {
        let (current, _) = CibVersion::read(cib);
        let source = self.source.unwrap_or(current);
        let target = self.target.unwrap_or(CibVersion {
            num_updates: current.num_updates.saturating_add(1),
            ..current
        });
        if current < source {
            return Err(PatchError::VersionTooOld {
                current,
                patch_source: source,
            });
        }
        if current > source {
            return Err(PatchError::VersionTooNew {
                current,
                patch_source: source,
            });
        }
        if target <= source {
            return Err(PatchError::VersionNotAdvanced {
                patch_source: source,
                patch_target: target,
            });
        }
        Ok(())
    }

    fn apply_to(&self, arena: &mut Arena) -> Result<(), PatchError> {
        // First pass: deletes and modifies at once; creates and moves are
        // set aside with the node they name (a moved node goes last).
        let mut later: Vec<(usize, usize, &Change, usize)> = Vec::new();
        for (i, change) in self.changes.iter().enumerate() {
            let n = i + 1;
            let comment_position = match change {
                Change::Delete { position, .. } => *position,
                _ => None,
            };
            let id = arena
                .find(change.path(), comment_position)
                .map_err(|e| lookup_error(e, n, change))?;
            let bad = |message: &str| PatchError::BadChange {
                change: n,
                operation: change.operation().to_string(),
                path: change.path().to_string(),
                message: message.to_string(),
            };
            match change {
                Change::Delete { .. } => {
                    if id == ROOT {
                        return Err(bad("the root element cannot be deleted"));
                    }
                    arena.detach(id);
                }
                Change::Modify { result, .. } => match &mut arena.slots[id].node {
                    Node::Element(e) => e.attrs = result.clone(),
                    _ => return Err(bad("only an element can be modified, not a comment")),
                },
                Change::Create { position, node, .. } => {
                    if arena.element(id).is_none() {
                        return Err(bad("a comment cannot have children"));
                    }
                    if !matches!(node, Node::Element(_) | Node::Comment(_)) {
                        return Err(bad("only an element or a comment can be created"));
                    }
                    later.push((*position, n, change, id));
                }
                Change::Move { position, .. } => {
                    let Some(parent) = arena.slots[id].parent else {
                        return Err(bad("the root element cannot be moved"));
                    };
                    let kids = &mut arena.slots[parent].children;
                    kids.retain(|&c| c != id);
                    kids.push(id);
                    later.push((*position, n, change, id));
                }
            }
        }

        // Second pass: creates and moves by increasing position (a stable
        // sort, so equal positions keep the patchset's order).
        later.sort_by_key(|&(position, ..)| position);
        for (position, n, change, id) in later {
            let bad = |message: String| PatchError::BadChange {
                change: n,
                operation: change.operation().to_string(),
                path: change.path().to_string(),
                message,
            };
            if !arena.attached(id) {
                return Err(bad(
                    "the node it names was deleted by a later change of the patchset".into(),
                ));
            }
            match change {
                Change::Create { node, .. } => {
                    let at = arena.index_at_position(id, position);
                    let child = arena.add(node.clone(), Some(id));
                    let kids = &mut arena.slots[id].children;
                    match at {
                        Some(at) => kids.insert(at, child),
                        None => kids.push(child),
                    }
                }
                Change::Move { .. } => {
                    let Some(parent) = arena.slots[id].parent else {
                        return Err(bad("the root element cannot be moved".into()));
                    };
                    let current = arena.position(id);
                    if position != current {
                        let p = if position > current {
                            position + 1
                        } else {
                            position
                        };
                        let anchor = arena
                            .index_at_position(parent, p)
                            .map(|i| arena.slots[parent].children[i]);
                        let kids = &mut arena.slots[parent].children;
                        kids.retain(|&c| c != id);
                        match anchor.and_then(|a| kids.iter().position(|&c| c == a)) {
                            Some(at) => kids.insert(at, id),
                            None => kids.push(id),
                        }
                    }
                    let now = arena.position(id);
                    if now != position {
                        return Err(bad(format!(
                            "the node ended at position {now}, not {position}: the positions \
                             do not fit the children of its parent"
                        )));
                    }
                }
                Change::Delete { .. } | Change::Modify { .. } => {}
            }
        }
        Ok(())
    }
}

fn lookup_error(e: Lookup, n: usize, change: &Change) -> PatchError {
    let operation = change.operation().to_string();
    let path = change.path().to_string();
    match e {
        Lookup::Bad(message) => PatchError::BadPath {
            change: n,
            operation,
            path,
            message,
        },
        Lookup::NoMatch(detail) => PatchError::NoMatch {
            change: n,
            operation,
            path,
            detail,
        },
        Lookup::Ambiguous {
            step,
            parent,
            count,
        } => PatchError::Ambiguous {
            change: n,
            operation,
            path,
            step,
            parent,
            count,
        },
    }
}

// ---------------------------------------------------------------------------
// Computing a patchset.

/// The patchset that turns `old` into `new` (both `<cib>` elements, or any
/// two roots of the same name), with versions read from their attributes
/// (a missing or invalid field counts as 0).
///
/// Applying it to `old` gives `new` up to white space between elements.
/// Children are matched by name and id (the first unmatched one of the same
/// name and id, as Pacemaker does; comments by content); matched children
/// that keep their relative order (a longest such sequence) stay, the others
/// move; changed attributes give a modify with all resulting attributes in
/// order. An element whose path would be ambiguous (a sibling with the same
/// name and no id to tell them apart) is never named: the nearest element
/// above it that can be named is deleted and created anew, which is also
/// how changed text, CDATA or processing instructions are carried. Only
/// when the root's own children cannot be told apart are ambiguous paths
/// written (and [`Patchset::apply`] refuses them).
///
/// The version is not bumped: the target is what `new` says.
pub fn diff(old: &Element, new: &Element) -> Patchset {
    let path = format!("/{}", old.name);
    let fragment = Differ { strict: true }
        .element(old, new, &path)
        .unwrap_or_else(|NeedsReplacement| {
            Differ { strict: false }
                .element(old, new, &path)
                .unwrap_or_default()
        });
    let mut changes = fragment.deletes;
    changes.extend(fragment.changes);
    Patchset {
        source: Some(CibVersion::read(old).0),
        target: Some(CibVersion::read(new).0),
        digest: None,
        changes,
    }
}

#[derive(Default)]
struct Fragment {
    /// Deletes, which go first in the patchset (as Pacemaker writes them).
    deletes: Vec<Change>,
    changes: Vec<Change>,
}

impl Fragment {
    fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.changes.is_empty()
    }
}

/// The element must be replaced as a whole by its parent.
struct NeedsReplacement;

struct Differ {
    /// When false, ambiguous paths and changed text are let through (used
    /// only when the root itself would need replacing).
    strict: bool,
}

/// What identifies a child for matching.
#[derive(PartialEq, Eq, Hash)]
enum Key<'a> {
    Element(&'a str, Option<&'a str>),
    Comment(&'a str),
}

fn key(node: &Node) -> Option<Key<'_>> {
    match node {
        Node::Element(e) => Some(Key::Element(&e.name, e.attr("id"))),
        Node::Comment(c) => Some(Key::Comment(c)),
        _ => None,
    }
}

/// The children that are neither elements nor comments nor white space:
/// a patchset cannot change them in place.
fn uncounted(el: &Element) -> Vec<&Node> {
    significant(el)
        .filter(|n| !matches!(n, Node::Element(_) | Node::Comment(_)))
        .collect()
}

impl Differ {
    fn element(
        &self,
        old: &Element,
        new: &Element,
        path: &str,
    ) -> Result<Fragment, NeedsReplacement> {
        // Most of a CIB does not change: an equal subtree needs no change,
        // and comparing it costs far less than matching its children.
        if old == new {
            return Ok(Fragment::default());
        }
        if self.strict && uncounted(old) != uncounted(new) {
            return Err(NeedsReplacement);
        }
        let mut fragment = Fragment::default();
        let modify = modify_change(old, new, path);

        let oc: Vec<&Node> = old.children.iter().filter(|n| key(n).is_some()).collect();
        let nc: Vec<&Node> = new.children.iter().filter(|n| key(n).is_some()).collect();

        // Match children: each old child takes the first unmatched new child
        // with the same key.
        let mut waiting: HashMap<Key<'_>, VecDeque<usize>> = HashMap::new();
        for (j, n) in nc.iter().enumerate() {
            if let Some(k) = key(n) {
                waiting.entry(k).or_default().push_back(j);
            }
        }
        let mut old_to_new: Vec<Option<usize>> = vec![None; oc.len()];
        let mut new_to_old: Vec<Option<usize>> = vec![None; nc.len()];
        for (i, o) in oc.iter().enumerate() {
            if let Some(j) = key(o).and_then(|k| waiting.get_mut(&k)?.pop_front()) {
                old_to_new[i] = Some(j);
                new_to_old[j] = Some(i);
            }
        }

        // Which old children a path can name on its own.
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        let mut by_name_id: HashMap<(&str, &str), usize> = HashMap::new();
        for o in &oc {
            if let Node::Element(e) = o {
                *by_name.entry(&e.name).or_default() += 1;
                if let Some(id) = e.attr("id") {
                    *by_name_id.entry((&e.name, id)).or_default() += 1;
                }
            }
        }
        let nameable = |e: &Element| -> Option<String> {
            let unique = match e.attr("id") {
                Some(id) => by_name_id.get(&(e.name.as_str(), id)) == Some(&1),
                None => by_name.get(e.name.as_str()) == Some(&1),
            };
            match step_of(e) {
                Some(s) if unique || !self.strict => Some(format!("{path}/{s}")),
                // Not strict: name it as best we can; applying refuses the
                // path if it is ambiguous.
                _ if !self.strict => Some(format!("{path}/{}", e.name)),
                _ => None,
            }
        };
        let comments_nameable = !self.strict || !by_name.contains_key("comment");

        // Differences inside matched elements; an element that must be
        // replaced is unmatched (deleted and created anew).
        let mut inner: Vec<Option<Fragment>> = (0..oc.len()).map(|_| None).collect();
        for i in 0..oc.len() {
            let Some(j) = old_to_new[i] else { continue };
            if let (Node::Element(o), Node::Element(n)) = (oc[i], nc[j]) {
                let child = match nameable(o) {
                    Some(p) => self.element(o, n, &p),
                    // Cannot be named: fine as long as nothing changes in it.
                    None if o == n => Ok(Fragment::default()),
                    None => Err(NeedsReplacement),
                };
                match child {
                    Ok(f) => inner[i] = Some(f),
                    Err(NeedsReplacement) => {
                        old_to_new[i] = None;
                        new_to_old[j] = None;
                    }
                }
            }
        }

        // The matched children that keep their relative order stay; the
        // others move (comments cannot be named for a move: they are
        // deleted and created).
        let matched: Vec<(usize, usize)> = new_to_old
            .iter()
            .enumerate()
            .filter_map(|(j, i)| Some((j, (*i)?)))
            .collect();
        let stays = longest_increasing(&matched.iter().map(|&(_, i)| i).collect::<Vec<_>>());
        let mut moved = vec![false; nc.len()];
        for (&(j, i), stays) in matched.iter().zip(stays) {
            if stays {
                continue;
            }
            match oc[i] {
                Node::Element(_) => moved[j] = true,
                _ => {
                    old_to_new[i] = None;
                    new_to_old[j] = None;
                }
            }
        }

        // Deletes, in the order of the old children. A comment is named by
        // its position at the time of the delete, after the earlier ones.
        let mut deleted = 0;
        for i in 0..oc.len() {
            if old_to_new[i].is_some() {
                if let Some(f) = &mut inner[i] {
                    fragment.deletes.append(&mut f.deletes);
                }
                continue;
            }
            let change = match oc[i] {
                Node::Element(e) => Change::Delete {
                    path: nameable(e).ok_or(NeedsReplacement)?,
                    position: None,
                },
                _ if comments_nameable => Change::Delete {
                    path: format!("{path}/comment"),
                    position: Some(i - deleted),
                },
                _ => return Err(NeedsReplacement),
            };
            fragment.deletes.push(change);
            deleted += 1;
        }

        // Then this element's attributes, and its children in their new
        // order: creates, the changes inside, moves.
        fragment.changes.extend(modify);
        for j in 0..nc.len() {
            let Some(i) = new_to_old[j] else {
                fragment.changes.push(Change::Create {
                    path: path.to_string(),
                    position: j,
                    node: as_written(nc[j]),
                });
                continue;
            };
            let Node::Element(o) = oc[i] else { continue };
            let f = inner[i].take().unwrap_or_default();
            if f.is_empty() && !moved[j] {
                continue;
            }
            let child = nameable(o).ok_or(NeedsReplacement)?;
            fragment.changes.extend(f.changes);
            if moved[j] {
                fragment.changes.push(Change::Move {
                    path: child,
                    position: j,
                });
            }
        }
        Ok(fragment)
    }
}

/// A copy of `node` as it reads back once written: adjacent pieces of text
/// joined, empty ones dropped (so that a patchset reads back equal to
/// itself).
fn as_written(node: &Node) -> Node {
    let Node::Element(e) = node else {
        return node.clone();
    };
    let mut children: Vec<Node> = Vec::with_capacity(e.children.len());
    for c in &e.children {
        match (c, children.last_mut()) {
            (Node::Text(t), _) if t.is_empty() => {}
            (Node::Text(t), Some(Node::Text(prev))) => prev.push_str(t),
            (c, _) => children.push(as_written(c)),
        }
    }
    Node::Element(Element {
        name: e.name.clone(),
        attrs: e.attrs.clone(),
        children,
        pos: e.pos,
    })
}

/// A modify change for `old`'s attributes becoming `new`'s, if they differ
/// (in value, presence or order). The change list follows Pacemaker's:
/// `set` for the attributes that are new, changed or moved, in their new
/// order, then `unset` for the removed ones.
fn modify_change(old: &Element, new: &Element, path: &str) -> Option<Change> {
    if old.attrs == new.attrs {
        return None;
    }
    let common_old: Vec<&str> = old
        .attrs
        .iter()
        .filter(|(k, _)| new.attr(k).is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let common_new: Vec<&str> = new
        .attrs
        .iter()
        .filter(|(k, _)| old.attr(k).is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let mut attrs = Vec::new();
    for (k, v) in &new.attrs {
        let changed = match old.attr(k) {
            None => true,
            Some(before) if before != v => true,
            Some(_) => {
                common_old.iter().position(|c| c == k) != common_new.iter().position(|c| c == k)
            }
        };
        if changed {
            attrs.push(AttrChange {
                name: k.clone(),
                op: AttrOp::Set(v.clone()),
            });
        }
    }
    for (k, _) in &old.attrs {
        if new.attr(k).is_none() {
            attrs.push(AttrChange {
                name: k.clone(),
                op: AttrOp::Unset,
            });
        }
    }
    Some(Change::Modify {
        path: path.to_string(),
        attrs,
        element: new.name.clone(),
        result: new.attrs.clone(),
    })
}

/// Marks a longest strictly increasing subsequence of `seq`.
fn longest_increasing(seq: &[usize]) -> Vec<bool> {
    // tails[k]: index in seq of the smallest end of an increasing run of
    // length k + 1; prev: the element before each in its run.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; seq.len()];
    for (i, &v) in seq.iter().enumerate() {
        let k = tails.partition_point(|&t| seq[t] < v);
        if k > 0 {
            prev[i] = Some(tails[k - 1]);
        }
        if k == tails.len() {
            tails.push(i);
        } else {
            tails[k] = i;
        }
    }
    let mut keep = vec![false; seq.len()];
    let mut cur = tails.last().copied();
    while let Some(i) = cur {
        keep[i] = true;
        cur = prev[i];
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Element {
        Document::parse(text).unwrap().root
    }

    /// `e` without white-space-only text, which patchsets do not carry.
    fn norm(e: &Element) -> Element {
        let mut e = e.clone();
        e.children
            .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
        for c in e.children.iter_mut() {
            if let Node::Element(c) = c {
                *c = norm(c);
            }
        }
        e
    }

    /// Diffs, checks the round trip through XML, applies and compares.
    fn roundtrip(old: &Element, new: &Element) -> Patchset {
        let p = diff(old, new);
        assert_eq!(Patchset::from_element(&p.to_element()).unwrap(), p);
        assert_eq!(Patchset::from_xml(&p.to_xml()).unwrap(), p);
        let mut cib = old.clone();
        p.apply_without_version_check(&mut cib)
            .unwrap_or_else(|e| panic!("{e}\npatch: {}", p.to_xml()));
        assert_eq!(norm(&cib), norm(new), "patch: {}", p.to_xml());
        p
    }

    const OLD: &str = r#"<cib admin_epoch="0" epoch="5" num_updates="2">
  <configuration>
    <crm_config/>
    <nodes>
      <node id="1" uname="a"/>
      <node id="2" uname="b"/>
    </nodes>
    <resources>
      <!-- the database -->
      <primitive id="db" class="ocf" provider="heartbeat" type="pgsql"/>
      <primitive id="web" class="ocf" provider="heartbeat" type="apache">
        <meta_attributes id="web-meta">
          <nvpair id="web-tr" name="target-role" value="Started"/>
        </meta_attributes>
      </primitive>
    </resources>
    <constraints>
      <rsc_order id="o1" first="db" then="web"/>
    </constraints>
  </configuration>
  <status/>
</cib>"#;

    const NEW: &str = r#"<cib admin_epoch="0" epoch="6" num_updates="0">
  <configuration>
    <crm_config/>
    <nodes>
      <node id="1" uname="a"/>
      <node id="2" uname="b"/>
    </nodes>
    <resources>
      <primitive id="web" class="ocf" provider="heartbeat" type="apache">
        <meta_attributes id="web-meta">
          <nvpair id="web-tr" name="target-role" value="Stopped"/>
        </meta_attributes>
      </primitive>
      <!-- the database -->
      <primitive id="db" class="ocf" provider="heartbeat" type="pgsql"/>
      <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2"/>
    </resources>
    <constraints/>
  </configuration>
  <status/>
</cib>"#;

    #[test]
    fn diff_writes_pacemakers_changes() {
        let (old, new) = (parse(OLD), parse(NEW));
        let p = roundtrip(&old, &new);
        assert_eq!(
            p.source,
            Some(CibVersion {
                admin_epoch: 0,
                epoch: 5,
                num_updates: 2
            })
        );
        assert_eq!(p.target.unwrap().to_string(), "0.6.0");
        let summary: Vec<String> = p.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            summary,
            [
                "delete /cib/configuration/constraints/rsc_order[@id='o1']",
                "modify /cib",
                "modify /cib/configuration/resources/primitive[@id='web']/meta_attributes[@id='web-meta']/nvpair[@id='web-tr']",
                "move /cib/configuration/resources/primitive[@id='web'] at 0",
                "create /cib/configuration/resources at 3",
            ]
        );
        let Change::Modify {
            attrs,
            element,
            result,
            ..
        } = &p.changes[1]
        else {
            panic!("not a modify: {}", p.changes[1]);
        };
        assert_eq!(element, "cib");
        assert_eq!(
            attrs,
            &[
                AttrChange {
                    name: "epoch".into(),
                    op: AttrOp::Set("6".into())
                },
                AttrChange {
                    name: "num_updates".into(),
                    op: AttrOp::Set("0".into())
                },
            ]
        );
        assert_eq!(result, &new.attrs);
        let xml = p.to_xml();
        assert!(xml.starts_with("<diff format=\"2\"><version><source admin_epoch=\"0\" epoch=\"5\" num_updates=\"2\"/><target admin_epoch=\"0\" epoch=\"6\" num_updates=\"0\"/></version>"), "{xml}");
        assert!(xml.contains("<change operation=\"move\" path=\"/cib/configuration/resources/primitive[@id='web']\" position=\"0\"/>"), "{xml}");
        assert!(xml.contains("<change operation=\"create\" path=\"/cib/configuration/resources\" position=\"3\"><primitive id=\"ip\""), "{xml}");
        assert!(
            xml.contains("<change-attr name=\"value\" operation=\"set\" value=\"Stopped\"/>"),
            "{xml}"
        );

        // With the version check too.
        let mut cib = old.clone();
        p.apply(&mut cib).unwrap();
        assert_eq!(norm(&cib), norm(&new));
        // Nothing to do between equal trees.
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn untouched_comments_and_text_stay() {
        let old = parse(
            "<cib epoch=\"1\"><configuration>\n  <!-- keep me -->\n  <a id=\"1\"/>text<b id=\"2\"/>\n</configuration></cib>",
        );
        let new = parse(
            "<cib epoch=\"1\"><configuration>\n  <!-- keep me -->\n  <a id=\"1\" x=\"y\"/>text<b id=\"2\"/><c id=\"3\"/>\n</configuration></cib>",
        );
        let p = roundtrip(&old, &new);
        assert_eq!(p.changes.len(), 2, "{}", p.to_xml());
        let mut cib = old.clone();
        p.apply_without_version_check(&mut cib).unwrap();
        // Exactly the new text: the new element lands after <b>, before the
        // final line break.
        assert_eq!(cib, new);
    }

    #[test]
    fn attribute_order_counts() {
        let old = parse("<cib><x id=\"1\" a=\"1\" b=\"2\" c=\"3\"/></cib>");
        let new = parse("<cib><x id=\"1\" c=\"3\" a=\"1\" d=\"4\"/></cib>");
        let p = roundtrip(&old, &new);
        let Change::Modify { attrs, result, .. } = &p.changes[0] else {
            panic!("{}", p.to_xml());
        };
        let list: Vec<(&str, &AttrOp)> = attrs.iter().map(|a| (a.name.as_str(), &a.op)).collect();
        assert_eq!(
            list,
            [
                ("c", &AttrOp::Set("3".into())),
                ("a", &AttrOp::Set("1".into())),
                ("d", &AttrOp::Set("4".into())),
                ("b", &AttrOp::Unset),
            ]
        );
        assert_eq!(result, &new.child("x").unwrap().attrs);
    }

    #[test]
    fn every_reordering_of_children_applies() {
        // All permutations of five children, with one dropped and one added.
        fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.clone();
                let first = rest.remove(i);
                for mut p in permutations(rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        let child = |i: usize| match i {
            0 => "<!-- c0 -->".to_string(),
            i => format!("<e id=\"{i}\"/>"),
        };
        let old_kids: String = (0..5).map(child).collect();
        let old = parse(&format!("<cib><p>{old_kids}</p></cib>"));
        let mut count = 0;
        for perm in permutations((0..5).collect()) {
            for drop in [None, Some(perm[2])] {
                for add in [None, Some(0), Some(3), Some(5)] {
                    let mut kids: Vec<String> = perm
                        .iter()
                        .filter(|&&i| Some(i) != drop)
                        .map(|&i| child(i))
                        .collect();
                    if let Some(at) = add {
                        kids.insert(at.min(kids.len()), "<e id=\"new\"/>".into());
                    }
                    let new = parse(&format!("<cib><p>{}</p></cib>", kids.concat()));
                    roundtrip(&old, &new);
                    count += 1;
                }
            }
        }
        assert_eq!(count, 120 * 8);
    }

    #[test]
    fn elements_a_path_cannot_name_are_replaced_with_their_parent() {
        // Two <x> without ids: "/cib/p[@id='p']/x" would match both.
        let old = parse("<cib><p id=\"p\"><x a=\"1\"/><x a=\"2\"/><y/></p><q id=\"q\"/></cib>");
        let new = parse("<cib><p id=\"p\"><x a=\"1\"/><x a=\"3\"/><y/></p><q id=\"q\"/></cib>");
        let p = roundtrip(&old, &new);
        let summary: Vec<String> = p.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            summary,
            ["delete /cib/p[@id='p']", "create /cib at 0"],
            "{}",
            p.to_xml()
        );
        // An unchanged ambiguous pair is no reason to replace anything.
        let new = parse(
            "<cib><p id=\"p\" z=\"1\"><x a=\"1\"/><x a=\"2\"/><y b=\"1\"/></p><q id=\"q\"/></cib>",
        );
        let p = roundtrip(&old, &new);
        assert_eq!(p.changes.len(), 2, "{}", p.to_xml());
        // Deleting one of them.
        let new = parse("<cib><p id=\"p\"><x a=\"1\"/><y/></p><q id=\"q\"/></cib>");
        let p = roundtrip(&old, &new);
        assert_eq!(p.changes.len(), 2, "{}", p.to_xml());
        // Changed text is carried by replacing its element.
        let old = parse("<cib><p id=\"p\"><t id=\"t\">one</t></p></cib>");
        let new = parse("<cib><p id=\"p\"><t id=\"t\">two</t></p></cib>");
        let p = roundtrip(&old, &new);
        let summary: Vec<String> = p.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            summary,
            [
                "delete /cib/p[@id='p']/t[@id='t']",
                "create /cib/p[@id='p'] at 0"
            ]
        );
    }

    #[test]
    fn comments_are_deleted_by_position_and_never_moved() {
        let old =
            parse("<cib><c><!-- a --><x id=\"1\"/><!-- b --><!-- c --><y id=\"2\"/></c></cib>");
        let new = parse("<cib><c><!-- c --><x id=\"1\"/><y id=\"2\"/><!-- a --></c></cib>");
        let p = roundtrip(&old, &new);
        for c in &p.changes {
            assert!(
                !matches!(c, Change::Move { path, .. } if path.ends_with("comment")),
                "{c}"
            );
        }
        // Each comment delete names the position once the earlier ones are
        // gone (a, b and c were at 0, 2 and 3).
        let deletes: Vec<String> = p
            .changes
            .iter()
            .filter(|c| matches!(c, Change::Delete { .. }))
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            deletes,
            [
                "delete /cib/c/comment at 0",
                "delete /cib/c/comment at 1",
                "delete /cib/c/comment at 1"
            ],
            "{}",
            p.to_xml()
        );
    }

    /// A patchset in the layout crm_diff prints: indented, `&apos;` in
    /// paths, comments created and deleted by position, a change-result
    /// with every attribute.
    const CRM_DIFF_STYLE: &str = r#"<diff format="2">
  <version>
    <source admin_epoch="0" epoch="5" num_updates="2"/>
    <target admin_epoch="0" epoch="6" num_updates="0"/>
  </version>
  <change operation="delete" path="/cib/configuration/resources/comment" position="0"/>
  <change operation="delete" path="/cib/configuration/constraints/rsc_order[@id=&apos;o1&apos;]"/>
  <change operation="modify" path="/cib">
    <change-list>
      <change-attr name="epoch" operation="set" value="6"/>
      <change-attr name="num_updates" operation="set" value="0"/>
    </change-list>
    <change-result>
      <cib admin_epoch="0" epoch="6" num_updates="0"/>
    </change-result>
  </change>
  <change operation="modify" path="/cib/configuration/resources/primitive[@id=&apos;web&apos;]/meta_attributes[@id=&apos;web-meta&apos;]/nvpair[@id=&apos;web-tr&apos;]">
    <change-list>
      <change-attr name="value" operation="set" value="Stopped"/>
    </change-list>
    <change-result>
      <nvpair id="web-tr" name="target-role" value="Stopped"/>
    </change-result>
  </change>
  <change operation="create" path="/cib/configuration/resources" position="1">
    <!-- the database -->
  </change>
  <change operation="create" path="/cib/configuration/resources" position="3">
    <primitive id="ip" class="ocf" provider="heartbeat" type="IPaddr2"/>
  </change>
  <change operation="move" path="/cib/configuration/resources/primitive[@id=&apos;db&apos;]" position="2"/>
</diff>
"#;

    #[test]
    fn reads_and_applies_what_crm_diff_prints() {
        let p = Patchset::from_xml(CRM_DIFF_STYLE).unwrap();
        assert_eq!(p.changes.len(), 7);
        assert_eq!(
            p.changes[0],
            Change::Delete {
                path: "/cib/configuration/resources/comment".into(),
                position: Some(0)
            }
        );
        assert!(
            matches!(&p.changes[4], Change::Create { node: Node::Comment(c), .. } if c == " the database ")
        );
        let mut cib = parse(OLD);
        p.apply(&mut cib).unwrap();
        assert_eq!(norm(&cib), norm(&parse(NEW)));
        assert_eq!(Patchset::from_element(&p.to_element()).unwrap(), p);
    }

    #[test]
    fn creates_and_moves_go_by_position() {
        // Listed out of order: the move to 0 must happen before the create
        // at 1, as Pacemaker sorts them.
        let p = Patchset::from_xml(
            "<diff format=\"2\">\
             <change operation=\"create\" path=\"/cib/p\" position=\"1\"><x id=\"x\"/></change>\
             <change operation=\"move\" path=\"/cib/p/b[@id='b']\" position=\"0\"/>\
             </diff>",
        )
        .unwrap();
        let mut cib = parse("<cib><p><a id=\"a\"/><b id=\"b\"/></p></cib>");
        p.apply_without_version_check(&mut cib).unwrap();
        assert_eq!(
            cib,
            parse("<cib><p><b id=\"b\"/><x id=\"x\"/><a id=\"a\"/></p></cib>")
        );
        // A create whose parent a later change deletes is refused.
        let p = Patchset::from_xml(
            "<diff format=\"2\">\
             <change operation=\"create\" path=\"/cib/p/a[@id='a']\" position=\"0\"><x/></change>\
             <change operation=\"delete\" path=\"/cib/p/a[@id='a']\"/>\
             </diff>",
        )
        .unwrap();
        let before = cib.clone();
        let e = p.apply_without_version_check(&mut cib).unwrap_err();
        assert!(e.to_string().contains("deleted by a later change"), "{e}");
        assert_eq!(cib, before);
    }

    #[test]
    fn versions_are_checked() {
        let (old, new) = (parse(OLD), parse(NEW));
        let p = diff(&old, &new);
        let v = |a, e, n| CibVersion {
            admin_epoch: a,
            epoch: e,
            num_updates: n,
        };

        let mut stale = p.clone();
        stale.source = Some(v(0, 5, 3));
        let mut cib = old.clone();
        let e = stale.apply(&mut cib).unwrap_err();
        assert!(matches!(e, PatchError::VersionTooOld { .. }), "{e}");
        assert!(
            e.to_string().contains("0.5.2") && e.to_string().contains("0.5.3"),
            "{e}"
        );
        assert_eq!(cib, old);

        stale.source = Some(v(0, 4, 9));
        let e = stale.apply(&mut cib).unwrap_err();
        assert!(matches!(e, PatchError::VersionTooNew { .. }), "{e}");
        assert_eq!(cib, old);

        let mut flat = p.clone();
        flat.target = flat.source;
        let e = flat.apply(&mut cib).unwrap_err();
        assert!(matches!(e, PatchError::VersionNotAdvanced { .. }), "{e}");
        assert_eq!(cib, old);
        // ... unless told not to look.
        flat.apply_without_version_check(&mut cib).unwrap();
        assert_eq!(norm(&cib), norm(&new));

        // Applied twice: the second time the CIB is past the source.
        let mut cib = old.clone();
        p.apply(&mut cib).unwrap();
        let e = p.apply(&mut cib).unwrap_err();
        assert!(matches!(e, PatchError::VersionTooNew { .. }), "{e}");

        // Without versions (crm_diff --no-version) the check passes.
        let mut bare = p.clone();
        bare.source = None;
        bare.target = None;
        assert!(!bare.to_xml().contains("<version"));
        let mut cib = old.clone();
        bare.apply(&mut cib).unwrap();
        assert_eq!(norm(&cib), norm(&new));
    }

    #[test]
    fn failures_name_the_path_and_change_nothing() {
        let old = parse(OLD);
        let mut p = diff(&old, &parse(NEW));
        // A last change that cannot apply: everything before it is undone.
        p.changes.push(Change::Modify {
            path: "/cib/configuration/resources/primitive[@id='nope']".into(),
            attrs: vec![],
            element: "primitive".into(),
            result: vec![("id".into(), "nope".into())],
        });
        let mut cib = old.clone();
        let e = p.apply(&mut cib).unwrap_err();
        assert_eq!(cib, old);
        let n = p.changes.len();
        assert_eq!(
            e.to_string(),
            format!(
                "change {n} (modify): path \"/cib/configuration/resources/primitive[@id='nope']\" \
                 matches nothing (no primitive[@id='nope'] under /cib/configuration/resources)"
            )
        );

        // A delete of nothing is refused too (Pacemaker skips it).
        let p = Patchset {
            changes: vec![Change::Delete {
                path: "/cib/configuration/nodes/node[@id='9']".into(),
                position: None,
            }],
            ..Default::default()
        };
        let e = p.apply(&mut cib).unwrap_err();
        assert!(matches!(e, PatchError::NoMatch { .. }), "{e}");
        assert!(e.to_string().contains("node[@id='9']"), "{e}");

        // Ambiguous: both nodes match a step without an id.
        let p = Patchset {
            changes: vec![Change::Move {
                path: "/cib/configuration/nodes/node".into(),
                position: 0,
            }],
            ..Default::default()
        };
        let e = p.apply_without_version_check(&mut cib).unwrap_err();
        assert_eq!(
            e.to_string(),
            "change 1 (move): path \"/cib/configuration/nodes/node\" is ambiguous: 2 nodes \
             match \"node\" under \"/cib/configuration/nodes\""
        );

        // Wrong root, bad syntax, the root deleted, a move past the end.
        for (change, needle) in [
            (
                Change::Delete {
                    path: "/config".into(),
                    position: None,
                },
                "the root element is not config",
            ),
            (
                Change::Delete {
                    path: "cib/status".into(),
                    position: None,
                },
                "does not start with '/'",
            ),
            (
                Change::Delete {
                    path: "/cib/status[@name='x']".into(),
                    position: None,
                },
                "predicate other than",
            ),
            (
                Change::Delete {
                    path: "/cib/status[@id='x".into(),
                    position: None,
                },
                "not closed",
            ),
            (
                Change::Delete {
                    path: "/cib".into(),
                    position: None,
                },
                "cannot be deleted",
            ),
            (
                Change::Move {
                    path: "/cib/status".into(),
                    position: 7,
                },
                "ended at position 1, not 7",
            ),
        ] {
            let p = Patchset {
                changes: vec![change],
                ..Default::default()
            };
            let e = p.apply_without_version_check(&mut cib).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
            assert_eq!(cib, old);
        }
    }

    #[test]
    fn reading_errors_say_what_is_wrong() {
        for (text, needle) in [
            ("<patch/>", "the root element is <patch>"),
            ("<diff format=\"1\"/>", "format=\"1\" is not supported"),
            ("<diff/>", "no format attribute"),
            (
                "<diff format=\"2\"><version><source epoch=\"1\" num_updates=\"1\"/></version></diff>",
                "<version><source> has no admin_epoch",
            ),
            (
                "<diff format=\"2\"><version><target admin_epoch=\"0\" epoch=\"x\" num_updates=\"1\"/></version></diff>",
                "epoch=\"x\", not a non-negative integer",
            ),
            ("<diff format=\"2\"><junk/></diff>", "unexpected <junk>"),
            (
                "<diff format=\"2\"><change path=\"/cib\"/></diff>",
                "change 1 (? /cib): the change has no operation",
            ),
            (
                "<diff format=\"2\"><change operation=\"delete\" path=\"/cib/a\"/><change operation=\"delete\"/></diff>",
                "change 2 (delete ): the change has no path",
            ),
            (
                "<diff format=\"2\"><change operation=\"frob\" path=\"/cib\"/></diff>",
                "unknown operation \"frob\"",
            ),
            (
                "<diff format=\"2\"><change operation=\"move\" path=\"/cib/a\"/></diff>",
                "change 1 (move /cib/a): the change has no position",
            ),
            (
                "<diff format=\"2\"><change operation=\"move\" path=\"/cib/a\" position=\"-1\"/></diff>",
                "position \"-1\" is not a non-negative integer",
            ),
            (
                "<diff format=\"2\"><change operation=\"create\" path=\"/cib\" position=\"0\"/></diff>",
                "nothing to create",
            ),
            (
                "<diff format=\"2\"><change operation=\"create\" path=\"/cib\" position=\"0\"><a/><b/></change></diff>",
                "more than one node",
            ),
            (
                "<diff format=\"2\"><change operation=\"modify\" path=\"/cib\"/></diff>",
                "no <change-result>",
            ),
            (
                "<diff format=\"2\"><change operation=\"modify\" path=\"/cib\"><change-result/></change></diff>",
                "<change-result> holds no element",
            ),
            (
                "<diff format=\"2\"><change operation=\"modify\" path=\"/cib\"><change-list><change-attr name=\"a\" operation=\"set\"/></change-list><change-result><cib/></change-result></change></diff>",
                "<change-attr name=\"a\" operation=\"set\"> has no value",
            ),
            ("<diff format=\"2\">", "not well-formed"),
        ] {
            let e = Patchset::from_xml(text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        // The digest crm_diff --cib adds is kept.
        let p = Patchset::from_xml("<diff format=\"2\" digest=\"abc\"/>").unwrap();
        assert_eq!(p.digest.as_deref(), Some("abc"));
        assert!(p.to_xml().contains("digest=\"abc\""));
    }

    #[test]
    fn paths_parse_and_quote() {
        let steps = parse_path("/cib/a[@id='x/y']/b[@id=\"it's\"]/c").unwrap();
        let written: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(written, ["cib", "a[@id='x/y']", "b[@id=\"it's\"]", "c"]);
        assert!(parse_path("/").is_err());
        assert!(parse_path("/cib//a").is_err());
        assert!(parse_path("/cib/a[@id='x']b").is_err());
        let odd = parse("<cib><p id=\"it's\"><q id=\"1\"/></p></cib>");
        let new = parse("<cib><p id=\"it's\"><q id=\"1\" v=\"2\"/></p></cib>");
        let p = roundtrip(&odd, &new);
        assert_eq!(p.changes[0].path(), "/cib/p[@id=\"it's\"]/q[@id='1']");
    }

    #[test]
    fn longest_increasing_subsequence() {
        let keep = longest_increasing(&[3, 0, 4, 1, 2, 5]);
        assert_eq!(keep, [false, true, false, true, true, true]);
        assert!(longest_increasing(&[]).is_empty());
        assert_eq!(
            longest_increasing(&[2, 1, 0])
                .iter()
                .filter(|k| **k)
                .count(),
            1
        );
    }

    #[test]
    fn version_reading_is_shared_with_the_model() {
        let cib = parse("<cib admin_epoch=\"1\" epoch=\"x\"/>");
        let (v, problems) = CibVersion::read(&cib);
        assert_eq!(
            v,
            CibVersion {
                admin_epoch: 1,
                epoch: 0,
                num_updates: 0
            }
        );
        assert_eq!(
            problems,
            [
                VersionProblem::Invalid("epoch", "x"),
                VersionProblem::Missing("num_updates")
            ]
        );
    }
}
