//! Resource agent references: `class[:provider]:type`, as the CIB's
//! `primitive` element names them (`class`, `provider`, `type`).

use std::fmt;

/// The standard an agent follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Open Cluster Framework agents, `/usr/lib/ocf/resource.d/PROVIDER/TYPE`.
    Ocf,
    /// LSB init scripts, `/etc/init.d/TYPE`.
    Lsb,
    /// systemd units, driven through systemd's D-Bus API.
    Systemd,
    /// `lsb` or `systemd`, whichever the node has for the name (systemd
    /// first).
    Service,
    /// Fence devices: run by vigil-fenced, not by the executor.
    Stonith,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Ocf,
        Class::Lsb,
        Class::Systemd,
        Class::Service,
        Class::Stonith,
    ];

    pub fn parse(s: &str) -> Option<Class> {
        Some(match s {
            "ocf" => Class::Ocf,
            "lsb" => Class::Lsb,
            "systemd" => Class::Systemd,
            "service" => Class::Service,
            "stonith" => Class::Stonith,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Ocf => "ocf",
            Class::Lsb => "lsb",
            Class::Systemd => "systemd",
            Class::Service => "service",
            Class::Stonith => "stonith",
        }
    }

    /// Whether agents of this class have providers (only OCF).
    pub fn has_provider(self) -> bool {
        self == Class::Ocf
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One agent: its class, provider (OCF only) and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentRef {
    pub class: Class,
    pub provider: Option<String>,
    pub kind: String,
}

/// Why an agent reference is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AgentError(pub String);

impl AgentRef {
    /// Builds a reference from its three parts (as the CIB gives them),
    /// checking that each is a plain name: agents are found by path, so
    /// `/`, `..` and control characters are refused.
    pub fn new(class: &str, provider: Option<&str>, kind: &str) -> Result<AgentRef, AgentError> {
        let class_v = Class::parse(class).ok_or_else(|| {
            AgentError(format!(
                "unknown agent class {class:?} (expected one of: ocf, lsb, systemd, service, stonith)"
            ))
        })?;
        let provider = provider.filter(|p| !p.is_empty());
        match (class_v.has_provider(), provider) {
            (true, None) => {
                return Err(AgentError(format!(
                    "an ocf agent needs a provider (ocf:PROVIDER:{kind}, e.g. ocf:heartbeat:{kind})"
                )));
            }
            (false, Some(p)) => {
                return Err(AgentError(format!(
                    "{class} agents have no provider (got {p:?}); write {class}:{kind}"
                )));
            }
            _ => {}
        }
        if let Some(p) = provider {
            check_name("provider", p)?;
        }
        if class_v == Class::Lsb && kind.starts_with('/') {
            // An LSB script may be named by its full path.
            if kind.split('/').any(|part| part == "..") || kind.chars().any(char::is_control) {
                return Err(AgentError(format!("invalid init script path {kind:?}")));
            }
        } else {
            check_name("agent type", kind)?;
        }
        Ok(AgentRef {
            class: class_v,
            provider: provider.map(str::to_string),
            kind: kind.to_string(),
        })
    }

    /// Parses `ocf:heartbeat:IPaddr2`, `lsb:apache2`, `systemd:nginx`,
    /// `stonith:fence_ipmilan`.
    pub fn parse(spec: &str) -> Result<AgentRef, AgentError> {
        let mut parts = spec.splitn(3, ':');
        let class = parts.next().unwrap_or_default();
        let second = parts.next();
        let third = parts.next();
        match (Class::parse(class), second, third) {
            (Some(Class::Ocf), Some(p), Some(t)) => AgentRef::new(class, Some(p), t),
            (Some(Class::Ocf), _, None) => Err(AgentError(format!(
                "{spec:?}: an ocf agent is written ocf:PROVIDER:TYPE (e.g. ocf:heartbeat:Dummy)"
            ))),
            (Some(_), Some(t), None) => AgentRef::new(class, None, t),
            (Some(_), Some(_), Some(_)) => Err(AgentError(format!(
                "{spec:?}: only ocf agents have a provider; write {class}:TYPE"
            ))),
            (Some(_), None, _) => Err(AgentError(format!(
                "{spec:?}: missing the agent type ({class}:TYPE)"
            ))),
            (None, _, _) => Err(AgentError(format!(
                "{spec:?}: unknown agent class {class:?} (expected ocf:PROVIDER:TYPE, lsb:TYPE, systemd:TYPE, service:TYPE or stonith:TYPE)"
            ))),
        }
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.provider {
            Some(p) => write!(f, "{}:{}:{}", self.class, p, self.kind),
            None => write!(f, "{}:{}", self.class, self.kind),
        }
    }
}

fn check_name(what: &str, s: &str) -> Result<(), AgentError> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | '+'));
    if ok {
        Ok(())
    } else {
        Err(AgentError(format!(
            "invalid {what} {s:?}: use letters, digits and - _ . @ + only"
        )))
    }
}

/// Whether `s` is a plain name a directory listing of agents may yield
/// (the same rule references follow).
pub fn is_plain_name(s: &str) -> bool {
    check_name("name", s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "ocf:heartbeat:IPaddr2",
            "lsb:apache2",
            "systemd:nginx.service",
            "systemd:getty@tty1",
            "stonith:fence_ipmilan",
            "service:sshd",
        ] {
            assert_eq!(AgentRef::parse(s).unwrap().to_string(), s);
        }
        let a = AgentRef::parse("ocf:pacemaker:Stateful").unwrap();
        assert_eq!(a.class, Class::Ocf);
        assert_eq!(a.provider.as_deref(), Some("pacemaker"));
        assert_eq!(a.kind, "Stateful");
        assert_eq!(
            AgentRef::parse("lsb:/opt/x/init").unwrap().kind,
            "/opt/x/init"
        );
    }

    #[test]
    fn refuses_with_reasons() {
        for (s, want) in [
            ("ocf:Dummy", "ocf:PROVIDER:TYPE"),
            ("foo:bar", "unknown agent class"),
            ("lsb:a:b", "only ocf agents"),
            ("ocf:heartbeat:../../bin/sh", "invalid agent type"),
            ("ocf:../x:Dummy", "invalid provider"),
            ("lsb:/etc/../bin/sh", "invalid init script path"),
            ("systemd", "missing the agent type"),
            ("ocf:heartbeat:", "invalid agent type"),
        ] {
            let e = AgentRef::parse(s).unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(
            AgentRef::new("lsb", Some("x"), "y")
                .unwrap_err()
                .to_string()
                .contains("no provider")
        );
    }
}
