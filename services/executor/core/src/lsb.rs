//! LSB init scripts: `/etc/init.d/NAME ACTION`, the LSB exit codes, and
//! the usual ways real scripts stray from them.
//!
//! For `status` the LSB codes are 0 running, 1 dead with a pid file, 2 dead
//! with a lock file, 3 not running, 4 unknown; for every other action 0
//! success, 1 generic error, 2 invalid arguments, 3 unimplemented, 4
//! insufficient privilege, 5 not installed, 6 not configured, 7 not
//! running — the OCF codes 0–7 mean the same.
//!
//! Scripts that break the rules: a `start` of a running service or a `stop`
//! of a stopped one that fails, and `status` actions that are missing
//! (they print a usage line). The executor asks `status` after a failed
//! `start` or `stop` ([`needs_status_check`]) and believes it
//! ([`reconcile`]); a missing `status` is reported as unimplemented.

use vigil_types::{OpStatus, ocf};

use crate::{Exit, Outcome};

/// Where init scripts live.
pub const INIT_DIR: &str = "/etc/init.d";

/// The script's path: a full path as given, else `/etc/init.d/NAME`.
pub fn script_path(kind: &str) -> String {
    if kind.starts_with('/') {
        kind.to_string()
    } else {
        format!("{INIT_DIR}/{kind}")
    }
}

/// The script action for a cluster action: `monitor` is `status`; the
/// actions LSB defines pass as they are; anything else (promote, notify,
/// migrate_to, ...) is not something an init script can do.
pub fn script_action(action: &str) -> Option<&'static str> {
    Some(match action {
        "monitor" | "status" => "status",
        "start" => "start",
        "stop" => "stop",
        "restart" => "restart",
        "reload" | "reload-agent" => "force-reload",
        "force-reload" => "force-reload",
        _ => return None,
    })
}

/// The result of a cluster action the class cannot perform.
pub fn unsupported(action: &str) -> Outcome {
    Outcome {
        rc: ocf::UNIMPLEMENT_FEATURE,
        status: OpStatus::NotSupported,
        exit_reason: format!("init scripts have no {action:?} action"),
    }
}

/// Whether a script's output says it does not know the action (a usage
/// message), as scripts without `status` answer.
fn is_usage(output: &str) -> bool {
    let lower = output.to_ascii_lowercase();
    lower.contains("usage:") || lower.contains("usage ")
}

/// An init script's result for `action` (the cluster's name for it).
pub fn outcome(action: &str, exit: &Exit, output: &str, timeout_ms: u64) -> Outcome {
    if let Some(o) = Outcome::from_abnormal_exit(exit, timeout_ms) {
        return o;
    }
    let Exit::Code(code) = *exit else {
        unreachable!("abnormal exits are handled above")
    };
    if script_action(action) == Some("status") {
        return match code {
            0 => Outcome::done(ocf::OK),
            _ if is_usage(output) => Outcome {
                rc: ocf::UNIMPLEMENT_FEATURE,
                status: OpStatus::NotSupported,
                exit_reason: format!(
                    "the init script has no status action (it printed its usage and exited {code})"
                ),
            },
            1 => Outcome::done(ocf::NOT_RUNNING)
                .with_reason("the service is dead but its pid file exists"),
            2 => Outcome::done(ocf::NOT_RUNNING)
                .with_reason("the service is dead but its lock file exists"),
            3 => Outcome::done(ocf::NOT_RUNNING),
            4 => Outcome {
                rc: ocf::UNKNOWN_ERROR,
                status: OpStatus::Done,
                exit_reason: "the init script cannot tell the service's status (4)".into(),
            },
            _ => Outcome {
                rc: ocf::UNKNOWN_ERROR,
                status: OpStatus::Error,
                exit_reason: format!("status exited with {code}, which LSB does not define"),
            },
        };
    }
    match code {
        0..=7 => {
            let status = crate::status_of_code(code);
            let reason = match code {
                0 => String::new(),
                _ => format!("{action} exited with {code} ({})", crate::rc_name(code)),
            };
            Outcome {
                rc: code,
                status,
                exit_reason: reason,
            }
        }
        _ => Outcome {
            rc: ocf::UNKNOWN_ERROR,
            status: OpStatus::Error,
            exit_reason: format!("{action} exited with {code}, which LSB does not define"),
        },
    }
}

/// Whether to ask `status` before believing this result: a `start` or
/// `stop` that failed by its own exit code (not a timeout or a missing
/// script) may be a script that fails when there is nothing to do.
pub fn needs_status_check(action: &str, o: &Outcome) -> bool {
    matches!(action, "start" | "stop")
        && o.rc != ocf::OK
        && o.status == OpStatus::Done
        && o.rc != ocf::NOT_CONFIGURED
        && o.rc != ocf::INVALID_PARAM
}

/// The result of a failed `start`/`stop` given what `status` then said: a
/// start whose service runs, or a stop whose service is stopped, succeeded
/// (noted in the reason); otherwise the first answer stands.
pub fn reconcile(action: &str, first: Outcome, status: &Outcome) -> Outcome {
    let done = match action {
        "start" => status.rc == ocf::OK,
        "stop" => status.rc == ocf::NOT_RUNNING,
        _ => false,
    };
    if done {
        let what = if action == "start" {
            "running"
        } else {
            "stopped"
        };
        Outcome::done(ocf::OK).with_reason(format!(
            "{action} exited with {} but status says the service is {what}",
            first.rc
        ))
    } else {
        first
    }
}

/// Agent metadata for an init script, from its `### BEGIN INIT INFO`
/// header (`Short-Description`, `Description`), in the OCF format.
pub fn metadata(name: &str, script: &str) -> String {
    let mut short = String::new();
    let mut long = String::new();
    let mut in_header = false;
    let mut in_description = false;
    for line in script.lines().take(400) {
        let line = line.trim_end();
        if line.starts_with("### BEGIN INIT INFO") {
            in_header = true;
            continue;
        }
        if line.starts_with("### END INIT INFO") {
            break;
        }
        if !in_header {
            continue;
        }
        let Some(body) = line.strip_prefix('#') else {
            continue;
        };
        if let Some(v) = body.strip_prefix(" Short-Description:") {
            short = v.trim().to_string();
            in_description = false;
        } else if let Some(v) = body.strip_prefix(" Description:") {
            long = v.trim().to_string();
            in_description = true;
        } else if in_description && (body.starts_with('\t') || body.starts_with("  ")) {
            long.push(' ');
            long.push_str(body.trim());
        } else {
            in_description = false;
        }
    }
    if long.is_empty() {
        long = short.clone();
    }
    crate::metadata::service_metadata(name, &format!("{name} (LSB init script)"), &short, &long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let st = |code, out: &str| outcome("monitor", &Exit::Code(code), out, 1000);
        assert_eq!(st(0, "").rc, ocf::OK);
        for c in [1, 2, 3] {
            assert_eq!(st(c, "").rc, ocf::NOT_RUNNING, "{c}");
        }
        assert_eq!(st(4, "").rc, ocf::UNKNOWN_ERROR);
        // 2 is "dead, lock file" for status, but a usage line means the
        // action is missing.
        let no_status = st(2, "Usage: /etc/init.d/x {start|stop}");
        assert_eq!(no_status.rc, ocf::UNIMPLEMENT_FEATURE);
        let no_status = st(1, "Usage: /etc/init.d/x {start|stop}");
        assert_eq!(no_status.rc, ocf::UNIMPLEMENT_FEATURE);
        let no_status = st(4, "usage: x start|stop");
        assert_eq!(no_status.rc, ocf::UNIMPLEMENT_FEATURE);
        let no_status = st(64, "Usage: x start|stop");
        assert_eq!(no_status.rc, ocf::UNIMPLEMENT_FEATURE);
        assert_eq!(st(150, "").status, OpStatus::Error);
    }

    #[test]
    fn other_actions() {
        for code in 0..=7 {
            assert_eq!(outcome("start", &Exit::Code(code), "", 1).rc, code);
        }
        assert_eq!(
            outcome("stop", &Exit::Code(99), "", 1).rc,
            ocf::UNKNOWN_ERROR
        );
        assert_eq!(script_action("monitor"), Some("status"));
        assert_eq!(script_action("promote"), None);
        assert_eq!(unsupported("promote").rc, ocf::UNIMPLEMENT_FEATURE);
    }

    #[test]
    fn non_compliant_start_and_stop() {
        let failed_stop = outcome("stop", &Exit::Code(1), "", 1);
        assert!(needs_status_check("stop", &failed_stop));
        let stopped = outcome("monitor", &Exit::Code(3), "", 1);
        let r = reconcile("stop", failed_stop.clone(), &stopped);
        assert_eq!(r.rc, ocf::OK);
        assert!(r.exit_reason.contains("status says"), "{r:?}");
        let running = outcome("monitor", &Exit::Code(0), "", 1);
        assert_eq!(
            reconcile("stop", failed_stop, &running).rc,
            ocf::UNKNOWN_ERROR
        );
        let failed_start = outcome("start", &Exit::Code(1), "", 1);
        assert_eq!(reconcile("start", failed_start, &running).rc, ocf::OK);
        assert!(!needs_status_check("start", &Outcome::done(0)));
        let timeout = outcome("start", &Exit::TimedOut, "", 1);
        assert!(!needs_status_check("start", &timeout));
    }

    #[test]
    fn header_metadata() {
        let script = "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: web\n# Short-Description: A web server\n# Description: Serves pages\n#  to everyone.\n### END INIT INFO\n";
        let md = metadata("web", script);
        let parsed = crate::metadata::parse(&md).unwrap();
        assert_eq!(parsed.name, "web");
        assert_eq!(parsed.shortdesc, "A web server");
        assert_eq!(parsed.longdesc, "Serves pages to everyone.");
        assert!(parsed.actions.iter().any(|a| a.name == "monitor"));
    }
}
