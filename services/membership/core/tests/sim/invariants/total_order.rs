//! (2) Total order, within each view (ring) (that a message belongs to
//! one ring is `same_view`):
//! - any two nodes deliver the messages they both deliver in the same
//!   relative order (so across the run too, as rings only grow);
//! - no gaps: a client that got messages y and then m of a group also got
//!   every message of that group which any node delivered between y and m
//!   (clients never rejoin a group they left, so their membership is one
//!   stretch of the order). Together with virtual synchrony this makes
//!   what two nodes delivered in a view prefixes of one another, leaving
//!   out the groups a node had no client in.

use std::collections::HashMap;

use vigil_membership::{ClientId, RingId};

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};
use crate::sim::payload::MsgId;

#[derive(Debug, Default)]
pub struct TotalOrder {
    /// The lives that delivered each message (once per node).
    nodes: HashMap<MsgId, Vec<LifeId>>,
    /// The (life, client) pairs that got each message.
    clients: HashMap<MsgId, Vec<(LifeId, ClientId)>>,
    /// For two lives in a ring: positions (in each one's order) of the
    /// last message that became common to both.
    common: HashMap<(RingId, LifeId, LifeId), (usize, usize)>,
}

impl Invariant for TotalOrder {
    fn id(&self) -> &'static str {
        "total-order"
    }

    fn name(&self) -> &'static str {
        "total order"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        let Observed::Delivered {
            life,
            group,
            to,
            msg: Some(msg),
            first_here,
            ..
        } = ev
        else {
            return Ok(());
        };
        let (life, msg) = (*life, *msg);
        let ring = h.life(life).current().view.ring;
        if *first_here {
            let others = self.nodes.entry(msg).or_default();
            // Only lives that delivered it in this ring (`same_view` checks
            // there are no others).
            others.retain(|o| h.view_record(*o, ring).is_some_and(|v| v.has(msg)));
            for &other in others.iter() {
                same_relative_order(h, &mut self.common, ring, life, other, msg)?;
            }
            others.push(life);
            let clients = self.clients.get(&msg).into_iter().flatten();
            for &(l, c) in
                clients.filter(|(l, _)| h.view_record(*l, ring).is_some_and(|v| v.has(msg)))
            {
                no_gap(h, ring, life, l, c, group, msg)?;
            }
        }
        let clients = self.clients.entry(msg).or_default();
        clients.retain(|(l, _)| h.view_record(*l, ring).is_some_and(|v| v.has(msg)));
        clients.push((life, *to));
        for &other in &self.nodes[&msg] {
            no_gap(h, ring, other, life, *to, group, msg)?;
        }
        Ok(())
    }
}

/// `msg` just became common to `life` (which delivered it last) and
/// `other`: it must come after every message that became common to them
/// before.
fn same_relative_order(
    h: &History,
    common: &mut HashMap<(RingId, LifeId, LifeId), (usize, usize)>,
    ring: RingId,
    life: LifeId,
    other: LifeId,
    msg: MsgId,
) -> Result<(), String> {
    let (Some(mine), Some(theirs)) = (h.view_record(life, ring), h.view_record(other, ring)) else {
        return Ok(());
    };
    let (Some(&i), Some(&j)) = (mine.pos.get(&msg), theirs.pos.get(&msg)) else {
        return Ok(());
    };
    let key = (ring, life.min(other), life.max(other));
    if let Some(&(a, b)) = common.get(&key) {
        let prev_theirs = if life < other { b } else { a };
        if j <= prev_theirs {
            let x = theirs.delivered[prev_theirs];
            return Err(format!(
                "{} delivered message {msg} after message {x}, {} delivered {msg} before {x} \
                 (ring {ring}): the order differs",
                life_name(life),
                life_name(other)
            ));
        }
    }
    common.insert(key, if life < other { (i, j) } else { (j, i) });
    Ok(())
}

/// Client `c` of `life` got `msg` (of `group`): everything of the group
/// that `order` delivered between the client's previous message and `msg`
/// must have reached the client too.
fn no_gap(
    h: &History,
    ring: RingId,
    order: LifeId,
    life: LifeId,
    c: ClientId,
    group: &str,
    msg: MsgId,
) -> Result<(), String> {
    let got = &h
        .view_record(life, ring)
        .expect("delivered in it")
        .by_client[&(c, group.to_string())];
    let Some(k) = got.iter().rposition(|m| *m == msg) else {
        return Ok(());
    };
    let Some(&y) = k.checked_sub(1).map(|p| &got[p]) else {
        return Ok(());
    };
    let Some(o) = h.view_record(order, ring) else {
        return Ok(());
    };
    let (Some(&yi), Some(&mi)) = (o.group_pos.get(&y), o.group_pos.get(&msg)) else {
        return Ok(());
    };
    if yi >= mi {
        return Ok(()); // an order difference, reported as such
    }
    let delivered = &h.life(life).client_deliveries;
    if let Some(x) = o
        .by_group
        .get(group)
        .into_iter()
        .flat_map(|g| &g[yi + 1..mi])
        .find(|x| !delivered.contains(&(c, **x)))
    {
        return Err(format!(
            "client {c} of {} got messages {y} and then {msg} of group {group:?} in ring \
             {ring}, but not message {x}, which {} delivered between them: a member skipped a \
             message",
            life_name(life),
            life_name(order)
        ));
    }
    Ok(())
}
