//! vigil-executor: resource execution as data (pacemaker-execd's logic
//! without its processes).
//!
//! - [`agent`]: resource agent references (`ocf:heartbeat:IPaddr2`,
//!   `lsb:apache2`, `systemd:nginx`), their classes and where they live;
//! - [`ocf`], [`lsb`], [`systemd`]: each class's contract: the environment
//!   or arguments an agent gets, and how its answer becomes an OCF result;
//! - [`metadata`]: agents' `meta-data` XML as typed parameters and actions,
//!   and a check of a resource's parameters against them;
//! - [`executor`]: the per-resource operation queues (one operation at a
//!   time per resource, in order), recurring monitors, cancellation,
//!   operation history and the events a daemon acts on.
//!
//! Nothing here runs a process, reads a clock or touches a file: the daemon
//! (`vigil-execd`) does that and feeds the results back in.

pub mod agent;
pub mod executor;
pub mod lsb;
pub mod metadata;
pub mod ocf;
pub mod systemd;

pub use agent::{AgentRef, Class};
pub use executor::{Completion, Event, Executor, JobId, JobResult, Now, OpRecord, Request};

/// How an agent's process ended, as the daemon observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it (not the executor's timeout).
    Signal(i32),
    /// It ran past its timeout and the executor killed its process group.
    TimedOut,
    /// The agent does not exist.
    NotFound,
    /// The agent exists but cannot be executed (permissions, bad
    /// interpreter).
    NotExecutable(String),
    /// The process could not be started for another reason.
    SpawnFailed(String),
}

/// An operation's result in OCF terms, whatever the agent's class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The OCF exit code (`vigil_types::ocf`).
    pub rc: i32,
    /// How the execution went (done, timed out, not installed, ...).
    pub status: vigil_types::OpStatus,
    /// Why, in a short line: the agent's `ocf-exit-reason:`, or the
    /// executor's explanation.
    pub exit_reason: String,
}

impl Outcome {
    pub fn done(rc: i32) -> Outcome {
        Outcome {
            rc,
            status: vigil_types::OpStatus::Done,
            exit_reason: String::new(),
        }
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Outcome {
        self.exit_reason = reason.into();
        self
    }

    /// What the executor reports for a process that did not end with an
    /// exit code of its own (the same for every class).
    pub fn from_abnormal_exit(exit: &Exit, timeout_ms: u64) -> Option<Outcome> {
        use vigil_types::{OpStatus, ocf};
        let o = |rc, status, reason: String| Outcome {
            rc,
            status,
            exit_reason: reason,
        };
        Some(match exit {
            Exit::Code(_) => return None,
            Exit::Signal(sig) => o(
                ocf::UNKNOWN_ERROR,
                OpStatus::Error,
                format!("the agent was killed by signal {sig}"),
            ),
            Exit::TimedOut => o(
                ocf::UNKNOWN_ERROR,
                OpStatus::Timeout,
                format!(
                    "the agent did not finish within its timeout ({}); its processes were killed",
                    format_ms(timeout_ms)
                ),
            ),
            Exit::NotFound => o(
                ocf::NOT_INSTALLED,
                OpStatus::NotInstalled,
                "the agent is not installed".into(),
            ),
            Exit::NotExecutable(why) => o(
                ocf::INSUFFICIENT_PRIV,
                OpStatus::Error,
                format!("the agent cannot be executed: {why}"),
            ),
            Exit::SpawnFailed(why) => o(
                ocf::UNKNOWN_ERROR,
                OpStatus::Error,
                format!("the agent could not be started: {why}"),
            ),
        })
    }
}

/// The execution status that goes with an agent's own exit code 0–9:
/// "unimplemented" and "not installed" say the operation could not be
/// performed; every other code is a completed answer.
pub fn status_of_code(rc: i32) -> vigil_types::OpStatus {
    use vigil_types::{OpStatus, ocf};
    match rc {
        ocf::UNIMPLEMENT_FEATURE => OpStatus::NotSupported,
        ocf::NOT_INSTALLED => OpStatus::NotInstalled,
        _ => OpStatus::Done,
    }
}

/// The name of an OCF exit code, as operators know them.
pub fn rc_name(rc: i32) -> &'static str {
    use vigil_types::ocf;
    match rc {
        ocf::OK => "ok",
        ocf::UNKNOWN_ERROR => "error",
        ocf::INVALID_PARAM => "invalid parameter",
        ocf::UNIMPLEMENT_FEATURE => "unimplemented feature",
        ocf::INSUFFICIENT_PRIV => "insufficient privileges",
        ocf::NOT_INSTALLED => "not installed",
        ocf::NOT_CONFIGURED => "not configured",
        ocf::NOT_RUNNING => "not running",
        ocf::RUNNING_PROMOTED => "promoted",
        ocf::FAILED_PROMOTED => "promoted (failed)",
        ocf::DEGRADED => "OK (degraded)",
        ocf::DEGRADED_PROMOTED => "promoted (degraded)",
        _ => "unknown",
    }
}

/// `1500` → `1.5s`, `20000` → `20s`, `250` → `250ms`.
pub fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let frac = format!("{:03}", ms % 1000);
        format!("{}.{}s", ms / 1000, frac.trim_end_matches('0'))
    }
}

/// The last `ocf-exit-reason:` line an agent wrote to stderr (what
/// `ocf_exit_reason` in the OCF shell functions prints), cleaned of control
/// characters and cut to 256 bytes.
pub fn exit_reason_from(stderr: &str) -> Option<String> {
    const PREFIX: &str = "ocf-exit-reason:";
    let line = stderr
        .lines()
        .rev()
        .find_map(|l| l.rfind(PREFIX).map(|i| &l[i + PREFIX.len()..]))?;
    let clean = clean_line(line.trim(), 256).trim().to_string();
    (!clean.is_empty()).then_some(clean)
}

/// `s` without control characters, at most `max` bytes (cut at a character
/// boundary, marked with `…`).
pub fn clean_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reasons() {
        assert_eq!(
            exit_reason_from(
                "noise\nocf-exit-reason:first\nmore\nocf-exit-reason: the IP is taken \n"
            ),
            Some("the IP is taken".into())
        );
        assert_eq!(exit_reason_from("nothing here"), None);
        assert_eq!(
            exit_reason_from("\u{fffd}junk without a newlineocf-exit-reason:late"),
            Some("late".into())
        );
        assert_eq!(
            exit_reason_from("ocf-exit-reason:\x1b[31mred\x07"),
            Some("[31mred".into())
        );
        let long = format!("ocf-exit-reason:{}", "é".repeat(300));
        let got = exit_reason_from(&long).unwrap();
        assert!(
            got.len() <= 256 + '…'.len_utf8() && got.ends_with('…'),
            "{got}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(format_ms(250), "250ms");
        assert_eq!(format_ms(20_000), "20s");
        assert_eq!(format_ms(1_500), "1.5s");
    }
}
