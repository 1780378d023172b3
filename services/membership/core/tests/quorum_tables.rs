//! Votequorum rules as data: one row per rule or option, each a sequence of
//! views, ticks and `corosync-quorumtool -e` requests with what quorum must
//! be after each step; then a generated check that two disjoint partitions
//! of one view are never both quorate.

use std::collections::BTreeMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_membership::NodeId;
use vigil_membership::quorum::{Quorum, QuorumOptions, QuorumStatus, TieBreaker};

#[derive(Debug, Clone, Copy)]
enum Step {
    /// An agreed view at this time.
    View(u64, &'static [NodeId]),
    /// Time passes.
    Tick(u64),
    /// `corosync-quorumtool -e` at this time.
    SetExpected(u64, u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// (quorate, expected_votes, quorum) after the step.
    Q(bool, u32, u32),
    /// The request is refused and nothing changes.
    Refused,
}

use Out::{Q, Refused};
use Step::{SetExpected, Tick, View};

struct Case {
    name: &'static str,
    votes: &'static [(NodeId, u32)],
    me: NodeId,
    options: QuorumOptions,
    steps: &'static [(Step, Out)],
}

fn opts() -> QuorumOptions {
    QuorumOptions::default()
}

fn lms(window_ms: u64) -> QuorumOptions {
    QuorumOptions {
        last_man_standing: true,
        last_man_standing_window_ms: window_ms,
        ..opts()
    }
}

fn atb(node: TieBreaker) -> QuorumOptions {
    QuorumOptions {
        auto_tie_breaker: true,
        auto_tie_breaker_node: node,
        ..opts()
    }
}

fn wfa() -> QuorumOptions {
    QuorumOptions {
        wait_for_all: Some(true),
        ..opts()
    }
}

const ONES3: &[(NodeId, u32)] = &[(1, 1), (2, 1), (3, 1)];
const ONES4: &[(NodeId, u32)] = &[(1, 1), (2, 1), (3, 1), (4, 1)];
const ONES5: &[(NodeId, u32)] = &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)];
const ONES8: &[(NodeId, u32)] = &[
    (1, 1),
    (2, 1),
    (3, 1),
    (4, 1),
    (5, 1),
    (6, 1),
    (7, 1),
    (8, 1),
];
const TWO: &[(NodeId, u32)] = &[(1, 1), (2, 1)];

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "majority of 3: floor(3/2)+1 = 2",
            votes: ONES3,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1]), Q(false, 3, 2)),
                (View(1, &[1, 2]), Q(true, 3, 2)),
                (View(2, &[1, 2, 3]), Q(true, 3, 2)),
                (View(3, &[1, 3]), Q(true, 3, 2)),
                (View(4, &[1]), Q(false, 3, 2)),
            ],
        },
        Case {
            name: "majority of 5: floor(5/2)+1 = 3",
            votes: ONES5,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1]), Q(false, 5, 3)),
                (View(1, &[1, 2]), Q(false, 5, 3)),
                (View(2, &[1, 2, 3]), Q(true, 5, 3)),
                (View(3, &[1, 2, 3, 4, 5]), Q(true, 5, 3)),
                (View(4, &[1, 2, 3, 4]), Q(true, 5, 3)),
                (View(5, &[1, 2]), Q(false, 5, 3)),
            ],
        },
        Case {
            name: "unequal votes: a node with 3 of 5 votes is quorate alone",
            votes: &[(1, 3), (2, 1), (3, 1)],
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1]), Q(true, 5, 3)),
                (View(1, &[1, 2, 3]), Q(true, 5, 3)),
            ],
        },
        Case {
            name: "unequal votes: the light nodes together are not",
            votes: &[(1, 3), (2, 1), (3, 1)],
            me: 2,
            options: opts(),
            steps: &[
                (View(0, &[2, 3]), Q(false, 5, 3)),
                (View(1, &[1, 2, 3]), Q(true, 5, 3)),
                (View(2, &[2, 3]), Q(false, 5, 3)),
            ],
        },
        Case {
            name: "unequal votes: 2+1 of 2+2+1",
            votes: &[(1, 2), (2, 2), (3, 1)],
            me: 3,
            options: opts(),
            steps: &[
                (View(0, &[3]), Q(false, 5, 3)),
                (View(1, &[1, 3]), Q(true, 5, 3)),
                (View(2, &[2, 3]), Q(true, 5, 3)),
            ],
        },
        Case {
            name: "expected_votes above the sum: 5 expected of 3 nodes",
            votes: ONES3,
            me: 1,
            options: QuorumOptions {
                expected_votes: Some(5),
                ..opts()
            },
            steps: &[
                (View(0, &[1, 2]), Q(false, 5, 3)),
                (View(1, &[1, 2, 3]), Q(true, 5, 3)),
            ],
        },
        Case {
            name: "expected_votes below the sum: raised by the votes present, never lowered",
            votes: ONES5,
            me: 1,
            options: QuorumOptions {
                expected_votes: Some(3),
                ..opts()
            },
            steps: &[
                (View(0, &[1]), Q(false, 3, 2)),
                (View(1, &[1, 2]), Q(true, 3, 2)),
                (View(2, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(3, &[1, 2]), Q(false, 4, 3)),
                (View(4, &[1, 2, 3, 4, 5]), Q(true, 5, 3)),
            ],
        },
        Case {
            name: "two_node implies wait_for_all, then survives the other node",
            votes: TWO,
            me: 1,
            options: QuorumOptions {
                two_node: true,
                ..opts()
            },
            steps: &[
                (View(0, &[1]), Q(false, 2, 1)),
                (View(1, &[1, 2]), Q(true, 2, 1)),
                (View(2, &[1]), Q(true, 2, 1)),
                (View(3, &[1, 2]), Q(true, 2, 1)),
            ],
        },
        Case {
            name: "two_node with wait_for_all: false is quorate alone at once",
            votes: TWO,
            me: 2,
            options: QuorumOptions {
                two_node: true,
                wait_for_all: Some(false),
                ..opts()
            },
            steps: &[
                (View(0, &[2]), Q(true, 2, 1)),
                (View(1, &[1, 2]), Q(true, 2, 1)),
            ],
        },
        Case {
            name: "wait_for_all in 3 nodes: all at once first, and again after a loss of quorum",
            votes: ONES3,
            me: 1,
            options: wfa(),
            steps: &[
                (View(0, &[1]), Q(false, 3, 2)),
                (View(1, &[1, 2]), Q(false, 3, 2)),
                (View(2, &[1, 2, 3]), Q(true, 3, 2)),
                (View(3, &[1, 2]), Q(true, 3, 2)),
                (View(4, &[1]), Q(false, 3, 2)),
                (View(5, &[1, 2]), Q(false, 3, 2)),
                (View(6, &[1, 2, 3]), Q(true, 3, 2)),
            ],
        },
        Case {
            name: "last_man_standing: 3 -> 2 after the window, then stuck at 1 without auto_tie_breaker",
            votes: ONES3,
            me: 1,
            options: lms(10_000),
            steps: &[
                (View(0, &[1, 2, 3]), Q(true, 3, 2)),
                (View(1_000, &[1, 2]), Q(true, 3, 2)),
                (Tick(10_999), Q(true, 3, 2)),
                (Tick(11_000), Q(true, 2, 2)),
                (View(12_000, &[1]), Q(false, 2, 2)),
                (Tick(30_000), Q(false, 2, 2)),
                (View(31_000, &[1, 2]), Q(true, 2, 2)),
                (View(32_000, &[1, 2, 3]), Q(true, 3, 2)),
            ],
        },
        Case {
            name: "last_man_standing: a change within the window restarts it",
            votes: ONES5,
            me: 1,
            options: lms(10_000),
            steps: &[
                (View(0, &[1, 2, 3, 4, 5]), Q(true, 5, 3)),
                (View(1_000, &[1, 2, 3, 4]), Q(true, 5, 3)),
                (View(5_000, &[1, 2, 3]), Q(true, 5, 3)),
                (Tick(11_000), Q(true, 5, 3)),
                (Tick(15_000), Q(true, 3, 2)),
            ],
        },
        Case {
            name: "last_man_standing: votequorum(5)'s 8 -> 5 -> 3 -> 2 cascade",
            votes: ONES8,
            me: 1,
            options: lms(10_000),
            steps: &[
                (View(0, &[1, 2, 3, 4, 5, 6, 7, 8]), Q(true, 8, 5)),
                (View(1_000, &[1, 2, 3, 4, 5]), Q(true, 8, 5)),
                (Tick(11_000), Q(true, 5, 3)),
                (View(12_000, &[1, 2, 3]), Q(true, 5, 3)),
                (Tick(22_000), Q(true, 3, 2)),
                (View(23_000, &[1, 2]), Q(true, 3, 2)),
                (Tick(33_000), Q(true, 2, 2)),
                (View(34_000, &[1]), Q(false, 2, 2)),
            ],
        },
        Case {
            name: "last_man_standing + auto_tie_breaker: 3 -> 2 -> 1 (holder of the lowest id), then back",
            votes: ONES3,
            me: 1,
            options: QuorumOptions {
                wait_for_all: Some(true),
                ..QuorumOptions {
                    auto_tie_breaker: true,
                    ..lms(10_000)
                }
            },
            steps: &[
                (View(0, &[1, 2, 3]), Q(true, 3, 2)),
                (View(1_000, &[1, 2]), Q(true, 3, 2)),
                (Tick(11_000), Q(true, 2, 2)),
                (View(12_000, &[1]), Q(true, 2, 2)),
                (Tick(22_000), Q(true, 1, 1)),
                (View(23_000, &[1, 2]), Q(true, 2, 2)),
                (View(24_000, &[1, 2, 3]), Q(true, 3, 2)),
            ],
        },
        Case {
            name: "last_man_standing + auto_tie_breaker: the node without the tie-breaker loses",
            votes: ONES3,
            me: 2,
            options: QuorumOptions {
                wait_for_all: Some(true),
                ..QuorumOptions {
                    auto_tie_breaker: true,
                    ..lms(10_000)
                }
            },
            steps: &[
                (View(0, &[1, 2, 3]), Q(true, 3, 2)),
                (View(1_000, &[1, 2]), Q(true, 3, 2)),
                (Tick(11_000), Q(true, 2, 2)),
                (View(12_000, &[2]), Q(false, 2, 2)),
                (Tick(22_000), Q(false, 2, 2)),
            ],
        },
        Case {
            name: "auto_tie_breaker lowest, 2+2: the side with node 1 keeps quorum",
            votes: ONES4,
            me: 1,
            options: atb(TieBreaker::Lowest),
            steps: &[
                (View(0, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(1, &[1, 2]), Q(true, 4, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker lowest, 2+2: the side without node 1 loses it",
            votes: ONES4,
            me: 3,
            options: atb(TieBreaker::Lowest),
            steps: &[
                (View(0, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(1, &[3, 4]), Q(false, 4, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker highest, 2+2: the side with node 4 keeps quorum",
            votes: ONES4,
            me: 3,
            options: atb(TieBreaker::Highest),
            steps: &[
                (View(0, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(1, &[3, 4]), Q(true, 4, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker highest, 2+2: the side without node 4 loses it",
            votes: ONES4,
            me: 1,
            options: atb(TieBreaker::Highest),
            steps: &[
                (View(0, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(1, &[1, 2]), Q(false, 4, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker list 2 4, 2+2: the side with node 2 keeps quorum",
            votes: ONES4,
            me: 1,
            options: atb(TieBreaker::List(vec![2, 4])),
            steps: &[
                (View(0, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(1, &[1, 2]), Q(true, 4, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker list 2 4, 2+2: node 4 defers to node 2, which was up",
            votes: ONES4,
            me: 3,
            options: atb(TieBreaker::List(vec![2, 4])),
            steps: &[
                (View(0, &[1, 2, 3, 4]), Q(true, 4, 3)),
                (View(1, &[3, 4]), Q(false, 4, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker list 2 4: node 2 was down, so node 4 decides",
            votes: ONES4,
            me: 3,
            options: atb(TieBreaker::List(vec![2, 4])),
            steps: &[
                (View(0, &[1, 3, 4]), Q(true, 4, 3)),
                (View(1, &[3, 4]), Q(true, 4, 3)),
            ],
        },
        Case {
            // Corosync would break this tie (2 == 5 / 2), but the lost node 5
            // may be alive behind a one-way cut and join {3, 4}, which then
            // has quorum: Vigil breaks exact halves only.
            name: "auto_tie_breaker + wait_for_all, 5 nodes: after one loss, a 2+2 split is not a tie of 5",
            votes: ONES5,
            me: 1,
            options: QuorumOptions {
                wait_for_all: Some(true),
                ..atb(TieBreaker::Lowest)
            },
            steps: &[
                (View(0, &[1, 2, 3, 4, 5]), Q(true, 5, 3)),
                (View(1, &[1, 2, 3, 4]), Q(true, 5, 3)),
                (View(2, &[1, 2]), Q(false, 5, 3)),
            ],
        },
        Case {
            name: "auto_tie_breaker + wait_for_all, 5 nodes: but not 2 of 5 at once",
            votes: ONES5,
            me: 1,
            options: QuorumOptions {
                wait_for_all: Some(true),
                ..atb(TieBreaker::Lowest)
            },
            steps: &[
                (View(0, &[1, 2, 3, 4, 5]), Q(true, 5, 3)),
                (View(1, &[1, 2]), Q(false, 5, 3)),
            ],
        },
        Case {
            name: "set_expected_votes: lowered to the votes present, the cluster survives one more loss",
            votes: ONES5,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1, 2, 3]), Q(true, 5, 3)),
                (SetExpected(1, 3), Q(true, 3, 2)),
                (View(2, &[1, 2]), Q(true, 3, 2)),
            ],
        },
        Case {
            name: "set_expected_votes: raised while still quorate",
            votes: ONES5,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1, 2, 3, 4, 5]), Q(true, 5, 3)),
                (SetExpected(1, 7), Q(true, 7, 4)),
            ],
        },
        Case {
            name: "set_expected_votes: refused below the votes present",
            votes: ONES5,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1, 2, 3]), Q(true, 5, 3)),
                (SetExpected(1, 2), Refused),
                (SetExpected(1, 0), Refused),
            ],
        },
        Case {
            name: "set_expected_votes: refused when a quorate cluster would lose quorum",
            votes: ONES5,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1, 2, 3]), Q(true, 5, 3)),
                (SetExpected(1, 6), Refused),
                (SetExpected(1, 5), Q(true, 5, 3)),
            ],
        },
        Case {
            name: "set_expected_votes: an inquorate partition may be given any value from its votes up",
            votes: ONES5,
            me: 1,
            options: opts(),
            steps: &[
                (View(0, &[1]), Q(false, 5, 3)),
                (SetExpected(1, 9), Q(false, 9, 5)),
                (SetExpected(2, 1), Q(true, 1, 1)),
            ],
        },
        Case {
            name: "set_expected_votes: ends a wait_for_all wait",
            votes: ONES3,
            me: 1,
            options: wfa(),
            steps: &[
                (View(0, &[1, 2]), Q(false, 3, 2)),
                (SetExpected(1, 2), Q(true, 2, 2)),
            ],
        },
        Case {
            name: "set_expected_votes: two_node keeps 2",
            votes: TWO,
            me: 1,
            options: QuorumOptions {
                two_node: true,
                ..opts()
            },
            steps: &[
                (View(0, &[1, 2]), Q(true, 2, 1)),
                (SetExpected(1, 3), Refused),
            ],
        },
    ]
}

fn check(case: &Case) {
    let votes: BTreeMap<NodeId, u32> = case.votes.iter().copied().collect();
    let mut q = Quorum::new(case.options.clone(), votes, case.me)
        .unwrap_or_else(|e| panic!("{}: configuration refused: {e}", case.name));
    for (i, (step, want)) in case.steps.iter().enumerate() {
        let before = q.status();
        let got = match *step {
            View(t, members) => Q2::from(q.view_changed(t, members)),
            Tick(t) => {
                let changed = q.tick(t);
                let now = q.status();
                if let Some(s) = &changed {
                    assert_eq!(
                        s, &now,
                        "{}: step {i}: tick returned a stale status",
                        case.name
                    );
                    assert_ne!(
                        s, &before,
                        "{}: step {i}: tick reported no change",
                        case.name
                    );
                } else {
                    assert_eq!(
                        now, before,
                        "{}: step {i}: tick changed silently",
                        case.name
                    );
                }
                Q2::from(now)
            }
            SetExpected(t, e) => match q.set_expected_votes(t, e) {
                Ok(s) => Q2::from(s),
                Err(err) => {
                    assert_eq!(
                        q.status(),
                        before,
                        "{}: step {i}: refusal changed state",
                        case.name
                    );
                    assert!(!err.to_string().is_empty());
                    Q2(Refused)
                }
            },
        };
        assert_eq!(
            got.0,
            *want,
            "{}: step {i} ({step:?}); status now {:?}",
            case.name,
            q.status()
        );
    }
}

struct Q2(Out);

impl From<QuorumStatus> for Q2 {
    fn from(s: QuorumStatus) -> Self {
        Q2(Q(s.quorate, s.expected_votes, s.quorum))
    }
}

#[test]
fn votequorum_tables() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    for case in &cases {
        check(case);
    }
}

// ---------------------------------------------------------------------
// Disjoint partitions are never both quorate.
// ---------------------------------------------------------------------

fn random_options(rng: &mut ChaCha8Rng, sum: u32, n: u32) -> QuorumOptions {
    let expected_votes = if rng.random_bool(0.3) {
        Some((sum + rng.random_range(0..=4)).saturating_sub(2).max(1))
    } else {
        None
    };
    let wait_for_all = match rng.random_range(0..3) {
        0 => None,
        1 => Some(true),
        _ => Some(false),
    };
    let auto_tie_breaker_node = match rng.random_range(0..3) {
        0 => TieBreaker::Lowest,
        1 => TieBreaker::Highest,
        _ => {
            let mut ids: Vec<NodeId> = (1..=n).collect();
            // Fisher-Yates, then keep a non-empty prefix.
            for i in (1..ids.len()).rev() {
                let j = rng.random_range(0..=i);
                ids.swap(i, j);
            }
            ids.truncate(rng.random_range(1..=ids.len()));
            TieBreaker::List(ids)
        }
    };
    QuorumOptions {
        expected_votes,
        // two_node makes both halves quorate by design: left out.
        two_node: false,
        wait_for_all,
        last_man_standing: rng.random_bool(0.4),
        last_man_standing_window_ms: rng.random_range(0..=40),
        auto_tie_breaker: rng.random_bool(0.5),
        auto_tie_breaker_node,
    }
}

fn random_subset(rng: &mut ChaCha8Rng, of: &[NodeId], keep: NodeId) -> Vec<NodeId> {
    of.iter()
        .copied()
        .filter(|&n| n == keep || rng.random_bool(0.6))
        .collect()
}

#[derive(Default)]
struct Stats {
    configs: u32,
    splits: u32,
    a_quorate: u32,
    b_quorate: u32,
    by_tie_breaker: u32,
    lms_recalculated: u32,
}

fn at_most_one(stats: &mut Stats, sa: &QuorumStatus, sb: &QuorumStatus, what: impl Fn() -> String) {
    assert!(
        !(sa.quorate && sb.quorate),
        "{}: both quorate\n  A {sa:?}\n  B {sb:?}",
        what()
    );
    for (s, count) in [(sa, &mut stats.a_quorate), (sb, &mut stats.b_quorate)] {
        if s.quorate {
            *count += 1;
        }
    }
    for s in [sa, sb] {
        if s.quorate && s.total_votes < s.quorum {
            stats.by_tie_breaker += 1;
        }
    }
}

/// Every node of a partition runs the same machine over the same views;
/// this runs it on node `a` and node `b` through a shared history, splits
/// the last view into disjoint `A ∋ a` and `B ∋ b` (and nodes lost to
/// both), lets each side shrink further and time pass, and checks that
/// `A` and `B` are never quorate together.
#[test]
fn disjoint_partitions_are_never_both_quorate() {
    let mut stats = Stats::default();
    for seed in 0..4000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: u32 = rng.random_range(2..=7);
        let options = random_options(&mut rng, n, n);
        let ones = options.last_man_standing || rng.random_bool(0.5);
        let votes: BTreeMap<NodeId, u32> = (1..=n)
            .map(|id| (id, if ones { 1 } else { rng.random_range(1..=3) }))
            .collect();
        let sum: u32 = votes.values().sum();
        let options = if ones {
            options
        } else {
            // Redraw expected_votes against the real sum.
            QuorumOptions {
                expected_votes: options
                    .expected_votes
                    .map(|_| (sum + rng.random_range(0..=4)).saturating_sub(2).max(1)),
                ..options
            }
        };
        let all: Vec<NodeId> = (1..=n).collect();
        let a = rng.random_range(1..=n);
        let b = loop {
            let b = rng.random_range(1..=n);
            if b != a {
                break b;
            }
        };
        let (Ok(mut qa), Ok(mut qb)) = (
            Quorum::new(options.clone(), votes.clone(), a),
            Quorum::new(options.clone(), votes.clone(), b),
        ) else {
            continue;
        };
        stats.configs += 1;
        let ctx = format!("seed {seed}: votes {votes:?}, options {options:?}, a {a}, b {b}");

        // Shared history; both representatives are in every view.
        let mut t = 0u64;
        let steps = rng.random_range(1..=8);
        for step in 0..steps {
            t += rng.random_range(0..=30);
            let choice = if step == 0 { 0 } else { rng.random_range(0..4) };
            match choice {
                0 | 1 => {
                    let mut view = random_subset(&mut rng, &all, a);
                    if !view.contains(&b) {
                        view.push(b);
                    }
                    qa.view_changed(t, &view);
                    qb.view_changed(t, &view);
                }
                2 => {
                    let (ra, rb) = (qa.tick(t), qb.tick(t));
                    assert_eq!(ra, rb, "{ctx}: tick diverged");
                    if ra.is_some() {
                        stats.lms_recalculated += 1;
                    }
                }
                _ => {
                    let e = rng.random_range(0..=sum + 3);
                    let (ra, rb) = (qa.set_expected_votes(t, e), qb.set_expected_votes(t, e));
                    assert_eq!(ra, rb, "{ctx}: set_expected_votes({e}) diverged");
                }
            }
            assert_eq!(
                qa.status(),
                qb.status(),
                "{ctx}: step {step}: same history, different state"
            );
        }

        // The split.
        let view = qa.status().members;
        let (mut side_a, mut side_b) = (vec![a], vec![b]);
        for &n in &view {
            if n != a && n != b {
                match rng.random_range(0..3) {
                    0 => side_a.push(n),
                    1 => side_b.push(n),
                    _ => {}
                }
            }
        }
        side_a.sort_unstable();
        side_b.sort_unstable();
        t += rng.random_range(0..=30);
        let sa = qa.view_changed(t, &side_a);
        let sb = qb.view_changed(t, &side_b);
        stats.splits += 1;
        at_most_one(&mut stats, &sa, &sb, || {
            format!("{ctx}: split {side_a:?} | {side_b:?} at {t}")
        });

        // Afterwards: each side may shrink further, and time passes.
        for step in 0..rng.random_range(0..=6) {
            t += rng.random_range(0..=30);
            match rng.random_range(0..3) {
                0 => {
                    side_a = random_subset(&mut rng, &side_a, a);
                    qa.view_changed(t, &side_a);
                }
                1 => {
                    side_b = random_subset(&mut rng, &side_b, b);
                    qb.view_changed(t, &side_b);
                }
                _ => {
                    let ticked = [qa.tick(t), qb.tick(t)];
                    stats.lms_recalculated += ticked.iter().flatten().count() as u32;
                }
            }
            at_most_one(&mut stats, &qa.status(), &qb.status(), || {
                format!("{ctx}: after split, step {step}: {side_a:?} | {side_b:?} at {t}")
            });
        }
    }
    // The generator must reach the interesting cases.
    assert!(
        stats.configs > 2000,
        "only {} configurations",
        stats.configs
    );
    assert!(stats.a_quorate > 500 && stats.b_quorate > 500);
    assert!(
        stats.by_tie_breaker > 50,
        "only {} tie-breaker decisions",
        stats.by_tie_breaker
    );
    assert!(
        stats.lms_recalculated > 50,
        "only {} last man standing recalculations",
        stats.lms_recalculated
    );
    println!(
        "configs {} splits {} A quorate {} B quorate {} by tie-breaker {} LMS recalculations {}",
        stats.configs,
        stats.splits,
        stats.a_quorate,
        stats.b_quorate,
        stats.by_tie_breaker,
        stats.lms_recalculated
    );
}
