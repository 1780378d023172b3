//! Running a transition graph: a synapse's actions start once every
//! action it waits for is done; pseudo-actions are done as soon as they
//! start; at most `batch-limit` actions run at a time (the most important
//! synapses first); an action that fails aborts the transition — nothing
//! new starts, what runs finishes, and the controller computes a new one.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::graph::{Action, Graph, Kind};

/// Where an action is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its synapse waits for inputs.
    Waiting,
    /// May start, waiting for room under the batch limit.
    Ready,
    Running,
    Done,
    Failed,
}

/// Where the transition is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Actions run or can still start.
    Running,
    /// Every action is done.
    Complete,
    /// An action failed or the controller aborted it; nothing runs any
    /// more.
    Aborted(String),
    /// Nothing runs and nothing can start, yet actions are left (a graph
    /// whose inputs can never be met).
    Stalled(Vec<u32>),
}

/// A transition being run.
#[derive(Debug)]
pub struct Transition {
    graph: Graph,
    batch_limit: usize,
    state: BTreeMap<u32, State>,
    /// Inputs not yet done, per synapse (by index).
    missing: Vec<usize>,
    fired: Vec<bool>,
    /// Synapses waiting for an action (by action id).
    waiters: BTreeMap<u32, Vec<usize>>,
    /// Actions that may start: (priority, synapse id, action id).
    ready: BTreeSet<(Reverse<i32>, u32, u32)>,
    running: usize,
    abort: Option<String>,
}

impl Transition {
    /// Starts running `graph` with at most `batch_limit` actions at once (0:
    /// no limit); returns it and the actions to start now.
    pub fn start(graph: Graph, batch_limit: usize) -> (Transition, Vec<u32>) {
        let mut waiters: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        let mut missing = Vec::with_capacity(graph.synapses.len());
        for (i, s) in graph.synapses.iter().enumerate() {
            let inputs: BTreeSet<u32> = s.inputs.iter().copied().collect();
            for a in &inputs {
                waiters.entry(*a).or_default().push(i);
            }
            missing.push(inputs.len());
        }
        let state = graph.actions.keys().map(|a| (*a, State::Waiting)).collect();
        let n = graph.synapses.len();
        let mut t = Transition {
            graph,
            batch_limit,
            state,
            missing,
            fired: vec![false; n],
            waiters,
            ready: BTreeSet::new(),
            running: 0,
            abort: None,
        };
        let free: Vec<usize> = (0..n).filter(|i| t.missing[*i] == 0).collect();
        let mut work = Vec::new();
        for i in free {
            t.fire(i, &mut work);
        }
        t.settle(work);
        let started = t.dispatch();
        (t, started)
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn action(&self, id: u32) -> Option<&Action> {
        self.graph.actions.get(&id)
    }

    pub fn state(&self, id: u32) -> Option<State> {
        self.state.get(&id).copied()
    }

    /// The actions running now.
    pub fn running_actions(&self) -> Vec<u32> {
        self.state
            .iter()
            .filter(|(_, s)| **s == State::Running)
            .map(|(a, _)| *a)
            .collect()
    }

    /// How many actions run now.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Marks a synapse's actions as started: pseudo-actions are done at
    /// once (into `work`), the others become ready.
    fn fire(&mut self, i: usize, work: &mut Vec<u32>) {
        if self.fired[i] || self.abort.is_some() {
            return;
        }
        self.fired[i] = true;
        let s = &self.graph.synapses[i];
        for a in &s.actions {
            match self.graph.actions[a].kind {
                Kind::Pseudo => {
                    self.state.insert(*a, State::Done);
                    work.push(*a);
                }
                Kind::Rsc | Kind::Cluster => {
                    self.state.insert(*a, State::Ready);
                    self.ready.insert((Reverse(s.priority), s.id, *a));
                }
            }
        }
    }

    /// Propagates actions that are done to the synapses waiting for them.
    fn settle(&mut self, mut work: Vec<u32>) {
        while let Some(done) = work.pop() {
            let Some(ws) = self.waiters.get(&done).cloned() else {
                continue;
            };
            for i in ws {
                self.missing[i] = self.missing[i].saturating_sub(1);
                if self.missing[i] == 0 {
                    self.fire(i, &mut work);
                }
            }
        }
    }

    fn dispatch(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        if self.abort.is_some() {
            return out;
        }
        while self.batch_limit == 0 || self.running < self.batch_limit {
            let Some((_, _, a)) = self.ready.pop_first() else {
                break;
            };
            self.state.insert(a, State::Running);
            self.running += 1;
            out.push(a);
        }
        out
    }

    /// An action's result: `ok` when it is what the graph expected. A
    /// failure aborts the transition (`why` says how). Returns the actions
    /// to start now. Results of actions that are not running are ignored.
    pub fn done(&mut self, id: u32, ok: bool, why: &str) -> Vec<u32> {
        if self.state.get(&id) != Some(&State::Running) {
            return Vec::new();
        }
        self.running -= 1;
        if ok {
            self.state.insert(id, State::Done);
            self.settle(vec![id]);
        } else {
            self.state.insert(id, State::Failed);
            if self.abort.is_none() {
                let key = &self.graph.actions[&id].key;
                self.abort = Some(format!("{key} failed: {why}"));
            }
        }
        self.dispatch()
    }

    /// Stops the transition: nothing new starts; what runs finishes.
    pub fn abort(&mut self, reason: &str) {
        if self.abort.is_none() {
            self.abort = Some(reason.to_string());
        }
        for (_, _, a) in std::mem::take(&mut self.ready) {
            self.state.insert(a, State::Waiting);
        }
    }

    pub fn status(&self) -> Status {
        if let Some(r) = &self.abort {
            return if self.running == 0 {
                Status::Aborted(r.clone())
            } else {
                Status::Running
            };
        }
        let left: Vec<u32> = self
            .state
            .iter()
            .filter(|(_, s)| **s != State::Done)
            .map(|(a, _)| *a)
            .collect();
        if left.is_empty() {
            Status::Complete
        } else if self.running == 0 && self.ready.is_empty() {
            Status::Stalled(left)
        } else {
            Status::Running
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        Graph::parse(crate::graph::tests::GRAPH).unwrap()
    }

    #[test]
    fn actions_start_when_their_inputs_are_done() {
        let (mut t, first) = Transition::start(graph(), 0);
        // Fencing first (higher priority), with the probe: both have no
        // inputs; the stop pseudo-action waits for the fencing.
        assert_eq!(first, [1, 6]);
        assert_eq!(t.state(20), Some(State::Waiting));
        assert!(
            t.done(6, true, "").is_empty(),
            "start still waits for the fencing"
        );
        let next = t.done(1, true, "");
        assert_eq!(
            t.state(20),
            Some(State::Done),
            "a pseudo-action is done at once"
        );
        assert_eq!(next, [8]);
        assert_eq!(t.status(), Status::Running);
        t.done(8, true, "");
        assert_eq!(t.status(), Status::Complete);
    }

    #[test]
    fn the_batch_limit_holds_back_the_less_important() {
        let (mut t, first) = Transition::start(graph(), 1);
        assert_eq!(first, [1], "the fencing synapse has priority");
        assert_eq!(t.running(), 1);
        assert_eq!(t.done(1, true, ""), [6]);
        assert_eq!(t.done(6, true, ""), [8]);
    }

    #[test]
    fn a_failure_aborts_what_has_not_started() {
        let (mut t, _) = Transition::start(graph(), 0);
        assert!(t.done(1, false, "the device timed out").is_empty());
        assert_eq!(t.status(), Status::Running, "the probe still runs");
        t.done(6, true, "");
        assert_eq!(t.state(8), Some(State::Waiting), "nothing new starts");
        assert_eq!(
            t.status(),
            Status::Aborted("stonith-n3-reboot failed: the device timed out".into())
        );
        // Late or unknown results change nothing.
        assert!(t.done(8, true, "").is_empty());
        assert!(t.done(99, true, "").is_empty());
    }

    #[test]
    fn an_abort_lets_running_actions_finish() {
        let (mut t, _) = Transition::start(graph(), 1);
        t.abort("the CIB changed");
        assert_eq!(t.status(), Status::Running);
        assert!(t.done(1, true, "").is_empty());
        assert_eq!(t.status(), Status::Aborted("the CIB changed".into()));
    }

    #[test]
    fn an_empty_graph_is_complete_and_a_cycle_stalls() {
        let (t, first) = Transition::start(Graph::default(), 0);
        assert!(first.is_empty());
        assert_eq!(t.status(), Status::Complete);
        let cycle = Graph::parse(
            r#"<transition_graph>
              <synapse id="0"><action_set><pseudo_event id="1" operation="a"/></action_set>
                <inputs><trigger><pseudo_event id="2"/></trigger></inputs></synapse>
              <synapse id="1"><action_set><pseudo_event id="2" operation="b"/></action_set>
                <inputs><trigger><pseudo_event id="1"/></trigger></inputs></synapse>
            </transition_graph>"#,
        )
        .unwrap();
        let (t, _) = Transition::start(cycle, 0);
        assert_eq!(t.status(), Status::Stalled(vec![1, 2]));
    }
}
