//! Safety invariants, one per file. Each sees every observation right after
//! the history recorded it (so, after every step of the simulation), and
//! once more at the end of a run.

mod delivery_in_view;
mod flow_control;
mod group_order;
mod integrity;
mod no_duplicates;
mod quorum;
mod same_view;
mod total_order;
mod view_agreement;
mod virtual_synchrony;

use vigil_membership::{ClientId, GroupMember, View};

use super::history::{History, LifeId};
use super::payload::MsgId;

/// Something a node did, as the invariants see it.
#[derive(Debug, Clone)]
pub enum Observed {
    /// `ViewChange`: the history's current view of `life` is the new one.
    Installed { life: LifeId },
    /// `GroupChange`, with the members it replaced (None: first one seen).
    GroupChanged {
        life: LifeId,
        group: String,
        previous: Option<Vec<GroupMember>>,
        members: Vec<GroupMember>,
        joined: Vec<GroupMember>,
        left: Vec<GroupMember>,
    },
    /// `Deliver`. `msg` is None when the payload is not a simulation
    /// message at all; `first_here` is whether this node delivered it
    /// before (to another client).
    Delivered {
        life: LifeId,
        group: String,
        to: ClientId,
        from: GroupMember,
        payload: Vec<u8>,
        msg: Option<MsgId>,
        first_here: bool,
    },
    /// `Output::Quorum`: the history has the life's new quorum status.
    QuorumChanged { life: LifeId },
    /// A client's send was accepted.
    Accepted { life: LifeId, msg: MsgId },
    /// A `handle` call returned; `view` is what `Membership::view` says.
    StepEnd { life: LifeId, view: View },
}

/// A safety property of the protocol.
pub trait Invariant {
    /// Short name, for `VIGIL_SIM_SKIP`.
    fn id(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn observe(&mut self, h: &History, ev: &Observed) -> Result<(), String>;
    /// After the run (everything sent has had time to arrive).
    fn at_end(&mut self, _h: &History) -> Result<(), String> {
        Ok(())
    }
}

/// Every invariant, fresh for one run, but those whose ids are listed in
/// `VIGIL_SIM_SKIP` (comma-separated), to look past a known failure.
pub fn all(send_window: usize, configured_votes: u32) -> Vec<Box<dyn Invariant>> {
    let skip = std::env::var("VIGIL_SIM_SKIP").unwrap_or_default();
    let skip = skip.split(',').map(str::trim).collect::<Vec<_>>();
    let all: Vec<Box<dyn Invariant>> = vec![
        Box::new(view_agreement::ViewAgreement::default()),
        Box::new(same_view::SameView),
        Box::new(total_order::TotalOrder::default()),
        Box::new(virtual_synchrony::VirtualSynchrony::default()),
        Box::new(delivery_in_view::DeliveryInView),
        Box::new(group_order::GroupOrder::default()),
        Box::new(quorum::QuorumCheck::new(configured_votes)),
        Box::new(no_duplicates::NoDuplicates::default()),
        Box::new(integrity::Integrity),
        Box::new(flow_control::FlowControl::new(send_window)),
    ];
    all.into_iter()
        .filter(|i| !skip.contains(&i.id()))
        .collect()
}

/// "n3#2" for node 3 in its second life.
pub fn life_name(life: LifeId) -> String {
    format!("n{}#{}", life.0, life.1)
}
