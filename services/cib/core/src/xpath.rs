//! The XPath subset the CIB operations and ACLs use.
//!
//! `cibadmin --xpath`, `--delete-all` and Pacemaker's ACLs (`acl_permission
//! xpath="..."`) take XPath 1.0 expressions, which Pacemaker hands to
//! libxml2. What people actually write is a small part of XPath 1.0, and
//! this module implements that part over [`crate::xml::Element`] trees with
//! XPath 1.0's semantics:
//!
//! - absolute (`/cib/configuration`) and relative (`primitive/meta_attributes`)
//!   location paths, `//` (descendant-or-self), `*`, `.` and `..`, and the
//!   axes `child::`, `descendant::`, `descendant-or-self::`, `self::`,
//!   `parent::`, `ancestor::`, `ancestor-or-self::`, `following-sibling::`,
//!   `preceding-sibling::` and `attribute::` (`@`);
//! - node tests by element name and `*` (`@*` for any attribute);
//! - predicates: `[@id]`, `[@name='x']` or `"x"`, `!=`, `<`, `<=`, `>`, `>=`,
//!   `and`, `or`, parentheses, `-` on numbers, positions `[2]`,
//!   `[last()]`, `[position() < 3]`, nested paths such as
//!   `[nvpair/@name='target-role']` or `[../@id='g']`, and unions `a | b` of
//!   element paths;
//! - the functions `not()`, `contains()`, `starts-with()`, `last()`,
//!   `position()`, `count()`, `true()`, `false()`, `boolean()`, `string()`,
//!   `string-length()`, `normalize-space()`, `concat()`, `name()`,
//!   `local-name()` and `number()`.
//!
//! Everything else is refused by name when the expression is compiled, never
//! evaluated approximately: other axes (`following::`, `preceding::`,
//! `namespace::`), the node tests `text()`, `node()`, `comment()` and
//! `processing-instruction()` (the tree here answers with elements and
//! attributes only), namespace prefixes, variables, arithmetic (`+`, `*`,
//! `div`, `mod`), predicates on parenthesized expressions, the other XPath
//! 1.0 functions and non-XPath-1.0 functions such as `ends-with()`. The
//! whole expression must select elements: a path that ends in an attribute
//! (`//nvpair/@value`) or an expression that yields a string, number or
//! boolean is refused with a hint.
//!
//! Matches come back in document order as index paths from the root: the
//! root is `[]`, its second element child `[1]`, and so on (indices count
//! element children only). [`element_at`], [`element_at_mut`],
//! [`remove_at`] and [`replace_at`] turn such a path back into the element,
//! for callers that read, modify or delete matches.
//!
//! Work is bounded: an expression is at most [`MAX_EXPR_LEN`] characters,
//! nests predicates, parentheses and function calls at most [`MAX_NESTING`]
//! deep and has at most [`MAX_STEPS`] steps per path; an evaluation that
//! would visit more than [`MAX_WORK`] nodes stops with an error instead of
//! taking minutes.

use std::cell::Cell;
use std::fmt;

use crate::xml::{Element, Node};

/// The longest expression accepted, in characters.
pub const MAX_EXPR_LEN: usize = 4096;
/// How deep predicates, parentheses, function calls and negations may nest.
pub const MAX_NESTING: usize = 32;
/// The most location steps one path may have.
pub const MAX_STEPS: usize = 64;
/// The most node visits one evaluation may make.
pub const MAX_WORK: u64 = 20_000_000;

/// Why an expression cannot be compiled or evaluated: the expression, where
/// in it (a 1-based character column, when the problem is at one place) and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XPathError {
    pub expr: String,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for XPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = if self.expr.chars().count() > 120 {
            let head: String = self.expr.chars().take(117).collect();
            format!("{head}...")
        } else {
            self.expr.clone()
        };
        match self.column {
            Some(c) => write!(f, "xpath '{shown}', column {c}: {}", self.message),
            None => write!(f, "xpath '{shown}': {}", self.message),
        }
    }
}

impl std::error::Error for XPathError {}

/// A compiled expression. Build it with [`compile`].
#[derive(Debug, Clone)]
pub struct XPath {
    text: String,
    /// The union of element paths the expression is.
    paths: Vec<Path>,
}

/// Compiles `expr`, or says where and why it is not supported.
pub fn compile(expr: &str) -> Result<XPath, XPathError> {
    let fail = |column: Option<usize>, message: String| XPathError {
        expr: expr.to_string(),
        column,
        message,
    };
    let len = expr.chars().count();
    if len > MAX_EXPR_LEN {
        return Err(fail(
            None,
            format!(
                "the expression is {len} characters long, more than the limit of {MAX_EXPR_LEN}"
            ),
        ));
    }
    let toks = lex(expr).map_err(|(c, m)| fail(Some(c), m))?;
    let mut p = Parser {
        toks: &toks,
        i: 0,
        depth: 0,
    };
    let e = p.expr().map_err(|(c, m)| fail(Some(c), m))?;
    let end = p.peek();
    if end.tok != Tok::Eof {
        return Err(fail(
            Some(end.col),
            format!("unexpected {} after a complete expression", end.tok),
        ));
    }
    let paths = match e {
        Expr::Paths(paths) => paths,
        _ => {
            return Err(fail(
                Some(1),
                "the expression must select elements (a location path such as \
                 //primitive[@id='web']), not compute a string, number or boolean"
                    .into(),
            ));
        }
    };
    for path in &paths {
        match path.steps.last() {
            None => {
                return Err(fail(
                    Some(path.col),
                    "'/' alone selects the document, not an element; use /cib".into(),
                ));
            }
            Some(s) if s.axis == Axis::Attribute => {
                return Err(fail(
                    Some(path.col),
                    "this path selects attributes, but CIB operations and ACLs act on \
                     elements; select the element and test the attribute in a predicate \
                     (e.g. //nvpair[@name='target-role'] rather than //nvpair/@name)"
                        .into(),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(XPath {
        text: expr.to_string(),
        paths,
    })
}

impl XPath {
    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The elements of the tree rooted at `root` (the document's root
    /// element) that the expression selects, in document order, as index
    /// paths from the root.
    pub fn select(&self, root: &Element) -> Result<Vec<Vec<usize>>, XPathError> {
        let ev = Eval::new(root);
        let nodes = self.run(&ev)?;
        Ok(nodes.into_iter().map(|n| ev.arena.path_of(n)).collect())
    }

    /// The selected elements themselves, in document order.
    pub fn select_elements<'a>(&self, root: &'a Element) -> Result<Vec<&'a Element>, XPathError> {
        let ev = Eval::new(root);
        let nodes = self.run(&ev)?;
        Ok(nodes
            .into_iter()
            .filter_map(|n| ev.arena.nodes[n as usize].el)
            .collect())
    }

    fn run(&self, ev: &Eval<'_>) -> Result<Vec<u32>, XPathError> {
        let exhausted = || XPathError {
            expr: self.text.clone(),
            column: None,
            message: format!(
                "evaluating this expression would visit more than {MAX_WORK} nodes; make it \
                 more specific (e.g. start with an absolute path such as /cib/configuration)"
            ),
        };
        let mut out = Vec::new();
        for path in &self.paths {
            match ev.path(path, 0).map_err(|_| exhausted())? {
                Value::Nodes(n) => out.extend(n),
                _ => unreachable!("compile() accepts element paths only"),
            }
        }
        out.sort_unstable();
        out.dedup();
        // The document node is not an element (`/cib/..` selects it).
        out.retain(|&n| n != 0);
        Ok(out)
    }
}

/// The element at `path` below `root`.
pub fn element_at<'a>(root: &'a Element, path: &[usize]) -> Option<&'a Element> {
    let mut e = root;
    for &i in path {
        e = e.elements().nth(i)?;
    }
    Some(e)
}

/// The element at `path` below `root`, mutable.
pub fn element_at_mut<'a>(root: &'a mut Element, path: &[usize]) -> Option<&'a mut Element> {
    let mut e = root;
    for &i in path {
        e = e.elements_mut().nth(i)?;
    }
    Some(e)
}

/// Where the `n`th element child of `parent` is in `parent.children`.
pub fn child_node_index(parent: &Element, n: usize) -> Option<usize> {
    parent
        .children
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, Node::Element(_)))
        .nth(n)
        .map(|(i, _)| i)
}

/// Removes the element at `path` (not the root: `path` must not be empty)
/// and returns it.
pub fn remove_at(root: &mut Element, path: &[usize]) -> Option<Element> {
    let (&last, parent_path) = path.split_last()?;
    let parent = element_at_mut(root, parent_path)?;
    let i = child_node_index(parent, last)?;
    match parent.children.remove(i) {
        Node::Element(e) => Some(e),
        _ => unreachable!("child_node_index points at an element"),
    }
}

/// Puts `new` in the place of the element at `path` (the root itself when
/// `path` is empty) and returns the element that was there.
pub fn replace_at(root: &mut Element, path: &[usize], new: Element) -> Option<Element> {
    let target = element_at_mut(root, path)?;
    Some(std::mem::replace(target, new))
}

// ---------------------------------------------------------------------------
// Tokens.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Slash,
    DSlash,
    LParen,
    RParen,
    LBrack,
    RBrack,
    Dot,
    DDot,
    At,
    Comma,
    DColon,
    Pipe,
    Eq,
    Neq,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    /// `*` as a name test.
    Star,
    /// `*` as the multiplication operator.
    Mul,
    /// `and`, `or`, `div` or `mod` where an operator is expected.
    OpName(&'static str),
    /// A name, possibly with a prefix (`p:x`, `p:*`).
    Name(String),
    Literal(String),
    Number(f64),
    Dollar,
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::Slash => "'/'",
            Tok::DSlash => "'//'",
            Tok::LParen => "'('",
            Tok::RParen => "')'",
            Tok::LBrack => "'['",
            Tok::RBrack => "']'",
            Tok::Dot => "'.'",
            Tok::DDot => "'..'",
            Tok::At => "'@'",
            Tok::Comma => "','",
            Tok::DColon => "'::'",
            Tok::Pipe => "'|'",
            Tok::Eq => "'='",
            Tok::Neq => "'!='",
            Tok::Lt => "'<'",
            Tok::Le => "'<='",
            Tok::Gt => "'>'",
            Tok::Ge => "'>='",
            Tok::Plus => "'+'",
            Tok::Minus => "'-'",
            Tok::Star | Tok::Mul => "'*'",
            Tok::OpName(n) => return write!(f, "'{n}'"),
            Tok::Name(n) => return write!(f, "'{n}'"),
            Tok::Literal(l) => return write!(f, "the string '{l}'"),
            Tok::Number(n) => return write!(f, "the number {}", format_number(*n)),
            Tok::Dollar => "'$'",
            Tok::Eof => "the end of the expression",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 1-based character column.
    col: usize,
}

type PResult<T> = Result<T, (usize, String)>;

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn lex(expr: &str) -> PResult<Vec<Token>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        // XPath 1.0 section 3.7: after a token that can end an operand, `*`
        // multiplies and a name must be an operator name.
        let operand_ended = out.last().is_some_and(|t| {
            !matches!(
                t.tok,
                Tok::At
                    | Tok::Dollar
                    | Tok::DColon
                    | Tok::LParen
                    | Tok::LBrack
                    | Tok::Comma
                    | Tok::OpName(_)
                    | Tok::Mul
                    | Tok::Slash
                    | Tok::DSlash
                    | Tok::Pipe
                    | Tok::Plus
                    | Tok::Minus
                    | Tok::Eq
                    | Tok::Neq
                    | Tok::Lt
                    | Tok::Le
                    | Tok::Gt
                    | Tok::Ge
            )
        });
        let (tok, len) = match c {
            '/' if next == Some('/') => (Tok::DSlash, 2),
            '/' => (Tok::Slash, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBrack, 1),
            ']' => (Tok::RBrack, 1),
            '@' => (Tok::At, 1),
            ',' => (Tok::Comma, 1),
            '|' => (Tok::Pipe, 1),
            '=' => (Tok::Eq, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '$' => (Tok::Dollar, 1),
            '!' if next == Some('=') => (Tok::Neq, 2),
            '!' => {
                return Err((
                    col,
                    "'!' must be followed by '='; XPath has no '!' operator, use not(...)".into(),
                ));
            }
            '<' if next == Some('=') => (Tok::Le, 2),
            '<' => (Tok::Lt, 1),
            '>' if next == Some('=') => (Tok::Ge, 2),
            '>' => (Tok::Gt, 1),
            ':' if next == Some(':') => (Tok::DColon, 2),
            ':' => return Err((col, "unexpected ':'".into())),
            '*' if operand_ended => (Tok::Mul, 1),
            '*' => (Tok::Star, 1),
            '.' if next == Some('.') => (Tok::DDot, 2),
            '.' if !next.is_some_and(|n| n.is_ascii_digit()) => (Tok::Dot, 1),
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&d| d == c)
                    .ok_or_else(|| (col, format!("the string starting here has no closing {c}")))?;
                let s: String = chars[i + 1..i + 1 + end].iter().collect();
                (Tok::Literal(s), end + 2)
            }
            c if c.is_ascii_digit() || c == '.' => {
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '.' {
                    j += 1;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                let s: String = chars[i..j].iter().collect();
                let n: f64 = s
                    .parse()
                    .map_err(|_| (col, format!("'{s}' is not a number")))?;
                (Tok::Number(n), j - i)
            }
            c if is_name_start(c) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                // A prefixed name `p:x` or `p:*` (but not an axis `p::`).
                if j + 1 < chars.len() && chars[j] == ':' && chars[j + 1] != ':' {
                    if chars[j + 1] == '*' {
                        j += 2;
                    } else if is_name_start(chars[j + 1]) {
                        j += 2;
                        while j < chars.len() && is_name_char(chars[j]) {
                            j += 1;
                        }
                    }
                }
                let s: String = chars[i..j].iter().collect();
                if operand_ended {
                    let op = match s.as_str() {
                        "and" => "and",
                        "or" => "or",
                        "div" => "div",
                        "mod" => "mod",
                        _ => {
                            return Err((
                                col,
                                format!(
                                    "expected an operator ('and', 'or', '=', '!=', ...), ']' or ')' \
                                     but found '{s}'"
                                ),
                            ));
                        }
                    };
                    (Tok::OpName(op), j - i)
                } else {
                    (Tok::Name(s), j - i)
                }
            }
            c => return Err((col, format!("unexpected character '{c}'"))),
        };
        out.push(Token { tok, col });
        i += len;
    }
    out.push(Token {
        tok: Tok::Eof,
        col: chars.len() + 1,
    });
    Ok(out)
}

// ---------------------------------------------------------------------------
// The syntax tree.

#[derive(Debug, Clone)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    Literal(String),
    Number(f64),
    Call(Func, Vec<Expr>),
    /// One location path, or the union of several.
    Paths(Vec<Path>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
struct Path {
    absolute: bool,
    steps: Vec<Step>,
    col: usize,
}

#[derive(Debug, Clone)]
struct Step {
    axis: Axis,
    test: Test,
    preds: Vec<Pred>,
}

#[derive(Debug, Clone)]
struct Pred {
    expr: Expr,
    /// Whether the predicate depends on the position of the node (a number,
    /// or `position()`/`last()`): such predicates are evaluated per context
    /// node, in axis order.
    positional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    SelfOnly,
    Parent,
    Ancestor,
    AncestorOrSelf,
    FollowingSibling,
    PrecedingSibling,
    Attribute,
}

#[derive(Debug, Clone)]
enum Test {
    Name(String),
    /// `*`: any element (any attribute on the attribute axis).
    AnyElement,
    /// `node()` as `//`, `.` and `..` abbreviate it: elements and the
    /// document node.
    AnyNode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Last,
    Position,
    Count,
    Not,
    True,
    False,
    Boolean,
    Contains,
    StartsWith,
    String,
    StringLength,
    NormalizeSpace,
    Concat,
    Name,
    LocalName,
    Number,
}

const SUPPORTED_FUNCTIONS: &str = "not(), contains(), starts-with(), last(), position(), count(), \
     true(), false(), boolean(), string(), string-length(), normalize-space(), concat(), name(), \
     local-name() and number()";

fn function(name: &str) -> Result<(Func, usize, usize), String> {
    Ok(match name {
        "last" => (Func::Last, 0, 0),
        "position" => (Func::Position, 0, 0),
        "count" => (Func::Count, 1, 1),
        "not" => (Func::Not, 1, 1),
        "true" => (Func::True, 0, 0),
        "false" => (Func::False, 0, 0),
        "boolean" => (Func::Boolean, 1, 1),
        "contains" => (Func::Contains, 2, 2),
        "starts-with" => (Func::StartsWith, 2, 2),
        "string" => (Func::String, 0, 1),
        "string-length" => (Func::StringLength, 0, 1),
        "normalize-space" => (Func::NormalizeSpace, 0, 1),
        "concat" => (Func::Concat, 2, usize::MAX),
        "name" => (Func::Name, 0, 1),
        "local-name" => (Func::LocalName, 0, 1),
        "number" => (Func::Number, 0, 1),
        "id" | "lang" | "sum" | "floor" | "ceiling" | "round" | "substring"
        | "substring-before" | "substring-after" | "translate" | "namespace-uri" => {
            return Err(format!(
                "the function {name}() is not supported; supported are {SUPPORTED_FUNCTIONS}"
            ));
        }
        _ => {
            return Err(format!(
                "{name}() is not an XPath 1.0 function (libxml2, which Pacemaker uses, does not \
                 have it either); supported are {SUPPORTED_FUNCTIONS}"
            ));
        }
    })
}

fn axis(name: &str) -> Result<Axis, String> {
    Ok(match name {
        "child" => Axis::Child,
        "descendant" => Axis::Descendant,
        "descendant-or-self" => Axis::DescendantOrSelf,
        "self" => Axis::SelfOnly,
        "parent" => Axis::Parent,
        "ancestor" => Axis::Ancestor,
        "ancestor-or-self" => Axis::AncestorOrSelf,
        "following-sibling" => Axis::FollowingSibling,
        "preceding-sibling" => Axis::PrecedingSibling,
        "attribute" => Axis::Attribute,
        "following" | "preceding" | "namespace" => {
            return Err(format!(
                "the axis {name}:: is not supported; supported are child, descendant, \
                 descendant-or-self, self, parent, ancestor, ancestor-or-self, \
                 following-sibling, preceding-sibling and attribute"
            ));
        }
        _ => return Err(format!("'{name}' is not an XPath axis")),
    })
}

const NODE_TYPES: &[&str] = &["node", "text", "comment", "processing-instruction"];

/// Whether `e` always yields a number (so that as a predicate it selects by
/// position).
fn static_number(e: &Expr) -> bool {
    match e {
        Expr::Number(_) | Expr::Neg(_) => true,
        Expr::Call(f, _) => matches!(
            f,
            Func::Last | Func::Position | Func::Count | Func::StringLength | Func::Number
        ),
        _ => false,
    }
}

/// Whether `e` reads the context position or size (outside the predicates
/// of nested paths, which have their own).
fn uses_position(e: &Expr) -> bool {
    match e {
        Expr::Or(v) | Expr::And(v) => v.iter().any(uses_position),
        Expr::Cmp(_, a, b) => uses_position(a) || uses_position(b),
        Expr::Neg(a) => uses_position(a),
        Expr::Call(Func::Last | Func::Position, _) => true,
        Expr::Call(_, args) => args.iter().any(uses_position),
        Expr::Literal(_) | Expr::Number(_) | Expr::Paths(_) => false,
    }
}

// ---------------------------------------------------------------------------
// The parser.

struct Parser<'t> {
    toks: &'t [Token],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek2(&self) -> &Tok {
        self.toks.get(self.i + 1).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn expect(&mut self, tok: Tok, what: &str) -> PResult<()> {
        let t = self.peek();
        if t.tok == tok {
            self.bump();
            Ok(())
        } else {
            Err((t.col, format!("expected {what} but found {}", t.tok)))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err((
                self.peek().col,
                format!("the expression nests more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expr(&mut self) -> PResult<Expr> {
        let mut v = vec![self.and()?];
        while self.peek().tok == Tok::OpName("or") {
            self.bump();
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one operand")
        } else {
            Expr::Or(v)
        })
    }

    fn and(&mut self) -> PResult<Expr> {
        let mut v = vec![self.equality()?];
        while self.peek().tok == Tok::OpName("and") {
            self.bump();
            v.push(self.equality()?);
        }
        Ok(if v.len() == 1 {
            v.pop().expect("one operand")
        } else {
            Expr::And(v)
        })
    }

    fn comparison_chain(
        &mut self,
        ops: &[(Tok, CmpOp)],
        operand: fn(&mut Self) -> PResult<Expr>,
    ) -> PResult<Expr> {
        let mut left = operand(self)?;
        let mut n = 0;
        while let Some(&(_, op)) = ops.iter().find(|(t, _)| *t == self.peek().tok) {
            let col = self.bump().col;
            n += 1;
            if n > 4 {
                return Err((col, "too many chained comparisons".into()));
            }
            let right = operand(self)?;
            left = Expr::Cmp(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn equality(&mut self) -> PResult<Expr> {
        self.comparison_chain(
            &[(Tok::Eq, CmpOp::Eq), (Tok::Neq, CmpOp::Ne)],
            Self::relational,
        )
    }

    fn relational(&mut self) -> PResult<Expr> {
        self.comparison_chain(
            &[
                (Tok::Lt, CmpOp::Lt),
                (Tok::Le, CmpOp::Le),
                (Tok::Gt, CmpOp::Gt),
                (Tok::Ge, CmpOp::Ge),
            ],
            Self::unary,
        )
    }

    fn unary(&mut self) -> PResult<Expr> {
        let e = if self.peek().tok == Tok::Minus {
            self.bump();
            self.enter()?;
            let e = self.unary()?;
            self.leave();
            Expr::Neg(Box::new(e))
        } else {
            self.union()?
        };
        let t = self.peek();
        if matches!(
            t.tok,
            Tok::Plus | Tok::Minus | Tok::Mul | Tok::OpName("div") | Tok::OpName("mod")
        ) {
            return Err((t.col, format!("arithmetic ({}) is not supported", t.tok)));
        }
        Ok(e)
    }

    fn union(&mut self) -> PResult<Expr> {
        let first_col = self.peek().col;
        let first = self.path_expr()?;
        if self.peek().tok != Tok::Pipe {
            return Ok(first);
        }
        let mut paths = Vec::new();
        let mut operand = (first_col, first);
        loop {
            match operand {
                (_, Expr::Paths(p))
                    if p.iter()
                        .all(|p| p.steps.last().is_none_or(|s| s.axis != Axis::Attribute)) =>
                {
                    paths.extend(p)
                }
                (col, _) => {
                    return Err((
                        col,
                        "only element paths can be combined with '|' (a union of attributes, \
                         strings or numbers is not supported)"
                            .into(),
                    ));
                }
            }
            if self.peek().tok != Tok::Pipe {
                break;
            }
            self.bump();
            let col = self.peek().col;
            operand = (col, self.path_expr()?);
        }
        Ok(Expr::Paths(paths))
    }

    fn no_postfix(&self) -> PResult<()> {
        let t = self.peek();
        match t.tok {
            Tok::LBrack => Err((
                t.col,
                "a predicate after a parenthesized expression, string, number or function call \
                 is not supported"
                    .into(),
            )),
            Tok::Slash | Tok::DSlash => Err((
                t.col,
                "a path step after a parenthesized expression or function call is not supported"
                    .into(),
            )),
            _ => Ok(()),
        }
    }

    fn path_expr(&mut self) -> PResult<Expr> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Literal(s) => {
                self.bump();
                self.no_postfix()?;
                Ok(Expr::Literal(s.clone()))
            }
            Tok::Number(n) => {
                self.bump();
                self.no_postfix()?;
                Ok(Expr::Number(*n))
            }
            Tok::LParen => {
                self.bump();
                self.enter()?;
                let e = self.expr()?;
                self.expect(Tok::RParen, "')'")?;
                self.leave();
                self.no_postfix()?;
                Ok(e)
            }
            Tok::Dollar => Err((t.col, "variables ($name) are not supported".into())),
            Tok::Name(n) if *self.peek2() == Tok::LParen && !NODE_TYPES.contains(&n.as_str()) => {
                self.call()
            }
            _ => Ok(Expr::Paths(vec![self.location_path()?])),
        }
    }

    fn call(&mut self) -> PResult<Expr> {
        let t = self.bump();
        let Tok::Name(name) = t.tok else {
            unreachable!("call() starts at a name")
        };
        if name.contains(':') {
            return Err((
                t.col,
                format!("namespace prefixes are not supported ('{name}()')"),
            ));
        }
        let (func, min, max) = function(&name).map_err(|m| (t.col, m))?;
        self.expect(Tok::LParen, "'('")?;
        self.enter()?;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                let col = self.peek().col;
                let arg = self.expr()?;
                if matches!(func, Func::Count | Func::Name | Func::LocalName)
                    && !matches!(arg, Expr::Paths(_))
                {
                    return Err((
                        col,
                        format!("{name}() needs a location path, e.g. {name}(nvpair)"),
                    ));
                }
                args.push(arg);
                if self.peek().tok == Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.expect(Tok::RParen, "',' or ')'")?;
        self.leave();
        if args.len() < min || args.len() > max {
            let wanted = match (min, max) {
                (a, b) if a == b => format!("{a}"),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} or {b}"),
            };
            return Err((
                t.col,
                format!("{name}() takes {wanted} argument(s), not {}", args.len()),
            ));
        }
        self.no_postfix()?;
        Ok(Expr::Call(func, args))
    }

    fn can_start_step(&self) -> bool {
        match &self.peek().tok {
            Tok::Star | Tok::Dot | Tok::DDot | Tok::At => true,
            Tok::Name(n) => *self.peek2() != Tok::LParen || NODE_TYPES.contains(&n.as_str()),
            _ => false,
        }
    }

    fn location_path(&mut self) -> PResult<Path> {
        let t = self.peek().clone();
        let mut steps = Vec::new();
        let absolute = match t.tok {
            Tok::Slash => {
                self.bump();
                if self.can_start_step() {
                    self.relative(&mut steps)?;
                }
                true
            }
            Tok::DSlash => {
                self.bump();
                steps.push(descendant_or_self());
                if !self.can_start_step() {
                    let n = self.peek();
                    return Err((
                        n.col,
                        format!("expected a step after '//' but found {}", n.tok),
                    ));
                }
                self.relative(&mut steps)?;
                true
            }
            _ if self.can_start_step() => {
                self.relative(&mut steps)?;
                false
            }
            ref other => {
                return Err((
                    t.col,
                    format!(
                        "expected a location path, a string, a number or a function call but \
                         found {other}"
                    ),
                ));
            }
        };
        Ok(Path {
            absolute,
            steps,
            col: t.col,
        })
    }

    fn relative(&mut self, steps: &mut Vec<Step>) -> PResult<()> {
        loop {
            let col = self.peek().col;
            if steps.last().is_some_and(|s| s.axis == Axis::Attribute) {
                return Err((
                    col,
                    "an attribute has no children: an attribute step must be the last step of \
                     a path"
                        .into(),
                ));
            }
            steps.push(self.step()?);
            if steps.len() > MAX_STEPS {
                return Err((col, format!("a path may have at most {MAX_STEPS} steps")));
            }
            match self.peek().tok {
                Tok::Slash => {
                    self.bump();
                }
                Tok::DSlash => {
                    self.bump();
                    steps.push(descendant_or_self());
                }
                _ => return Ok(()),
            }
            if !self.can_start_step() {
                let n = self.peek();
                return Err((n.col, format!("expected a step but found {}", n.tok)));
            }
        }
    }

    fn step(&mut self) -> PResult<Step> {
        let t = self.peek().clone();
        let (axis, test) = match &t.tok {
            Tok::Dot | Tok::DDot => {
                self.bump();
                if self.peek().tok == Tok::LBrack {
                    return Err((
                        self.peek().col,
                        format!(
                            "a predicate cannot follow {}; write self::*[...] or parent::*[...]",
                            t.tok
                        ),
                    ));
                }
                let axis = if t.tok == Tok::Dot {
                    Axis::SelfOnly
                } else {
                    Axis::Parent
                };
                return Ok(Step {
                    axis,
                    test: Test::AnyNode,
                    preds: Vec::new(),
                });
            }
            Tok::At => {
                self.bump();
                (Axis::Attribute, self.node_test()?)
            }
            Tok::Name(n) if *self.peek2() == Tok::DColon => {
                let a = axis(n).map_err(|m| (t.col, m))?;
                self.bump();
                self.bump();
                (a, self.node_test()?)
            }
            _ => (Axis::Child, self.node_test()?),
        };
        let mut preds = Vec::new();
        while self.peek().tok == Tok::LBrack {
            let col = self.bump().col;
            if axis == Axis::Attribute {
                return Err((col, "predicates on an attribute are not supported".into()));
            }
            self.enter()?;
            let expr = self.expr()?;
            self.expect(Tok::RBrack, "']'")?;
            self.leave();
            preds.push(Pred {
                positional: static_number(&expr) || uses_position(&expr),
                expr,
            });
        }
        Ok(Step { axis, test, preds })
    }

    fn node_test(&mut self) -> PResult<Test> {
        let t = self.bump();
        match t.tok {
            Tok::Star => Ok(Test::AnyElement),
            Tok::Name(n) if self.peek().tok == Tok::LParen => {
                if NODE_TYPES.contains(&n.as_str()) {
                    Err((
                        t.col,
                        format!(
                            "the node test {n}() is not supported: this XPath works on elements \
                             and attributes only (use * for any element)"
                        ),
                    ))
                } else {
                    Err((
                        t.col,
                        format!("a function call ({n}()) cannot be a step of a path"),
                    ))
                }
            }
            Tok::Name(n) if n.contains(':') => Err((
                t.col,
                format!(
                    "namespace prefixes are not supported ('{n}'); CIB elements have no namespace"
                ),
            )),
            Tok::Name(n) => Ok(Test::Name(n)),
            other => Err((
                t.col,
                format!("expected an element name or '*' but found {other}"),
            )),
        }
    }
}

fn descendant_or_self() -> Step {
    Step {
        axis: Axis::DescendantOrSelf,
        test: Test::AnyNode,
        preds: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// Evaluation.

const NONE: u32 = u32::MAX;

/// One node of the flattened tree: 0 is the document node, 1 the root
/// element, and ids follow document order.
#[derive(Debug, Clone, Copy)]
struct ANode<'a> {
    el: Option<&'a Element>,
    parent: u32,
    /// One past the last id of the subtree.
    end: u32,
    /// Index among the parent's element children.
    index: u32,
}

struct Arena<'a> {
    nodes: Vec<ANode<'a>>,
}

impl<'a> Arena<'a> {
    fn new(root: &'a Element) -> Self {
        let mut nodes = vec![ANode {
            el: None,
            parent: NONE,
            end: 0,
            index: 0,
        }];
        let mut stack: Vec<(&'a Element, u32, u32)> = vec![(root, 0, 0)];
        while let Some((el, parent, index)) = stack.pop() {
            let id = nodes.len() as u32;
            nodes.push(ANode {
                el: Some(el),
                parent,
                end: id + 1,
                index,
            });
            let start = stack.len();
            for (i, child) in el.elements().enumerate() {
                stack.push((child, id, i as u32));
            }
            stack[start..].reverse();
        }
        let n = nodes.len();
        nodes[0].end = n as u32;
        for i in (1..n).rev() {
            let p = nodes[i].parent as usize;
            nodes[p].end = nodes[p].end.max(nodes[i].end);
        }
        Arena { nodes }
    }

    fn path_of(&self, mut n: u32) -> Vec<usize> {
        let mut path = Vec::new();
        while n > 1 {
            let node = self.nodes[n as usize];
            path.push(node.index as usize);
            n = node.parent;
        }
        path.reverse();
        path
    }

    fn children(&self, n: u32) -> impl Iterator<Item = u32> + '_ {
        let end = self.nodes[n as usize].end;
        let mut c = n + 1;
        std::iter::from_fn(move || {
            if c >= end {
                return None;
            }
            let this = c;
            c = self.nodes[c as usize].end;
            Some(this)
        })
    }
}

/// The evaluation ran out of its work budget.
struct Exhausted;

type EResult<T> = Result<T, Exhausted>;

#[derive(Debug, Clone)]
enum Value<'a> {
    Nodes(Vec<u32>),
    /// Selected attributes: (name, value), in document order.
    Attrs(Vec<(&'a str, &'a str)>),
    Str(String),
    Num(f64),
    Bool(bool),
}

struct Eval<'a> {
    arena: Arena<'a>,
    work: Cell<u64>,
}

fn format_number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if x == x.trunc() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// XPath's `number()` of a string: optional white space, an optional minus,
/// digits with an optional fraction; anything else is NaN.
fn parse_number(s: &str) -> f64 {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    let body = t.strip_prefix('-').unwrap_or(t);
    let mut digits = 0;
    let mut dots = 0;
    for c in body.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' => dots += 1,
            _ => return f64::NAN,
        }
    }
    if digits == 0 || dots > 1 {
        return f64::NAN;
    }
    t.parse().unwrap_or(f64::NAN)
}

fn cmp_numbers(op: CmpOp, x: f64, y: f64) -> bool {
    match op {
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
    }
}

impl<'a> Eval<'a> {
    fn new(root: &'a Element) -> Self {
        Eval {
            arena: Arena::new(root),
            work: Cell::new(0),
        }
    }

    fn tick(&self, n: u64) -> EResult<()> {
        let w = self.work.get() + n;
        self.work.set(w);
        if w > MAX_WORK { Err(Exhausted) } else { Ok(()) }
    }

    fn node(&self, n: u32) -> ANode<'a> {
        self.arena.nodes[n as usize]
    }

    fn test(&self, test: &Test, n: u32) -> bool {
        match (test, self.node(n).el) {
            (Test::AnyNode, _) => true,
            (Test::AnyElement, Some(_)) => true,
            (Test::Name(name), Some(el)) => el.name == *name,
            (_, None) => false,
        }
    }

    /// Evaluates `path` from context node `ctx`.
    fn path(&self, path: &Path, ctx: u32) -> EResult<Value<'a>> {
        let mut set = vec![if path.absolute { 0 } else { ctx }];
        let steps = &path.steps;
        let (node_steps, attr_step) = match steps.last() {
            Some(s) if s.axis == Axis::Attribute => (&steps[..steps.len() - 1], Some(s)),
            _ => (&steps[..], None),
        };
        let mut i = 0;
        while i < node_steps.len() && !set.is_empty() {
            let step = &node_steps[i];
            // `//x` is descendant-or-self::node()/child::x, which selects
            // what descendant::x does unless x's predicates count positions.
            if step.axis == Axis::DescendantOrSelf
                && matches!(step.test, Test::AnyNode)
                && step.preds.is_empty()
                && let Some(next) = node_steps.get(i + 1)
                && next.axis == Axis::Child
                && !next.preds.iter().any(|p| p.positional)
            {
                set = self.step(Axis::Descendant, &next.test, &next.preds, &set)?;
                i += 2;
                continue;
            }
            set = self.step(step.axis, &step.test, &step.preds, &set)?;
            i += 1;
        }
        let Some(attr) = attr_step else {
            return Ok(Value::Nodes(set));
        };
        let mut out = Vec::new();
        for n in set {
            let Some(el) = self.node(n).el else { continue };
            for (k, v) in &el.attrs {
                let ok = match &attr.test {
                    Test::Name(name) => k == name,
                    Test::AnyElement | Test::AnyNode => true,
                };
                if ok {
                    out.push((k.as_str(), v.as_str()));
                }
            }
        }
        self.tick(out.len() as u64)?;
        Ok(Value::Attrs(out))
    }

    /// The nodes on `axis` from `c`, in axis order (reverse document order
    /// for the reverse axes).
    fn axis_nodes(&self, axis: Axis, c: u32, out: &mut Vec<u32>) -> EResult<()> {
        let node = self.node(c);
        let start = out.len();
        match axis {
            Axis::Child => out.extend(self.arena.children(c)),
            Axis::Descendant => out.extend(c + 1..node.end),
            Axis::DescendantOrSelf => out.extend(c..node.end),
            Axis::SelfOnly => out.push(c),
            Axis::Parent => {
                if node.parent != NONE {
                    out.push(node.parent);
                }
            }
            Axis::Ancestor | Axis::AncestorOrSelf => {
                if axis == Axis::AncestorOrSelf {
                    out.push(c);
                }
                let mut p = node.parent;
                while p != NONE {
                    out.push(p);
                    p = self.node(p).parent;
                }
            }
            Axis::FollowingSibling => {
                if node.parent != NONE {
                    let end = self.node(node.parent).end;
                    let mut s = node.end;
                    while s < end {
                        out.push(s);
                        s = self.node(s).end;
                    }
                }
            }
            Axis::PrecedingSibling => {
                if node.parent != NONE {
                    out.extend(self.arena.children(node.parent).take_while(|&s| s != c));
                    out[start..].reverse();
                }
            }
            Axis::Attribute => unreachable!("attribute steps are handled by path()"),
        }
        self.tick((out.len() - start) as u64 + 1)
    }

    fn step(&self, axis: Axis, test: &Test, preds: &[Pred], ctx: &[u32]) -> EResult<Vec<u32>> {
        let positional = preds.iter().any(|p| p.positional);
        let mut out = Vec::new();
        if !positional && matches!(axis, Axis::Descendant | Axis::DescendantOrSelf) {
            // The union of the context nodes' subtrees, each node once.
            let mut covered = 0;
            for &c in ctx {
                if c < covered {
                    continue;
                }
                let start = if axis == Axis::DescendantOrSelf {
                    c
                } else {
                    c + 1
                };
                let end = self.node(c).end;
                self.tick(u64::from(end - start))?;
                for n in start..end {
                    if self.test(test, n) && self.preds_hold(preds, n, 1, 1)? {
                        out.push(n);
                    }
                }
                covered = end;
            }
            return Ok(out);
        }
        let mut cand = Vec::new();
        for &c in ctx {
            cand.clear();
            self.axis_nodes(axis, c, &mut cand)?;
            cand.retain(|&n| self.test(test, n));
            for p in preds {
                let size = cand.len();
                let mut kept = Vec::with_capacity(size);
                for (i, &n) in cand.iter().enumerate() {
                    if self.pred_holds(p, n, i + 1, size)? {
                        kept.push(n);
                    }
                }
                cand = kept;
            }
            out.extend_from_slice(&cand);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn preds_hold(&self, preds: &[Pred], n: u32, pos: usize, size: usize) -> EResult<bool> {
        for p in preds {
            if !self.pred_holds(p, n, pos, size)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn pred_holds(&self, p: &Pred, n: u32, pos: usize, size: usize) -> EResult<bool> {
        self.tick(1)?;
        Ok(match self.eval(&p.expr, n, pos, size)? {
            Value::Num(x) => x == pos as f64,
            v => self.boolean(&v),
        })
    }

    fn eval(&self, e: &Expr, n: u32, pos: usize, size: usize) -> EResult<Value<'a>> {
        Ok(match e {
            Expr::Or(v) => {
                for x in v {
                    let val = self.eval(x, n, pos, size)?;
                    if self.boolean(&val) {
                        return Ok(Value::Bool(true));
                    }
                }
                Value::Bool(false)
            }
            Expr::And(v) => {
                for x in v {
                    let val = self.eval(x, n, pos, size)?;
                    if !self.boolean(&val) {
                        return Ok(Value::Bool(false));
                    }
                }
                Value::Bool(true)
            }
            Expr::Cmp(op, a, b) => {
                let a = self.eval(a, n, pos, size)?;
                let b = self.eval(b, n, pos, size)?;
                Value::Bool(self.compare(*op, &a, &b)?)
            }
            Expr::Neg(a) => {
                let a = self.eval(a, n, pos, size)?;
                Value::Num(-self.number(&a)?)
            }
            Expr::Literal(s) => Value::Str(s.clone()),
            Expr::Number(x) => Value::Num(*x),
            Expr::Paths(paths) => {
                if let [one] = paths.as_slice() {
                    self.path(one, n)?
                } else {
                    let mut all = Vec::new();
                    for p in paths {
                        if let Value::Nodes(v) = self.path(p, n)? {
                            all.extend(v);
                        }
                    }
                    all.sort_unstable();
                    all.dedup();
                    Value::Nodes(all)
                }
            }
            Expr::Call(f, args) => self.call(*f, args, n, pos, size)?,
        })
    }

    fn arg_or_context(&self, args: &[Expr], n: u32, pos: usize, size: usize) -> EResult<Value<'a>> {
        match args.first() {
            Some(a) => self.eval(a, n, pos, size),
            None => Ok(Value::Nodes(vec![n])),
        }
    }

    fn call(&self, f: Func, args: &[Expr], n: u32, pos: usize, size: usize) -> EResult<Value<'a>> {
        let arg = |i: usize| self.eval(&args[i], n, pos, size);
        Ok(match f {
            Func::Last => Value::Num(size as f64),
            Func::Position => Value::Num(pos as f64),
            Func::Count => Value::Num(match arg(0)? {
                Value::Nodes(v) => v.len() as f64,
                Value::Attrs(v) => v.len() as f64,
                _ => 0.0,
            }),
            Func::Not => Value::Bool(!self.boolean(&arg(0)?)),
            Func::True => Value::Bool(true),
            Func::False => Value::Bool(false),
            Func::Boolean => Value::Bool(self.boolean(&arg(0)?)),
            Func::Contains => {
                let a = self.string(&arg(0)?)?;
                let b = self.string(&arg(1)?)?;
                Value::Bool(a.contains(b.as_str()))
            }
            Func::StartsWith => {
                let a = self.string(&arg(0)?)?;
                let b = self.string(&arg(1)?)?;
                Value::Bool(a.starts_with(b.as_str()))
            }
            Func::String => Value::Str(self.string(&self.arg_or_context(args, n, pos, size)?)?),
            Func::StringLength => {
                let s = self.string(&self.arg_or_context(args, n, pos, size)?)?;
                Value::Num(s.chars().count() as f64)
            }
            Func::NormalizeSpace => {
                let s = self.string(&self.arg_or_context(args, n, pos, size)?)?;
                let words: Vec<&str> = s
                    .split([' ', '\t', '\r', '\n'])
                    .filter(|w| !w.is_empty())
                    .collect();
                Value::Str(words.join(" "))
            }
            Func::Concat => {
                let mut s = String::new();
                for a in args {
                    s.push_str(&self.string(&self.eval(a, n, pos, size)?)?);
                }
                Value::Str(s)
            }
            Func::Name | Func::LocalName => {
                let name = match self.arg_or_context(args, n, pos, size)? {
                    Value::Nodes(v) => v
                        .first()
                        .and_then(|&m| self.node(m).el)
                        .map_or("", |e| e.name.as_str()),
                    Value::Attrs(v) => v.first().map_or("", |(k, _)| *k),
                    _ => "",
                };
                let name = if f == Func::LocalName {
                    name.rsplit(':').next().unwrap_or(name)
                } else {
                    name
                };
                Value::Str(name.to_string())
            }
            Func::Number => Value::Num(self.number(&self.arg_or_context(args, n, pos, size)?)?),
        })
    }

    fn boolean(&self, v: &Value<'_>) -> bool {
        match v {
            Value::Nodes(n) => !n.is_empty(),
            Value::Attrs(a) => !a.is_empty(),
            Value::Str(s) => !s.is_empty(),
            Value::Num(x) => *x != 0.0 && !x.is_nan(),
            Value::Bool(b) => *b,
        }
    }

    /// The string-value of a node: the text of its subtree in document
    /// order.
    fn string_value(&self, n: u32) -> EResult<String> {
        let el = match self.node(n).el {
            Some(e) => e,
            None => match self.arena.nodes.get(1).and_then(|r| r.el) {
                Some(root) => root,
                None => return Ok(String::new()),
            },
        };
        let mut s = String::new();
        let mut stack = vec![el.children.iter()];
        while let Some(it) = stack.last_mut() {
            match it.next() {
                None => {
                    stack.pop();
                }
                Some(Node::Text(t) | Node::CData(t)) => s.push_str(t),
                Some(Node::Element(e)) => {
                    self.tick(1)?;
                    stack.push(e.children.iter());
                }
                Some(_) => {}
            }
        }
        Ok(s)
    }

    fn string(&self, v: &Value<'_>) -> EResult<String> {
        Ok(match v {
            Value::Nodes(n) => match n.first() {
                Some(&m) => self.string_value(m)?,
                None => String::new(),
            },
            Value::Attrs(a) => a.first().map_or(String::new(), |(_, v)| v.to_string()),
            Value::Str(s) => s.clone(),
            Value::Num(x) => format_number(*x),
            Value::Bool(b) => b.to_string(),
        })
    }

    fn number(&self, v: &Value<'_>) -> EResult<f64> {
        Ok(match v {
            Value::Num(x) => *x,
            Value::Bool(b) => f64::from(u8::from(*b)),
            other => parse_number(&self.string(other)?),
        })
    }

    /// The string-values of a node-set, or None if `v` is not one.
    fn strings(&self, v: &Value<'_>) -> EResult<Option<Vec<String>>> {
        Ok(match v {
            Value::Nodes(n) => {
                let mut out = Vec::with_capacity(n.len());
                for &m in n {
                    out.push(self.string_value(m)?);
                }
                Some(out)
            }
            Value::Attrs(a) => Some(a.iter().map(|(_, v)| v.to_string()).collect()),
            _ => None,
        })
    }

    /// XPath 1.0 comparisons (section 3.4): node-sets compare when some
    /// member does.
    fn compare(&self, op: CmpOp, a: &Value<'_>, b: &Value<'_>) -> EResult<bool> {
        let a_set = self.strings(a)?;
        let b_set = self.strings(b)?;
        Ok(match (a_set, b_set) {
            (Some(xs), Some(ys)) => {
                self.tick((xs.len() * ys.len()) as u64)?;
                xs.iter().any(|x| {
                    ys.iter()
                        .any(|y| self.atomic(op, &Value::Str(x.clone()), &Value::Str(y.clone())))
                })
            }
            (Some(xs), None) => match b {
                Value::Bool(bb) => cmp_numbers(
                    op,
                    f64::from(u8::from(!xs.is_empty())),
                    f64::from(u8::from(*bb)),
                ),
                _ => xs.into_iter().any(|x| self.atomic(op, &Value::Str(x), b)),
            },
            (None, Some(ys)) => match a {
                Value::Bool(ab) => cmp_numbers(
                    op,
                    f64::from(u8::from(*ab)),
                    f64::from(u8::from(!ys.is_empty())),
                ),
                _ => ys.into_iter().any(|y| self.atomic(op, a, &Value::Str(y))),
            },
            (None, None) => self.atomic(op, a, b),
        })
    }

    /// Compares two values that are not node-sets.
    fn atomic(&self, op: CmpOp, a: &Value<'_>, b: &Value<'_>) -> bool {
        let num = |v: &Value<'_>| match v {
            Value::Num(x) => *x,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Str(s) => parse_number(s),
            _ => f64::NAN,
        };
        let text = |v: &Value<'_>| match v {
            Value::Str(s) => s.clone(),
            Value::Num(x) => format_number(*x),
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        match op {
            CmpOp::Eq | CmpOp::Ne => {
                let eq = if matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_)) {
                    self.boolean(a) == self.boolean(b)
                } else if matches!(a, Value::Num(_)) || matches!(b, Value::Num(_)) {
                    num(a) == num(b)
                } else {
                    text(a) == text(b)
                };
                if op == CmpOp::Eq { eq } else { !eq }
            }
            _ => cmp_numbers(op, num(a), num(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Document;

    const DOC: &str = "<cib epoch=\"3\">\
        <configuration>\
          <crm_config><cluster_property_set id=\"cib-bootstrap-options\">\
            <nvpair id=\"o1\" name=\"stonith-enabled\" value=\"false\"/>\
            <nvpair id=\"o2\" name=\"no-quorum-policy\" value=\"ignore\"/>\
          </cluster_property_set></crm_config>\
          <nodes><node id=\"1\" uname=\"n1\"/><node id=\"2\" uname=\"n2\"/></nodes>\
          <resources>\
            <primitive id=\"a\" class=\"ocf\" provider=\"heartbeat\" type=\"IPaddr2\">\
              <meta_attributes id=\"a-meta\"><nvpair id=\"a-tr\" name=\"target-role\" value=\"Stopped\"/></meta_attributes>\
            </primitive>\
            <group id=\"g\">\
              <primitive id=\"b\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>\
              <primitive id=\"c\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">\
                <meta_attributes id=\"c-meta\"><nvpair id=\"c-tr\" name=\"target-role\" value=\"Started\"/></meta_attributes>\
              </primitive>\
            </group>\
          </resources>\
          <constraints><rsc_location id=\"l1\" rsc=\"a\" node=\"n1\" score=\"100\"/></constraints>\
        </configuration>\
        <status><node_state id=\"1\" uname=\"n1\">text here<lrm/></node_state></status>\
        </cib>";

    fn ids(expr: &str) -> Vec<String> {
        let doc = Document::parse(DOC).unwrap();
        let x = compile(expr).unwrap_or_else(|e| panic!("{e}"));
        let paths = x.select(&doc.root).unwrap();
        let els = x.select_elements(&doc.root).unwrap();
        assert_eq!(paths.len(), els.len());
        paths
            .iter()
            .zip(&els)
            .map(|(p, e)| {
                let at = element_at(&doc.root, p).unwrap();
                assert!(std::ptr::eq(at, *e), "{expr}: path {p:?}");
                e.attr("id").map_or_else(|| e.name.clone(), str::to_string)
            })
            .collect()
    }

    #[track_caller]
    fn check(cases: &[(&str, &[&str])]) {
        for (expr, want) in cases {
            assert_eq!(ids(expr), *want, "{expr}");
        }
    }

    #[test]
    fn location_paths() {
        check(&[
            ("/cib", &["cib"]),
            ("/cib/configuration/nodes/node", &["1", "2"]),
            ("cib/configuration/nodes", &["nodes"]),
            ("//primitive", &["a", "b", "c"]),
            ("//group/primitive", &["b", "c"]),
            ("/cib//nvpair", &["o1", "o2", "a-tr", "c-tr"]),
            ("//resources/*", &["a", "g"]),
            ("//group/*/..", &["g"]),
            ("//primitive[@id='b']/../..", &["resources"]),
            ("//nodes/.", &["nodes"]),
            ("//nodes/./node", &["1", "2"]),
            ("/cib/..", &[]),
            ("//nothing", &[]),
            ("/*", &["cib"]),
            (
                "/cib/*/*",
                &["crm_config", "nodes", "resources", "constraints", "1"],
            ),
        ]);
    }

    #[test]
    fn predicates() {
        check(&[
            ("//primitive[@id='a']", &["a"]),
            ("//primitive[@id=\"a\"]", &["a"]),
            ("//primitive[@id!='a']", &["b", "c"]),
            ("//*[@uname]", &["1", "2", "1"]),
            ("//primitive[@type='Dummy' and @id='c']", &["c"]),
            ("//primitive[@id='a' or @id='c']", &["a", "c"]),
            ("//primitive[not(@provider='pacemaker')]", &["a"]),
            ("//primitive[not(meta_attributes)]", &["b"]),
            (
                "//primitive[meta_attributes/nvpair/@name='target-role']",
                &["a", "c"],
            ),
            (
                "//primitive[meta_attributes/nvpair[@name='target-role']/@value='Started']",
                &["c"],
            ),
            ("//nvpair[contains(@name, 'quorum')]", &["o2"]),
            ("//nvpair[starts-with(@name, 'stonith')]", &["o1"]),
            ("//primitive[../@id='g']", &["b", "c"]),
            ("//rsc_location[@rsc=//primitive/@id]", &["l1"]),
            ("//rsc_location[@score > 50]", &["l1"]),
            ("//rsc_location[@score >= 100 and @score <= 100]", &["l1"]),
            ("//rsc_location[@score < 50]", &[]),
            ("//rsc_location[@score = 100]", &["l1"]),
            ("//rsc_location[@score = -(-100)]", &["l1"]),
            ("//*[@id='a' or (@id='b' and @type='Dummy')]", &["a", "b"]),
            ("//primitive[@*='IPaddr2']", &["a"]),
            ("//node_state[contains(., 'text')]", &["1"]),
            (
                "//node_state[string-length(normalize-space(string(.))) = 9]",
                &["1"],
            ),
            (
                "//primitive[concat(@class, ':', @type) = 'ocf:Dummy']",
                &["b", "c"],
            ),
            ("//*[name() = 'group']", &["g"]),
            ("//*[local-name(..) = 'group']", &["b", "c"]),
            (
                "//primitive[count(meta_attributes/nvpair) = 1]",
                &["a", "c"],
            ),
            ("//primitive[true()]", &["a", "b", "c"]),
            ("//primitive[false()]", &[]),
            ("//primitive[boolean(@type)]", &["a", "b", "c"]),
            ("//primitive[number(@id) = number(@id)]", &[]),
            ("//node[@id = 2]", &["2"]),
            ("//primitive[@id='a'] | //node", &["1", "2", "a"]),
        ]);
    }

    #[test]
    fn positions() {
        check(&[
            ("//node[1]", &["1"]),
            ("//node[2]", &["2"]),
            ("//node[last()]", &["2"]),
            ("//primitive[1]", &["a", "b"]),
            ("/descendant::primitive[1]", &["a"]),
            ("//primitive[position() > 1]", &["c"]),
            ("//primitive[last()][@id='c']", &["c"]),
            ("//group/primitive[@type='Dummy'][2]", &["c"]),
            ("//nodes/node[3]", &[]),
            ("//node[position() = last()]", &["2"]),
        ]);
    }

    #[test]
    fn axes() {
        check(&[
            (
                "//primitive[@id='c']/ancestor::*",
                &["cib", "configuration", "resources", "g"],
            ),
            ("//primitive[@id='c']/ancestor::*[1]", &["g"]),
            ("//primitive[@id='c']/ancestor-or-self::primitive", &["c"]),
            ("//primitive[@id='b']/following-sibling::*", &["c"]),
            ("//primitive[@id='c']/preceding-sibling::*", &["b"]),
            ("//node[@id='2']/preceding-sibling::node[1]", &["1"]),
            ("/cib/child::configuration/descendant::node", &["1", "2"]),
            (
                "//group/descendant-or-self::*[@id]",
                &["g", "b", "c", "c-meta", "c-tr"],
            ),
            ("//group/self::group", &["g"]),
            ("//group/self::nodes", &[]),
            ("//primitive/parent::group", &["g"]),
            ("//primitive[attribute::id='a']", &["a"]),
        ]);
    }

    #[test]
    fn paths_address_elements() {
        let mut doc = Document::parse(DOC).unwrap();
        let x = compile("//primitive[@id='b']").unwrap();
        let paths = x.select(&doc.root).unwrap();
        assert_eq!(paths, vec![vec![0, 2, 1, 0]]);
        element_at_mut(&mut doc.root, &paths[0])
            .unwrap()
            .set_attr("type", "Stateful");
        let stateful = compile("//primitive[@type='Stateful']").unwrap();
        assert_eq!(stateful.select(&doc.root).unwrap(), paths);
        let b = remove_at(&mut doc.root, &paths[0]).unwrap();
        assert_eq!(b.attr("type"), Some("Stateful"));
        assert!(x.select(&doc.root).unwrap().is_empty());
        let old = replace_at(&mut doc.root, &[0, 1], Element::new("nodes")).unwrap();
        assert_eq!(old.elements().count(), 2);
        assert!(remove_at(&mut doc.root, &[]).is_none());
        assert!(element_at(&doc.root, &[9]).is_none());
    }

    #[track_caller]
    fn refused(expr: &str, column: Option<usize>, needle: &str) {
        let e = compile(expr).unwrap_err();
        assert_eq!(e.column, column, "{expr}: {e}");
        assert!(e.message.contains(needle), "{expr}: {e}");
        assert!(e.to_string().starts_with("xpath '"), "{e}");
    }

    #[test]
    fn unsupported_is_refused_by_name() {
        refused("//nvpair/@value", Some(1), "selects attributes");
        refused("//primitive/text()", Some(13), "text() is not supported");
        refused("//node()", Some(3), "node() is not supported");
        refused(
            "//primitive/following::op",
            Some(13),
            "following:: is not supported",
        );
        refused(
            "//primitive/preceding::op",
            Some(13),
            "preceding:: is not supported",
        );
        refused("//cib:primitive", Some(3), "namespace prefixes");
        refused("//primitive[@id=$x]", Some(17), "variables");
        refused("//primitive[@a + 1 = 2]", Some(16), "arithmetic ('+')");
        refused("//primitive[@a * 2 = 2]", Some(16), "arithmetic ('*')");
        refused("//primitive[@a div 2 = 2]", Some(16), "arithmetic ('div')");
        refused(
            "//primitive[ends-with(@id, 'x')]",
            Some(13),
            "not an XPath 1.0 function",
        );
        refused(
            "//primitive[substring(@id, 1) = 'x']",
            Some(13),
            "substring() is not supported",
        );
        refused(
            "(//primitive)[1]",
            Some(14),
            "predicate after a parenthesized",
        );
        refused("count(//primitive)", Some(1), "must select elements");
        refused("'x'", Some(1), "must select elements");
        refused("/", Some(1), "'/' alone");
        refused("//nvpair/@name/..", Some(16), "attribute has no children");
        refused("//primitive[@id='a'", Some(20), "expected ']'");
        refused("//primitive[@id='a]", Some(17), "no closing '");
        refused(
            "//primitive[@id=='a']",
            Some(17),
            "expected a location path",
        );
        refused(
            "//primitive[@id='a' adn @x]",
            Some(21),
            "expected an operator",
        );
        refused(
            "//primitive[@id!'a']",
            Some(16),
            "'!' must be followed by '='",
        );
        refused("//", Some(3), "expected a step after '//'");
        refused("//primitive/", Some(13), "expected a step");
        refused(
            "//primitive[not(@a, @b)]",
            Some(13),
            "not() takes 1 argument(s), not 2",
        );
        refused(
            "//primitive[count(@a = 1)]",
            Some(19),
            "count() needs a location path",
        );
        refused("//primitive[@id=1] | 'x'", Some(22), "only element paths");
        refused("//primitive/.[1]", Some(14), "a predicate cannot follow");
        refused("//nvpair[@name[1]]", Some(15), "predicates on an attribute");
        refused("//x[@a=1=2=3=4=5=6]", Some(15), "chained comparisons");
        refused("//primitive#", Some(12), "unexpected character '#'");
        refused("//foo::bar", Some(3), "'foo' is not an XPath axis");
    }

    #[test]
    fn bounds() {
        let long = format!("//{}", "a".repeat(MAX_EXPR_LEN));
        let e = compile(&long).unwrap_err();
        assert!(e.message.contains("characters long"), "{e}");
        assert!(
            e.to_string().len() < 300,
            "the expression is shortened: {e}"
        );
        let deep = format!(
            "//a{}{}",
            "[b".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert!(
            compile(&deep)
                .unwrap_err()
                .message
                .contains("nests more than")
        );
        let steps = format!("/{}", vec!["a"; MAX_STEPS + 1].join("/"));
        assert!(compile(&steps).unwrap_err().message.contains("at most"));

        // A quadratic expression over a large tree stops with an error.
        let mut root = Element::new("cib");
        for i in 0..5000 {
            let mut e = Element::new("a");
            e.set_attr("id", i.to_string());
            root.push(e);
        }
        let x = compile("//a[//a[last()]/@id = @id]").unwrap();
        let e = x.select(&root).unwrap_err();
        assert!(e.message.contains("would visit more than"), "{e}");
        assert_eq!(e.column, None);
        // The same question asked well is fine.
        let x = compile("/cib/a[last()]").unwrap();
        assert_eq!(x.select(&root).unwrap(), vec![vec![4999]]);
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(format_number(1.0), "1");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert!(parse_number(" 12 ") == 12.0);
        assert!(parse_number("-1.5") == -1.5);
        assert!(parse_number(".5") == 0.5);
        assert!(parse_number("INFINITY").is_nan());
        assert!(parse_number("1e3").is_nan());
        assert!(parse_number("").is_nan());
        assert_eq!(compile("//a").unwrap().as_str(), "//a");
    }
}
