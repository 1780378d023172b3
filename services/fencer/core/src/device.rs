//! Fence devices: `primitive class="stonith"` in the CIB, and the
//! `pcmk_*` instance attributes the cluster (not the agent) reads.

use std::collections::{BTreeMap, BTreeSet};

use vigil_cib::xml::Element;

/// The actions a fencing request can ask for.
pub const FENCE_ACTIONS: [&str; 3] = ["off", "reboot", "on"];

/// Retries of an action within its timeout, unless configured.
pub const DEFAULT_RETRIES: u32 = 2;

/// How the cluster finds out whether a device can fence a node
/// (`pcmk_host_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCheck {
    /// `pcmk_host_list` / `pcmk_host_map` say.
    StaticList,
    /// The agent's `list` action says.
    DynamicList,
    /// The agent's `status` action for the node says (any answer but an
    /// error means yes).
    Status,
    /// Every device can fence every node.
    None,
}

impl HostCheck {
    pub fn parse(s: &str) -> Option<HostCheck> {
        Some(match s {
            "static-list" => HostCheck::StaticList,
            "dynamic-list" => HostCheck::DynamicList,
            "status" => HostCheck::Status,
            "none" => HostCheck::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HostCheck::StaticList => "static-list",
            HostCheck::DynamicList => "dynamic-list",
            HostCheck::Status => "status",
            HostCheck::None => "none",
        }
    }
}

/// What an agent's metadata says it supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub actions: BTreeSet<String>,
    pub parameters: BTreeSet<String>,
}

impl Capabilities {
    pub fn has_action(&self, a: &str) -> bool {
        self.actions.contains(a)
    }
}

/// One fence device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    /// The fence agent (`fence_ipmilan`), found in the agent directory.
    pub agent: String,
    /// The parameters passed to the agent (all instance attributes except
    /// the cluster's own `pcmk_*`, `provides` and `stonith-timeout`).
    pub params: BTreeMap<String, String>,
    pub host_list: Vec<String>,
    /// `pcmk_host_map`: node → port (the first port when several are
    /// given).
    pub host_map: BTreeMap<String, String>,
    /// `pcmk_host_check` as configured (`None`: the default for the
    /// device's configuration and capabilities).
    pub host_check: Option<HostCheck>,
    /// `pcmk_host_argument` as configured.
    pub host_argument: Option<String>,
    pub delay_base_ms: u64,
    pub delay_max_ms: u64,
    /// `pcmk_ACTION_action`: the agent's name for an action.
    pub action_names: BTreeMap<String, String>,
    /// `pcmk_ACTION_timeout`.
    pub timeouts_ms: BTreeMap<String, u64>,
    /// `pcmk_ACTION_retries`.
    pub retries: BTreeMap<String, u32>,
    /// `pcmk_action_limit` (-1: unlimited).
    pub action_limit: i32,
    /// The resource's `priority` meta-attribute: devices with a higher one
    /// are tried first when no topology orders them.
    pub priority: i32,
    /// `provides=unfencing`: nodes must be unfenced (`on`) through this
    /// device before resources start on them.
    pub unfencing: bool,
    /// False when the resource's `target-role` is `Stopped`: the device is
    /// not used.
    pub enabled: bool,
}

/// A device the configuration gets wrong (the device is left out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fence device {id}: {message}")]
pub struct DeviceProblem {
    pub id: String,
    pub message: String,
}

fn pairs(el: &Element, set: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for block in el.children_named(set) {
        // Rules on fence device attributes are rare; the unconditional
        // values are what a device is configured with.
        if block.child("rule").is_some() {
            continue;
        }
        for nv in block.children_named("nvpair") {
            if let (Some(n), Some(v)) = (nv.attr("name"), nv.attr("value")) {
                out.entry(n.to_string()).or_insert_with(|| v.to_string());
            }
        }
    }
    out
}

fn duration(id: &str, name: &str, v: &str) -> Result<u64, DeviceProblem> {
    vigil_cib::time::parse_interval_ms(v).ok_or_else(|| DeviceProblem {
        id: id.to_string(),
        message: format!("{name}={v:?} is not a duration (e.g. 10s, 500ms)"),
    })
}

/// Parses `pcmk_host_map`: `node1:1;node2:2,3` (also `=` for `:`, and
/// spaces or commas between entries when unambiguous).
pub fn parse_host_map(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for entry in s.split(';').flat_map(|e| e.split_whitespace()) {
        if entry.is_empty() {
            continue;
        }
        let Some((node, ports)) = entry.split_once([':', '=']) else {
            return Err(format!(
                "{entry:?} is not NODE:PORT (pcmk_host_map is written node1:1;node2:2)"
            ));
        };
        let port = ports.split(',').next().unwrap_or_default().trim();
        if node.is_empty() || port.is_empty() {
            return Err(format!("{entry:?} is not NODE:PORT"));
        }
        out.insert(node.to_string(), port.to_string());
    }
    Ok(out)
}

impl Device {
    /// Reads a `primitive class="stonith"` element.
    pub fn from_primitive(el: &Element) -> Result<Device, DeviceProblem> {
        let id = el.attr("id").unwrap_or_default().to_string();
        let problem = |m: String| DeviceProblem {
            id: id.clone(),
            message: m,
        };
        if el.attr("class") != Some("stonith") {
            return Err(problem("is not a stonith-class primitive".into()));
        }
        let agent = el.attr("type").unwrap_or_default().to_string();
        if agent.is_empty()
            || !agent
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(problem(format!("invalid fence agent {agent:?}")));
        }
        let attrs = pairs(el, "instance_attributes");
        let meta = pairs(el, "meta_attributes");
        let mut d = Device {
            id: id.clone(),
            agent,
            params: BTreeMap::new(),
            host_list: Vec::new(),
            host_map: BTreeMap::new(),
            host_check: None,
            host_argument: None,
            delay_base_ms: 0,
            delay_max_ms: 0,
            action_names: BTreeMap::new(),
            timeouts_ms: BTreeMap::new(),
            retries: BTreeMap::new(),
            action_limit: 1,
            priority: meta
                .get("priority")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0),
            unfencing: false,
            enabled: !meta
                .get("target-role")
                .is_some_and(|r| r.eq_ignore_ascii_case("stopped")),
        };
        if meta.get("provides").is_some_and(|p| p == "unfencing") {
            d.unfencing = true;
        }
        for (name, value) in attrs {
            match name.as_str() {
                "pcmk_host_list" => {
                    d.host_list = value
                        .split([' ', ',', ';', '\t', '\n'])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                }
                "pcmk_host_map" => d.host_map = parse_host_map(&value).map_err(problem)?,
                "pcmk_host_check" => {
                    d.host_check = Some(HostCheck::parse(&value).ok_or_else(|| {
                        problem(format!(
                            "pcmk_host_check={value:?} is not one of static-list, dynamic-list, status, none"
                        ))
                    })?);
                }
                "pcmk_host_argument" => d.host_argument = Some(value),
                "pcmk_delay_base" => d.delay_base_ms = duration(&id, &name, &value)?,
                "pcmk_delay_max" => d.delay_max_ms = duration(&id, &name, &value)?,
                "pcmk_action_limit" => {
                    d.action_limit = value.trim().parse().map_err(|_| {
                        problem(format!("pcmk_action_limit={value:?} is not an integer"))
                    })?;
                }
                "provides" => d.unfencing = value == "unfencing",
                "stonith-timeout" => {
                    let ms = duration(&id, &name, &value)?;
                    for a in FENCE_ACTIONS {
                        d.timeouts_ms.entry(a.to_string()).or_insert(ms);
                    }
                }
                _ => {
                    if let Some(rest) = name.strip_prefix("pcmk_") {
                        if let Some(a) = rest.strip_suffix("_action") {
                            d.action_names.insert(a.to_string(), value);
                        } else if let Some(a) = rest.strip_suffix("_timeout") {
                            d.timeouts_ms
                                .insert(a.to_string(), duration(&id, &name, &value)?);
                        } else if let Some(a) = rest.strip_suffix("_retries") {
                            let n = value.trim().parse().map_err(|_| {
                                problem(format!("{name}={value:?} is not a number"))
                            })?;
                            d.retries.insert(a.to_string(), n);
                        }
                        // Other pcmk_ options (pcmk_list_cachetime, ...)
                        // are the cluster's and not passed on.
                    } else {
                        d.params.insert(name, value);
                    }
                }
            }
        }
        if d.host_check == Some(HostCheck::StaticList)
            && d.host_list.is_empty()
            && d.host_map.is_empty()
        {
            return Err(problem(
                "pcmk_host_check=static-list needs pcmk_host_list or pcmk_host_map".into(),
            ));
        }
        Ok(d)
    }

    /// How to find out which nodes this device fences: as configured, else
    /// static-list with a host list or map, else dynamic-list if the agent
    /// can `list`, else status if it can `status`, else none.
    pub fn host_check(&self, caps: &Capabilities) -> HostCheck {
        if let Some(c) = self.host_check {
            return c;
        }
        if !self.host_list.is_empty() || !self.host_map.is_empty() {
            HostCheck::StaticList
        } else if caps.has_action("list") {
            HostCheck::DynamicList
        } else if caps.has_action("status") {
            HostCheck::Status
        } else {
            HostCheck::None
        }
    }

    /// The parameter that names the target for the agent (`None`: none is
    /// passed): as configured, else `port`, or `plug` for an agent that
    /// takes `plug` but not `port`.
    pub fn host_argument(&self, caps: &Capabilities) -> Option<String> {
        match self.host_argument.as_deref() {
            Some("none") => None,
            Some(a) => Some(a.to_string()),
            None if caps.parameters.contains("plug") && !caps.parameters.contains("port") => {
                Some("plug".into())
            }
            None => Some("port".into()),
        }
    }

    /// The device's name for `target` (from `pcmk_host_map`, else the
    /// node's name).
    pub fn port_for<'a>(&'a self, target: &'a str) -> &'a str {
        self.host_map
            .get(target)
            .map(String::as_str)
            .unwrap_or(target)
    }

    /// Whether the device can fence `target` by its configuration alone:
    /// `Some` for static-list and none, `None` when the agent must be asked
    /// (dynamic-list, status).
    pub fn can_fence_statically(&self, target: &str, caps: &Capabilities) -> Option<bool> {
        match self.host_check(caps) {
            HostCheck::StaticList => Some(
                self.host_list.iter().any(|h| h == target) || self.host_map.contains_key(target),
            ),
            HostCheck::None => Some(true),
            HostCheck::DynamicList | HostCheck::Status => None,
        }
    }

    /// The agent's name for `action` (`pcmk_reboot_action` and the like).
    pub fn agent_action<'a>(&'a self, action: &'a str) -> &'a str {
        self.action_names
            .get(action)
            .map(String::as_str)
            .unwrap_or(action)
    }

    /// The timeout of `action`: `pcmk_ACTION_timeout`, else `default`
    /// (the cluster's `fencing-timeout`).
    pub fn timeout_ms(&self, action: &str, default: u64) -> u64 {
        self.timeouts_ms.get(action).copied().unwrap_or(default)
    }

    /// How often `action` is retried within its timeout.
    pub fn retries(&self, action: &str) -> u32 {
        self.retries.get(action).copied().unwrap_or(DEFAULT_RETRIES)
    }

    /// The delay before this device fences: `pcmk_delay_base` plus a random
    /// part (`random` in [0, 1)) up to `pcmk_delay_max`, the sum kept at or
    /// below the maximum when one is set.
    pub fn delay_ms(&self, random: f64) -> u64 {
        let base = self.delay_base_ms;
        if self.delay_max_ms == 0 {
            return base;
        }
        let max = self.delay_max_ms;
        if base >= max {
            return max;
        }
        base + ((max - base) as f64 * random.clamp(0.0, 1.0)) as u64
    }
}

/// Every fence device of a CIB's `configuration` (primitives of class
/// `stonith` anywhere under `resources`), and the problems of those left
/// out.
pub fn devices(configuration: &Element) -> (Vec<Device>, Vec<DeviceProblem>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let Some(resources) = configuration.child("resources") else {
        return (out, problems);
    };
    for el in resources.descendants() {
        if el.name == "primitive" && el.attr("class") == Some("stonith") {
            match Device::from_primitive(el) {
                Ok(d) => out.push(d),
                Err(p) => problems.push(p),
            }
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_cib::xml::Document;

    fn device(xml: &str) -> Result<Device, DeviceProblem> {
        let doc = Document::parse(xml).unwrap();
        Device::from_primitive(&doc.root)
    }

    fn caps(actions: &[&str], params: &[&str]) -> Capabilities {
        Capabilities {
            actions: actions.iter().map(|s| s.to_string()).collect(),
            parameters: params.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn reads_the_cluster_options_and_passes_the_rest() {
        let d = device(
            r#"<primitive id="ipmi" class="stonith" type="fence_ipmilan">
              <instance_attributes id="a">
                <nvpair id="1" name="ip" value="10.0.0.5"/>
                <nvpair id="2" name="pcmk_host_map" value="n1:1;n2:2,3"/>
                <nvpair id="3" name="pcmk_delay_base" value="2s"/>
                <nvpair id="4" name="pcmk_delay_max" value="5s"/>
                <nvpair id="5" name="pcmk_reboot_action" value="off"/>
                <nvpair id="6" name="pcmk_off_timeout" value="90s"/>
                <nvpair id="7" name="pcmk_off_retries" value="4"/>
                <nvpair id="8" name="pcmk_list_cachetime" value="60"/>
              </instance_attributes>
              <meta_attributes id="m"><nvpair id="9" name="priority" value="10"/></meta_attributes>
            </primitive>"#,
        )
        .unwrap();
        assert_eq!(d.agent, "fence_ipmilan");
        assert_eq!(d.params.keys().collect::<Vec<_>>(), ["ip"]);
        assert_eq!(d.port_for("n2"), "2");
        assert_eq!(d.port_for("n9"), "n9");
        let none = caps(&[], &[]);
        assert_eq!(d.host_check(&none), HostCheck::StaticList);
        assert_eq!(d.can_fence_statically("n1", &none), Some(true));
        assert_eq!(d.can_fence_statically("n3", &none), Some(false));
        assert_eq!(d.agent_action("reboot"), "off");
        assert_eq!(d.agent_action("on"), "on");
        assert_eq!(d.timeout_ms("off", 60_000), 90_000);
        assert_eq!(d.timeout_ms("reboot", 60_000), 60_000);
        assert_eq!((d.retries("off"), d.retries("on")), (4, 2));
        assert_eq!(d.priority, 10);
        assert_eq!(d.delay_ms(0.0), 2_000);
        assert_eq!(d.delay_ms(0.5), 3_500);
        assert!(d.delay_ms(0.999) <= 5_000);
    }

    #[test]
    fn defaults_follow_the_agent() {
        let d = device(r#"<primitive id="d" class="stonith" type="fence_x"/>"#).unwrap();
        assert_eq!(
            d.host_check(&caps(&["list", "status"], &[])),
            HostCheck::DynamicList
        );
        assert_eq!(d.host_check(&caps(&["status"], &[])), HostCheck::Status);
        assert_eq!(d.host_check(&caps(&[], &[])), HostCheck::None);
        assert_eq!(
            d.host_argument(&caps(&[], &["port", "plug"])).as_deref(),
            Some("port")
        );
        assert_eq!(
            d.host_argument(&caps(&[], &["plug"])).as_deref(),
            Some("plug")
        );
        assert_eq!(d.can_fence_statically("any", &caps(&[], &[])), Some(true));
        assert_eq!(d.can_fence_statically("any", &caps(&["list"], &[])), None);
        assert!(d.enabled && !d.unfencing);
        let off = device(
            r#"<primitive id="d" class="stonith" type="fence_x">
              <instance_attributes id="a"><nvpair id="1" name="pcmk_host_argument" value="none"/>
              <nvpair id="2" name="provides" value="unfencing"/></instance_attributes>
              <meta_attributes id="m"><nvpair id="3" name="target-role" value="Stopped"/></meta_attributes>
            </primitive>"#,
        )
        .unwrap();
        assert_eq!(off.host_argument(&caps(&[], &["port"])), None);
        assert!(off.unfencing && !off.enabled);
    }

    #[test]
    fn mistakes_are_named() {
        for (attrs, want) in [
            (
                r#"<nvpair id="1" name="pcmk_host_check" value="sometimes"/>"#,
                "pcmk_host_check",
            ),
            (
                r#"<nvpair id="1" name="pcmk_host_check" value="static-list"/>"#,
                "needs pcmk_host_list",
            ),
            (
                r#"<nvpair id="1" name="pcmk_host_map" value="n1"/>"#,
                "NODE:PORT",
            ),
            (
                r#"<nvpair id="1" name="pcmk_delay_max" value="soon"/>"#,
                "not a duration",
            ),
            (
                r#"<nvpair id="1" name="pcmk_off_retries" value="x"/>"#,
                "not a number",
            ),
        ] {
            let xml = format!(
                r#"<primitive id="d" class="stonith" type="fence_x"><instance_attributes id="a">{attrs}</instance_attributes></primitive>"#
            );
            let e = device(&xml).unwrap_err().to_string();
            assert!(e.contains(want) && e.starts_with("fence device d:"), "{e}");
        }
        let e = device(r#"<primitive id="d" class="stonith" type="../x"/>"#).unwrap_err();
        assert!(e.message.contains("invalid fence agent"));
    }

    #[test]
    fn finds_every_device() {
        let doc = Document::parse(
            r#"<configuration><resources>
              <primitive id="a" class="stonith" type="fence_a"/>
              <primitive id="web" class="ocf" provider="heartbeat" type="Dummy"/>
              <group id="g"><primitive id="b" class="stonith" type="fence_b"/></group>
              <primitive id="bad" class="stonith" type=""/>
            </resources></configuration>"#,
        )
        .unwrap();
        let (devs, problems) = devices(&doc.root);
        assert_eq!(
            devs.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(problems.len(), 1);
    }
}
