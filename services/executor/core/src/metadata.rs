//! Agent metadata: the XML an agent prints for `meta-data` (the OCF
//! `resource-agent` format), as typed parameters and actions, and a check
//! of a resource's parameters against it.

use quick_xml::events::Event;

/// Bound on the metadata text accepted from an agent.
pub const MAX_LEN: usize = 1 << 20;

/// An agent's self-description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub shortdesc: String,
    pub longdesc: String,
    pub parameters: Vec<Parameter>,
    pub actions: Vec<Action>,
}

/// One parameter an agent takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub required: bool,
    pub unique: bool,
    pub reloadable: bool,
    pub deprecated: bool,
    /// `string`, `integer`, `boolean`, `select`, ...
    pub content_type: String,
    pub default: Option<String>,
    /// The allowed values of a `select`.
    pub options: Vec<String>,
    pub shortdesc: String,
    pub longdesc: String,
}

/// One action an agent supports, with its suggested timing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Action {
    pub name: String,
    pub timeout_ms: Option<u64>,
    pub interval_ms: Option<u64>,
    pub depth: Option<String>,
    pub role: Option<String>,
}

/// Why metadata cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid agent metadata: {0}")]
pub struct MetadataError(pub String);

impl Metadata {
    /// The action named `name` (the first, when an agent lists it per role
    /// or depth).
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.name == name)
    }

    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
}

/// Parses an agent's `meta-data` output.
pub fn parse(text: &str) -> Result<Metadata, MetadataError> {
    if text.len() > MAX_LEN {
        return Err(MetadataError(format!(
            "{} bytes, more than the {MAX_LEN} accepted",
            text.len()
        )));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut md = Metadata::default();
    let mut stack: Vec<String> = Vec::new();
    let mut saw_root = false;
    let mut param: Option<Parameter> = None;
    let mut text_buf = String::new();
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| MetadataError(format!("at byte {}: {e}", reader.buffer_position())))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let name = e.name().as_ref().to_string();
                let attrs = attributes(e)?;
                let get = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
                if stack.is_empty() {
                    if name != "resource-agent" {
                        return Err(MetadataError(format!(
                            "the root element is <{name}>, not <resource-agent>"
                        )));
                    }
                    saw_root = true;
                    md.name = get("name").unwrap_or_default();
                    md.version = get("version").unwrap_or_default();
                }
                let parent = stack.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (Some("parameters"), "parameter") => {
                        let flag = |k: &str| get(k).is_some_and(|v| v == "1" || v == "true");
                        param = Some(Parameter {
                            name: get("name").unwrap_or_default(),
                            required: flag("required"),
                            unique: flag("unique") || get("unique-group").is_some(),
                            reloadable: flag("reloadable"),
                            deprecated: get("deprecated").is_some(),
                            ..Default::default()
                        });
                    }
                    (Some("parameter"), "content") => {
                        if let Some(p) = param.as_mut() {
                            p.content_type = get("type").unwrap_or_default();
                            p.default = get("default");
                        }
                    }
                    (Some("content"), "option") => {
                        if let (Some(p), Some(v)) = (param.as_mut(), get("value")) {
                            p.options.push(v);
                        }
                    }
                    (Some("parameter"), "deprecated") => {
                        if let Some(p) = param.as_mut() {
                            p.deprecated = true;
                        }
                    }
                    (Some("actions"), "action") => md.actions.push(Action {
                        name: get("name").unwrap_or_default(),
                        timeout_ms: get("timeout").and_then(|t| duration_ms(&t)),
                        interval_ms: get("interval").and_then(|t| duration_ms(&t)),
                        depth: get("depth"),
                        role: get("role"),
                    }),
                    _ => {}
                }
                text_buf.clear();
                if empty {
                    if name == "parameter" {
                        md.parameters.extend(param.take());
                    }
                } else {
                    stack.push(name);
                }
            }
            Event::Text(t) => {
                let t = quick_xml::escape::unescape(&t)
                    .map_err(|e| MetadataError(format!("bad text: {e}")))?;
                text_buf.push_str(&t);
            }
            Event::GeneralRef(r) => {
                let name: &str = &r;
                let s = match name {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "apos" => "'",
                    "quot" => "\"",
                    _ => "",
                };
                text_buf.push_str(s);
            }
            Event::CData(t) => text_buf.push_str(&t.into_inner()),
            Event::End(_) => {
                let Some(name) = stack.pop() else {
                    return Err(MetadataError("unbalanced end tag".into()));
                };
                let parent = stack.last().map(String::as_str);
                let text = collapse(&text_buf);
                match (parent, name.as_str()) {
                    (Some("resource-agent"), "shortdesc") => md.shortdesc = text,
                    (Some("resource-agent"), "longdesc") => md.longdesc = text,
                    (Some("resource-agent"), "version") if md.version.is_empty() => {
                        md.version = text
                    }
                    (Some("parameter"), "shortdesc") => {
                        if let Some(p) = param.as_mut() {
                            p.shortdesc = text;
                        }
                    }
                    (Some("parameter"), "longdesc") => {
                        if let Some(p) = param.as_mut() {
                            p.longdesc = text;
                        }
                    }
                    (_, "parameter") => md.parameters.extend(param.take()),
                    _ => {}
                }
                text_buf.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(MetadataError("no <resource-agent> element".into()));
    }
    Ok(md)
}

fn attributes(
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<Vec<(String, String)>, MetadataError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| MetadataError(format!("bad attribute: {e}")))?;
        let v = quick_xml::escape::unescape(&a.value)
            .map_err(|e| MetadataError(format!("bad attribute value: {e}")))?;
        out.push((a.key.as_ref().to_string(), v.into_owned()));
    }
    Ok(out)
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A duration as agents write them in metadata: `20s`, `20`, `1m`, `2min`,
/// `500ms`, `1h`.
pub fn duration_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let factor = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1000,
        "ms" | "msec" | "msecs" => 1,
        "m" | "min" | "mins" => 60_000,
        "h" | "hr" | "hrs" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// One problem with a resource's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    pub parameter: String,
    /// `error` (the agent will refuse) or `warning`.
    pub severity: &'static str,
    pub message: String,
}

/// Checks parameters against the agent's metadata: required ones present,
/// no unknown ones (a warning: agents ignore them, but it is usually a
/// typo), deprecated ones noted, integers, booleans and selects valid.
pub fn check_params<'a>(
    md: &Metadata,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<ParamProblem> {
    let params: Vec<(&str, &str)> = params.into_iter().collect();
    let mut out = Vec::new();
    for p in &md.parameters {
        if p.required && !params.iter().any(|(k, _)| *k == p.name) {
            out.push(ParamProblem {
                parameter: p.name.clone(),
                severity: "error",
                message: format!("{} requires the parameter {:?}", md.name, p.name),
            });
        }
    }
    for (k, v) in &params {
        if *k == "OCF_CHECK_LEVEL" {
            continue;
        }
        let Some(p) = md.parameter(k) else {
            out.push(ParamProblem {
                parameter: k.to_string(),
                severity: "warning",
                message: format!("{} has no parameter {k:?}; the agent ignores it", md.name),
            });
            continue;
        };
        if p.deprecated {
            out.push(ParamProblem {
                parameter: k.to_string(),
                severity: "warning",
                message: format!("the parameter {k:?} of {} is deprecated", md.name),
            });
        }
        let bad = match p.content_type.as_str() {
            "integer" => v.trim().parse::<i64>().is_err(),
            "boolean" => !is_boolean(v),
            "select" => !p.options.is_empty() && !p.options.iter().any(|o| o == v),
            _ => false,
        };
        if bad {
            let expected = match p.content_type.as_str() {
                "select" => format!("one of {}", p.options.join(", ")),
                t => format!("an {t}").replace("an boolean", "a boolean"),
            };
            out.push(ParamProblem {
                parameter: k.to_string(),
                severity: "error",
                message: format!("the parameter {k:?} is {v:?}, but must be {expected}"),
            });
        }
    }
    out
}

fn is_boolean(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "1" | "0" | "y" | "n"
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Metadata for agents that describe no parameters (init scripts, units):
/// the standard actions with Pacemaker's usual suggestions.
pub fn service_metadata(name: &str, title: &str, shortdesc: &str, longdesc: &str) -> String {
    let (name, title, shortdesc, longdesc) = (
        escape(name),
        escape(title),
        escape(shortdesc),
        escape(longdesc),
    );
    format!(
        "<?xml version=\"1.0\"?>\n\
         <resource-agent name=\"{name}\" version=\"1.0\">\n  \
         <version>1.1</version>\n  \
         <longdesc lang=\"en\">{longdesc}</longdesc>\n  \
         <shortdesc lang=\"en\">{shortdesc}</shortdesc>\n  \
         <parameters/>\n  \
         <actions>\n    \
         <action name=\"start\" timeout=\"100s\"/>\n    \
         <action name=\"stop\" timeout=\"100s\"/>\n    \
         <action name=\"monitor\" timeout=\"100s\" interval=\"60s\"/>\n    \
         <action name=\"meta-data\" timeout=\"5s\"/>\n  \
         </actions>\n  \
         <special tag=\"vigil\"><title>{title}</title></special>\n\
         </resource-agent>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMMY: &str = r#"<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="Dummy" version="1.0">
<version>1.1</version>
<longdesc lang="en">
This is a dummy &amp; example
agent.
</longdesc>
<shortdesc lang="en">Example stateless resource agent</shortdesc>
<parameters>
<parameter name="state" unique-group="state">
<longdesc lang="en">Location to store the resource state in.</longdesc>
<shortdesc lang="en">State file</shortdesc>
<content type="string" default="/run/Dummy.state" />
</parameter>
<parameter name="fake" reloadable="1">
<shortdesc lang="en">Fake attribute</shortdesc>
<content type="string" default="dummy" />
</parameter>
<parameter name="count" required="1">
<content type="integer"/>
</parameter>
<parameter name="mode">
<content type="select" default="a"><option value="a"/><option value="b"/></content>
</parameter>
<parameter name="old"><deprecated/><content type="boolean"/></parameter>
</parameters>
<actions>
<action name="start"        timeout="20s" />
<action name="monitor"      timeout="20s" interval="10s" depth="0"/>
<action name="promote"      timeout="1m" role="Promoted"/>
<action name="meta-data"    timeout="5" />
</actions>
</resource-agent>
"#;

    #[test]
    fn parses_agent_metadata() {
        let md = parse(DUMMY).unwrap();
        assert_eq!(md.name, "Dummy");
        assert_eq!(md.version, "1.0");
        assert_eq!(md.longdesc, "This is a dummy & example agent.");
        assert_eq!(md.shortdesc, "Example stateless resource agent");
        assert_eq!(md.parameters.len(), 5);
        let state = md.parameter("state").unwrap();
        assert!(state.unique && !state.required);
        assert_eq!(state.default.as_deref(), Some("/run/Dummy.state"));
        assert_eq!(state.shortdesc, "State file");
        assert!(md.parameter("fake").unwrap().reloadable);
        assert_eq!(md.parameter("mode").unwrap().options, ["a", "b"]);
        assert!(md.parameter("old").unwrap().deprecated);
        let mon = md.action("monitor").unwrap();
        assert_eq!(
            (mon.timeout_ms, mon.interval_ms),
            (Some(20_000), Some(10_000))
        );
        assert_eq!(md.action("promote").unwrap().timeout_ms, Some(60_000));
        assert_eq!(md.action("meta-data").unwrap().timeout_ms, Some(5_000));
    }

    #[test]
    fn refuses_what_is_not_metadata() {
        assert!(parse("<html/>").unwrap_err().to_string().contains("<html>"));
        assert!(parse("garbage").is_err());
        assert!(parse("<resource-agent><x></resource-agent>").is_err());
    }

    #[test]
    fn checks_parameters() {
        let md = parse(DUMMY).unwrap();
        let probs = check_params(
            &md,
            [
                ("fak", "x"),
                ("mode", "c"),
                ("old", "maybe"),
                ("OCF_CHECK_LEVEL", "10"),
            ],
        );
        let msgs: Vec<_> = probs
            .iter()
            .map(|p| (p.severity, p.parameter.as_str()))
            .collect();
        assert_eq!(
            msgs,
            [
                ("error", "count"),
                ("warning", "fak"),
                ("error", "mode"),
                ("warning", "old"),
                ("error", "old"),
            ]
        );
        assert!(check_params(&md, [("count", "3")]).is_empty());
        assert_eq!(
            check_params(&md, [("count", "x")])[0].message,
            "the parameter \"count\" is \"x\", but must be an integer"
        );
    }
}
