//! (5) Quorum: two disjoint partitions are never quorate at the same time.
//!
//! After every step in which some node reported a new quorum status
//! (`Output::Quorum`), no two running nodes whose statuses are quorate may
//! count disjoint member sets; and a node that says it is quorate computed
//! that for its current view. The simulation never uses `two_node` (where
//! both halves are quorate by design) nor `SetExpectedVotes` (an operator
//! override).

use std::collections::BTreeSet;

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};

#[derive(Debug, Default)]
pub struct QuorumCheck {
    changed: BTreeSet<LifeId>,
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
                    disjoint_quorate(h)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

fn disjoint_quorate(h: &History) -> Result<(), String> {
    let quorate = h
        .lives
        .values()
        .filter(|l| l.ended.is_none())
        .filter_map(|l| l.quorum.as_ref().filter(|q| q.quorate).map(|q| (l, q)))
        .collect::<Vec<_>>();
    for (i, (a, qa)) in quorate.iter().enumerate() {
        for (b, qb) in &quorate[i + 1..] {
            if qa.members.iter().all(|n| !qb.members.contains(n)) {
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
