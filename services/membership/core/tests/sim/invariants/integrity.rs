//! Payload integrity: what is delivered is what was sent, byte for byte
//! (however it was fragmented), from the client that sent it, to the group
//! it was sent to, and only if the send was accepted.

use super::{Invariant, Observed, life_name};
use crate::sim::history::History;
use crate::sim::payload;

#[derive(Debug, Default)]
pub struct Integrity;

impl Invariant for Integrity {
    fn id(&self) -> &'static str {
        "integrity"
    }

    fn name(&self) -> &'static str {
        "payload integrity"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        let Observed::Delivered {
            life,
            group,
            to,
            from,
            payload: bytes,
            first_here,
            ..
        } = ev
        else {
            return Ok(());
        };
        let who = life_name(*life);
        let header = payload::parse(bytes)
            .map_err(|e| format!("{who} delivered to client {to} in group {group:?}: {e}"))?;
        let Some(sent) = h.msgs.get(&header.msg) else {
            return Err(format!(
                "{who} delivered message {}, which no client sent",
                header.msg
            ));
        };
        if !sent.accepted {
            return Err(format!(
                "{who} delivered message {}, whose send was refused",
                header.msg
            ));
        }
        if sent.group != *group
            || from.node != sent.life.0
            || from.client != sent.client
            || header.node != sent.life.0
            || header.client != sent.client
        {
            return Err(format!(
                "{who} delivered message {} as group {group:?} from {from:?}; it was sent to \
                 {:?} by client {} of {}",
                header.msg,
                sent.group,
                sent.client,
                life_name(sent.life)
            ));
        }
        if *first_here {
            payload::verify_body(header.msg, bytes).map_err(|e| format!("{who}: {e}"))?;
        }
        Ok(())
    }
}
