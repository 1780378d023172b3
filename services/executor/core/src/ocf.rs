//! The OCF resource agent API (OCF 1.1, with Pacemaker's conventions): where
//! agents live, the environment they are called with, and how their exit
//! becomes a result.

use std::collections::BTreeMap;

use vigil_types::{OpStatus, ocf};

use crate::{Exit, Outcome};

/// The default OCF root.
pub const DEFAULT_ROOT: &str = "/usr/lib/ocf";

/// The version of the OCF API the executor implements, as agents are told.
pub const API_VERSION: (u32, u32) = (1, 1);

/// The agent's path: `ROOT/resource.d/PROVIDER/TYPE`.
pub fn agent_path(root: &str, provider: &str, kind: &str) -> String {
    format!(
        "{}/resource.d/{provider}/{kind}",
        root.trim_end_matches('/')
    )
}

/// What an OCF agent needs to know about one call besides its action.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// `OCF_RESOURCE_INSTANCE`: the resource id (`name:N` for a clone
    /// instance).
    pub instance: &'a str,
    pub provider: &'a str,
    pub kind: &'a str,
    pub action: &'a str,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// The resource's parameters (`instance_attributes`, and the
    /// operation's own such as `OCF_CHECK_LEVEL`).
    pub params: &'a BTreeMap<String, String>,
    /// Meta-attributes the cluster passes (clone, promotable and notify
    /// variables, `on_node`, ...), named as in the CIB (`clone-max`).
    pub meta: &'a BTreeMap<String, String>,
    /// This node's name (`OCF_RESKEY_CRM_meta_on_node` unless given).
    pub node: &'a str,
}

/// The environment of one OCF call (besides the executor's base
/// environment such as `PATH`): `OCF_ROOT`, the API version, the instance,
/// type and provider, every parameter as `OCF_RESKEY_name`, every
/// meta-attribute as `OCF_RESKEY_CRM_meta_name` (with `-` written `_`, as
/// agents read them), the operation's `interval`, `timeout` and `name`,
/// `OCF_CHECK_LEVEL` for deeper monitors, and `OCF_TRACE_RA` when the
/// resource's `trace_ra` meta-attribute is set.
pub fn environment(root: &str, call: &Call<'_>) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |k: String, v: String| {
        env.insert(k, v);
    };
    set("OCF_ROOT".into(), root.to_string());
    set("OCF_RA_VERSION_MAJOR".into(), API_VERSION.0.to_string());
    set("OCF_RA_VERSION_MINOR".into(), API_VERSION.1.to_string());
    set("OCF_RESOURCE_INSTANCE".into(), call.instance.to_string());
    set("OCF_RESOURCE_TYPE".into(), call.kind.to_string());
    set("OCF_RESOURCE_PROVIDER".into(), call.provider.to_string());
    for (k, v) in call.params {
        set(format!("OCF_RESKEY_{k}"), v.clone());
    }
    for (k, v) in call.meta {
        set(
            format!("OCF_RESKEY_CRM_meta_{}", k.replace('-', "_")),
            v.clone(),
        );
    }
    // What the executor knows about the call wins over what was passed.
    set(
        "OCF_RESKEY_CRM_meta_interval".into(),
        call.interval_ms.to_string(),
    );
    set(
        "OCF_RESKEY_CRM_meta_timeout".into(),
        call.timeout_ms.to_string(),
    );
    set("OCF_RESKEY_CRM_meta_name".into(), call.action.to_string());
    if !call.meta.contains_key("on_node") && !call.meta.contains_key("on-node") {
        set("OCF_RESKEY_CRM_meta_on_node".into(), call.node.to_string());
    }
    let level = call
        .params
        .get("OCF_CHECK_LEVEL")
        .or_else(|| call.meta.get("OCF_CHECK_LEVEL"))
        .or_else(|| call.meta.get("depth"));
    if let Some(level) = level {
        set("OCF_CHECK_LEVEL".into(), level.clone());
        set("OCF_RESKEY_OCF_CHECK_LEVEL".into(), level.clone());
    }
    if call
        .meta
        .get("trace_ra")
        .is_some_and(|v| crate::executor::is_true(v))
    {
        set("OCF_TRACE_RA".into(), "1".into());
    }
    env.into_iter().collect()
}

/// An OCF agent's result: its exit code as the OCF API defines it (0–9,
/// 190 and 191 keep their meaning; anything else is an error with the
/// code in the reason), the executor's own failures otherwise, and the
/// agent's `ocf-exit-reason:`.
pub fn outcome(exit: &Exit, stderr: &str, timeout_ms: u64) -> Outcome {
    if let Some(o) = Outcome::from_abnormal_exit(exit, timeout_ms) {
        return o;
    }
    let Exit::Code(code) = *exit else {
        unreachable!("abnormal exits are handled above")
    };
    let reason = crate::exit_reason_from(stderr).unwrap_or_default();
    match code {
        ocf::OK..=ocf::FAILED_PROMOTED | ocf::DEGRADED | ocf::DEGRADED_PROMOTED => {
            let status = crate::status_of_code(code);
            Outcome {
                rc: code,
                status,
                exit_reason: reason,
            }
        }
        _ => Outcome {
            rc: ocf::UNKNOWN_ERROR,
            status: OpStatus::Error,
            exit_reason: if reason.is_empty() {
                format!("the agent exited with {code}, which the OCF API does not define")
            } else {
                format!("{reason} (exit code {code}, which the OCF API does not define)")
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(
        params: &'a BTreeMap<String, String>,
        meta: &'a BTreeMap<String, String>,
    ) -> Call<'a> {
        Call {
            instance: "db:1",
            provider: "pacemaker",
            kind: "Stateful",
            action: "monitor",
            interval_ms: 10_000,
            timeout_ms: 20_000,
            params,
            meta,
            node: "n1",
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_follows_the_api() {
        let params = map(&[("state", "/tmp/s"), ("OCF_CHECK_LEVEL", "10")]);
        let meta = map(&[
            ("clone-max", "3"),
            ("notify_start_uname", "n2 n3"),
            ("timeout", "1"),
            ("trace_ra", "true"),
        ]);
        let env: BTreeMap<_, _> = environment("/usr/lib/ocf", &call(&params, &meta))
            .into_iter()
            .collect();
        let want = [
            ("OCF_ROOT", "/usr/lib/ocf"),
            ("OCF_RA_VERSION_MAJOR", "1"),
            ("OCF_RA_VERSION_MINOR", "1"),
            ("OCF_RESOURCE_INSTANCE", "db:1"),
            ("OCF_RESOURCE_TYPE", "Stateful"),
            ("OCF_RESOURCE_PROVIDER", "pacemaker"),
            ("OCF_RESKEY_state", "/tmp/s"),
            ("OCF_RESKEY_CRM_meta_clone_max", "3"),
            ("OCF_RESKEY_CRM_meta_notify_start_uname", "n2 n3"),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_RESKEY_CRM_meta_name", "monitor"),
            ("OCF_RESKEY_CRM_meta_on_node", "n1"),
            ("OCF_CHECK_LEVEL", "10"),
            ("OCF_RESKEY_OCF_CHECK_LEVEL", "10"),
            ("OCF_TRACE_RA", "1"),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
    }

    #[test]
    fn every_exit_code() {
        for code in 0..=255 {
            let o = outcome(&Exit::Code(code), "", 1000);
            match code {
                0..=9 | 190 | 191 => {
                    assert_eq!(o.rc, code);
                    let status = match code {
                        3 => OpStatus::NotSupported,
                        5 => OpStatus::NotInstalled,
                        _ => OpStatus::Done,
                    };
                    assert_eq!(o.status, status, "{code}");
                }
                _ => {
                    assert_eq!(o.rc, ocf::UNKNOWN_ERROR, "{code}");
                    assert_eq!(o.status, OpStatus::Error);
                    assert!(o.exit_reason.contains(&code.to_string()), "{o:?}");
                }
            }
        }
        let o = outcome(&Exit::Code(1), "x\nocf-exit-reason:disk full\n", 1000);
        assert_eq!(o.exit_reason, "disk full");
        let o = outcome(&Exit::TimedOut, "", 20_000);
        assert_eq!((o.rc, o.status), (ocf::UNKNOWN_ERROR, OpStatus::Timeout));
        assert!(o.exit_reason.contains("20s"));
        let o = outcome(&Exit::NotFound, "", 1);
        assert_eq!(
            (o.rc, o.status),
            (ocf::NOT_INSTALLED, OpStatus::NotInstalled)
        );
        let o = outcome(&Exit::Signal(9), "", 1);
        assert!(o.exit_reason.contains("signal 9"));
    }
}
