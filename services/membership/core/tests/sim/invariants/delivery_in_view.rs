//! (4) No delivery outside the view: in view V a node delivers only
//! messages whose sender is a member of V, and only to its own clients that
//! joined the group (a Join input in this life) and whose leave has not
//! been reported by a `GroupChange` since.

use vigil_membership::{ClientId, GroupMember};

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId, client_inc};
use crate::sim::payload::MsgId;

#[derive(Debug)]
pub struct DeliveryInView;

impl Invariant for DeliveryInView {
    fn id(&self) -> &'static str {
        "delivery-in-view"
    }

    fn name(&self) -> &'static str {
        "no delivery outside the view"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        match ev {
            Observed::Delivered {
                life,
                group,
                to,
                from,
                msg: Some(msg),
                ..
            } => delivered(h, *life, group, *to, *from, *msg),
            _ => Ok(()),
        }
    }
}

fn delivered(
    h: &History,
    life: LifeId,
    group: &str,
    to: ClientId,
    from: GroupMember,
    msg: MsgId,
) -> Result<(), String> {
    let l = h.life(life);
    let view = &l.current().view;
    let who = life_name(life);
    if !view.contains(from.node) {
        return Err(format!(
            "{who} delivered message {msg} from n{} in ring {} {:?}, which n{} is not a \
             member of",
            from.node, view.ring, view.members, from.node
        ));
    }
    let key = (to, group.to_string());
    if client_inc(to) != life.1 || !l.ever_joined.contains(&key) {
        return Err(format!(
            "{who} delivered message {msg} of group {group:?} to client {to}, which never \
             joined {group:?} on this node (in this life)"
        ));
    }
    if l.left.contains(&key) {
        return Err(format!(
            "{who} delivered message {msg} of group {group:?} to client {to} after a \
             GroupChange reported that the client left"
        ));
    }
    Ok(())
}
