//! Everything the nodes reported, per life (a node between a start and a
//! crash): the views it installed, what it delivered in each, the group
//! memberships it was told about. Invariants read it; only the world
//! writes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use vigil_membership::quorum::QuorumStatus;
use vigil_membership::{ClientId, GroupMember, NodeId, RingId, View};

use super::net::Time;
use super::payload::MsgId;

/// A node's life: its id and incarnation (1 for the first start, one more
/// for each restart).
pub type LifeId = (NodeId, u32);

/// Client ids name their incarnation, so a restarted node's clients are
/// never mistaken for the old ones.
pub fn client_id(inc: u32, k: u32) -> ClientId {
    u64::from(inc) * 1000 + u64::from(k)
}

pub fn client_inc(client: ClientId) -> u32 {
    (client / 1000) as u32
}

/// A message a simulated client tried to send.
#[derive(Debug, Clone)]
pub struct MsgInfo {
    pub id: MsgId,
    pub life: LifeId,
    pub client: ClientId,
    pub group: String,
    pub len: usize,
    pub sent_at: Time,
    /// The state machine took it (no TooLarge / Congested / NotJoined).
    pub accepted: bool,
    /// Its node reported it `Undelivered` to its sender.
    pub undelivered: bool,
}

/// One view of one life and what was delivered in it.
#[derive(Debug, Clone)]
pub struct ViewRecord {
    pub view: View,
    /// False for the view a state machine starts with (no `ViewChange`).
    pub installed: bool,
    pub at: Time,
    /// Messages delivered in this view, in order (once per node, however
    /// many local clients got them), and each one's index there.
    pub delivered: Vec<MsgId>,
    pub pos: HashMap<MsgId, usize>,
    /// When each was delivered here (so it was ordered by then).
    pub times: HashMap<MsgId, Time>,
    /// The same per group, with each message's index in its group's list.
    pub by_group: BTreeMap<String, Vec<MsgId>>,
    pub group_pos: HashMap<MsgId, usize>,
    /// What each local client got in this view, per group, in order.
    pub by_client: BTreeMap<(ClientId, String), Vec<MsgId>>,
}

impl ViewRecord {
    fn new(view: View, installed: bool, at: Time) -> ViewRecord {
        ViewRecord {
            view,
            installed,
            at,
            delivered: Vec::new(),
            pos: HashMap::new(),
            times: HashMap::new(),
            by_group: BTreeMap::new(),
            group_pos: HashMap::new(),
            by_client: BTreeMap::new(),
        }
    }

    pub fn has(&self, msg: MsgId) -> bool {
        self.pos.contains_key(&msg)
    }
}

#[derive(Debug, Clone)]
pub struct Life {
    pub id: LifeId,
    pub ended: Option<Time>,
    /// Paused (gets no input) right now.
    pub paused: bool,
    /// `views[0]` is the state machine's initial view.
    pub views: Vec<ViewRecord>,
    /// Group memberships, as the last `GroupChange` for each group said.
    pub groups: BTreeMap<String, Vec<GroupMember>>,
    /// Groups each local client asked to be in (Join minus Leave inputs).
    pub wants: BTreeMap<ClientId, BTreeSet<String>>,
    /// (client, group) for every Join input of this life.
    pub ever_joined: BTreeSet<(ClientId, String)>,
    /// When each (client, group) was last left (Leave input). The
    /// simulated clients never join a group again once they left it.
    pub leave_inputs: BTreeMap<(ClientId, String), Time>,
    /// (client, group) whose leave a `GroupChange` reported (and no later
    /// join): nothing may be delivered to them in that group any more.
    pub left: BTreeSet<(ClientId, String)>,
    pub client_deliveries: BTreeSet<(ClientId, MsgId)>,
    pub node_deliveries: BTreeSet<MsgId>,
    /// Accepted sends not yet delivered back on this node.
    pub unordered: BTreeSet<MsgId>,
    /// The last `Output::Quorum`.
    pub quorum: Option<QuorumStatus>,
}

impl Life {
    pub fn current(&self) -> &ViewRecord {
        self.views
            .last()
            .expect("a life always has its initial view")
    }

    pub fn installed_views(&self) -> impl Iterator<Item = &ViewRecord> {
        self.views.iter().filter(|v| v.installed)
    }

    /// Whether the last `GroupChange` of `group` lists this local client.
    pub fn confirmed(&self, client: ClientId, group: &str) -> bool {
        self.groups.get(group).is_some_and(|m| {
            m.contains(&GroupMember {
                node: self.id.0,
                client,
            })
        })
    }
}

/// Where, when and to whom a message was first delivered.
#[derive(Debug, Clone)]
pub struct FirstDelivery {
    pub ring: RingId,
    pub by: LifeId,
    /// The group's members when it was delivered: everyone who must get
    /// it (by the first deliverer's account).
    pub recipients: Vec<GroupMember>,
}

#[derive(Debug, Clone, Default)]
pub struct History {
    pub lives: BTreeMap<LifeId, Life>,
    pub msgs: BTreeMap<MsgId, MsgInfo>,
    pub first: BTreeMap<MsgId, FirstDelivery>,
}

impl History {
    pub fn life(&self, id: LifeId) -> &Life {
        &self.lives[&id]
    }

    pub fn start_life(&mut self, id: LifeId, at: Time, initial: View) {
        self.lives.insert(
            id,
            Life {
                id,
                ended: None,
                paused: false,
                views: vec![ViewRecord::new(initial, false, at)],
                groups: BTreeMap::new(),
                wants: BTreeMap::new(),
                ever_joined: BTreeSet::new(),
                leave_inputs: BTreeMap::new(),
                left: BTreeSet::new(),
                client_deliveries: BTreeSet::new(),
                node_deliveries: BTreeSet::new(),
                unordered: BTreeSet::new(),
                quorum: None,
            },
        );
    }

    pub fn end_life(&mut self, id: LifeId, at: Time) {
        if let Some(l) = self.lives.get_mut(&id) {
            l.ended = Some(at);
        }
    }

    pub fn install(&mut self, id: LifeId, at: Time, view: View) {
        let life = self.lives.get_mut(&id).expect("live");
        life.views.push(ViewRecord::new(view, true, at));
    }

    /// Records a `GroupChange`; returns the members it replaces.
    pub fn group_change(
        &mut self,
        id: LifeId,
        group: &str,
        members: Vec<GroupMember>,
    ) -> Option<Vec<GroupMember>> {
        let life = self.lives.get_mut(&id).expect("live");
        let previous = life.groups.insert(group.to_string(), members.clone());
        for m in previous.iter().flatten().chain(&members) {
            if m.node == id.0 {
                let key = (m.client, group.to_string());
                if members.contains(m) {
                    life.left.remove(&key);
                } else {
                    life.left.insert(key);
                }
            }
        }
        previous
    }

    /// Records a delivery; returns whether it is the first of this message
    /// on this node (in this life).
    pub fn deliver(&mut self, id: LifeId, at: Time, group: &str, to: ClientId, msg: MsgId) -> bool {
        let life = self.lives.get_mut(&id).expect("live");
        life.client_deliveries.insert((to, msg));
        let first_here = life.node_deliveries.insert(msg);
        let ring = life.current().view.ring;
        let recipients = life.groups.get(group).cloned().unwrap_or_default();
        let rec = life.views.last_mut().expect("initial view");
        rec.by_client
            .entry((to, group.to_string()))
            .or_default()
            .push(msg);
        if first_here {
            life.unordered.remove(&msg);
            rec.pos.insert(msg, rec.delivered.len());
            rec.times.insert(msg, at);
            rec.delivered.push(msg);
            let in_group = rec.by_group.entry(group.to_string()).or_default();
            rec.group_pos.insert(msg, in_group.len());
            in_group.push(msg);
            self.first.entry(msg).or_insert(FirstDelivery {
                ring,
                by: id,
                recipients,
            });
        }
        first_here
    }

    /// The view of `life` in ring `ring`, if it installed it (or started
    /// in it).
    pub fn view_record(&self, life: LifeId, ring: RingId) -> Option<&ViewRecord> {
        self.life(life).views.iter().find(|v| v.view.ring == ring)
    }

    /// Whether client `c` of `life` was certainly a member of `group` when
    /// message `x` of ring `ring` was ordered, judging by what `other` (a
    /// life that delivered `x`) delivered: `c` got a message of the group
    /// before `x` (in an earlier view, or earlier in `other`'s order), and
    /// did not ask to leave before `x` was ordered.
    pub fn certainly_member(
        &self,
        life: LifeId,
        c: ClientId,
        group: &str,
        x: MsgId,
        ring: RingId,
        other: LifeId,
    ) -> bool {
        let key = (c, group.to_string());
        let l = self.life(life);
        let Some(&ordered_by) = self.view_record(other, ring).and_then(|o| o.times.get(&x)) else {
            return false;
        };
        if l.leave_inputs.get(&key).is_some_and(|t| *t <= ordered_by) {
            return false;
        }
        l.views.iter().any(|v| {
            let Some(got) = v.by_client.get(&key) else {
                return false;
            };
            if v.view.ring < ring {
                return !got.is_empty();
            }
            if v.view.ring != ring {
                return false;
            }
            let Some(o) = self.view_record(other, ring) else {
                return false;
            };
            let Some(&xi) = o.group_pos.get(&x) else {
                return false;
            };
            got.iter()
                .any(|y| o.group_pos.get(y).is_some_and(|yi| *yi < xi))
        })
    }

    /// The live life of `node`, if it is up (or paused).
    pub fn live(&self, node: NodeId) -> Option<&Life> {
        self.lives
            .range((node, 0)..=(node, u32::MAX))
            .next_back()
            .map(|(_, l)| l)
            .filter(|l| l.ended.is_none())
    }
}
