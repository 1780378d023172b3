//! Group changes in the total order: `GroupChange` outputs are ordered with
//! the messages, so at each message every node agrees on the group's
//! members, the message's sender and recipients are among them (as the
//! node's last `GroupChange` said), and the node delivers it to all its
//! local members at once. A `GroupChange` is consistent with the previous
//! one and lists only nodes of the current view.

use std::collections::{BTreeMap, BTreeSet};

use vigil_membership::{ClientId, GroupMember};

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};
use crate::sim::payload::MsgId;

#[derive(Debug, Default)]
pub struct GroupOrder {
    /// Local clients that must get each message delivered in the current
    /// step, and those that did.
    fan_out: BTreeMap<(LifeId, MsgId), (BTreeSet<ClientId>, BTreeSet<ClientId>)>,
}

impl Invariant for GroupOrder {
    fn id(&self) -> &'static str {
        "group-order"
    }

    fn name(&self) -> &'static str {
        "group changes in the total order"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        match ev {
            Observed::Delivered {
                life,
                group,
                to,
                from,
                msg: Some(msg),
                first_here,
                ..
            } => self.delivered(h, *life, group, *to, *from, *msg, *first_here),
            Observed::GroupChanged {
                life,
                group,
                previous,
                members,
                joined,
                left,
            } => group_changed(h, *life, group, previous.as_deref(), members, joined, left),
            Observed::StepEnd { life, .. } => self.step_end(*life),
            _ => Ok(()),
        }
    }
}

impl GroupOrder {
    #[allow(clippy::too_many_arguments)]
    fn delivered(
        &mut self,
        h: &History,
        life: LifeId,
        group: &str,
        to: ClientId,
        from: GroupMember,
        msg: MsgId,
        first_here: bool,
    ) -> Result<(), String> {
        let l = h.life(life);
        let who = life_name(life);
        let ring = l.current().view.ring;
        let members = l.groups.get(group).map(Vec::as_slice).unwrap_or_default();
        let me = GroupMember {
            node: life.0,
            client: to,
        };
        if !members.contains(&me) {
            return Err(format!(
                "{who} delivered message {msg} of group {group:?} in ring {ring} to client \
                 {to}, but its last GroupChange of the group does not list the client \
                 ({members:?})"
            ));
        }
        if !members.contains(&from) {
            return Err(format!(
                "{who} delivered message {msg} of group {group:?} in ring {ring} from {from:?}, \
                 but its last GroupChange of the group does not list the sender ({members:?})"
            ));
        }
        if !first_here {
            return match self.fan_out.get_mut(&(life, msg)) {
                Some((_, got)) => {
                    got.insert(to);
                    Ok(())
                }
                None => Err(format!(
                    "{who} delivered message {msg} to client {to} in a later step than to its \
                     other clients: a message reaches all local members at once"
                )),
            };
        }
        let first = &h.first[&msg];
        if first.by != life {
            let mut mine = members.to_vec();
            let mut theirs = first.recipients.clone();
            mine.sort();
            theirs.sort();
            if mine != theirs {
                return Err(format!(
                    "nodes disagree on group {group:?} at message {msg} (ring {ring}): {} had \
                     members {theirs:?}, {who} has {mine:?}",
                    life_name(first.by)
                ));
            }
        }
        let expected = members
            .iter()
            .filter(|m| m.node == life.0)
            .map(|m| m.client)
            .collect();
        self.fan_out
            .insert((life, msg), (expected, BTreeSet::from([to])));
        Ok(())
    }

    fn step_end(&mut self, life: LifeId) -> Result<(), String> {
        let mine = self
            .fan_out
            .keys()
            .filter(|(l, _)| *l == life)
            .copied()
            .collect::<Vec<_>>();
        for key in mine {
            let (expected, got) = self.fan_out.remove(&key).expect("listed");
            if expected != got {
                return Err(format!(
                    "{} delivered message {} to local clients {got:?}, but the group's local \
                     members (by its last GroupChange) were {expected:?}",
                    life_name(life),
                    key.1
                ));
            }
        }
        Ok(())
    }
}

fn group_changed(
    h: &History,
    life: LifeId,
    group: &str,
    previous: Option<&[GroupMember]>,
    members: &[GroupMember],
    joined: &[GroupMember],
    left: &[GroupMember],
) -> Result<(), String> {
    let view = &h.life(life).current().view;
    let who = life_name(life);
    if let Some(m) = members.iter().find(|m| !view.contains(m.node)) {
        return Err(format!(
            "{who}: GroupChange of {group:?} lists {m:?}, but n{} is not in the current view \
             (ring {} {:?})",
            m.node, view.ring, view.members
        ));
    }
    let previous = previous.unwrap_or_default();
    let mut want = previous
        .iter()
        .filter(|m| !left.contains(m))
        .copied()
        .collect::<BTreeSet<_>>();
    want.extend(joined.iter().copied());
    let got = members.iter().copied().collect::<BTreeSet<_>>();
    if want != got {
        return Err(format!(
            "{who}: GroupChange of {group:?} says members {members:?}, joined {joined:?}, \
             left {left:?}, but the previous members were {previous:?}"
        ));
    }
    Ok(())
}
