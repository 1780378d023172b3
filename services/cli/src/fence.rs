//! `vigil fence NODE|history|confirm` and `vigil stonith list|show`: the
//! fencer of this node over D-Bus.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use vigil_dbus::fencing::{HistoryEntry, ManagerProxy, NAME};

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    Fence {
        node: String,
        action: String,
        delay: Option<String>,
        wait: String,
    },
    History {
        node: Option<String>,
    },
    Confirm {
        node: String,
        yes: bool,
    },
    List,
    Show {
        device: String,
    },
}

pub fn run(bus: Option<String>, action: Action) -> anyhow::Result<()> {
    let rt = crate::bus::runtime()?;
    let out = rt.block_on(ask(bus, action))?;
    print!("{out}");
    Ok(())
}

fn time(epoch: i64) -> String {
    // UTC, as the journal's --utc shows it; enough to read a history.
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a calendar date.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn describe(e: &HistoryEntry) -> String {
    let what = match e.outcome.as_str() {
        "done" => "fenced".to_string(),
        "confirmed" => "confirmed down".to_string(),
        other => other.to_string(),
    };
    let mut s = format!(
        "{}  {} {} ({}): {what}",
        time(e.completed_at),
        e.target,
        e.action,
        e.id
    );
    if !e.devices.is_empty() {
        let _ = write!(s, " with {}", e.devices.join(", "));
    }
    if !e.executioner.is_empty() && e.outcome != "confirmed" {
        let _ = write!(s, " by {}", e.executioner);
    }
    let _ = write!(s, "; asked by {} on {}", e.client, e.origin);
    if e.requests > 1 {
        let _ = write!(s, " and {} more", e.requests - 1);
    }
    if !e.reason.is_empty() {
        let _ = write!(s, "\n    {}", e.reason);
    }
    s.push('\n');
    s
}

async fn ask(bus: Option<String>, action: Action) -> anyhow::Result<String> {
    let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
    crate::bus::require(&conn, &where_, NAME, "vigil-fenced").await?;
    let f = ManagerProxy::new(&conn).await?;
    let mut out = String::new();
    match action {
        Action::Fence {
            node,
            action,
            delay,
            wait,
        } => {
            let wait_ms = vigil_executor::metadata::duration_ms(&wait)
                .with_context(|| format!("--wait {wait:?} is not a duration (e.g. 2min)"))?;
            let mut options = HashMap::new();
            if let Some(d) = delay {
                let ms = vigil_executor::metadata::duration_ms(&d)
                    .with_context(|| format!("--delay {d:?} is not a duration (e.g. 5s)"))?;
                options.insert("delay-ms", zbus::Variant::from(ms));
            }
            let mut removed = f.receive_job_removed().await?;
            let mut fenced = f.receive_fenced().await?;
            let (job, _) = f
                .fence(&node, &action, options)
                .await
                .map_err(crate::bus::message)?;
            let result = tokio::time::timeout(Duration::from_millis(wait_ms), async {
                loop {
                    let s = removed.next().await.context("the fencer went away")?;
                    let a = s.args()?;
                    if a.id == job {
                        return anyhow::Ok(a.result.to_string());
                    }
                }
            })
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "no result within {wait}; the fencing goes on: see `vigil fence history {node}`"
                )
            })??;
            // The entry came with (or just before) the job's end.
            let mut entry = None;
            while let Some(Some(s)) = futures_util::FutureExt::now_or_never(fenced.next()) {
                if let Ok(a) = s.args()
                    && a.entry.target == node
                {
                    entry = Some(a.entry);
                }
            }
            if let Some(e) = &entry {
                out.push_str(&describe(e));
            }
            if result != "done" && result != "confirmed" {
                print!("{out}");
                bail!("fencing {node} ({action}) {result}");
            }
            if entry.is_none() {
                let _ = writeln!(out, "{node} fenced ({action})");
            }
        }
        Action::History { node } => {
            let h = f
                .history(node.as_deref().unwrap_or(""))
                .await
                .map_err(crate::bus::message)?;
            if h.is_empty() {
                out.push_str("no fencing recorded\n");
            }
            for e in &h {
                out.push_str(&describe(e));
            }
            let pending = f.pending().await.map_err(crate::bus::message)?;
            for (id, target, action, origin, executioner) in pending {
                if node.as_deref().is_none_or(|n| n == target) {
                    let _ = writeln!(
                        out,
                        "pending  {target} {action} ({id}): asked on {origin}, run by {}",
                        if executioner.is_empty() {
                            "nobody yet"
                        } else {
                            &executioner
                        }
                    );
                }
            }
        }
        Action::Confirm { node, yes } => {
            if !yes {
                bail!(
                    "confirming that {node} is down lets the cluster recover its resources elsewhere; \
                     if {node} is in fact running, they would run twice. Check it is powered off, then \
                     run again with --yes"
                );
            }
            f.confirm(&node).await.map_err(crate::bus::message)?;
            let _ = writeln!(out, "{node} recorded as down");
        }
        Action::List => {
            let devices = f.devices().await.map_err(crate::bus::message)?;
            if devices.is_empty() {
                out.push_str("no fence devices are configured\n");
            }
            for (id, agent, check, targets, enabled) in devices {
                let _ = writeln!(
                    out,
                    "{id}  stonith:{agent}{}  host check: {check}{}",
                    if enabled { "" } else { " (disabled)" },
                    if targets.is_empty() {
                        String::new()
                    } else {
                        format!("  nodes: {}", targets.join(" "))
                    }
                );
            }
        }
        Action::Show { device } => {
            let devices = f.devices().await.map_err(crate::bus::message)?;
            let Some((id, agent, check, targets, enabled)) =
                devices.into_iter().find(|d| d.0 == device)
            else {
                bail!("no fence device {device:?} (see `vigil stonith list`)");
            };
            let _ = writeln!(
                out,
                "{id}: stonith:{agent}{}",
                if enabled { "" } else { " (disabled)" }
            );
            let _ = writeln!(out, "  host check: {check}");
            if !targets.is_empty() {
                let _ = writeln!(out, "  configured nodes: {}", targets.join(" "));
            }
            let (rc, reason, problems) =
                f.validate_device(&id).await.map_err(crate::bus::message)?;
            let _ = writeln!(
                out,
                "  configuration: {}",
                if rc == 0 {
                    "valid".to_string()
                } else {
                    format!("refused by the agent (rc={rc}): {reason}")
                }
            );
            for p in problems {
                let _ = writeln!(out, "    {p}");
            }
            let (rc, reason) = f.monitor_device(&id).await.map_err(crate::bus::message)?;
            let _ = writeln!(
                out,
                "  monitor: {}",
                if rc == 0 {
                    "ok".to_string()
                } else {
                    format!("failed (rc={rc}): {reason}")
                }
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00Z");
        assert_eq!(time(1_795_330_323), "2026-11-22 06:52:03Z");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00Z");
    }
}
