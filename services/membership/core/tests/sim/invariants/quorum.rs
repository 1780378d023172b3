//! (5) Quorum: two disjoint partitions are never quorate at the same time.
//!
//! After every step in which some node reported a new quorum status
//! (`Output::Quorum`), no two running nodes whose statuses are quorate may
//! count disjoint member sets; and a node that says it is quorate computed
//! that for its current view. The simulation never uses `two_node` (where
//! both halves are quorate by design) nor `SetExpectedVotes` (an operator
//! override).
//!
//! One exception, by design of votequorum: a partition whose expected votes
//! `last_man_standing` lowered below the configured votes assumes the
//! missing nodes are dead; if they return on the other side of a split,
//! both sides can be quorate (votequorum(5) warns of this; fencing is the
//! guard). Such pairs are not reported; every other pair is.

use std::collections::BTreeSet;

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};

#[derive(Debug)]
pub struct QuorumCheck {
    changed: BTreeSet<LifeId>,
    configured_votes: u32,
}

impl QuorumCheck {
    pub fn new(configured_votes: u32) -> QuorumCheck {
        QuorumCheck {
            changed: BTreeSet::new(),
            configured_votes,
        }
    }
}

impl Invariant for QuorumCheck {
    fn id(&self) -> &'static str {
        "quorum"
    }

    fn name(&self) -> &'static str {
        "quorum"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        match ev {
            Observed::QuorumChanged { life } => {
                self.changed.insert(*life);
                Ok(())
            }
            Observed::StepEnd { life, view, .. } => {
                let l = h.life(*life);
                if let Some(q) = &l.quorum
                    && q.quorate
                    && q.members != view.members
                {
                    return Err(format!(
                        "{} says it is quorate with members {:?}, but its view is ring {} {:?}",
                        life_name(*life),
                        q.members,
                        view.ring,
                        view.members
                    ));
                }
                if self.changed.remove(life) {
                    disjoint_quorate(h, self.configured_votes)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

fn disjoint_quorate(h: &History, configured_votes: u32) -> Result<(), String> {
    let lowered = |q: &vigil_membership::quorum::QuorumStatus| {
        q.flags.last_man_standing && q.expected_votes < configured_votes
    };
    let quorate = h
        .lives
        .values()
        .filter(|l| l.ended.is_none())
        .filter_map(|l| l.quorum.as_ref().filter(|q| q.quorate).map(|q| (l, q)))
        .collect::<Vec<_>>();
    for (i, (a, qa)) in quorate.iter().enumerate() {
        for (b, qb) in &quorate[i + 1..] {
            if qa.members.iter().all(|n| !qb.members.contains(n)) && !lowered(qa) && !lowered(qb) {
                return Err(format!(
                    "{} (members {:?}, {} of {} expected votes, quorum {}, {}) and {} (members \
                     {:?}, {} of {} expected votes, quorum {}, {}) are both quorate",
                    life_name(a.id),
                    qa.members,
                    qa.total_votes,
                    qa.expected_votes,
                    qa.quorum,
                    qa.flags,
                    life_name(b.id),
                    qb.members,
                    qb.total_votes,
                    qb.expected_votes,
                    qb.quorum,
                    qb.flags
                ));
            }
        }
    }
    Ok(())
}
