//! Same-view delivery (part of (2) and (3)): a message belongs to one view;
//! every node that delivers it delivers it in that view (ring), never in a
//! later one. Otherwise the same message is seen as sent in two views.

use super::{Invariant, Observed, life_name};
use crate::sim::history::History;

#[derive(Debug, Default)]
pub struct SameView;

impl Invariant for SameView {
    fn id(&self) -> &'static str {
        "same-view"
    }

    fn name(&self) -> &'static str {
        "same-view delivery"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        let Observed::Delivered {
            life,
            msg: Some(msg),
            first_here: true,
            ..
        } = ev
        else {
            return Ok(());
        };
        let ring = h.life(*life).current().view.ring;
        let first = &h.first[msg];
        if first.ring != ring {
            let sent = &h.msgs[msg];
            return Err(format!(
                "message {msg} (sent by {} at {} ms) was delivered in ring {} by {} but in \
                 ring {ring} by {}",
                life_name(sent.life),
                sent.sent_at / 1000,
                first.ring,
                life_name(first.by),
                life_name(*life)
            ));
        }
        Ok(())
    }
}
