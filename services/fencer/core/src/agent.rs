//! The fence-agent API: what an agent reads on stdin, what its exit codes
//! and outputs mean.

use std::collections::BTreeSet;

use crate::device::{Capabilities, Device};

/// The `key=value` lines a fence agent reads for one action: `action`
/// (the device's name for it), `nodename` and the host argument (`port`,
/// `plug`, ...) when there is a target, then the device's parameters.
/// Refuses values that would break the line format.
pub fn stdin(
    device: &Device,
    caps: &Capabilities,
    action: &str,
    target: Option<&str>,
) -> Result<String, String> {
    let mut lines = vec![format!("action={}", device.agent_action(action))];
    if let Some(t) = target {
        lines.push(format!("nodename={t}"));
        if let Some(arg) = device.host_argument(caps)
            && !device.params.contains_key(&arg)
        {
            lines.push(format!("{arg}={}", device.port_for(t)));
        }
    }
    for (k, v) in &device.params {
        if k == "action" || k == "nodename" {
            continue;
        }
        lines.push(format!("{k}={v}"));
    }
    for l in &lines {
        if l.contains(['\n', '\r', '\0']) {
            let key = l.split('=').next().unwrap_or_default();
            return Err(format!(
                "the value of {key} for device {} contains a line break or NUL",
                device.id
            ));
        }
    }
    let mut s = lines.join("\n");
    s.push('\n');
    Ok(s)
}

/// A target's power state as `status` reports it (exit 0 on, 2 off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
    /// The agent could not tell (exit 1 or anything else).
    Unknown(String),
}

/// `status`'s exit code as a power state.
pub fn power(code: Option<i32>, stderr: &str) -> Power {
    match code {
        Some(0) => Power::On,
        Some(2) => Power::Off,
        Some(c) => {
            Power::Unknown(reason(stderr).unwrap_or_else(|| format!("status exited with {c}")))
        }
        None => Power::Unknown(reason(stderr).unwrap_or_else(|| "status did not finish".into())),
    }
}

/// The last meaningful line an agent printed on stderr (fence agents
/// print `ERROR: ...` or a Python-style `Failed: ...`), cleaned and cut to
/// 256 bytes.
pub fn reason(stderr: &str) -> Option<String> {
    let line = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(256)
        .collect();
    Some(clean.trim().to_string()).filter(|s| !s.is_empty())
}

/// The targets a `list` output names: one `plug[,alias]` per line, both
/// names counting.
pub fn parse_list(stdout: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in stdout.lines().take(100_000) {
        for name in line.split(',') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(char::is_whitespace) {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// What an agent supports, from its `metadata` output.
pub fn capabilities(metadata: &str) -> Result<Capabilities, String> {
    let md = vigil_executor::metadata::parse(metadata).map_err(|e| e.to_string())?;
    Ok(Capabilities {
        actions: md.actions.into_iter().map(|a| a.name).collect(),
        parameters: md.parameters.into_iter().map(|p| p.name).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_cib::xml::Document;

    fn dev(attrs: &str) -> Device {
        let xml = format!(
            r#"<primitive id="d" class="stonith" type="fence_x"><instance_attributes id="a">{attrs}</instance_attributes></primitive>"#
        );
        Device::from_primitive(&Document::parse(&xml).unwrap().root).unwrap()
    }

    #[test]
    fn stdin_names_the_action_the_target_and_the_parameters() {
        let d = dev(
            r#"<nvpair id="1" name="ip" value="10.0.0.5"/><nvpair id="2" name="pcmk_host_map" value="n2:7"/>
               <nvpair id="3" name="pcmk_reboot_action" value="off"/>"#,
        );
        let caps = Capabilities::default();
        assert_eq!(
            stdin(&d, &caps, "reboot", Some("n2")).unwrap(),
            "action=off\nnodename=n2\nport=7\nip=10.0.0.5\n"
        );
        assert_eq!(
            stdin(&d, &caps, "monitor", None).unwrap(),
            "action=monitor\nip=10.0.0.5\n"
        );
        let none = dev(r#"<nvpair id="1" name="pcmk_host_argument" value="none"/>"#);
        assert_eq!(
            stdin(&none, &caps, "off", Some("n1")).unwrap(),
            "action=off\nnodename=n1\n"
        );
        let bad = dev(r#"<nvpair id="1" name="ip" value="a&#10;action=on"/>"#);
        assert!(
            stdin(&bad, &caps, "off", Some("n1"))
                .unwrap_err()
                .contains("line break")
        );
    }

    #[test]
    fn outputs() {
        assert_eq!(power(Some(0), ""), Power::On);
        assert_eq!(power(Some(2), ""), Power::Off);
        assert_eq!(
            power(Some(1), "x\nERROR: no route\n"),
            Power::Unknown("ERROR: no route".into())
        );
        assert_eq!(
            parse_list("n1,node1.example\nn2\n\n bad name \n")
                .into_iter()
                .collect::<Vec<_>>(),
            ["n1", "n2", "node1.example"]
        );
        let caps = capabilities(
            r#"<?xml version="1.0" ?><resource-agent name="fence_dummy" shortdesc="Dummy">
            <parameters><parameter name="plug" unique="0"><getopt mixed="-n"/><content type="string"/></parameter></parameters>
            <actions><action name="on"/><action name="off"/><action name="status"/><action name="list"/></actions>
            </resource-agent>"#,
        )
        .unwrap();
        assert!(caps.has_action("list") && caps.parameters.contains("plug"));
    }
}
