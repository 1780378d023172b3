//! (6) No duplicate delivery, sender included: a client gets each message
//! at most once, and by the end of a run every message a node accepted has
//! been delivered back to the client that sent it, if that node is still
//! running (the sender is part of the group it sends to), or reported to it
//! as `Undelivered`.

use std::collections::HashSet;

use vigil_membership::ClientId;

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};
use crate::sim::payload::MsgId;

#[derive(Debug, Default)]
pub struct NoDuplicates {
    seen: HashSet<(LifeId, ClientId, MsgId)>,
}

impl Invariant for NoDuplicates {
    fn id(&self) -> &'static str {
        "no-duplicates"
    }

    fn name(&self) -> &'static str {
        "no duplicate delivery, sender included"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        let Observed::Delivered {
            life,
            to,
            msg: Some(msg),
            ..
        } = ev
        else {
            return Ok(());
        };
        if !self.seen.insert((*life, *to, *msg)) {
            let rings = h
                .life(*life)
                .views
                .iter()
                .filter(|v| v.has(*msg))
                .map(|v| v.view.ring.to_string())
                .collect::<Vec<_>>();
            return Err(format!(
                "{} delivered message {msg} to client {to} twice (now in ring {}; first \
                 delivered on this node in ring(s) {rings:?})",
                life_name(*life),
                h.life(*life).current().view.ring
            ));
        }
        Ok(())
    }

    fn at_end(&mut self, h: &History) -> Result<(), String> {
        let lost = h
            .msgs
            .values()
            .filter(|m| m.accepted && !m.undelivered)
            .filter(|m| {
                let l = h.life(m.life);
                l.ended.is_none() && !l.paused && !l.client_deliveries.contains(&(m.client, m.id))
            })
            .map(|m| {
                format!(
                    "message {} ({} bytes, group {:?}) sent by client {} of {} at {} ms",
                    m.id,
                    m.len,
                    m.group,
                    m.client,
                    life_name(m.life),
                    m.sent_at / 1000
                )
            })
            .collect::<Vec<_>>();
        if lost.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{} accepted message(s) never came back to their sender, which is still running: \
             {}{}",
            lost.len(),
            lost[..lost.len().min(5)].join("; "),
            if lost.len() > 5 { "; ..." } else { "" }
        ))
    }
}
