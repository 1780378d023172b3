//! Performing one operation with the agent's class: the process (OCF, LSB)
//! or the systemd job, the class's contract from `vigil-executor`, and
//! the agent listings and metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use vigil_executor::agent::is_plain_name;
use vigil_executor::metadata::{self, ParamProblem};
use vigil_executor::{AgentRef, Class, Outcome, Request, lsb, ocf};
use vigil_types::{OpStatus, ocf as rc};

use crate::spawn::{self, Invocation};
use crate::systemd::Systemd;

/// The `PATH` agents get.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the executor finds agents and what it tells them.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name.
    pub node: String,
    /// `OCF_ROOT`.
    pub ocf_root: String,
    /// Where LSB scripts are looked up by name.
    pub lsb_dir: PathBuf,
    /// Where fence agents are (for listing).
    pub fence_dir: PathBuf,
    /// When set, agents keep their state files here (`HA_RSCTMP` and
    /// `HA_VARRUN`) instead of `/run`: each sandbox node has its own.
    pub agent_state_dir: Option<PathBuf>,
    /// The bus systemd is on (`None`: the system bus).
    pub systemd_bus: Option<String>,
    /// The node's bus, where vigil-fenced runs fence devices (`None`: the
    /// system bus).
    pub node_bus: Option<String>,
    /// Where systemd runtime drop-ins go.
    pub systemd_runtime_dir: PathBuf,
}

impl Config {
    /// The defaults of a real node named `node`.
    pub fn system(node: &str) -> Config {
        Config {
            node: node.to_string(),
            ocf_root: ocf::DEFAULT_ROOT.to_string(),
            lsb_dir: PathBuf::from(lsb::INIT_DIR),
            fence_dir: PathBuf::from("/usr/sbin"),
            agent_state_dir: None,
            systemd_bus: None,
            node_bus: None,
            systemd_runtime_dir: PathBuf::from("/run/systemd/system"),
        }
    }
}

/// What an operation produced.
#[derive(Debug, Clone)]
pub struct Performed {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

impl Performed {
    fn of(outcome: Outcome) -> Performed {
        Performed {
            outcome,
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

/// The result of checking a resource's parameters.
#[derive(Debug, Clone)]
pub struct Validation {
    /// `validate-all`'s result (0 when the agent has none).
    pub rc: i32,
    pub exit_reason: String,
    pub problems: Vec<ParamProblem>,
}

/// Runs agents.
#[derive(Debug)]
pub struct Agents {
    pub config: Config,
    pub systemd: Systemd,
    /// Metadata by agent, with the agent file's modification time.
    metadata: Mutex<HashMap<AgentRef, (Option<SystemTime>, String)>>,
    /// The connection to the node's bus (for the fencer), made on first
    /// use.
    node_bus: tokio::sync::OnceCell<zbus::Connection>,
    /// The fence devices started on this node (their monitors run; a
    /// probe of any other finds it stopped).
    started_devices: Mutex<std::collections::BTreeSet<String>>,
}

impl Agents {
    pub fn new(config: Config) -> Agents {
        let systemd = Systemd::new(
            config.systemd_bus.clone(),
            config.systemd_runtime_dir.clone(),
        );
        Agents {
            config,
            systemd,
            metadata: Mutex::new(HashMap::new()),
            node_bus: tokio::sync::OnceCell::new(),
            started_devices: Mutex::new(Default::default()),
        }
    }

    /// The environment every agent process starts from.
    pub fn base_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), PATH.to_string()),
            ("LC_ALL".to_string(), "C".to_string()),
        ];
        if let Some(dir) = &self.config.agent_state_dir {
            let d = dir.display().to_string();
            env.push(("HA_RSCTMP".into(), d.clone()));
            env.push(("HA_VARRUN".into(), format!("{d}/")));
        }
        env
    }

    /// The file an agent is (`None` for systemd units and fence devices).
    pub fn agent_file(&self, agent: &AgentRef) -> Option<PathBuf> {
        match agent.class {
            Class::Ocf => Some(PathBuf::from(ocf::agent_path(
                &self.config.ocf_root,
                agent.provider.as_deref().unwrap_or_default(),
                &agent.kind,
            ))),
            Class::Lsb => Some(self.lsb_path(&agent.kind)),
            _ => None,
        }
    }

    fn lsb_path(&self, kind: &str) -> PathBuf {
        if kind.starts_with('/') {
            PathBuf::from(kind)
        } else {
            self.config.lsb_dir.join(kind)
        }
    }

    /// The process an OCF operation runs (also what `vigil agent exec
    /// --verbose` shows).
    pub fn ocf_invocation(&self, req: &Request, agent: &AgentRef) -> Invocation {
        let provider = agent.provider.as_deref().unwrap_or_default();
        let call = ocf::Call {
            instance: &req.resource,
            provider,
            kind: &agent.kind,
            action: &req.action,
            interval_ms: req.interval_ms,
            timeout_ms: req.timeout(),
            params: &req.params,
            meta: &req.meta,
            node: &self.config.node,
        };
        let mut env = self.base_env();
        env.extend(ocf::environment(&self.config.ocf_root, &call));
        Invocation {
            program: PathBuf::from(ocf::agent_path(
                &self.config.ocf_root,
                provider,
                &agent.kind,
            )),
            args: vec![req.action.clone()],
            env,
            stdin: None,
            timeout: Duration::from_millis(req.timeout()),
        }
    }

    fn lsb_invocation(&self, kind: &str, script_action: &str, timeout: Duration) -> Invocation {
        Invocation {
            program: self.lsb_path(kind),
            args: vec![script_action.to_string()],
            env: self.base_env(),
            stdin: None,
            timeout,
        }
    }

    /// Performs one operation.
    pub async fn perform(&self, req: &Request) -> Performed {
        let Some(agent) = &req.agent else {
            return Performed::of(Outcome {
                rc: rc::INVALID_PARAM,
                status: OpStatus::Invalid,
                exit_reason: format!("no agent is known for {}", req.resource),
            });
        };
        let timeout = Duration::from_millis(req.timeout());
        match agent.class {
            Class::Ocf => {
                let mut inv = self.ocf_invocation(req, agent);
                if req.action == "reload-agent" && !self.has_action(agent, "reload-agent").await {
                    // OCF 1.0 agents know only "reload" for the same job.
                    inv.args = vec!["reload".to_string()];
                }
                let ran = spawn::run(&inv).await;
                Performed {
                    outcome: ocf::outcome(&ran.exit, &ran.stderr, req.timeout()),
                    stdout: ran.stdout,
                    stderr: ran.stderr,
                }
            }
            Class::Lsb => self.perform_lsb(&agent.kind, &req.action, timeout).await,
            Class::Systemd => {
                self.perform_systemd(&agent.kind, &req.action, timeout)
                    .await
            }
            Class::Service => {
                let unit = vigil_executor::systemd::unit_name(&agent.kind);
                let has_unit = match self.systemd.state(&unit).await {
                    Ok(s) => s.load != "not-found",
                    Err(_) => false,
                };
                if has_unit {
                    self.perform_systemd(&agent.kind, &req.action, timeout)
                        .await
                } else {
                    self.perform_lsb(&agent.kind, &req.action, timeout).await
                }
            }
            Class::Stonith => self.perform_stonith(req, &agent.kind).await,
        }
    }

    /// Fence devices are vigil-fenced's: a device's resource runs on this
    /// node from a start (checked with the device's monitor through the
    /// fencer) to a stop; its monitor then asks the fencer, and a probe of
    /// a device not started here finds it stopped. The metadata is the
    /// fence agent's.
    async fn perform_stonith(&self, req: &Request, agent: &str) -> Performed {
        let device = req.resource.split(':').next().unwrap_or(&req.resource);
        let started = |yes: bool| {
            if let Ok(mut s) = self.started_devices.lock() {
                if yes {
                    s.insert(req.resource.clone());
                } else {
                    s.remove(&req.resource);
                }
            }
        };
        let is_started = self
            .started_devices
            .lock()
            .is_ok_and(|s| s.contains(&req.resource));
        match req.action.as_str() {
            "stop" => {
                started(false);
                Performed::of(Outcome::done(rc::OK))
            }
            "monitor" | "status" if !is_started => Performed::of(Outcome::done(rc::NOT_RUNNING)),
            "start" | "monitor" | "status" => {
                let timeout = Duration::from_millis(req.timeout());
                let asked = tokio::time::timeout(timeout, self.monitor_device(device)).await;
                let outcome = match asked {
                    Ok(Ok((0, _))) => {
                        if req.action == "start" {
                            started(true);
                        }
                        Outcome::done(rc::OK)
                    }
                    Ok(Ok((code, reason))) => Outcome::done(code).with_reason(reason),
                    Ok(Err(e)) => Outcome {
                        rc: rc::UNKNOWN_ERROR,
                        status: OpStatus::NotConnected,
                        exit_reason: e,
                    },
                    Err(_) => Outcome {
                        rc: rc::UNKNOWN_ERROR,
                        status: OpStatus::Timeout,
                        exit_reason: format!(
                            "vigil-fenced did not answer the monitor of {device} in time"
                        ),
                    },
                };
                Performed::of(outcome)
            }
            "meta-data" => {
                let ran = spawn::run(&Invocation {
                    program: self.config.fence_dir.join(agent),
                    args: Vec::new(),
                    env: self.base_env(),
                    stdin: Some(b"action=metadata\n".to_vec()),
                    timeout: Duration::from_millis(req.timeout()),
                })
                .await;
                Performed {
                    outcome: ocf::outcome(&ran.exit, &ran.stderr, req.timeout()),
                    stdout: ran.stdout,
                    stderr: ran.stderr,
                }
            }
            other => Performed::of(Outcome {
                rc: rc::UNIMPLEMENT_FEATURE,
                status: OpStatus::NotSupported,
                exit_reason: format!(
                    "fence devices have no {other:?} action in the executor (vigil-fenced runs them)"
                ),
            }),
        }
    }

    async fn monitor_device(&self, device: &str) -> Result<(i32, String), String> {
        let conn = self
            .node_bus
            .get_or_try_init(|| async {
                vigil_runtime::bus_builder(self.config.node_bus.as_deref())
                    .build()
                    .await
            })
            .await
            .map_err(|e| format!("cannot reach vigil-fenced: {e}"))?;
        let fencer = vigil_dbus::fencing::ManagerProxy::new(conn)
            .await
            .map_err(|e| format!("cannot reach vigil-fenced: {e}"))?;
        fencer
            .monitor_device(device)
            .await
            .map_err(|e| format!("vigil-fenced: {e}"))
    }

    async fn perform_systemd(&self, kind: &str, action: &str, timeout: Duration) -> Performed {
        let (outcome, stdout) = self.systemd.perform(kind, action, timeout).await;
        Performed {
            outcome,
            stdout,
            stderr: String::new(),
        }
    }

    async fn perform_lsb(&self, kind: &str, action: &str, timeout: Duration) -> Performed {
        if action == "meta-data" {
            return match read_head(&self.lsb_path(kind)) {
                Ok(text) => Performed {
                    outcome: Outcome::done(rc::OK),
                    stdout: lsb::metadata(kind, &text),
                    stderr: String::new(),
                },
                Err(e) => Performed::of(Outcome {
                    rc: rc::NOT_INSTALLED,
                    status: OpStatus::NotInstalled,
                    exit_reason: e,
                }),
            };
        }
        let Some(script_action) = lsb::script_action(action) else {
            return Performed::of(lsb::unsupported(action));
        };
        let ran = spawn::run(&self.lsb_invocation(kind, script_action, timeout)).await;
        let text = format!("{}{}", ran.stdout, ran.stderr);
        let first = lsb::outcome(action, &ran.exit, &text, timeout.as_millis() as u64);
        let mut performed = Performed {
            outcome: first.clone(),
            stdout: ran.stdout,
            stderr: ran.stderr,
        };
        if lsb::needs_status_check(action, &first) {
            let left = timeout
                .saturating_sub(ran.elapsed)
                .max(Duration::from_secs(1));
            let st = spawn::run(&self.lsb_invocation(kind, "status", left)).await;
            let st_text = format!("{}{}", st.stdout, st.stderr);
            let status = lsb::outcome("monitor", &st.exit, &st_text, left.as_millis() as u64);
            performed.outcome = lsb::reconcile(action, first, &status);
        }
        performed
    }

    /// An agent's metadata XML (remembered until the agent file changes).
    pub async fn metadata(&self, agent: &AgentRef) -> Result<String, String> {
        let mtime = self
            .agent_file(agent)
            .and_then(|p| std::fs::metadata(p).ok())
            .and_then(|m| m.modified().ok());
        if let Some((t, xml)) = self
            .metadata
            .lock()
            .ok()
            .and_then(|m| m.get(agent).cloned())
            && t == mtime
            && mtime.is_some()
        {
            return Ok(xml);
        }
        let req = Request {
            resource: agent.kind.clone(),
            agent: Some(agent.clone()),
            action: "meta-data".into(),
            timeout_ms: 30_000,
            ..Default::default()
        };
        let p = self.perform(&req).await;
        if p.outcome.rc != rc::OK {
            return Err(format!(
                "{agent} has no metadata: {}",
                if p.outcome.exit_reason.is_empty() {
                    vigil_executor::rc_name(p.outcome.rc).to_string()
                } else {
                    p.outcome.exit_reason
                }
            ));
        }
        metadata::parse(&p.stdout).map_err(|e| format!("{agent}: {e}"))?;
        if let Ok(mut m) = self.metadata.lock() {
            m.insert(agent.clone(), (mtime, p.stdout.clone()));
        }
        Ok(p.stdout)
    }

    /// Whether the agent's metadata lists `action` (true when it cannot
    /// be read: the agent then answers for itself).
    async fn has_action(&self, agent: &AgentRef, action: &str) -> bool {
        // Boxed: metadata runs the agent through `perform`, which asks this.
        match Box::pin(self.metadata(agent))
            .await
            .map(|xml| metadata::parse(&xml))
        {
            Ok(Ok(md)) => md.action(action).is_some(),
            _ => true,
        }
    }

    /// Checks a resource's parameters: against the agent's metadata, then
    /// with the agent's `validate-all` when it has one.
    pub async fn validate(
        &self,
        resource: &str,
        agent: &AgentRef,
        params: &BTreeMap<String, String>,
    ) -> Result<Validation, String> {
        let md = metadata::parse(&self.metadata(agent).await?).map_err(|e| e.to_string())?;
        let mut problems =
            metadata::check_params(&md, params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let fencing = agent.class == vigil_executor::agent::Class::Stonith;
        if fencing {
            // The fencer gives a fence agent its action and its target
            // (the parameter `pcmk_host_argument` names, `port` by
            // default) at each request: a device needs neither.
            let target = params
                .get("pcmk_host_argument")
                .map(String::as_str)
                .unwrap_or("port");
            // And the `pcmk_*` parameters are the fencer's, not the agent's.
            problems.retain(|p| {
                let supplied = matches!(
                    p.parameter.as_str(),
                    "action" | "plug" | "port" | "nodename"
                ) || p.parameter == target;
                !(p.severity == "error" && supplied || p.parameter.starts_with("pcmk_"))
            });
        }
        let mut v = Validation {
            rc: rc::OK,
            exit_reason: String::new(),
            problems,
        };
        // A fence agent's validate-all runs in the fencer, which checks a
        // device when it starts it.
        if md.action("validate-all").is_some() && !fencing {
            let req = Request {
                resource: resource.to_string(),
                agent: Some(agent.clone()),
                action: "validate-all".into(),
                timeout_ms: md
                    .action("validate-all")
                    .and_then(|a| a.timeout_ms)
                    .unwrap_or(20_000),
                params: params.clone(),
                ..Default::default()
            };
            let p = self.perform(&req).await;
            v.rc = p.outcome.rc;
            v.exit_reason = p.outcome.exit_reason;
        }
        Ok(v)
    }

    /// The classes this node can run.
    pub async fn classes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let ocf_dir = Path::new(&self.config.ocf_root).join("resource.d");
        if ocf_dir.is_dir() {
            out.push("ocf");
        }
        let lsb = self.config.lsb_dir.is_dir();
        if lsb {
            out.push("lsb");
        }
        let systemd = self.systemd.available().await;
        if systemd {
            out.push("systemd");
        }
        if lsb || systemd {
            out.push("service");
        }
        if !self.fence_agents().is_empty() {
            out.push("stonith");
        }
        out.into_iter().map(str::to_string).collect()
    }

    /// The providers of OCF agents.
    pub fn providers(&self) -> Vec<String> {
        let dir = Path::new(&self.config.ocf_root).join("resource.d");
        let mut out: Vec<String> = list_dir(&dir)
            .into_iter()
            .filter(|(_, p)| p.is_dir())
            .map(|(n, _)| n)
            .collect();
        out.sort();
        out
    }

    /// The agents of a class (and provider, for OCF).
    pub async fn agents(&self, class: Class, provider: &str) -> Result<Vec<String>, String> {
        let mut out = match class {
            Class::Ocf => {
                if !is_plain_name(provider) {
                    return Err(format!(
                        "ocf agents are listed by provider; {provider:?} is not one (see the providers list)"
                    ));
                }
                let dir = Path::new(&self.config.ocf_root)
                    .join("resource.d")
                    .join(provider);
                if !dir.is_dir() {
                    return Err(format!("there is no ocf provider {provider:?}"));
                }
                executables(&dir)
            }
            Class::Lsb => self.lsb_scripts(),
            Class::Systemd => self.systemd.list().await?,
            Class::Service => {
                let mut v = self.lsb_scripts();
                if let Ok(units) = self.systemd.list().await {
                    v.extend(
                        units
                            .into_iter()
                            .map(|u| u.strip_suffix(".service").map(str::to_string).unwrap_or(u)),
                    );
                }
                v
            }
            Class::Stonith => self.fence_agents(),
        };
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn lsb_scripts(&self) -> Vec<String> {
        const NOT_SCRIPTS: [&str; 5] = ["README", "skeleton", "rc", "rcS", "functions"];
        executables(&self.config.lsb_dir)
            .into_iter()
            .filter(|n| !NOT_SCRIPTS.contains(&n.as_str()) && !n.contains(".dpkg-"))
            .collect()
    }

    fn fence_agents(&self) -> Vec<String> {
        executables(&self.config.fence_dir)
            .into_iter()
            .filter(|n| n.starts_with("fence_"))
            .collect()
    }
}

fn list_dir(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (is_plain_name(&name) && !name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect()
}

fn executables(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    list_dir(dir)
        .into_iter()
        .filter(|(_, p)| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .map(|(n, _)| n)
        .collect()
}

/// The first 64 KiB of a script (where its LSB header is).
fn read_head(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the init script {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    f.take(64 * 1024)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read the init script {}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
