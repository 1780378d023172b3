//! `vigil agent list|meta|exec`: resource agents on this node, by hand.
//!
//! These run here, without the executor daemon, through the same code it
//! uses: `exec` calls an agent with exactly the environment the cluster
//! would give it, to debug the agent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use vigil_execd::agents::{Agents, Config};
use vigil_executor::metadata;
use vigil_executor::{AgentRef, Class, Request};

/// Where agents are and who this node is.
#[derive(Debug, Clone, clap::Args)]
pub struct Where {
    /// The OCF root
    #[arg(long, default_value = vigil_executor::ocf::DEFAULT_ROOT)]
    ocf_root: String,
    /// Where LSB init scripts are looked up by name
    #[arg(long, default_value = vigil_executor::lsb::INIT_DIR)]
    lsb_dir: PathBuf,
    /// Agents keep their state files here (HA_RSCTMP, HA_VARRUN), as a
    /// sandbox node's executor sets them
    #[arg(long)]
    agent_state_dir: Option<PathBuf>,
    /// This node's name, as agents are told (default: the host name)
    #[arg(long)]
    node_name: Option<String>,
}

impl Where {
    fn agents(&self) -> Agents {
        let mut c = Config::system(&self.node_name.clone().unwrap_or_else(hostname));
        c.ocf_root = self.ocf_root.clone();
        c.lsb_dir = self.lsb_dir.clone();
        c.agent_state_dir = self.agent_state_dir.clone();
        // Fence devices' monitors go through the fencer on this bus.
        c.node_bus = vigil_runtime::bus_address(None);
        Agents::new(c)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `vigil agent list [CLASS [PROVIDER]]`.
pub fn list(class: Option<String>, provider: Option<String>, w: &Where) -> anyhow::Result<()> {
    let agents = w.agents();
    let rt = crate::bus::runtime()?;
    let out = rt.block_on(async {
        let Some(class) = class else {
            return Ok::<_, anyhow::Error>(agents.classes().await);
        };
        let class = Class::parse(&class).with_context(|| {
            format!("unknown agent class {class:?} (ocf, lsb, systemd, service, stonith)")
        })?;
        match (class, provider) {
            (Class::Ocf, None) => Ok(agents.providers()),
            (Class::Ocf, Some(p)) => agents.agents(class, &p).await.map_err(anyhow::Error::msg),
            (_, Some(p)) => bail!("only ocf agents have providers (got {p:?})"),
            (_, None) => agents.agents(class, "").await.map_err(anyhow::Error::msg),
        }
    })?;
    for line in out {
        println!("{line}");
    }
    Ok(())
}

/// `vigil agent meta AGENT [--xml]`.
pub fn meta(agent: &str, xml: bool, w: &Where) -> anyhow::Result<()> {
    let agent = AgentRef::parse(agent)?;
    let agents = w.agents();
    let text = crate::bus::runtime()?
        .block_on(agents.metadata(&agent))
        .map_err(anyhow::Error::msg)?;
    if xml {
        print!("{text}");
        return Ok(());
    }
    let md = metadata::parse(&text)?;
    print!("{}", describe(&agent, &md));
    Ok(())
}

fn describe(agent: &AgentRef, md: &metadata::Metadata) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{agent} - {}", md.shortdesc);
    if !md.longdesc.is_empty() && md.longdesc != md.shortdesc {
        let _ = writeln!(s, "\n{}", md.longdesc);
    }
    if !md.parameters.is_empty() {
        let _ = writeln!(s, "\nParameters:");
        for p in &md.parameters {
            let mut flags = Vec::new();
            if p.required {
                flags.push("required".to_string());
            }
            if p.unique {
                flags.push("unique".to_string());
            }
            if p.reloadable {
                flags.push("reloadable".to_string());
            }
            if p.deprecated {
                flags.push("deprecated".to_string());
            }
            if let Some(d) = &p.default {
                flags.push(format!("default {d:?}"));
            }
            let kind = if p.content_type.is_empty() {
                "string"
            } else {
                &p.content_type
            };
            let _ = writeln!(
                s,
                "  {} ({kind}{}){}",
                p.name,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(", {}", flags.join(", "))
                },
                if p.shortdesc.is_empty() {
                    String::new()
                } else {
                    format!(": {}", p.shortdesc)
                }
            );
        }
    }
    if !md.actions.is_empty() {
        let _ = writeln!(s, "\nActions:");
        for a in &md.actions {
            let mut extra = Vec::new();
            if let Some(t) = a.timeout_ms {
                extra.push(format!("timeout {}", vigil_executor::format_ms(t)));
            }
            if let Some(i) = a.interval_ms {
                extra.push(format!("interval {}", vigil_executor::format_ms(i)));
            }
            if let Some(r) = &a.role {
                extra.push(format!("role {r}"));
            }
            if let Some(d) = &a.depth {
                extra.push(format!("depth {d}"));
            }
            let _ = writeln!(
                s,
                "  {}{}",
                a.name,
                if extra.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", extra.join(", "))
                }
            );
        }
    }
    s
}

/// What `vigil agent exec` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// The agent: ocf:PROVIDER:TYPE, lsb:NAME, systemd:UNIT, ...
    pub agent: String,
    /// start, stop, monitor, promote, demote, notify, reload, migrate_to,
    /// migrate_from, meta-data, validate-all, ...
    pub action: String,
    /// The resource id the agent is told (default: the agent's type)
    #[arg(long, short = 'r')]
    pub resource: Option<String>,
    /// A parameter, NAME=VALUE (repeatable)
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A meta-attribute, NAME=VALUE (repeatable)
    #[arg(long = "meta", short = 'm', value_name = "NAME=VALUE")]
    pub meta: Vec<String>,
    /// The operation's interval, as the agent is told (e.g. 10s)
    #[arg(long)]
    pub interval: Option<String>,
    /// The timeout (e.g. 20s, 2min)
    #[arg(long, default_value = "20s")]
    pub timeout: String,
    /// Show the command, its environment and everything it printed
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

fn pairs(what: &str, items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            bail!("{what} {item:?} is not NAME=VALUE");
        };
        if k.is_empty() {
            bail!("{what} {item:?} has no name");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn duration(what: &str, s: &str) -> anyhow::Result<u64> {
    metadata::duration_ms(s)
        .with_context(|| format!("{what} {s:?} is not a duration (e.g. 20s, 500ms, 2min)"))
}

/// `vigil agent exec AGENT ACTION ...`: returns the agent's OCF exit code
/// (the command's exit status).
pub fn exec(a: &ExecArgs, w: &Where) -> anyhow::Result<i32> {
    let agent = AgentRef::parse(&a.agent)?;
    let req = Request {
        resource: a
            .resource
            .clone()
            .unwrap_or_else(|| agent.kind.rsplit('/').next().unwrap_or("agent").to_string()),
        agent: Some(agent.clone()),
        action: a.action.clone(),
        interval_ms: a
            .interval
            .as_deref()
            .map(|i| duration("interval", i))
            .transpose()?
            .unwrap_or(0),
        timeout_ms: duration("timeout", &a.timeout)?,
        params: pairs("parameter", &a.params)?,
        meta: pairs("meta-attribute", &a.meta)?,
        ..Default::default()
    };
    // The executor's own checks, so the run is one the cluster would make.
    vigil_executor::Executor::new()
        .submit(vigil_executor::Now { ms: 0, epoch: 0 }, req.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(dir) = &w.agent_state_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let agents = w.agents();
    if a.verbose {
        match agent.class {
            Class::Ocf => {
                let inv = agents.ocf_invocation(&req, &agent);
                println!("{} {}", inv.program.display(), inv.args.join(" "));
                for (k, v) in &inv.env {
                    println!("  {k}={v}");
                }
            }
            Class::Lsb => {
                let path = agents.agent_file(&agent).unwrap_or_default();
                println!(
                    "{} {}",
                    path.display(),
                    vigil_executor::lsb::script_action(&req.action).unwrap_or("(none)")
                );
            }
            _ => println!("{agent} {}", req.action),
        }
    }
    let started = std::time::Instant::now();
    let p = crate::bus::runtime()?.block_on(agents.perform(&req));
    let elapsed = started.elapsed().as_millis() as u64;
    if a.verbose || req.action == "meta-data" {
        print!("{}", p.stdout);
    }
    if a.verbose && !p.stderr.is_empty() {
        eprint!("{}", p.stderr);
    }
    let o = &p.outcome;
    let mut line = format!(
        "{} {} of {}: rc={} ({}), {}, in {}",
        agent,
        req.action,
        req.resource,
        o.rc,
        vigil_executor::rc_name(o.rc),
        o.status.as_str(),
        vigil_executor::format_ms(elapsed)
    );
    if !o.exit_reason.is_empty() {
        line.push_str(&format!(": {}", o.exit_reason));
    }
    eprintln!("{line}");
    Ok(o.rc.clamp(0, 255))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_durations() {
        let p = pairs("parameter", &["ip=192.0.2.5".into(), "x=a=b".into()]).unwrap();
        assert_eq!(p["ip"], "192.0.2.5");
        assert_eq!(p["x"], "a=b");
        assert!(
            pairs("parameter", &["novalue".into()])
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        assert_eq!(duration("timeout", "20s").unwrap(), 20_000);
        assert!(
            duration("timeout", "soon")
                .unwrap_err()
                .to_string()
                .contains("not a duration")
        );
    }
}
