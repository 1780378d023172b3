//! The executor's state: per-resource operation queues, recurring
//! operations, cancellation and history, as a state machine.
//!
//! Inputs are requests ([`Executor::submit`]), cancellations, results of
//! operations the daemon ran ([`Executor::finish`]) and the passing of time
//! ([`Executor::poll`]); each returns the [`Event`]s to act on: start this
//! job's agent now, an operation completed (record it, tell the
//! controller), a job ended. One operation runs at a time per resource, in
//! the order asked; a recurring operation runs first at once (or after its
//! `start-delay`), then each `interval` after its previous run ended, in
//! its resource's queue like any other. A `stop` cancels the resource's
//! recurring operations when it starts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use vigil_types::{OpStatus, ocf};

use crate::agent::AgentRef;
use crate::{Outcome, format_ms};

/// Default timeout of an operation that names none (Pacemaker's).
pub const DEFAULT_TIMEOUT_MS: u64 = 20_000;
/// Longest timeout accepted: a day.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Most operations waiting in one resource's queue.
pub const MAX_QUEUE: usize = 1_000;
/// Most parameters plus meta-attributes in one request.
pub const MAX_ATTRS: usize = 1_024;
/// Most bytes of parameter and meta-attribute names and values in one
/// request.
pub const MAX_ATTR_BYTES: usize = 1 << 20;

/// A job: one requested operation (for a recurring one, all its runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// The time, as inputs carry it: a monotonic clock in milliseconds (for
/// intervals and durations) and the wall clock in seconds since the epoch
/// (for the history's timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub ms: u64,
    pub epoch: i64,
}

/// An operation to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The resource id (`name:N` for a clone instance).
    pub resource: String,
    pub agent: Option<AgentRef>,
    /// `start`, `stop`, `monitor`, `promote`, `demote`, `notify`,
    /// `reload`, `reload-agent`, `migrate_to`, `migrate_from`,
    /// `meta-data`, `validate-all`, or another action the agent defines.
    pub action: String,
    /// 0 for a one-shot operation; the period of a recurring monitor.
    pub interval_ms: u64,
    /// 0 for the default ([`DEFAULT_TIMEOUT_MS`]).
    pub timeout_ms: u64,
    /// Delay before a recurring operation's first run.
    pub start_delay_ms: u64,
    pub params: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    /// The exit code the caller expects (the transition's target);
    /// results that differ are failures. Without it, success is 0 (and
    /// for monitors 8, promoted).
    pub expected_rc: Option<i32>,
    /// Opaque to the executor, returned with every result (the
    /// controller's transition key).
    pub user_data: String,
}

impl Request {
    /// The request's timeout with the default applied.
    pub fn timeout(&self) -> u64 {
        if self.timeout_ms == 0 {
            DEFAULT_TIMEOUT_MS
        } else {
            self.timeout_ms
        }
    }

    /// Whether this is a probe: a one-shot monitor that finds out the
    /// resource's state.
    pub fn is_probe(&self) -> bool {
        self.interval_ms == 0 && matches!(self.action.as_str(), "monitor" | "status")
    }

    fn key(&self) -> (String, u64) {
        (self.action.clone(), self.interval_ms)
    }
}

/// Why a request or cancellation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// What the executor last knew about a resource, from its operations'
/// results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KnownState {
    #[default]
    Unknown,
    Stopped,
    Running,
    Promoted,
    /// An operation failed in a way that leaves the state unknown (a
    /// failed start or stop, a monitor error).
    Failed,
}

impl KnownState {
    pub fn as_str(self) -> &'static str {
        match self {
            KnownState::Unknown => "unknown",
            KnownState::Stopped => "stopped",
            KnownState::Running => "running",
            KnownState::Promoted => "promoted",
            KnownState::Failed => "failed",
        }
    }
}

/// The record of one completed run of an operation (what the controller
/// writes as an `lrm_rsc_op`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    /// Increases with every run on this node.
    pub call_id: u64,
    pub resource: String,
    pub agent: Option<AgentRef>,
    pub action: String,
    pub interval_ms: u64,
    pub rc: i32,
    pub status: OpStatus,
    pub exit_reason: String,
    /// What else the executor has to say (`already running`, ...).
    pub note: String,
    /// When the run ended (seconds since the epoch).
    pub last_run: i64,
    /// When this operation's result last changed.
    pub last_rc_change: i64,
    /// How long the agent ran.
    pub exec_ms: u64,
    /// How long the operation waited in the queue before it ran.
    pub queue_ms: u64,
    pub expected_rc: Option<i32>,
    /// Whether the result is a failure (status not done, or rc not what
    /// was expected).
    pub failed: bool,
    pub user_data: String,
}

/// An operation completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    pub job: JobId,
    pub record: OpRecord,
    /// Whether to tell the controller: always, except for a recurring
    /// monitor whose result is the same as its previous run's.
    pub report: bool,
}

/// How a job ended (systemd's job results, in the same spirit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    /// It ran and the result is what was expected.
    Done,
    /// It ran and failed.
    Failed,
    /// It ran past its timeout.
    Timeout,
    /// It was cancelled (also: a recurring operation cancelled by a stop).
    Cancelled,
    /// A request for the same recurring operation replaced it.
    Replaced,
}

impl JobResult {
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Done => "done",
            JobResult::Failed => "failed",
            JobResult::Timeout => "timeout",
            JobResult::Cancelled => "cancelled",
            JobResult::Replaced => "replaced",
        }
    }
}

/// What the daemon must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Run this job's agent now (see [`Executor::request`]).
    Start(JobId),
    /// An operation finished; its record is in the history already.
    Completed(Completion),
    /// A job will produce nothing more.
    Ended {
        job: JobId,
        resource: String,
        action: String,
        interval_ms: u64,
        result: JobResult,
    },
}

/// One resource's history: the last record of each operation and
/// interval, the last failure, and the state they imply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub agent: Option<AgentRef>,
    pub ops: BTreeMap<(String, u64), OpRecord>,
    pub last_failure: Option<OpRecord>,
    pub state: KnownState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    /// A recurring job waiting for its next run (due at the time given).
    Waiting(u64),
    /// In its resource's queue since the time given.
    Queued(u64),
    /// Its agent runs: since when, after how long in the queue.
    Running { since: u64, queued_ms: u64 },
}

#[derive(Debug, Clone)]
struct Job {
    request: Request,
    state: JobState,
    /// The previous run's (rc, status) and when it changed, for recurring
    /// jobs.
    last: Option<(i32, OpStatus, i64)>,
    /// The resource's state when this run started.
    prior: KnownState,
    /// Cancelled while running: end it when it finishes.
    cancelled: bool,
}

#[derive(Debug, Default)]
struct Resource {
    queue: VecDeque<JobId>,
    running: Option<JobId>,
    recurring: BTreeMap<(String, u64), JobId>,
    history: History,
}

/// The executor's state for this node.
#[derive(Debug, Default)]
pub struct Executor {
    resources: BTreeMap<String, Resource>,
    jobs: BTreeMap<JobId, Job>,
    /// Recurring jobs waiting, by due time.
    timers: BTreeSet<(u64, JobId)>,
    /// Resources with nothing running and something queued.
    ready: BTreeSet<String>,
    next_job: u64,
    next_call: u64,
}

impl Executor {
    pub fn new() -> Executor {
        Executor::default()
    }

    /// Accepts a request; its first run is queued at once (a recurring
    /// one after its start delay). Returns the job and what to do now.
    pub fn submit(&mut self, now: Now, req: Request) -> Result<(JobId, Vec<Event>), Refusal> {
        check_request(&req)?;
        let mut events = Vec::new();
        let res = self.resources.entry(req.resource.clone()).or_default();
        if res.queue.len() >= MAX_QUEUE {
            return Err(Refusal(format!(
                "{} already has {MAX_QUEUE} operations queued",
                req.resource
            )));
        }
        if let Some(agent) = &req.agent {
            if res.history.agent.as_ref().is_some_and(|a| a != agent)
                && (res.running.is_some() || !res.queue.is_empty() || !res.recurring.is_empty())
            {
                return Err(Refusal(format!(
                    "{} is managed with the agent {}; its operations must end (or be cancelled) before it uses {agent}",
                    req.resource,
                    res.history
                        .agent
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )));
            }
            res.history.agent = Some(agent.clone());
        }
        self.next_job += 1;
        let id = JobId(self.next_job);
        let recurring = req.interval_ms > 0;
        let state = if recurring && req.start_delay_ms > 0 {
            let due = now.ms.saturating_add(req.start_delay_ms);
            self.timers.insert((due, id));
            JobState::Waiting(due)
        } else {
            res.queue.push_back(id);
            if res.running.is_none() {
                self.ready.insert(req.resource.clone());
            }
            JobState::Queued(now.ms)
        };
        if recurring && let Some(old) = res.recurring.insert(req.key(), id) {
            self.remove_recurring(old, JobResult::Replaced, &mut events);
        }
        self.jobs.insert(
            id,
            Job {
                request: req,
                state,
                last: None,
                prior: KnownState::Unknown,
                cancelled: false,
            },
        );
        events.extend(self.poll(now));
        Ok((id, events))
    }

    /// Cancels a resource's recurring operation (by action and interval).
    pub fn cancel(
        &mut self,
        now: Now,
        resource: &str,
        action: &str,
        interval_ms: u64,
    ) -> Result<Vec<Event>, Refusal> {
        let id = self
            .resources
            .get(resource)
            .and_then(|r| r.recurring.get(&(action.to_string(), interval_ms)))
            .copied()
            .ok_or_else(|| {
                Refusal(format!(
                    "{resource} has no recurring {action} every {}",
                    format_ms(interval_ms)
                ))
            })?;
        self.cancel_job(now, id)
    }

    /// Cancels a job: a recurring one stops recurring (a run in progress
    /// finishes first), a queued one-shot operation is dropped. A one-shot
    /// operation already running cannot be cancelled: it ends by itself or
    /// at its timeout.
    pub fn cancel_job(&mut self, now: Now, id: JobId) -> Result<Vec<Event>, Refusal> {
        let job = self
            .jobs
            .get(&id)
            .ok_or_else(|| Refusal(format!("no job {}", id.0)))?;
        let recurring = job.request.interval_ms > 0;
        let mut events = Vec::new();
        match (job.state, recurring) {
            (JobState::Running { .. }, false) => {
                return Err(Refusal(format!(
                    "the {} of {} is running; it ends by itself or at its timeout ({})",
                    job.request.action,
                    job.request.resource,
                    format_ms(job.request.timeout())
                )));
            }
            (_, true) => self.remove_recurring(id, JobResult::Cancelled, &mut events),
            (_, false) => {
                let job = self.jobs.remove(&id).expect("looked up above");
                if let Some(res) = self.resources.get_mut(&job.request.resource) {
                    res.queue.retain(|j| *j != id);
                    if res.queue.is_empty() {
                        self.ready.remove(&job.request.resource);
                    }
                }
                events.push(ended(id, &job.request, JobResult::Cancelled));
            }
        }
        events.extend(self.poll(now));
        Ok(events)
    }

    /// Takes a recurring job out of its resource (the caller emits
    /// nothing else for it); a run in progress is marked to end when it
    /// finishes.
    fn remove_recurring(&mut self, id: JobId, why: JobResult, events: &mut Vec<Event>) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let resource = job.request.resource.clone();
        if let Some(res) = self.resources.get_mut(&resource)
            && res.recurring.get(&job.request.key()) == Some(&id)
        {
            res.recurring.remove(&job.request.key());
        }
        match job.state {
            JobState::Running { .. } => {
                job.cancelled = true;
                return;
            }
            JobState::Waiting(due) => {
                self.timers.remove(&(due, id));
            }
            JobState::Queued(_) => {
                if let Some(res) = self.resources.get_mut(&resource) {
                    res.queue.retain(|j| *j != id);
                    if res.queue.is_empty() {
                        self.ready.remove(&resource);
                    }
                }
            }
        }
        let job = self.jobs.remove(&id).expect("present above");
        events.push(ended(id, &job.request, why));
    }

    /// Moves due recurring runs into their queues and starts what can
    /// start.
    pub fn poll(&mut self, now: Now) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(&(due, id)) = self.timers.first() {
            if due > now.ms {
                break;
            }
            self.timers.pop_first();
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            job.state = JobState::Queued(due);
            let resource = job.request.resource.clone();
            let res = self.resources.entry(resource.clone()).or_default();
            res.queue.push_back(id);
            if res.running.is_none() {
                self.ready.insert(resource);
            }
        }
        while let Some(resource) = self.ready.pop_first() {
            let Some(res) = self.resources.get_mut(&resource) else {
                continue;
            };
            if res.running.is_some() {
                continue;
            }
            let Some(id) = res.queue.pop_front() else {
                continue;
            };
            res.running = Some(id);
            let prior = res.history.state;
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            let queued_since = match job.state {
                JobState::Queued(t) => t,
                _ => now.ms,
            };
            job.state = JobState::Running {
                since: now.ms,
                queued_ms: now.ms.saturating_sub(queued_since),
            };
            job.prior = prior;
            let is_stop = job.request.action == "stop";
            if is_stop {
                let recurring: Vec<JobId> = res.recurring.values().copied().collect();
                for r in recurring {
                    self.remove_recurring(r, JobResult::Cancelled, &mut events);
                }
            }
            events.push(Event::Start(id));
        }
        events
    }

    /// Records the result of a job's run (the daemon calls this when the
    /// agent ended) and returns what follows.
    pub fn finish(&mut self, now: Now, id: JobId, outcome: Outcome) -> Vec<Event> {
        let mut events = Vec::new();
        let Some(job) = self.jobs.get_mut(&id) else {
            return events;
        };
        let JobState::Running { since, queued_ms } = job.state else {
            return events;
        };
        let req = &job.request;
        let recurring = req.interval_ms > 0;
        self.next_call += 1;
        let failed = is_failure(req, &outcome);
        let changed = job
            .last
            .is_none_or(|(rc, st, _)| rc != outcome.rc || st != outcome.status);
        let last_rc_change = match job.last {
            Some((_, _, t)) if !changed => t,
            _ => now.epoch,
        };
        let note = match (req.action.as_str(), job.prior, outcome.rc, failed) {
            ("start", KnownState::Running | KnownState::Promoted, ocf::OK, false) => {
                "already running"
            }
            ("stop", KnownState::Stopped, ocf::OK, false) => "already stopped",
            _ => "",
        };
        let record = OpRecord {
            call_id: self.next_call,
            resource: req.resource.clone(),
            agent: req.agent.clone(),
            action: req.action.clone(),
            interval_ms: req.interval_ms,
            rc: outcome.rc,
            status: outcome.status,
            exit_reason: outcome.exit_reason,
            note: note.to_string(),
            last_run: now.epoch,
            last_rc_change,
            exec_ms: now.ms.saturating_sub(since),
            queue_ms: queued_ms,
            expected_rc: req.expected_rc,
            failed,
            user_data: req.user_data.clone(),
        };
        job.last = Some((record.rc, record.status, last_rc_change));
        let resource = req.resource.clone();
        let res = self.resources.entry(resource.clone()).or_default();
        res.running = None;
        if !res.queue.is_empty() {
            self.ready.insert(resource.clone());
        }
        res.history.state = next_state(res.history.state, &record);
        if failed {
            res.history.last_failure = Some(record.clone());
        }
        res.history
            .ops
            .insert((record.action.clone(), record.interval_ms), record.clone());
        events.push(Event::Completed(Completion {
            job: id,
            record: record.clone(),
            report: !recurring || changed,
        }));
        if recurring && !job.cancelled {
            let due = now.ms.saturating_add(req.interval_ms);
            job.state = JobState::Waiting(due);
            self.timers.insert((due, id));
        } else {
            let job = self.jobs.remove(&id).expect("present above");
            let result = if job.cancelled {
                JobResult::Cancelled
            } else if record.status == OpStatus::Timeout {
                JobResult::Timeout
            } else if failed {
                JobResult::Failed
            } else {
                JobResult::Done
            };
            events.push(ended(id, &job.request, result));
        }
        events.extend(self.poll(now));
        events
    }

    /// When [`Executor::poll`] next has something to do (monotonic ms).
    pub fn next_wakeup(&self) -> Option<u64> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// A job's request (while the job exists).
    pub fn request(&self, id: JobId) -> Option<&Request> {
        self.jobs.get(&id).map(|j| &j.request)
    }

    /// A resource's history.
    pub fn history(&self, resource: &str) -> Option<&History> {
        self.resources.get(resource).map(|r| &r.history)
    }

    /// Every resource the executor knows, with its history.
    pub fn resources(&self) -> impl Iterator<Item = (&str, &History)> {
        self.resources.iter().map(|(k, r)| (k.as_str(), &r.history))
    }

    /// The jobs of a resource: (job, action, interval, state) with state
    /// `running`, `queued` or `waiting`.
    pub fn jobs_of(&self, resource: &str) -> Vec<(JobId, &str, u64, &'static str)> {
        self.jobs
            .iter()
            .filter(|(_, j)| j.request.resource == resource)
            .map(|(id, j)| {
                let state = match j.state {
                    JobState::Waiting(_) => "waiting",
                    JobState::Queued(_) => "queued",
                    JobState::Running { .. } => "running",
                };
                (*id, j.request.action.as_str(), j.request.interval_ms, state)
            })
            .collect()
    }

    /// How many jobs exist (running, queued or waiting).
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Forgets a resource's history (a cleanup); refused while it has
    /// operations queued, running or recurring.
    pub fn forget(&mut self, resource: &str) -> Result<(), Refusal> {
        let Some(res) = self.resources.get(resource) else {
            return Err(Refusal(format!("no operation of {resource} is known")));
        };
        if res.running.is_some() || !res.queue.is_empty() || !res.recurring.is_empty() {
            return Err(Refusal(format!(
                "{resource} has operations running, queued or recurring; cancel them first"
            )));
        }
        self.resources.remove(resource);
        Ok(())
    }
}

fn ended(job: JobId, req: &Request, result: JobResult) -> Event {
    Event::Ended {
        job,
        resource: req.resource.clone(),
        action: req.action.clone(),
        interval_ms: req.interval_ms,
        result,
    }
}

/// Degraded results count as their healthy counterparts for expectations.
fn healthy(rc: i32) -> i32 {
    match rc {
        ocf::DEGRADED => ocf::OK,
        ocf::DEGRADED_PROMOTED => ocf::RUNNING_PROMOTED,
        rc => rc,
    }
}

fn is_failure(req: &Request, o: &Outcome) -> bool {
    if o.status != OpStatus::Done {
        return o.status != OpStatus::Pending;
    }
    let rc = healthy(o.rc);
    let monitor = matches!(req.action.as_str(), "monitor" | "status");
    if req.is_probe() {
        // A probe's job is to find out: running, stopped and promoted are
        // all answers.
        return !matches!(rc, ocf::OK | ocf::NOT_RUNNING | ocf::RUNNING_PROMOTED);
    }
    match req.expected_rc {
        Some(e) => rc != healthy(e),
        None if monitor => !matches!(rc, ocf::OK | ocf::RUNNING_PROMOTED),
        None => rc != ocf::OK,
    }
}

fn next_state(prev: KnownState, r: &OpRecord) -> KnownState {
    use KnownState::*;
    if r.status == OpStatus::Pending {
        return prev;
    }
    let ok = r.status == OpStatus::Done && healthy(r.rc) == ocf::OK;
    match r.action.as_str() {
        "monitor" | "status" => match (r.status, healthy(r.rc)) {
            (OpStatus::Done, ocf::OK) => Running,
            (OpStatus::Done, ocf::NOT_RUNNING) => Stopped,
            (OpStatus::Done, ocf::RUNNING_PROMOTED) => Promoted,
            (OpStatus::NotInstalled, _) if r.interval_ms == 0 => Stopped,
            _ => Failed,
        },
        "start" | "migrate_from" if ok => Running,
        "stop" | "migrate_to" if ok => {
            if r.action == "stop" {
                Stopped
            } else {
                prev
            }
        }
        "promote" if ok => Promoted,
        "demote" if ok => Running,
        "start" | "stop" | "promote" | "demote" | "migrate_from" | "migrate_to" => Failed,
        _ => prev,
    }
}

/// Whether a meta-attribute value means true (Pacemaker's booleans).
pub fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "true" | "yes" | "on" | "1" | "y"
    )
}

fn check_request(req: &Request) -> Result<(), Refusal> {
    let r = &req.resource;
    if r.is_empty() || r.len() > 255 || r.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Refusal(format!(
            "invalid resource id {r:?}: 1 to 255 characters, no spaces or control characters"
        )));
    }
    let a = &req.action;
    if a.is_empty()
        || a.len() > 64
        || !a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Refusal(format!(
            "invalid action {a:?}: use letters, digits, - and _"
        )));
    }
    if req.interval_ms > 0 && !matches!(a.as_str(), "monitor" | "status") {
        return Err(Refusal(format!(
            "only monitors recur; {a} cannot have an interval"
        )));
    }
    if req.timeout_ms > MAX_TIMEOUT_MS {
        return Err(Refusal(format!(
            "timeout {} is longer than a day",
            format_ms(req.timeout_ms)
        )));
    }
    let mut bytes = 0usize;
    for (what, map) in [("parameter", &req.params), ("meta-attribute", &req.meta)] {
        for (k, v) in map {
            if k.is_empty()
                || k.len() > 128
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(Refusal(format!(
                    "invalid {what} name {k:?}: use letters, digits, _ - and ."
                )));
            }
            if v.contains('\0') {
                return Err(Refusal(format!("the {what} {k:?} contains a NUL byte")));
            }
            bytes += k.len() + v.len();
        }
    }
    if req.params.len() + req.meta.len() > MAX_ATTRS || bytes > MAX_ATTR_BYTES {
        return Err(Refusal(format!(
            "too many parameters: at most {MAX_ATTRS} and {MAX_ATTR_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(ms: u64) -> Now {
        Now {
            ms,
            epoch: 1_700_000_000 + (ms / 1000) as i64,
        }
    }

    fn req(resource: &str, action: &str, interval_ms: u64) -> Request {
        Request {
            resource: resource.into(),
            agent: Some(AgentRef::parse("ocf:heartbeat:Dummy").unwrap()),
            action: action.into(),
            interval_ms,
            ..Default::default()
        }
    }

    fn starts(events: &[Event]) -> Vec<JobId> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Start(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    fn completions(events: &[Event]) -> Vec<&Completion> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Completed(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn ends(events: &[Event]) -> Vec<(JobId, JobResult)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Ended { job, result, .. } => Some((*job, *result)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_operation_at_a_time_per_resource_in_order() {
        let mut x = Executor::new();
        let (a, ev) = x.submit(now(0), req("r1", "start", 0)).unwrap();
        assert_eq!(starts(&ev), [a]);
        let (b, ev) = x.submit(now(1), req("r1", "monitor", 0)).unwrap();
        assert!(starts(&ev).is_empty(), "r1 is busy");
        let (c, ev) = x.submit(now(2), req("r2", "start", 0)).unwrap();
        assert_eq!(starts(&ev), [c], "other resources run in parallel");
        let ev = x.finish(now(50), a, Outcome::done(0));
        assert_eq!(starts(&ev), [b]);
        assert_eq!(ends(&ev), [(a, JobResult::Done)]);
        let rec = &completions(&ev)[0].record;
        assert_eq!((rec.exec_ms, rec.queue_ms), (50, 0));
        let ev = x.finish(now(60), b, Outcome::done(0));
        let rec = &completions(&ev)[0].record;
        assert_eq!(
            (rec.exec_ms, rec.queue_ms),
            (10, 49),
            "b queued from 1 to 50"
        );
        assert_eq!(x.history("r1").unwrap().state, KnownState::Running);
        assert!(x.next_wakeup().is_none());
    }

    #[test]
    fn recurring_monitors_report_changes_only() {
        let mut x = Executor::new();
        let (m, ev) = x.submit(now(0), req("r", "monitor", 10_000)).unwrap();
        assert_eq!(starts(&ev), [m], "first run at once");
        let ev = x.finish(now(100), m, Outcome::done(0));
        assert!(completions(&ev)[0].report, "the first result is reported");
        assert!(ends(&ev).is_empty());
        assert_eq!(
            x.next_wakeup(),
            Some(10_100),
            "interval from the end of the run"
        );
        assert!(starts(&x.poll(now(10_099))).is_empty());
        assert_eq!(starts(&x.poll(now(10_100))), [m]);
        let ev = x.finish(now(10_150), m, Outcome::done(0));
        let c = completions(&ev)[0];
        assert!(!c.report, "an identical success is not reported");
        assert_eq!(c.record.last_rc_change, now(100).epoch);
        assert_eq!(starts(&x.poll(now(20_150))), [m]);
        let ev = x.finish(now(20_200), m, Outcome::done(7));
        let c = completions(&ev)[0];
        assert!(c.report && c.record.failed, "a change is reported: {c:?}");
        assert_eq!(c.record.last_rc_change, now(20_200).epoch);
        assert_eq!(x.history("r").unwrap().last_failure.as_ref().unwrap().rc, 7);
        assert_eq!(x.history("r").unwrap().state, KnownState::Stopped);
    }

    #[test]
    fn recurring_runs_queue_behind_other_operations() {
        let mut x = Executor::new();
        let (m, ev) = x.submit(now(0), req("r", "monitor", 1_000)).unwrap();
        let ev2 = x.finish(now(10), m, Outcome::done(0));
        assert!(starts(&ev).len() == 1 && starts(&ev2).is_empty());
        let (s, ev) = x.submit(now(500), req("r", "reload", 0)).unwrap();
        assert_eq!(starts(&ev), [s]);
        assert!(
            starts(&x.poll(now(1_010))).is_empty(),
            "monitor waits for reload"
        );
        let ev = x.finish(now(1_500), s, Outcome::done(0));
        assert_eq!(starts(&ev), [m]);
        let ev = x.finish(now(1_520), m, Outcome::done(0));
        assert_eq!(completions(&ev)[0].record.queue_ms, 490);
    }

    #[test]
    fn cancellation() {
        let mut x = Executor::new();
        let (m, _) = x.submit(now(0), req("r", "monitor", 1_000)).unwrap();
        // Cancelled while running: the run finishes, reports, and ends.
        let ev = x.cancel(now(1), "r", "monitor", 1_000).unwrap();
        assert!(ends(&ev).is_empty());
        let ev = x.finish(now(5), m, Outcome::done(0));
        assert_eq!(completions(&ev).len(), 1);
        assert_eq!(ends(&ev), [(m, JobResult::Cancelled)]);
        assert!(x.next_wakeup().is_none() && x.job_count() == 0);
        // Cancelled while waiting.
        let (m, _) = x.submit(now(10), req("r", "monitor", 1_000)).unwrap();
        x.finish(now(20), m, Outcome::done(0));
        let ev = x.cancel(now(30), "r", "monitor", 1_000).unwrap();
        assert_eq!(ends(&ev), [(m, JobResult::Cancelled)]);
        assert!(x.next_wakeup().is_none());
        let e = x.cancel(now(40), "r", "monitor", 1_000).unwrap_err();
        assert!(e.0.contains("no recurring monitor every 1s"), "{e}");
        // A queued one-shot can be cancelled, a running one cannot.
        let (a, _) = x.submit(now(50), req("r", "start", 0)).unwrap();
        let (b, _) = x.submit(now(50), req("r", "stop", 0)).unwrap();
        assert!(
            x.cancel_job(now(51), a)
                .unwrap_err()
                .0
                .contains("is running")
        );
        assert_eq!(
            ends(&x.cancel_job(now(51), b).unwrap()),
            [(b, JobResult::Cancelled)]
        );
    }

    #[test]
    fn stop_cancels_recurring_monitors_and_resubmission_replaces() {
        let mut x = Executor::new();
        let (m1, _) = x.submit(now(0), req("r", "monitor", 1_000)).unwrap();
        x.finish(now(1), m1, Outcome::done(0));
        let (m2, ev) = x.submit(now(2), req("r", "monitor", 1_000)).unwrap();
        assert_eq!(ends(&ev), [(m1, JobResult::Replaced)]);
        assert_eq!(starts(&ev), [m2]);
        x.finish(now(3), m2, Outcome::done(0));
        let (s, ev) = x.submit(now(4), req("r", "stop", 0)).unwrap();
        assert_eq!(starts(&ev), [s]);
        assert_eq!(ends(&ev), [(m2, JobResult::Cancelled)]);
        x.finish(now(5), s, Outcome::done(0));
        assert_eq!(x.job_count(), 0);
        assert_eq!(x.history("r").unwrap().state, KnownState::Stopped);
    }

    #[test]
    fn idempotent_start_and_stop_are_reported_as_such() {
        let mut x = Executor::new();
        let (a, _) = x.submit(now(0), req("r", "start", 0)).unwrap();
        let ev = x.finish(now(1), a, Outcome::done(0));
        assert_eq!(completions(&ev)[0].record.note, "");
        let (b, _) = x.submit(now(2), req("r", "start", 0)).unwrap();
        let ev = x.finish(now(3), b, Outcome::done(0));
        assert_eq!(completions(&ev)[0].record.note, "already running");
        let (c, _) = x.submit(now(4), req("r", "stop", 0)).unwrap();
        let ev = x.finish(now(5), c, Outcome::done(0));
        assert_eq!(completions(&ev)[0].record.note, "");
        let (d, _) = x.submit(now(6), req("r", "stop", 0)).unwrap();
        let ev = x.finish(now(7), d, Outcome::done(0));
        assert_eq!(completions(&ev)[0].record.note, "already stopped");
    }

    #[test]
    fn failures_and_history() {
        let mut x = Executor::new();
        // A probe answering "not running" is no failure.
        let (p, _) = x.submit(now(0), req("r", "monitor", 0)).unwrap();
        let ev = x.finish(now(1), p, Outcome::done(7));
        assert!(!completions(&ev)[0].record.failed);
        assert_eq!(ends(&ev), [(p, JobResult::Done)]);
        // A failing start is.
        let (s, _) = x.submit(now(2), req("r", "start", 0)).unwrap();
        let ev = x.finish(now(3), s, Outcome::done(1).with_reason("no"));
        assert_eq!(ends(&ev), [(s, JobResult::Failed)]);
        let h = x.history("r").unwrap();
        assert_eq!(h.state, KnownState::Failed);
        assert_eq!(h.last_failure.as_ref().unwrap().exit_reason, "no");
        assert_eq!(h.ops.len(), 2, "one record per operation and interval");
        // Timeouts end jobs with "timeout".
        let (t, _) = x.submit(now(4), req("r", "stop", 0)).unwrap();
        let o = Outcome {
            rc: 1,
            status: OpStatus::Timeout,
            exit_reason: String::new(),
        };
        assert_eq!(ends(&x.finish(now(5), t, o)), [(t, JobResult::Timeout)]);
        // Expected results: a demote expecting 0; degraded counts as ok.
        let mut r = req("r", "monitor", 5_000);
        r.expected_rc = Some(8);
        let (m, _) = x.submit(now(6), r).unwrap();
        let ev = x.finish(now(7), m, Outcome::done(191));
        assert!(!completions(&ev)[0].record.failed);
        assert_eq!(x.history("r").unwrap().state, KnownState::Promoted);
        assert!(x.forget("r").is_err(), "a monitor recurs");
        x.cancel(now(8), "r", "monitor", 5_000).unwrap();
        x.forget("r").unwrap();
        assert!(x.history("r").is_none());
    }

    #[test]
    fn start_delay_and_call_ids() {
        let mut x = Executor::new();
        let mut r = req("r", "monitor", 1_000);
        r.start_delay_ms = 300;
        let (m, ev) = x.submit(now(0), r).unwrap();
        assert!(starts(&ev).is_empty());
        assert_eq!(x.next_wakeup(), Some(300));
        assert_eq!(starts(&x.poll(now(300))), [m]);
        let c1 = completions(&x.finish(now(310), m, Outcome::done(0)))[0]
            .record
            .call_id;
        assert_eq!(starts(&x.poll(now(1_310))), [m]);
        let c2 = completions(&x.finish(now(1_320), m, Outcome::done(0)))[0]
            .record
            .call_id;
        assert!(c2 > c1);
        assert_eq!(x.jobs_of("r"), [(m, "monitor", 1_000, "waiting")]);
    }

    #[test]
    fn refuses_bad_requests() {
        let mut x = Executor::new();
        let bad = |f: &dyn Fn(&mut Request)| {
            let mut r = req("r", "start", 0);
            f(&mut r);
            Executor::new().submit(now(0), r).unwrap_err().0
        };
        assert!(bad(&|r| r.resource = "a b".into()).contains("invalid resource id"));
        assert!(bad(&|r| r.action = "st;art".into()).contains("invalid action"));
        assert!(bad(&|r| r.interval_ms = 5).contains("only monitors recur"));
        assert!(bad(&|r| r.timeout_ms = MAX_TIMEOUT_MS + 1).contains("longer than a day"));
        assert!(
            bad(&|r| {
                r.params.insert("a=b".into(), "x".into());
            })
            .contains("invalid parameter name")
        );
        assert!(
            bad(&|r| {
                r.meta.insert("x".into(), "a\0b".into());
            })
            .contains("NUL")
        );
        // A resource busy with one agent cannot switch to another.
        x.submit(now(0), req("r", "start", 0)).unwrap();
        let mut other = req("r", "stop", 0);
        other.agent = Some(AgentRef::parse("ocf:pacemaker:Dummy").unwrap());
        assert!(
            x.submit(now(1), other)
                .unwrap_err()
                .0
                .contains("managed with the agent")
        );
        assert_eq!(x.job_count(), 1, "a refusal changes nothing");
    }
}
