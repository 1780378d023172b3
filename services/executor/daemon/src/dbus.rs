//! `org.vigil.executor1` on the bus: run operations (as jobs), cancel
//! them, read a resource's history, list agents and read their metadata.
//!
//! Who may call what: the bus policy admits root and group `haclient`.
//! Reads (listings, metadata, histories) are open to them; running or
//! cancelling an operation, validating parameters (which runs the agent)
//! and forgetting a history need root or polkit's
//! `org.vigil.executor1.execute`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use vigil_dbus::executor::{JOB_PATH_PREFIX, OperationRecord, ProblemWire, ResourceWire};
use vigil_executor::{AgentRef, Class, Request};
use vigil_runtime::auth::Callers;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{ObjectPath, OwnedObjectPath, OwnedVariant as OwnedValue};
use zbus::{fdo, interface};

use crate::agents::Agents;

pub use vigil_dbus::executor::{NAME, PATH};

/// The polkit action that allows running agents through the executor.
pub const EXECUTE_ACTION: &str = "org.vigil.executor1.execute";

/// A request from the bus to the loop.
#[derive(Debug)]
pub enum Command {
    Execute {
        request: Request,
        reply: oneshot::Sender<Result<u32, String>>,
    },
    Cancel {
        resource: String,
        action: String,
        interval_ms: u64,
        reply: oneshot::Sender<Result<(), String>>,
    },
    CancelJob {
        id: u32,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Forget {
        resource: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Resources {
        reply: oneshot::Sender<Vec<String>>,
    },
    Resource {
        resource: String,
        reply: oneshot::Sender<Option<ResourceWire>>,
    },
}

/// Job states the job objects show, kept by the loop.
pub type JobStates = Arc<Mutex<HashMap<u32, &'static str>>>;

/// What the interface objects share with the loop.
#[derive(Debug, Clone)]
pub struct Shared {
    pub commands: mpsc::UnboundedSender<Command>,
    pub agents: Arc<Agents>,
    pub job_states: JobStates,
    pub callers: Arc<Callers>,
}

impl Shared {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> fdo::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).map_err(|_| stopping())?;
        rx.await.map_err(|_| stopping())
    }
}

impl Shared {
    async fn authorize(&self, header: &Header<'_>, bus: &zbus::Connection) -> fdo::Result<()> {
        self.callers
            .authorized(header, bus, EXECUTE_ACTION, "run resource agents")
            .await
            .map(|_| ())
    }
}

fn stopping() -> fdo::Error {
    fdo::Error::Failed("the executor is stopping".into())
}

/// A job's object path.
pub fn job_path(id: u32) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("{JOB_PATH_PREFIX}{id}")).expect("a valid object path")
}

fn parse_agent(agent: &str) -> fdo::Result<AgentRef> {
    AgentRef::parse(agent).map_err(|e| fdo::Error::InvalidArgs(e.to_string()))
}

fn parse_class(class: &str) -> fdo::Result<Class> {
    Class::parse(class).ok_or_else(|| {
        fdo::Error::InvalidArgs(format!(
            "unknown agent class {class:?} (expected one of: ocf, lsb, systemd, service, stonith)"
        ))
    })
}

/// `org.vigil.executor1.Manager`.
#[derive(Debug)]
pub struct Manager {
    pub shared: Shared,
}

impl Manager {
    pub fn new(shared: Shared) -> Manager {
        Manager { shared }
    }

    async fn authorize(&self, header: &Header<'_>, bus: &zbus::Connection) -> fdo::Result<()> {
        self.shared.authorize(header, bus).await
    }
}

fn options(mut options: HashMap<String, OwnedValue>, req: &mut Request) -> fdo::Result<()> {
    let bad =
        |k: &str, want: &str| fdo::Error::InvalidArgs(format!("the option {k:?} must be {want}"));
    for (k, v) in options.drain() {
        match k.as_str() {
            "start-delay-ms" => {
                req.start_delay_ms = u64::try_from(&v).map_err(|_| bad(&k, "a uint64 (t)"))?;
            }
            "expected-rc" => {
                req.expected_rc = Some(i32::try_from(&v).map_err(|_| bad(&k, "an int32 (i)"))?);
            }
            "user-data" => {
                req.user_data = String::try_from(v).map_err(|_| bad(&k, "a string (s)"))?;
            }
            other => {
                return Err(fdo::Error::InvalidArgs(format!(
                    "unknown option {other:?} (known: start-delay-ms, expected-rc, user-data)"
                )));
            }
        }
    }
    Ok(())
}

#[interface(name = "org.vigil.executor1.Manager")]
impl Manager {
    /// This node's name, as agents are told (`OCF_RESKEY_CRM_meta_on_node`).
    #[zbus(property(emits_changed_signal = "const"))]
    fn node(&self) -> String {
        self.shared.agents.config.node.clone()
    }

    /// Runs `action` of `resource` with `agent` (`ocf:PROVIDER:TYPE`,
    /// `lsb:NAME`, `systemd:UNIT`, `service:NAME`), one operation at a
    /// time per resource, in the order asked. `interval_ms` > 0 makes a
    /// monitor recurring (it runs at once, then each interval after the
    /// previous run, until cancelled or the resource is stopped);
    /// `timeout_ms` 0 means 20 s. `params` are the resource's parameters
    /// (`OCF_RESKEY_*`), `meta` its meta-attributes
    /// (`OCF_RESKEY_CRM_meta_*`). `options`: `start-delay-ms` (t),
    /// `expected-rc` (i: results that differ are failures), `user-data`
    /// (s: returned with every result). Returns the job's id and object
    /// at once; each result comes as `OperationCompleted` (for a recurring
    /// monitor, only when it changes) and the job's end as `JobRemoved`.
    #[allow(clippy::too_many_arguments)]
    #[zbus(out_args("id", "job"))]
    async fn execute(
        &self,
        resource: String,
        agent: String,
        action: String,
        interval_ms: u64,
        timeout_ms: u64,
        params: HashMap<String, String>,
        meta: HashMap<String, String>,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<(u32, OwnedObjectPath)> {
        self.authorize(&header, bus).await?;
        let mut request = Request {
            resource,
            agent: Some(parse_agent(&agent)?),
            action,
            interval_ms,
            timeout_ms,
            params: params.into_iter().collect::<BTreeMap<_, _>>(),
            meta: meta.into_iter().collect::<BTreeMap<_, _>>(),
            ..Default::default()
        };
        self::options(options, &mut request)?;
        let id = self
            .shared
            .ask(|reply| Command::Execute { request, reply })
            .await?
            .map_err(fdo::Error::InvalidArgs)?;
        Ok((id, job_path(id)))
    }

    /// Cancels `resource`'s recurring `action` every `interval_ms` (a run
    /// in progress finishes first).
    async fn cancel(
        &self,
        resource: String,
        action: String,
        interval_ms: u64,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.authorize(&header, bus).await?;
        self.shared
            .ask(|reply| Command::Cancel {
                resource,
                action,
                interval_ms,
                reply,
            })
            .await?
            .map_err(fdo::Error::InvalidArgs)
    }

    /// The agent classes this node can run.
    async fn list_classes(&self) -> Vec<String> {
        self.shared.agents.classes().await
    }

    /// The providers of a class's agents (only `ocf` has any).
    async fn list_providers(&self, class: String) -> fdo::Result<Vec<String>> {
        Ok(match parse_class(&class)? {
            Class::Ocf => self.shared.agents.providers(),
            _ => Vec::new(),
        })
    }

    /// The agents of `class` (and `provider`, for ocf).
    async fn list_agents(&self, class: String, provider: String) -> fdo::Result<Vec<String>> {
        let class = parse_class(&class)?;
        self.shared
            .agents
            .agents(class, &provider)
            .await
            .map_err(fdo::Error::Failed)
    }

    /// An agent's metadata (the OCF `resource-agent` XML; generated for
    /// init scripts and units).
    async fn agent_metadata(&self, agent: String) -> fdo::Result<String> {
        let agent = parse_agent(&agent)?;
        self.shared
            .agents
            .metadata(&agent)
            .await
            .map_err(fdo::Error::Failed)
    }

    /// Checks a resource's parameters against the agent's metadata
    /// (problems: parameter, `error` or `warning`, message) and runs the
    /// agent's `validate-all` when it has one (rc and exit reason; 0 when
    /// it has none).
    #[zbus(out_args("rc", "exit_reason", "problems"))]
    async fn validate(
        &self,
        resource: String,
        agent: String,
        params: HashMap<String, String>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<(i32, String, Vec<ProblemWire>)> {
        self.authorize(&header, bus).await?;
        let agent = parse_agent(&agent)?;
        let params: BTreeMap<String, String> = params.into_iter().collect();
        let v = self
            .shared
            .agents
            .validate(&resource, &agent, &params)
            .await
            .map_err(fdo::Error::Failed)?;
        let problems = v
            .problems
            .into_iter()
            .map(|p| (p.parameter, p.severity.to_string(), p.message))
            .collect();
        Ok((v.rc, v.exit_reason, problems))
    }

    /// The resources with a history or jobs on this node.
    async fn list_resources(&self) -> fdo::Result<Vec<String>> {
        self.shared.ask(|reply| Command::Resources { reply }).await
    }

    /// A resource: its agent, the state its operations imply (`unknown`,
    /// `stopped`, `running`, `promoted`, `failed`), the last record of
    /// each operation and interval, its last failure (none or one), and
    /// its jobs (id, action, interval, `queued`/`running`/`waiting`).
    #[zbus(out_args("agent", "state", "operations", "last_failure", "jobs"))]
    async fn get_resource(&self, resource: String) -> fdo::Result<ResourceWire> {
        let name = resource.clone();
        self.shared
            .ask(|reply| Command::Resource { resource, reply })
            .await?
            .ok_or_else(|| fdo::Error::InvalidArgs(format!("no operation of {name} is known")))
    }

    /// Forgets a resource's history (after a cleanup); refused while it
    /// has operations queued, running or recurring.
    async fn forget_resource(
        &self,
        resource: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.authorize(&header, bus).await?;
        self.shared
            .ask(|reply| Command::Forget { resource, reply })
            .await?
            .map_err(fdo::Error::InvalidArgs)
    }

    /// An operation of job `job_id` completed (for a recurring monitor:
    /// its result changed).
    #[zbus(signal)]
    pub async fn operation_completed(
        emitter: &SignalEmitter<'_>,
        job_id: u32,
        record: OperationRecord,
    ) -> zbus::Result<()>;

    /// A job ended: `target` is the operation key
    /// (`RESOURCE_ACTION_INTERVAL`), `result` one of `done`, `failed`,
    /// `timeout`, `cancelled`, `replaced`.
    #[zbus(signal)]
    pub async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        target: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// `org.vigil.executor1.Job`: one requested operation, while it exists.
#[derive(Debug)]
pub struct Job {
    pub id: u32,
    pub resource: String,
    pub action: String,
    pub interval_ms: u64,
    pub shared: Shared,
}

#[interface(name = "org.vigil.executor1.Job")]
impl Job {
    #[zbus(property(emits_changed_signal = "const"))]
    fn id(&self) -> u32 {
        self.id
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn resource(&self) -> String {
        self.resource.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn action(&self) -> String {
        self.action.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// `queued`, `running`, or `waiting` (a recurring job between runs).
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> String {
        self.shared
            .job_states
            .lock()
            .ok()
            .and_then(|s| s.get(&self.id).copied())
            .unwrap_or("ended")
            .to_string()
    }

    /// Cancels the job (see `Manager.Cancel`; a queued one-shot operation
    /// is dropped, a running one cannot be cancelled).
    async fn cancel(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> fdo::Result<()> {
        self.shared.authorize(&header, bus).await?;
        let id = self.id;
        self.shared
            .ask(|reply| Command::CancelJob { id, reply })
            .await?
            .map_err(fdo::Error::InvalidArgs)
    }
}
