//! (3) Virtual synchrony: two nodes that both install view V' right after
//! view V delivered the same messages in V — except, on each side, the
//! messages of groups in which the other node had no client that was
//! certainly a member at the time (see `History::certainly_member`).

use std::collections::BTreeMap;

use vigil_membership::RingId;

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};
use crate::sim::net::Time;

#[derive(Debug, Default)]
pub struct VirtualSynchrony {
    /// For each (V, V'), the lives that moved from V to V', and when they
    /// installed V and V'. (Ring ids are not unique across restarts of
    /// the whole cluster, see `view_agreement`; moves that do not overlap
    /// in time are about different views.)
    moves: BTreeMap<(RingId, RingId), Vec<Move>>,
}

/// A life, when it installed V, and when it installed V'.
type Move = (LifeId, Time, Time);

impl Invariant for VirtualSynchrony {
    fn id(&self) -> &'static str {
        "virtual-synchrony"
    }

    fn name(&self) -> &'static str {
        "virtual synchrony"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        let Observed::Installed { life } = ev else {
            return Ok(());
        };
        let l = h.life(*life);
        let [.., old, new] = l.views.as_slice() else {
            return Ok(());
        };
        let key = (old.view.ring, new.view.ring);
        let others = self.moves.entry(key).or_default();
        let concurrent = others
            .iter()
            .filter(|(_, from, to)| *from <= new.at && old.at <= *to)
            .map(|(l, _, _)| l);
        for other in concurrent {
            missing(h, old.view.ring, *other, *life)
                .and_then(|()| missing(h, old.view.ring, *life, *other))
                .map_err(|e| {
                    format!(
                        "{} and {} both moved from ring {} {:?} to ring {} {:?}, but {e}",
                        life_name(*life),
                        life_name(*other),
                        old.view.ring,
                        old.view.members,
                        new.view.ring,
                        new.view.members
                    )
                })?;
        }
        others.push((*life, old.at, new.at));
        Ok(())
    }
}

/// A message `has` delivered in `ring` that `lacks` did not, though one of
/// its clients was certainly a member of the message's group.
fn missing(h: &History, ring: RingId, has: LifeId, lacks: LifeId) -> Result<(), String> {
    let (Some(theirs), Some(mine)) = (h.view_record(has, ring), h.view_record(lacks, ring)) else {
        return Ok(());
    };
    let l = h.life(lacks);
    for &x in &theirs.delivered {
        if mine.has(x) {
            continue;
        }
        let group = &h.msgs[&x].group;
        let member = l
            .ever_joined
            .iter()
            .filter(|(_, g)| g == group)
            .find(|(c, _)| h.certainly_member(lacks, *c, group, x, ring, has));
        if let Some((c, _)) = member {
            return Err(format!(
                "{} delivered message {x} of group {group:?} in ring {ring} and {} did not, \
                 though its client {c} was a member of the group",
                life_name(has),
                life_name(lacks)
            ));
        }
    }
    Ok(())
}
