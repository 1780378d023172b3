//! Flow control: a node never holds more than `send_window` accepted
//! messages that it has not yet seen ordered (delivered back to itself);
//! beyond that, sends must be refused with `Congested`.

use super::{Invariant, Observed, life_name};
use crate::sim::history::History;

#[derive(Debug)]
pub struct FlowControl {
    window: usize,
}

impl FlowControl {
    pub fn new(window: usize) -> FlowControl {
        FlowControl { window }
    }
}

impl Invariant for FlowControl {
    fn id(&self) -> &'static str {
        "flow-control"
    }

    fn name(&self) -> &'static str {
        "flow control"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        let Observed::Accepted { life, msg } = ev else {
            return Ok(());
        };
        let pending = h.life(*life).unordered.len();
        if pending > self.window {
            return Err(format!(
                "{} accepted message {msg} with {pending} accepted messages not yet ordered, \
                 more than send_window = {}: it should have answered Congested",
                life_name(*life),
                self.window
            ));
        }
        Ok(())
    }
}
