//! `fencing-topology`: for a target, levels 1–9 of devices; all devices of
//! a level must succeed, and levels are tried in order until one does.

use std::collections::BTreeMap;

use vigil_cib::xml::Element;

use crate::device::Device;

/// Which nodes a level is for.
#[derive(Debug, Clone)]
pub enum LevelTarget {
    Name(String),
    Pattern(regex_lite::Regex),
    Attribute { name: String, value: String },
}

impl LevelTarget {
    pub fn matches(&self, node: &str, attrs: &BTreeMap<String, String>) -> bool {
        match self {
            LevelTarget::Name(n) => n == node,
            LevelTarget::Pattern(re) => re.is_match(node),
            LevelTarget::Attribute { name, value } => attrs.get(name) == Some(value),
        }
    }
}

/// One `fencing-level`.
#[derive(Debug, Clone)]
pub struct Level {
    pub id: String,
    pub index: u32,
    pub target: LevelTarget,
    pub devices: Vec<String>,
}

/// The levels of a CIB's `configuration`, and the problems of those left
/// out.
pub fn levels(configuration: &Element) -> (Vec<Level>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let Some(topo) = configuration.child("fencing-topology") else {
        return (out, problems);
    };
    for el in topo.children_named("fencing-level") {
        let id = el.attr("id").unwrap_or_default().to_string();
        let index = match el.attr("index").and_then(|i| i.trim().parse::<u32>().ok()) {
            Some(i @ 1..=9) => i,
            _ => {
                problems.push(format!(
                    "fencing level {id}: index {:?} is not 1 to 9",
                    el.attr("index").unwrap_or_default()
                ));
                continue;
            }
        };
        let target = match (
            el.attr("target"),
            el.attr("target-pattern"),
            el.attr("target-attribute"),
        ) {
            (Some(t), None, None) => LevelTarget::Name(t.to_string()),
            (None, Some(p), None) => {
                // A pattern matches the whole name... or part of it, as
                // Pacemaker's regexec does: unanchored.
                match regex_lite::Regex::new(p) {
                    Ok(re) => LevelTarget::Pattern(re),
                    Err(e) => {
                        problems.push(format!(
                            "fencing level {id}: invalid target-pattern {p:?}: {e}"
                        ));
                        continue;
                    }
                }
            }
            (None, None, Some(a)) => match el.attr("target-value") {
                Some(v) => LevelTarget::Attribute {
                    name: a.to_string(),
                    value: v.to_string(),
                },
                None => {
                    problems.push(format!(
                        "fencing level {id}: target-attribute {a:?} needs a target-value"
                    ));
                    continue;
                }
            },
            _ => {
                problems.push(format!(
                    "fencing level {id}: needs exactly one of target, target-pattern, target-attribute"
                ));
                continue;
            }
        };
        let devices: Vec<String> = el
            .attr("devices")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        if devices.is_empty() {
            problems.push(format!("fencing level {id}: names no devices"));
            continue;
        }
        out.push(Level {
            id,
            index,
            target,
            devices,
        });
    }
    (out, problems)
}

/// A level of a plan: the devices that must all succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The topology index (0 without a topology).
    pub index: u32,
    pub devices: Vec<String>,
}

/// The levels to try for `target`, in order. With a topology for the
/// target: its levels by index (a level naming a device that does not
/// exist or is disabled cannot succeed and is left out, with a note).
/// Without: each enabled device that can fence the target as a level of
/// its own, by priority (highest first) then id.
pub fn plan(
    target: &str,
    attrs: &BTreeMap<String, String>,
    devices: &[Device],
    levels: &[Level],
    can_fence: &dyn Fn(&Device) -> bool,
) -> (Vec<Step>, Vec<String>) {
    let mut notes = Vec::new();
    let mut mine: Vec<&Level> = levels
        .iter()
        .filter(|l| l.target.matches(target, attrs))
        .collect();
    mine.sort_by_key(|l| l.index);
    let by_id: BTreeMap<&str, &Device> = devices.iter().map(|d| (d.id.as_str(), d)).collect();
    if !mine.is_empty() {
        let mut steps: Vec<Step> = Vec::new();
        for l in mine {
            if steps.iter().any(|s| s.index == l.index) {
                notes.push(format!(
                    "fencing level {} repeats index {} for {target}; the first one is used",
                    l.id, l.index
                ));
                continue;
            }
            let missing: Vec<&str> = l
                .devices
                .iter()
                .map(String::as_str)
                .filter(|d| !by_id.get(d).is_some_and(|d| d.enabled))
                .collect();
            if !missing.is_empty() {
                notes.push(format!(
                    "fencing level {} (index {}) for {target} is skipped: no usable device {}",
                    l.id,
                    l.index,
                    missing.join(", ")
                ));
                continue;
            }
            steps.push(Step {
                index: l.index,
                devices: l.devices.clone(),
            });
        }
        return (steps, notes);
    }
    let mut capable: Vec<&Device> = devices
        .iter()
        .filter(|d| d.enabled && can_fence(d))
        .collect();
    capable.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.id.cmp(&b.id)));
    let steps = capable
        .into_iter()
        .map(|d| Step {
            index: 0,
            devices: vec![d.id.clone()],
        })
        .collect();
    (steps, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_cib::xml::Document;

    const CONFIG: &str = r#"<configuration>
      <resources>
        <primitive id="ipmi-1" class="stonith" type="fence_ipmilan"/>
        <primitive id="psu-a" class="stonith" type="fence_apc"/>
        <primitive id="psu-b" class="stonith" type="fence_apc">
          <meta_attributes id="m"><nvpair id="p" name="priority" value="5"/></meta_attributes>
        </primitive>
        <primitive id="off" class="stonith" type="fence_x">
          <meta_attributes id="m2"><nvpair id="r" name="target-role" value="Stopped"/></meta_attributes>
        </primitive>
      </resources>
      <fencing-topology>
        <fencing-level id="l1" target="n1" index="1" devices="ipmi-1"/>
        <fencing-level id="l2" target="n1" index="2" devices="psu-a,psu-b"/>
        <fencing-level id="l3" target-pattern="^db" index="1" devices="psu-a"/>
        <fencing-level id="l4" target-attribute="rack" target-value="r2" index="2" devices="off"/>
        <fencing-level id="l5" target-attribute="rack" target-value="r2" index="1" devices="psu-b"/>
        <fencing-level id="bad1" target="n1" index="12" devices="x"/>
        <fencing-level id="bad2" target="n1" target-pattern="n" index="3" devices="x"/>
        <fencing-level id="bad3" target="n1" index="4"/>
      </fencing-topology>
    </configuration>"#;

    #[test]
    fn levels_by_name_pattern_and_attribute() {
        let doc = Document::parse(CONFIG).unwrap();
        let (devices, _) = crate::device::devices(&doc.root);
        let (levels, problems) = levels(&doc.root);
        assert_eq!(problems.len(), 3, "{problems:?}");
        let none = BTreeMap::new();
        let all = |_: &Device| true;
        let (steps, notes) = plan("n1", &none, &devices, &levels, &all);
        assert_eq!(
            steps,
            [
                Step {
                    index: 1,
                    devices: vec!["ipmi-1".into()]
                },
                Step {
                    index: 2,
                    devices: vec!["psu-a".into(), "psu-b".into()]
                },
            ]
        );
        assert!(notes.is_empty());
        let (steps, _) = plan("db3", &none, &devices, &levels, &all);
        assert_eq!(
            steps,
            [Step {
                index: 1,
                devices: vec!["psu-a".into()]
            }]
        );
        let rack2 = BTreeMap::from([("rack".to_string(), "r2".to_string())]);
        let (steps, notes) = plan("x9", &rack2, &devices, &levels, &all);
        assert_eq!(
            steps,
            [Step {
                index: 1,
                devices: vec!["psu-b".into()]
            }]
        );
        assert!(notes[0].contains("no usable device off"), "{notes:?}");
        // No topology for the node: every capable device, by priority.
        let (steps, _) = plan("n7", &none, &devices, &levels, &|d| d.id != "ipmi-1");
        let order: Vec<_> = steps.iter().map(|s| s.devices[0].as_str()).collect();
        assert_eq!(order, ["psu-b", "psu-a"]);
    }
}
