//! The transition graph: Pacemaker's `transition_graph` XML (what the
//! scheduler writes with `-G`), as synapses of actions and the actions
//! each waits for.

use std::collections::BTreeMap;

use vigil_cib::xml::{Document, Element};

/// What kind of action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A resource operation, run by a node's executor.
    Rsc,
    /// A cluster action: fencing (`stonith`), a node's shutdown, ...
    Cluster,
    /// A marker with nothing to run (group started, clone stopped, ...):
    /// complete as soon as it may start.
    Pseudo,
}

/// The resource an operation is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    /// The instance's full id for clones (`long-id`), if different.
    pub long_id: Option<String>,
    pub class: String,
    pub provider: Option<String>,
    pub kind: String,
}

/// One action of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub id: u32,
    pub kind: Kind,
    /// `start`, `monitor`, `stonith`, `do_shutdown`, `running`, ...
    pub operation: String,
    /// `RSC_OPERATION_INTERVAL`, or the cluster action's key.
    pub key: String,
    pub node: Option<String>,
    pub node_uuid: Option<String>,
    pub resource: Option<Resource>,
    /// The action's attributes: the resource's parameters and the
    /// `CRM_meta_*` the cluster passes.
    pub attributes: BTreeMap<String, String>,
}

impl Action {
    /// A meta-attribute (`CRM_meta_NAME`).
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(&format!("CRM_meta_{name}"))
            .map(String::as_str)
    }

    /// The operation's interval.
    pub fn interval_ms(&self) -> u64 {
        self.meta("interval")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The operation's timeout (`CRM_meta_timeout`), if any.
    pub fn timeout_ms(&self) -> Option<u64> {
        self.meta("timeout").and_then(|v| v.parse().ok())
    }

    /// The result that counts as success (`CRM_meta_op_target_rc`, else 0).
    pub fn target_rc(&self) -> i32 {
        self.meta("op_target_rc")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// The resource's parameters (attributes without the `CRM_meta_`
    /// ones).
    pub fn params(&self) -> BTreeMap<String, String> {
        self.attributes
            .iter()
            .filter(|(k, _)| !k.starts_with("CRM_meta_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The meta-attributes the agent is told (`CRM_meta_` removed).
    pub fn metas(&self) -> BTreeMap<String, String> {
        self.attributes
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("CRM_meta_")
                    .map(|n| (n.to_string(), v.clone()))
            })
            .collect()
    }
}

/// A step: its actions start together once every input is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synapse {
    pub id: u32,
    pub priority: i32,
    pub actions: Vec<u32>,
    pub inputs: Vec<u32>,
}

/// A whole graph.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Graph {
    pub transition_id: u64,
    /// `cluster-delay`: how much longer than its own timeout an action may
    /// take before it counts as lost.
    pub cluster_delay_ms: u64,
    /// `fencing-timeout`.
    pub fencing_timeout_ms: u64,
    pub synapses: Vec<Synapse>,
    pub actions: BTreeMap<u32, Action>,
}

/// Why a graph cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid transition graph: {0}")]
pub struct GraphError(pub String);

fn err(m: impl Into<String>) -> GraphError {
    GraphError(m.into())
}

fn ms(el: &Element, name: &str, default: u64) -> u64 {
    el.attr(name)
        .and_then(vigil_cib::time::parse_interval_ms)
        .unwrap_or(default)
}

fn action_from(el: &Element) -> Result<Action, GraphError> {
    let kind = match el.name.as_str() {
        "rsc_op" => Kind::Rsc,
        "crm_event" => Kind::Cluster,
        "pseudo_event" => Kind::Pseudo,
        other => return Err(err(format!("unknown action element <{other}>"))),
    };
    let id = el
        .attr("id")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| err(format!("<{}> without a numeric id", el.name)))?;
    let resource = el.child("primitive").map(|p| Resource {
        id: p.attr("id").unwrap_or_default().to_string(),
        long_id: p.attr("long-id").map(str::to_string),
        class: p.attr("class").unwrap_or_default().to_string(),
        provider: p.attr("provider").map(str::to_string),
        kind: p.attr("type").unwrap_or_default().to_string(),
    });
    if kind == Kind::Rsc && resource.is_none() {
        return Err(err(format!("resource operation {id} names no primitive")));
    }
    let attributes = el
        .child("attributes")
        .map(|a| a.attrs.iter().cloned().collect())
        .unwrap_or_default();
    Ok(Action {
        id,
        kind,
        operation: el.attr("operation").unwrap_or_default().to_string(),
        key: el.attr("operation_key").unwrap_or_default().to_string(),
        node: el.attr("on_node").map(str::to_string),
        node_uuid: el.attr("on_node_uuid").map(str::to_string),
        resource,
        attributes,
    })
}

impl Graph {
    /// Reads a graph.
    pub fn parse(xml: &str) -> Result<Graph, GraphError> {
        let doc = Document::parse(xml).map_err(|e| err(e.to_string()))?;
        let root = &doc.root;
        if root.name != "transition_graph" {
            return Err(err(format!(
                "the root is <{}>, not <transition_graph>",
                root.name
            )));
        }
        let mut g = Graph {
            transition_id: root
                .attr("transition_id")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            cluster_delay_ms: ms(root, "cluster-delay", 60_000),
            fencing_timeout_ms: ms(root, "fencing-timeout", 60_000),
            ..Default::default()
        };
        for s in root.children_named("synapse") {
            let id = s
                .attr("id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| err("a synapse without a numeric id"))?;
            let mut actions = Vec::new();
            for set in s.children_named("action_set") {
                for a in set.elements() {
                    let a = action_from(a)?;
                    actions.push(a.id);
                    if g.actions.insert(a.id, a).is_some() {
                        return Err(err(format!(
                            "action {} appears twice",
                            actions.last().unwrap_or(&0)
                        )));
                    }
                }
            }
            let mut inputs = Vec::new();
            if let Some(ins) = s.child("inputs") {
                for t in ins.children_named("trigger") {
                    for a in t.elements() {
                        let aid = a.attr("id").and_then(|v| v.parse().ok()).ok_or_else(|| {
                            err(format!("synapse {id}: a trigger without a numeric id"))
                        })?;
                        inputs.push(aid);
                    }
                }
            }
            g.synapses.push(Synapse {
                id,
                priority: s.attr("priority").and_then(|v| v.parse().ok()).unwrap_or(0),
                actions,
                inputs,
            });
        }
        for s in &g.synapses {
            if let Some(missing) = s.inputs.iter().find(|i| !g.actions.contains_key(i)) {
                return Err(err(format!(
                    "synapse {} waits for action {missing}, which the graph does not have",
                    s.id
                )));
            }
        }
        Ok(g)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const GRAPH: &str = r#"<transition_graph cluster-delay="60s" fencing-timeout="90s" transition_id="7">
  <synapse id="0">
    <action_set>
      <rsc_op id="6" operation="monitor" operation_key="web_monitor_0" on_node="n2" on_node_uuid="2">
        <primitive id="web" class="ocf" provider="heartbeat" type="apache"/>
        <attributes CRM_meta_on_node="n2" CRM_meta_op_target_rc="7" CRM_meta_timeout="20000" configfile="/etc/a.conf"/>
      </rsc_op>
    </action_set>
    <inputs/>
  </synapse>
  <synapse id="1" priority="1000000">
    <action_set>
      <crm_event id="1" operation="stonith" operation_key="stonith-n3-reboot" on_node="n3" on_node_uuid="3">
        <attributes CRM_meta_on_node="n3" CRM_meta_stonith_action="reboot"/>
      </crm_event>
    </action_set>
    <inputs/>
  </synapse>
  <synapse id="2">
    <action_set>
      <pseudo_event id="20" operation="stop" operation_key="g_stop_0"><attributes CRM_meta_timeout="20000"/></pseudo_event>
    </action_set>
    <inputs><trigger><crm_event id="1" operation="stonith" operation_key="stonith-n3-reboot" on_node="n3"/></trigger></inputs>
  </synapse>
  <synapse id="3">
    <action_set>
      <rsc_op id="8" operation="start" operation_key="web_start_0" on_node="n2" on_node_uuid="2">
        <primitive id="web" class="ocf" provider="heartbeat" type="apache"/>
        <attributes CRM_meta_timeout="40000" configfile="/etc/a.conf"/>
      </rsc_op>
    </action_set>
    <inputs>
      <trigger><rsc_op id="6" operation="monitor" operation_key="web_monitor_0" on_node="n2"/></trigger>
      <trigger><pseudo_event id="20" operation="stop" operation_key="g_stop_0"/></trigger>
    </inputs>
  </synapse>
</transition_graph>"#;

    #[test]
    fn reads_a_graph() {
        let g = Graph::parse(GRAPH).unwrap();
        assert_eq!(
            (g.transition_id, g.cluster_delay_ms, g.fencing_timeout_ms),
            (7, 60_000, 90_000)
        );
        assert_eq!(g.synapses.len(), 4);
        assert_eq!(g.synapses[1].priority, 1_000_000);
        assert_eq!(g.synapses[3].inputs, [6, 20]);
        let probe = &g.actions[&6];
        assert_eq!(
            (probe.kind, probe.target_rc(), probe.timeout_ms()),
            (Kind::Rsc, 7, Some(20_000))
        );
        assert_eq!(probe.params().keys().collect::<Vec<_>>(), ["configfile"]);
        assert_eq!(probe.metas()["on_node"], "n2");
        assert_eq!(probe.resource.as_ref().unwrap().kind, "apache");
        assert_eq!(g.actions[&1].kind, Kind::Cluster);
        assert_eq!(g.actions[&20].kind, Kind::Pseudo);
    }

    #[test]
    fn refuses_broken_graphs() {
        assert!(
            Graph::parse("<cib/>")
                .unwrap_err()
                .0
                .contains("not <transition_graph>")
        );
        let dangling = r#"<transition_graph><synapse id="0"><action_set><pseudo_event id="1" operation="x"/></action_set>
            <inputs><trigger><pseudo_event id="9"/></trigger></inputs></synapse></transition_graph>"#;
        assert!(Graph::parse(dangling).unwrap_err().0.contains("action 9"));
        let bare = r#"<transition_graph><synapse id="0"><action_set><rsc_op id="1" operation="start"/></action_set></synapse></transition_graph>"#;
        assert!(
            Graph::parse(bare)
                .unwrap_err()
                .0
                .contains("names no primitive")
        );
    }
}
