//! (1) View agreement: two nodes that installed a view with the same ring id
//! installed the same members; a node is a member of every view it
//! installs; the ring ids one node installs strictly increase; and
//! `Membership::view` is the last view the node reported.

use std::collections::BTreeMap;

use vigil_membership::{NodeId, RingId};

use super::{Invariant, Observed, life_name};
use crate::sim::history::{History, LifeId};

#[derive(Debug, Default)]
pub struct ViewAgreement {
    /// Members of each ring id, and who installed it first.
    rings: BTreeMap<RingId, (Vec<NodeId>, LifeId)>,
}

impl Invariant for ViewAgreement {
    fn id(&self) -> &'static str {
        "view-agreement"
    }

    fn name(&self) -> &'static str {
        "view agreement"
    }

    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String> {
        match ev {
            Observed::Installed { life } => self.installed(h, *life),
            Observed::StepEnd { life, view, .. } => {
                let reported = &h.life(*life).current().view;
                if view != reported {
                    return Err(format!(
                        "{}: Membership::view() returns ring {} {:?}, but the last ViewChange \
                         it output was ring {} {:?}",
                        life_name(*life),
                        view.ring,
                        view.members,
                        reported.ring,
                        reported.members
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl ViewAgreement {
    fn installed(&mut self, h: &History, life: LifeId) -> Result<(), String> {
        let l = h.life(life);
        let view = &l.current().view;
        let who = life_name(life);
        if !view.contains(life.0) || !view.members.is_sorted() {
            return Err(format!(
                "{who} installed ring {} with members {:?}: it must contain the node itself \
                 and be sorted",
                view.ring, view.members
            ));
        }
        if view.members.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!(
                "{who} installed ring {} with a repeated member: {:?}",
                view.ring, view.members
            ));
        }
        if let Some(prev) = l.views.iter().rev().nth(1)
            && prev.view.ring >= view.ring
        {
            return Err(format!(
                "{who} installed ring {} {:?} after ring {} {:?}: ring ids must strictly increase",
                view.ring, view.members, prev.view.ring, prev.view.members
            ));
        }
        match self.rings.get(&view.ring) {
            Some((members, first)) if *members != view.members => Err(format!(
                "ring {} has two member lists: {} installed {:?}, {who} installed {:?}",
                view.ring,
                life_name(*first),
                members,
                view.members
            )),
            Some(_) => Ok(()),
            None => {
                self.rings.insert(view.ring, (view.members.clone(), life));
                Ok(())
            }
        }
    }
}
