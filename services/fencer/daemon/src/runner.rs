//! Running fence agents: capabilities, which nodes a device can fence,
//! and an operation's levels on this node (its executioner).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vigil_execd::spawn::{self, Invocation, Ran};
use vigil_executor::Exit;
use vigil_fencer::agent::{self, Power};
use vigil_fencer::device::{Capabilities, Device, HostCheck};
use vigil_fencer::ops::Op;
use vigil_fencer::topology;

use crate::config::Config;

/// How long a device's `list` answer is believed.
const LIST_CACHE: Duration = Duration::from_secs(60);
/// Timeout of the queries (metadata, list, status for host checks).
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// What running an operation's levels gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fenced {
    pub ok: bool,
    /// The devices of the level that succeeded (or those tried).
    pub devices: Vec<String>,
    pub reason: String,
}

/// Runs fence agents from one directory.
#[derive(Debug)]
pub struct Runner {
    pub agent_dir: PathBuf,
    caps: Mutex<HashMap<String, Capabilities>>,
    lists: Mutex<HashMap<String, (Instant, BTreeSet<String>)>>,
}

fn exit_text(ran: &Ran) -> String {
    let said = agent::reason(&ran.stderr);
    match (&ran.exit, said) {
        (Exit::Code(c), Some(s)) => format!("exit code {c}: {s}"),
        (Exit::Code(c), None) => format!("exit code {c}"),
        (Exit::TimedOut, _) => "timed out (its processes were killed)".into(),
        (Exit::Signal(s), _) => format!("killed by signal {s}"),
        (Exit::NotFound, _) => "the agent is not installed".into(),
        (Exit::NotExecutable(w), _) => format!("the agent cannot be executed: {w}"),
        (Exit::SpawnFailed(w), _) => format!("the agent could not be started: {w}"),
    }
}

impl Runner {
    pub fn new(agent_dir: PathBuf) -> Runner {
        Runner {
            agent_dir,
            caps: Mutex::new(HashMap::new()),
            lists: Mutex::new(HashMap::new()),
        }
    }

    async fn run(&self, agent_name: &str, stdin: String, timeout: Duration) -> Ran {
        spawn::run(&Invocation {
            program: self.agent_dir.join(agent_name),
            args: Vec::new(),
            env: vec![
                ("PATH".into(), vigil_execd::agents::PATH.into()),
                ("LC_ALL".into(), "C".into()),
            ],
            stdin: Some(stdin.into_bytes()),
            timeout,
        })
        .await
    }

    /// An agent's capabilities, from its metadata (remembered).
    pub async fn capabilities(&self, agent_name: &str) -> Result<Capabilities, String> {
        if let Some(c) = self
            .caps
            .lock()
            .ok()
            .and_then(|c| c.get(agent_name).cloned())
        {
            return Ok(c);
        }
        let ran = self
            .run(agent_name, "action=metadata\n".into(), QUERY_TIMEOUT)
            .await;
        if ran.exit != Exit::Code(0) {
            return Err(format!(
                "{agent_name} gives no metadata: {}",
                exit_text(&ran)
            ));
        }
        let caps = agent::capabilities(&ran.stdout).map_err(|e| format!("{agent_name}: {e}"))?;
        if let Ok(mut c) = self.caps.lock() {
            c.insert(agent_name.to_string(), caps.clone());
        }
        Ok(caps)
    }

    /// Whether `device` can fence `target`, by its configuration or by
    /// asking the agent (`list`, remembered for a minute; or `status`).
    pub async fn can_fence(&self, device: &Device, target: &str) -> bool {
        let caps = self.capabilities(&device.agent).await.unwrap_or_default();
        if let Some(yes) = device.can_fence_statically(target, &caps) {
            return yes;
        }
        match device.host_check(&caps) {
            HostCheck::DynamicList => {
                let cached = self
                    .lists
                    .lock()
                    .ok()
                    .and_then(|l| l.get(&device.id).cloned())
                    .filter(|(t, _)| t.elapsed() < LIST_CACHE);
                let names = match cached {
                    Some((_, names)) => names,
                    None => {
                        let Ok(stdin) = agent::stdin(device, &caps, "list", None) else {
                            return false;
                        };
                        let ran = self.run(&device.agent, stdin, QUERY_TIMEOUT).await;
                        if ran.exit != Exit::Code(0) {
                            tracing::warn!(device = %device.id, "list failed: {}", exit_text(&ran));
                            return false;
                        }
                        let names = agent::parse_list(&ran.stdout);
                        if let Ok(mut l) = self.lists.lock() {
                            l.insert(device.id.clone(), (Instant::now(), names.clone()));
                        }
                        names
                    }
                };
                names.contains(device.port_for(target)) || names.contains(target)
            }
            HostCheck::Status => {
                let Ok(stdin) = agent::stdin(device, &caps, "status", Some(target)) else {
                    return false;
                };
                let ran = self.run(&device.agent, stdin, QUERY_TIMEOUT).await;
                matches!(ran.exit, Exit::Code(0 | 2))
            }
            HostCheck::StaticList | HostCheck::None => true,
        }
    }

    /// The devices that can fence `target`.
    pub async fn devices_for(&self, config: &Config, target: &str) -> Vec<String> {
        let mut out = Vec::new();
        for d in config.devices.iter().filter(|d| d.enabled) {
            if self.can_fence(d, target).await {
                out.push(d.id.clone());
            }
        }
        out
    }

    /// Runs `monitor` (or, for agents without it, `status` without a
    /// target... which most agents refuse, so `list`) of a device.
    pub async fn monitor(&self, device: &Device) -> (i32, String) {
        let caps = match self.capabilities(&device.agent).await {
            Ok(c) => c,
            Err(e) => return (vigil_types::ocf::NOT_INSTALLED, e),
        };
        let action = if caps.has_action("monitor") {
            "monitor"
        } else {
            "list"
        };
        let stdin = match agent::stdin(device, &caps, action, None) {
            Ok(s) => s,
            Err(e) => return (vigil_types::ocf::NOT_CONFIGURED, e),
        };
        let timeout = Duration::from_millis(device.timeout_ms(action, 20_000));
        let ran = self.run(&device.agent, stdin, timeout).await;
        match ran.exit {
            Exit::Code(0) => (0, String::new()),
            Exit::NotFound => (vigil_types::ocf::NOT_INSTALLED, exit_text(&ran)),
            _ => (vigil_types::ocf::UNKNOWN_ERROR, exit_text(&ran)),
        }
    }

    /// Checks a device's configuration: its parameters against the
    /// agent's metadata (the target parameters the cluster passes itself
    /// aside), then the agent's `validate-all` when it has one. Returns
    /// (OCF rc, the agent's reason, problems with the parameters).
    pub async fn validate(&self, device: &Device) -> (i32, String, Vec<String>) {
        let caps = match self.capabilities(&device.agent).await {
            Ok(c) => c,
            Err(e) => return (vigil_types::ocf::NOT_INSTALLED, e, Vec::new()),
        };
        let mut problems = Vec::new();
        let meta = self
            .run(&device.agent, "action=metadata\n".into(), QUERY_TIMEOUT)
            .await;
        if let Ok(md) = vigil_executor::metadata::parse(&meta.stdout) {
            const PASSED_BY_THE_CLUSTER: [&str; 5] =
                ["action", "port", "plug", "nodename", "ipport"];
            for p in vigil_executor::metadata::check_params(
                &md,
                device.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ) {
                let required_but_passed = p.severity == "error"
                    && PASSED_BY_THE_CLUSTER.contains(&p.parameter.as_str())
                    && !device.params.contains_key(&p.parameter);
                if !required_but_passed {
                    problems.push(format!("{}: {}", p.severity, p.message));
                }
            }
        }
        if !caps.has_action("validate-all") {
            return (0, String::new(), problems);
        }
        let stdin = match agent::stdin(device, &caps, "validate-all", None) {
            Ok(s) => s,
            Err(e) => return (vigil_types::ocf::NOT_CONFIGURED, e, problems),
        };
        let ran = self.run(&device.agent, stdin, QUERY_TIMEOUT).await;
        match ran.exit {
            Exit::Code(0) => (0, String::new(), problems),
            _ => (vigil_types::ocf::INVALID_PARAM, exit_text(&ran), problems),
        }
    }

    /// Runs `action` of one device for `target`, retrying within the
    /// action's timeout; for `off`, the device's `status` must then say the
    /// target is off (a device that says it fenced a node that is still on
    /// has failed).
    async fn one_device(
        &self,
        device: &Device,
        action: &str,
        target: &str,
        default_timeout: u64,
        random: f64,
    ) -> Result<(), String> {
        let caps = self
            .capabilities(&device.agent)
            .await
            .map_err(|e| format!("{} ({}): {e}", device.id, device.agent))?;
        let delay = device.delay_ms(random);
        if delay > 0 && action != "on" {
            tracing::info!(device = %device.id, %target, "waiting {delay} ms before fencing (pcmk_delay_*)");
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let stdin = agent::stdin(device, &caps, action, Some(target))?;
        let timeout = Duration::from_millis(device.timeout_ms(action, default_timeout));
        let deadline = Instant::now() + timeout;
        let attempts = device.retries(action) + 1;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let ran = self.run(&device.agent, stdin.clone(), left).await;
            if ran.exit == Exit::Code(0) {
                if device.agent_action(action) == "off" && caps.has_action("status") {
                    return self.verify_off(device, &caps, target).await;
                }
                return Ok(());
            }
            last = exit_text(&ran);
            tracing::warn!(device = %device.id, %target, attempt, "{action} failed: {last}");
            if matches!(
                ran.exit,
                Exit::NotFound | Exit::NotExecutable(_) | Exit::TimedOut
            ) {
                break;
            }
        }
        Err(format!(
            "{} ({}): {action} failed: {last}",
            device.id, device.agent
        ))
    }

    async fn verify_off(
        &self,
        device: &Device,
        caps: &Capabilities,
        target: &str,
    ) -> Result<(), String> {
        let stdin = agent::stdin(device, caps, "status", Some(target))?;
        let ran = self.run(&device.agent, stdin, QUERY_TIMEOUT).await;
        match agent::power(
            match ran.exit {
                Exit::Code(c) => Some(c),
                _ => None,
            },
            &ran.stderr,
        ) {
            Power::Off => Ok(()),
            Power::On => Err(format!(
                "{} ({}) reported {target} off, but its status says it is still on",
                device.id, device.agent
            )),
            Power::Unknown(why) => {
                // The device fenced and cannot tell more: believe the off.
                tracing::warn!(device = %device.id, %target, "cannot check the power state after off: {why}");
                Ok(())
            }
        }
    }

    /// Runs an operation's levels in order until one succeeds (every device
    /// of a level must); `random` in [0, 1) draws the devices' random
    /// delays.
    pub async fn execute(&self, config: &Config, op: &Op, random: f64) -> Fenced {
        let target = op.request.target.as_str();
        let action = op.request.action.as_str();
        if op.request.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(op.request.delay_ms)).await;
        }
        // Which devices can fence the target (asked ahead, as the plan is
        // pure).
        // Unfencing (`on`) goes through the devices that provide it, when
        // some do.
        let unfencing = action == "on" && config.devices.iter().any(|d| d.enabled && d.unfencing);
        let mut capable = BTreeSet::new();
        for d in config
            .devices
            .iter()
            .filter(|d| d.enabled && (!unfencing || d.unfencing))
        {
            if self.can_fence(d, target).await {
                capable.insert(d.id.clone());
            }
        }
        let empty = Default::default();
        let attrs = config.node_attrs.get(target).unwrap_or(&empty);
        let (steps, notes) = topology::plan(target, attrs, &config.devices, &config.levels, &|d| {
            capable.contains(&d.id)
        });
        for n in &notes {
            tracing::warn!(%target, "{n}");
        }
        if steps.is_empty() {
            return Fenced {
                ok: false,
                devices: Vec::new(),
                reason: format!("no fence device can fence {target}"),
            };
        }
        let mut failures = Vec::new();
        let mut tried = Vec::new();
        for step in steps {
            let mut failed = None;
            for id in &step.devices {
                let Some(device) = config.device(id) else {
                    failed = Some(format!("{id}: no such device"));
                    break;
                };
                tried.push(id.clone());
                if let Err(e) = self
                    .one_device(device, action, target, config.timeout_ms, random)
                    .await
                {
                    failed = Some(e);
                    break;
                }
            }
            match failed {
                None => {
                    return Fenced {
                        ok: true,
                        devices: step.devices,
                        reason: String::new(),
                    };
                }
                Some(e) => {
                    let level = if step.index > 0 {
                        format!("level {}: ", step.index)
                    } else {
                        String::new()
                    };
                    tracing::warn!(%target, "fencing {target} ({action}) failed at {level}{e}");
                    failures.push(format!("{level}{e}"));
                }
            }
        }
        Fenced {
            ok: false,
            devices: tried,
            reason: failures.join("; "),
        }
    }
}
