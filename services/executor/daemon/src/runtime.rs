//! The executor's loop: requests from the bus into `vigil-executor`, its
//! events out as agent processes, journal entries, signals and job
//! objects.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use vigil_dbus::executor::{OperationRecord, ResourceWire};
use vigil_executor::executor::History;
use vigil_executor::{Completion, Event, Executor, JobId, Now, OpRecord};
use zbus::object_server::SignalEmitter;

use crate::agents::{Agents, Performed};
use crate::dbus::{self, Command, Job, Manager, Shared, job_path};

/// The journal's `MESSAGE_ID` of a completed operation.
pub const MESSAGE_OP_COMPLETED: &str = "1b41ea9254fd485995c4a4c929300a24";
/// The journal's `MESSAGE_ID` of a failed operation.
pub const MESSAGE_OP_FAILED: &str = "673e29ea869640528c5d08251b338c07";
/// The journal's `MESSAGE_ID` of a job that ended without a result of its
/// own (cancelled or replaced).
pub const MESSAGE_JOB_ENDED: &str = "727d5d8cfcab4a9bbec2ab713e13221f";

/// The most stderr lines of a failed operation put in the journal.
const STDERR_LINES: usize = 20;

/// The executor's state and connections.
#[derive(Debug)]
pub struct Runtime {
    pub executor: Executor,
    pub agents: Arc<Agents>,
    pub shared: Shared,
    pub bus: zbus::Connection,
    started: Instant,
}

impl Runtime {
    pub fn new(agents: Arc<Agents>, shared: Shared, bus: zbus::Connection) -> Runtime {
        Runtime {
            executor: Executor::new(),
            agents,
            shared,
            bus,
            started: Instant::now(),
        }
    }

    fn now(&self) -> Now {
        let epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Now {
            ms: self.started.elapsed().as_millis() as u64,
            epoch,
        }
    }

    /// Runs until the bus commands stop or a termination signal arrives.
    pub async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) -> anyhow::Result<()> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(JobId, Performed)>();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let wake = self
                .executor
                .next_wakeup()
                .map(|ms| self.started + Duration::from_millis(ms));
            let timer = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return Ok(()) };
                    let events = self.command(cmd).await;
                    self.act(events, &done_tx, None).await;
                }
                Some((job, performed)) = done_rx.recv() => {
                    let now = self.now();
                    let events = self.executor.finish(now, job, performed.outcome.clone());
                    self.act(events, &done_tx, Some((job, &performed))).await;
                }
                () = timer => {
                    let events = self.executor.poll(self.now());
                    self.act(events, &done_tx, None).await;
                }
                _ = term.recv() => {
                    tracing::info!(jobs = self.executor.job_count(), "executor stopping");
                    return Ok(());
                }
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }

    async fn command(&mut self, cmd: Command) -> Vec<Event> {
        let now = self.now();
        match cmd {
            Command::Execute { request, reply } => {
                let (resource, action, interval_ms) = (
                    request.resource.clone(),
                    request.action.clone(),
                    request.interval_ms,
                );
                match self.executor.submit(now, request) {
                    Ok((id, events)) => {
                        let id32 = id.0 as u32;
                        self.set_state(id32, if interval_ms > 0 { "waiting" } else { "queued" });
                        let job = Job {
                            id: id32,
                            resource,
                            action,
                            interval_ms,
                            shared: self.shared.clone(),
                        };
                        if let Err(e) = self.bus.object_server().at(job_path(id32), job).await {
                            tracing::warn!("cannot serve the object of job {id32}: {e}");
                        }
                        let _ = reply.send(Ok(id32));
                        events
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.0));
                        Vec::new()
                    }
                }
            }
            Command::Cancel {
                resource,
                action,
                interval_ms,
                reply,
            } => answer(
                self.executor.cancel(now, &resource, &action, interval_ms),
                reply,
            ),
            Command::CancelJob { id, reply } => {
                answer(self.executor.cancel_job(now, JobId(u64::from(id))), reply)
            }
            Command::Forget { resource, reply } => {
                let r = self.executor.forget(&resource).map_err(|e| e.0);
                if r.is_ok() {
                    tracing::info!(vigil_resource = %resource, "history of {resource} forgotten");
                }
                let _ = reply.send(r);
                Vec::new()
            }
            Command::Resources { reply } => {
                let _ = reply.send(
                    self.executor
                        .resources()
                        .map(|(name, _)| name.to_string())
                        .collect(),
                );
                Vec::new()
            }
            Command::Resource { resource, reply } => {
                let view = self
                    .executor
                    .history(&resource)
                    .map(|h| resource_view(h, &self.executor.jobs_of(&resource)));
                let _ = reply.send(view);
                Vec::new()
            }
        }
    }

    fn set_state(&self, id: u32, state: &'static str) {
        if let Ok(mut s) = self.shared.job_states.lock() {
            s.insert(id, state);
        }
    }

    /// Acts on the executor's events. `finished` is the job whose result
    /// produced them, with what its agent printed.
    async fn act(
        &mut self,
        events: Vec<Event>,
        done: &mpsc::UnboundedSender<(JobId, Performed)>,
        finished: Option<(JobId, &Performed)>,
    ) {
        let emitter = SignalEmitter::new(&self.bus, dbus::PATH).ok();
        for event in events {
            match event {
                Event::Start(id) => {
                    let Some(req) = self.executor.request(id).cloned() else {
                        continue;
                    };
                    self.set_state(id.0 as u32, "running");
                    let agents = self.agents.clone();
                    let done = done.clone();
                    tokio::spawn(async move {
                        let performed = agents.perform(&req).await;
                        let _ = done.send((id, performed));
                    });
                }
                Event::Completed(c) => {
                    let stderr = finished
                        .filter(|(j, _)| *j == c.job)
                        .map(|(_, p)| p.stderr.as_str())
                        .unwrap_or("");
                    journal(&c, stderr, &self.agents.config.node);
                    if c.record.interval_ms > 0 {
                        self.set_state(c.job.0 as u32, "waiting");
                    }
                    if c.report
                        && let Some(e) = &emitter
                        && let Err(err) =
                            Manager::operation_completed(e, c.job.0 as u32, wire(&c.record)).await
                    {
                        tracing::warn!("cannot signal a completed operation: {err}");
                    }
                }
                Event::Ended {
                    job,
                    resource,
                    action,
                    interval_ms,
                    result,
                } => {
                    let id = job.0 as u32;
                    let key = format!("{resource}_{action}_{interval_ms}");
                    if matches!(
                        result,
                        vigil_executor::JobResult::Cancelled | vigil_executor::JobResult::Replaced
                    ) {
                        tracing::info!(
                            message_id = MESSAGE_JOB_ENDED,
                            vigil_resource = %resource,
                            vigil_op = %key,
                            vigil_node = %self.agents.config.node,
                            "{key} {}",
                            result.as_str()
                        );
                    }
                    if let Ok(mut s) = self.shared.job_states.lock() {
                        s.remove(&id);
                    }
                    let path = job_path(id);
                    let _ = self.bus.object_server().remove::<Job, _>(&path).await;
                    if let Some(e) = &emitter
                        && let Err(err) =
                            Manager::job_removed(e, id, path.as_ref(), &key, result.as_str()).await
                    {
                        tracing::warn!("cannot signal the end of job {id}: {err}");
                    }
                }
            }
        }
    }
}

/// Replies to a cancellation and passes on what it caused.
fn answer(
    result: Result<Vec<Event>, vigil_executor::executor::Refusal>,
    reply: tokio::sync::oneshot::Sender<Result<(), String>>,
) -> Vec<Event> {
    match result {
        Ok(events) => {
            let _ = reply.send(Ok(()));
            events
        }
        Err(e) => {
            let _ = reply.send(Err(e.0));
            Vec::new()
        }
    }
}

/// A record as the bus carries it.
pub fn wire(r: &OpRecord) -> OperationRecord {
    OperationRecord {
        call_id: r.call_id,
        resource: r.resource.clone(),
        agent: r
            .agent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        action: r.action.clone(),
        interval_ms: r.interval_ms,
        rc: r.rc,
        op_status: r.status.code(),
        exit_reason: r.exit_reason.clone(),
        note: r.note.clone(),
        last_run: r.last_run,
        last_rc_change: r.last_rc_change,
        exec_ms: r.exec_ms,
        queue_ms: r.queue_ms,
        expected_rc: r.expected_rc.unwrap_or(-1),
        failed: r.failed,
        user_data: r.user_data.clone(),
    }
}

fn resource_view(h: &History, jobs: &[(JobId, &str, u64, &'static str)]) -> ResourceWire {
    (
        h.agent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        h.state.as_str().to_string(),
        h.ops.values().map(wire).collect(),
        h.last_failure.iter().map(wire).collect(),
        jobs.iter()
            .map(|(id, action, interval, state)| {
                (
                    id.0 as u32,
                    action.to_string(),
                    *interval,
                    state.to_string(),
                )
            })
            .collect(),
    )
}

/// Journals a completed operation with the structured fields of the design
/// (`VIGIL_RESOURCE`, `VIGIL_OP`, `VIGIL_RC`, `VIGIL_NODE`, a fixed
/// `MESSAGE_ID`): failures as warnings with the agent's last stderr lines,
/// reported results as information, identical recurring results at debug
/// level.
fn journal(c: &Completion, stderr: &str, node: &str) {
    let r = &c.record;
    let key = format!("{}_{}_{}", r.resource, r.action, r.interval_ms);
    let agent = r
        .agent
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let mut text = format!(
        "{} of {} on {node}: {} (rc={}, {})",
        if r.interval_ms > 0 {
            format!(
                "{} every {}",
                r.action,
                vigil_executor::format_ms(r.interval_ms)
            )
        } else {
            r.action.clone()
        },
        r.resource,
        vigil_executor::rc_name(r.rc),
        r.rc,
        r.status.as_str(),
    );
    if !r.exit_reason.is_empty() {
        text.push_str(&format!(": {}", r.exit_reason));
    }
    if !r.note.is_empty() {
        text.push_str(&format!(" ({})", r.note));
    }
    text.push_str(&format!(
        " in {} (queued {})",
        vigil_executor::format_ms(r.exec_ms),
        vigil_executor::format_ms(r.queue_ms)
    ));
    macro_rules! log {
        ($level:expr, $id:expr, $msg:expr) => {
            tracing::event!(
                $level,
                message_id = $id,
                vigil_resource = %r.resource,
                vigil_op = %key,
                vigil_rc = r.rc,
                vigil_node = %node,
                vigil_agent = %agent,
                vigil_call_id = r.call_id,
                vigil_exec_ms = r.exec_ms,
                vigil_queue_ms = r.queue_ms,
                "{}",
                $msg
            )
        };
    }
    if r.failed {
        let tail: Vec<&str> = stderr.lines().rev().take(STDERR_LINES).collect();
        if !tail.is_empty() {
            let lines: Vec<&str> = tail.into_iter().rev().collect();
            text.push_str("; the agent said: ");
            text.push_str(&lines.join(" | "));
        }
        log!(tracing::Level::WARN, MESSAGE_OP_FAILED, text);
    } else if c.report {
        log!(tracing::Level::INFO, MESSAGE_OP_COMPLETED, text);
    } else {
        log!(tracing::Level::DEBUG, MESSAGE_OP_COMPLETED, text);
    }
}
