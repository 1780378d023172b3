//! systemd units as resources: the unit name, the runtime drop-in that
//! hands the unit to the cluster, and how unit states and job results
//! become OCF results.

use vigil_types::{OpStatus, ocf};

use crate::Outcome;

/// The unit for an agent type: `nginx` is `nginx.service`; a name with a
/// unit suffix is kept.
pub fn unit_name(kind: &str) -> String {
    const SUFFIXES: [&str; 11] = [
        ".service",
        ".socket",
        ".target",
        ".mount",
        ".timer",
        ".path",
        ".swap",
        ".slice",
        ".scope",
        ".device",
        ".automount",
    ];
    if SUFFIXES.iter().any(|s| kind.ends_with(s)) {
        kind.to_string()
    } else {
        format!("{kind}.service")
    }
}

/// The cluster action a unit can perform: `start`, `stop`, `monitor`
/// (and its old name `status`), `reload` (a unit restart is not a reload).
pub fn supports(action: &str) -> bool {
    matches!(
        action,
        "start" | "stop" | "monitor" | "status" | "meta-data" | "validate-all"
    )
}

/// The runtime drop-in's file name, under
/// `/run/systemd/system/UNIT.d/`.
pub const DROP_IN_NAME: &str = "50-vigil.conf";

/// The runtime drop-in written before the cluster starts a unit: systemd
/// must not restart it behind the cluster's back, and at shutdown the
/// executor (which stops it first) goes down before the unit.
pub fn drop_in(unit: &str) -> String {
    format!(
        "# Written by vigil-execd: this unit is managed by the Vigil cluster.\n\
         [Unit]\n\
         Description=Cluster-controlled {unit}\n\
         Before=vigil-execd.service\n\
         \n\
         [Service]\n\
         Restart=no\n"
    )
}

/// A monitor's answer from the unit's `ActiveState`: active or reloading
/// is running; activating or deactivating is still pending (reported as an
/// error so the monitor is retried, with the state in the reason); inactive
/// and failed are not running.
pub fn monitor_outcome(load_state: &str, active_state: &str, sub_state: &str) -> Outcome {
    if load_state == "not-found" {
        return Outcome {
            rc: ocf::NOT_INSTALLED,
            status: OpStatus::NotInstalled,
            exit_reason: "the unit does not exist".into(),
        };
    }
    match active_state {
        "active" | "reloading" => Outcome::done(ocf::OK),
        "inactive" => Outcome::done(ocf::NOT_RUNNING),
        "failed" => Outcome::done(ocf::NOT_RUNNING)
            .with_reason(format!("the unit has failed ({sub_state})")),
        "activating" | "deactivating" => Outcome {
            rc: ocf::UNKNOWN_ERROR,
            status: OpStatus::Pending,
            exit_reason: format!("the unit is {active_state} ({sub_state})"),
        },
        other => Outcome {
            rc: ocf::UNKNOWN_ERROR,
            status: OpStatus::Error,
            exit_reason: format!("the unit is in an unknown state {other:?} ({sub_state})"),
        },
    }
}

/// A start or stop job's result (`JobRemoved`'s `result`: done, canceled,
/// timeout, failed, dependency, skipped) as an OCF result.
pub fn job_outcome(action: &str, result: &str) -> Outcome {
    match result {
        "done" => Outcome::done(ocf::OK),
        "timeout" => Outcome {
            rc: ocf::UNKNOWN_ERROR,
            status: OpStatus::Timeout,
            exit_reason: format!("systemd's {action} job timed out"),
        },
        other => Outcome {
            rc: ocf::UNKNOWN_ERROR,
            status: OpStatus::Done,
            exit_reason: format!("systemd's {action} job ended with {other:?}"),
        },
    }
}

/// Agent metadata for a unit, from its description.
pub fn metadata(unit: &str, description: &str) -> String {
    crate::metadata::service_metadata(
        unit,
        &format!("{unit} (systemd unit)"),
        description,
        description,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(unit_name("nginx"), "nginx.service");
        assert_eq!(unit_name("getty@tty1"), "getty@tty1.service");
        assert_eq!(unit_name("web.socket"), "web.socket");
    }

    #[test]
    fn states() {
        assert_eq!(monitor_outcome("loaded", "active", "running").rc, ocf::OK);
        assert_eq!(
            monitor_outcome("loaded", "inactive", "dead").rc,
            ocf::NOT_RUNNING
        );
        let failed = monitor_outcome("loaded", "failed", "failed");
        assert_eq!(failed.rc, ocf::NOT_RUNNING);
        assert!(failed.exit_reason.contains("failed"));
        assert_eq!(
            monitor_outcome("loaded", "activating", "start").status,
            OpStatus::Pending
        );
        assert_eq!(
            monitor_outcome("not-found", "inactive", "dead").rc,
            ocf::NOT_INSTALLED
        );
        assert_eq!(job_outcome("start", "done").rc, ocf::OK);
        assert_eq!(job_outcome("start", "timeout").status, OpStatus::Timeout);
        assert!(
            job_outcome("start", "dependency")
                .exit_reason
                .contains("dependency")
        );
        assert!(drop_in("x.service").contains("Restart=no"));
    }
}
