//! The fencing configuration: devices, topology, node attributes and the
//! fencing timeout, from the CIB's `configuration`.

use std::collections::BTreeMap;

use vigil_cib::xml::{Document, Element};
use vigil_fencer::device::{self, Device};
use vigil_fencer::topology::{self, Level};

/// Pacemaker's default `fencing-timeout`.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

/// What the fencer uses of the CIB.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub devices: Vec<Device>,
    pub levels: Vec<Level>,
    /// Each node's (unconditional) attributes, for topology levels by
    /// attribute.
    pub node_attrs: BTreeMap<String, BTreeMap<String, String>>,
    /// The node names the CIB knows.
    pub nodes: Vec<String>,
    /// `fencing-timeout` (`stonith-timeout`).
    pub timeout_ms: u64,
    /// Everything left out, in words.
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the `configuration` element (the whole `<cib>` is accepted
    /// too).
    pub fn from_xml(xml: &str) -> Result<Config, String> {
        let doc = Document::parse(xml).map_err(|e| format!("the CIB is not valid XML: {e}"))?;
        let conf = if doc.root.name == "configuration" {
            &doc.root
        } else {
            doc.root
                .child("configuration")
                .ok_or("the CIB has no configuration section")?
        };
        Ok(Config::from_element(conf))
    }

    pub fn from_element(conf: &Element) -> Config {
        let (devices, dev_problems) = device::devices(conf);
        let (levels, mut problems) = topology::levels(conf);
        problems.extend(dev_problems.into_iter().map(|p| p.to_string()));
        let mut node_attrs = BTreeMap::new();
        let mut nodes = Vec::new();
        if let Some(ns) = conf.child("nodes") {
            for n in ns.children_named("node") {
                let Some(name) = n.attr("uname") else {
                    continue;
                };
                nodes.push(name.to_string());
                let mut attrs = BTreeMap::new();
                for set in n.children_named("instance_attributes") {
                    if set.child("rule").is_some() {
                        continue;
                    }
                    for nv in set.children_named("nvpair") {
                        if let (Some(k), Some(v)) = (nv.attr("name"), nv.attr("value")) {
                            attrs.entry(k.to_string()).or_insert_with(|| v.to_string());
                        }
                    }
                }
                node_attrs.insert(name.to_string(), attrs);
            }
        }
        let mut timeout_ms = DEFAULT_TIMEOUT_MS;
        if let Some(cc) = conf.child("crm_config") {
            for set in cc.children_named("cluster_property_set") {
                for nv in set.children_named("nvpair") {
                    if matches!(nv.attr("name"), Some("fencing-timeout" | "stonith-timeout"))
                        && let Some(ms) = nv
                            .attr("value")
                            .and_then(vigil_cib::time::parse_interval_ms)
                    {
                        timeout_ms = ms;
                    }
                }
            }
        }
        Config {
            devices,
            levels,
            node_attrs,
            nodes,
            timeout_ms,
            problems,
        }
    }

    pub fn device(&self, id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_devices_levels_nodes_and_timeout() {
        let c = Config::from_xml(
            r#"<cib><configuration>
              <crm_config><cluster_property_set id="o"><nvpair id="t" name="stonith-timeout" value="90s"/></cluster_property_set></crm_config>
              <nodes><node id="1" uname="n1"><instance_attributes id="a"><nvpair id="r" name="rack" value="r1"/></instance_attributes></node></nodes>
              <resources><primitive id="f" class="stonith" type="fence_dummy"/></resources>
              <fencing-topology><fencing-level id="l" target="n1" index="1" devices="f"/></fencing-topology>
            </configuration></cib>"#,
        )
        .unwrap();
        assert_eq!(c.timeout_ms, 90_000);
        assert_eq!(c.devices.len(), 1);
        assert_eq!(c.levels.len(), 1);
        assert_eq!(c.node_attrs["n1"]["rack"], "r1");
        assert_eq!(c.nodes, ["n1"]);
        assert!(
            Config::from_xml("<cib/>")
                .unwrap_err()
                .contains("no configuration")
        );
    }
}
