//! A small, lossless XML element tree.
//!
//! The CIB is XML, and Vigil must hand back every element and attribute it was
//! given, including the ones it does not understand. This tree keeps elements,
//! attributes in their order, text (white space included), comments, CDATA and
//! processing instructions, and remembers where each element started so that
//! errors can name a line and a column.

use std::fmt::{self, Write as _};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// A position in the source text, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One XML element with its attributes and children.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// Where the start tag began in the parsed text (0:0 for built elements).
    pub pos: Pos,
}

/// Equality ignores source positions: two trees are equal when they say the
/// same thing.
impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.attrs == other.attrs && self.children == other.children
    }
}
impl Eq for Element {}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    Comment(String),
    CData(String),
    /// A processing instruction, its content between `<?` and `?>`.
    Pi(String),
}

/// A whole document: what comes before the root (declaration, comments,
/// doctype), the root, and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The XML declaration's content between `<?` and `?>`, if any.
    pub decl: Option<String>,
    pub prolog: Vec<Node>,
    pub root: Element,
    pub epilog: Vec<Node>,
}

/// Why a text is not well-formed XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct XmlError {
    pub pos: Pos,
    pub message: String,
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            ..Default::default()
        }
    }

    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets attribute `name`, keeping its place if it already exists.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// Removes attribute `name`, returning its value.
    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(i).1)
    }

    /// The element children, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Mutable element children, in order.
    pub fn elements_mut(&mut self) -> impl Iterator<Item = &mut Element> {
        self.children.iter_mut().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The element children named `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// The first element child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The first element child named `name`, mutable.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.elements_mut().find(|e| e.name == name)
    }

    /// Appends an element child and returns it.
    pub fn push(&mut self, child: Element) -> &mut Element {
        self.children.push(Node::Element(child));
        match self.children.last_mut() {
            Some(Node::Element(e)) => e,
            _ => unreachable!("an element was just pushed"),
        }
    }

    /// Every element of the subtree, this one first, in document order.
    pub fn descendants(&self) -> Descendants<'_> {
        Descendants { stack: vec![self] }
    }

    /// The text directly inside this element.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) | Node::CData(t) => s.push_str(t),
                _ => {}
            }
        }
        s
    }

    /// Writes this element as XML text (no declaration).
    pub fn write_to(&self, out: &mut String) {
        write_element(self, out);
    }

    /// This element as XML text.
    pub fn to_xml(&self) -> String {
        let mut s = String::new();
        write_element(self, &mut s);
        s
    }
}

/// Depth-first iterator over a subtree.
#[derive(Debug)]
pub struct Descendants<'a> {
    stack: Vec<&'a Element>,
}

impl<'a> Iterator for Descendants<'a> {
    type Item = &'a Element;
    fn next(&mut self) -> Option<&'a Element> {
        let e = self.stack.pop()?;
        let start = self.stack.len();
        self.stack.extend(e.elements());
        self.stack[start..].reverse();
        Some(e)
    }
}

/// Maps byte offsets to line and column.
struct LineIndex {
    starts: Vec<usize>,
    /// The last position computed (byte offset, column), so that the
    /// increasing offsets of a parse cost only the characters in between,
    /// even on very long lines.
    cursor: std::cell::Cell<(usize, usize)>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex {
            starts,
            cursor: std::cell::Cell::new((0, 0)),
        }
    }
    fn pos(&self, text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let line_start = self.starts[line];
        let (last_offset, last_column) = self.cursor.get();
        let count = |from: usize| {
            text.get(from..offset)
                .map_or(offset - from, |s| s.chars().count())
        };
        let column = if last_offset >= line_start && last_offset <= offset {
            last_column + count(last_offset)
        } else {
            count(line_start)
        };
        self.cursor.set((offset, column));
        Pos {
            line: line as u32 + 1,
            column: column as u32 + 1,
        }
    }
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Replaces entity and character references in `raw`.
fn unescape(raw: &str) -> Result<String, String> {
    if !raw.contains('&') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| format!("unterminated reference in {raw:?}"))?;
        let name = &after[..end];
        let c = resolve_entity(name).ok_or_else(|| format!("unknown entity '&{name};'"))?;
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn write_element(e: &Element, out: &mut String) {
    out.push('<');
    out.push_str(&e.name);
    for (k, v) in &e.attrs {
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        escape_attr(v, out);
        out.push('"');
    }
    if e.children.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for c in &e.children {
        write_node(c, out);
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
}

fn write_node(n: &Node, out: &mut String) {
    match n {
        Node::Element(e) => write_element(e, out),
        Node::Text(t) => escape_text(t, out),
        Node::Comment(c) => {
            out.push_str("<!--");
            out.push_str(c);
            out.push_str("-->");
        }
        Node::CData(c) => {
            out.push_str("<![CDATA[");
            out.push_str(c);
            out.push_str("]]>");
        }
        Node::Pi(p) => {
            out.push_str("<?");
            out.push_str(p);
            out.push_str("?>");
        }
    }
}

impl Document {
    /// A document holding only `root`.
    pub fn new(root: Element) -> Self {
        Document {
            decl: None,
            prolog: Vec::new(),
            root,
            epilog: Vec::new(),
        }
    }

    /// Parses `text` into a tree, or says where and why it is not well formed.
    pub fn parse(text: &str) -> Result<Document, XmlError> {
        let lines = LineIndex::new(text);
        let err = |offset: usize, message: String| XmlError {
            pos: lines.pos(text, offset),
            message,
        };
        let mut reader = Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        reader.config_mut().trim_text(false);

        let mut decl = None;
        let mut prolog = Vec::new();
        let mut epilog = Vec::new();
        let mut root: Option<Element> = None;
        let mut stack: Vec<Element> = Vec::new();

        // Adds a non-element node at the current place in the document.
        fn place(
            node: Node,
            stack: &mut [Element],
            root: &Option<Element>,
            prolog: &mut Vec<Node>,
            epilog: &mut Vec<Node>,
        ) {
            if let Some(top) = stack.last_mut() {
                // Merge adjacent text pieces (entity references split them).
                if let (Node::Text(new), Some(Node::Text(old))) = (&node, top.children.last_mut()) {
                    old.push_str(new);
                    return;
                }
                top.children.push(node);
            } else if root.is_none() {
                prolog.push(node);
            } else {
                epilog.push(node);
            }
        }

        loop {
            let start = reader.buffer_position() as usize;
            let event = reader
                .read_event()
                .map_err(|e| err(reader.error_position() as usize, e.to_string()))?;
            match event {
                Event::Start(b) => {
                    let el =
                        start_element(&b, lines.pos(text, start)).map_err(|m| err(start, m))?;
                    if stack.is_empty() && root.is_some() {
                        return Err(err(start, "a second root element".into()));
                    }
                    stack.push(el);
                }
                Event::Empty(b) => {
                    let el =
                        start_element(&b, lines.pos(text, start)).map_err(|m| err(start, m))?;
                    match stack.last_mut() {
                        Some(top) => top.children.push(Node::Element(el)),
                        None if root.is_none() => root = Some(el),
                        None => return Err(err(start, "a second root element".into())),
                    }
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| err(start, "end tag without a start tag".into()))?;
                    match stack.last_mut() {
                        Some(top) => top.children.push(Node::Element(el)),
                        None => root = Some(el),
                    }
                }
                Event::Text(t) => {
                    let raw = &*t;
                    let s = unescape(raw).map_err(|m| err(start, m))?;
                    if stack.is_empty() && !s.trim().is_empty() {
                        return Err(err(start, "text outside the root element".into()));
                    }
                    place(Node::Text(s), &mut stack, &root, &mut prolog, &mut epilog);
                }
                Event::GeneralRef(r) => {
                    let name = &*r;
                    let c = resolve_entity(name)
                        .ok_or_else(|| err(start, format!("unknown entity '&{name};'")))?;
                    if stack.is_empty() {
                        return Err(err(start, "text outside the root element".into()));
                    }
                    place(
                        Node::Text(c.to_string()),
                        &mut stack,
                        &root,
                        &mut prolog,
                        &mut epilog,
                    );
                }
                Event::CData(c) => {
                    let s = c.into_inner().into_owned();
                    place(Node::CData(s), &mut stack, &root, &mut prolog, &mut epilog);
                }
                Event::Comment(c) => {
                    let s = c.into_inner().into_owned();
                    place(
                        Node::Comment(s),
                        &mut stack,
                        &root,
                        &mut prolog,
                        &mut epilog,
                    );
                }
                Event::Decl(d) => {
                    let s = &*d;
                    decl = Some(s.to_string());
                }
                Event::PI(p) => {
                    let s = &*p;
                    place(
                        Node::Pi(s.to_string()),
                        &mut stack,
                        &root,
                        &mut prolog,
                        &mut epilog,
                    );
                }
                Event::DocType(_) => {
                    return Err(err(start, "DOCTYPE declarations are not accepted".into()));
                }
                Event::Eof => break,
            }
        }
        if let Some(open) = stack.last() {
            return Err(XmlError {
                pos: open.pos,
                message: format!("element <{}> is never closed", open.name),
            });
        }
        let root = root.ok_or_else(|| err(text.len(), "no root element".into()))?;
        Ok(Document {
            decl,
            prolog,
            root,
            epilog,
        })
    }

    /// The document as XML text.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        if let Some(d) = &self.decl {
            let _ = write!(out, "<?{d}?>");
        }
        for n in &self.prolog {
            write_node(n, &mut out);
        }
        write_element(&self.root, &mut out);
        for n in &self.epilog {
            write_node(n, &mut out);
        }
        out
    }
}

fn start_element(b: &BytesStart<'_>, pos: Pos) -> Result<Element, String> {
    let name = b.name().as_ref().to_string();
    let mut attrs: Vec<(String, String)> = Vec::new();
    for a in b.attributes().with_checks(true) {
        let a = a.map_err(|e| format!("in <{name}>: {e}"))?;
        let key = a.key.as_ref().to_string();
        let value = unescape(&a.value).map_err(|m| format!("attribute {key} of <{name}>: {m}"))?;
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        children: Vec::new(),
        pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_everything() {
        let text = "<?xml version=\"1.0\"?>\n<!-- top -->\n<a x=\"1\" y=\"&lt;&amp;&quot;\">\n  <b/>text &amp; more<![CDATA[<raw>]]><!-- c --><?pi data?>\n  <unknown z=\"q\"><c/></unknown>\n</a>\n";
        let doc = Document::parse(text).unwrap();
        assert_eq!(doc.root.attr("y"), Some("<&\""));
        let again = Document::parse(&doc.to_xml()).unwrap();
        assert_eq!(doc, again);
        assert_eq!(doc.root.child("unknown").unwrap().attr("z"), Some("q"));
        assert_eq!(doc.root.child("b").unwrap().pos, Pos { line: 4, column: 3 });
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = Document::parse("<a>\n  <b>\n</a>").unwrap_err();
        assert_eq!(e.pos.line, 3, "{e}");
        let e = Document::parse("<a>\n  <b x=\"1\" x=\"2\"/></a>").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 3 }, "{e}");
        assert!(
            Document::parse("<a>")
                .unwrap_err()
                .message
                .contains("never closed")
        );
        assert!(Document::parse("").is_err());
        assert!(Document::parse("<a/><b/>").is_err());
        assert!(Document::parse("<a>&bogus;</a>").is_err());
    }

    #[test]
    fn descendants_in_document_order() {
        let doc = Document::parse("<a><b><c/></b><d/></a>").unwrap();
        let names: Vec<_> = doc.root.descendants().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }
}
