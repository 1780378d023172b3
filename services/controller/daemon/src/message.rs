//! What controllers say to each other in the group `crmd`.
//!
//! Every message that belongs to a transition carries its transition key
//! (`ACTION:TRANSITION:RC:DC-UUID`): a DC only takes results whose key
//! names itself (its uuid is new with each DC process), so a result meant
//! for an earlier DC or an earlier run of this one never lands on an
//! action of the current transition.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A CIB version: (admin_epoch, epoch, num_updates).
pub type Version = (u64, u64, u64);

/// One operation the DC asks of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub resource: String,
    /// `ocf:heartbeat:Dummy`.
    pub agent: String,
    pub operation: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub params: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub target_rc: i32,
    /// The transition key, recorded with the result.
    pub key: String,
}

/// A message of the group `crmd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// DC `from` asks node `to` to run a resource operation of a
    /// transition (or a resource's `clear_failcount` / `lrm_delete`).
    Execute { to: u32, from: u32, op: Op },
    /// Node `from`'s result of the action with transition key `key`,
    /// sent once the result is in the CIB: `version` is the CIB version
    /// that write made (the DC takes the result once its own copy of the
    /// CIB is that far, so that it never schedules without it).
    Result {
        to: u32,
        from: u32,
        key: String,
        ok: bool,
        reason: String,
        version: Version,
    },
    /// DC `from` tells node `to` (which asked to shut down, and whose
    /// resources have left) to stop its controller (`do_shutdown`).
    Shutdown { to: u32, from: u32, key: String },
    /// A result no DC asked for went wrong on node `from` (a recurring
    /// monitor failed): the DC aborts its transition and schedules anew.
    Unexpected {
        from: u32,
        resource: String,
        operation: String,
        reason: String,
    },
    /// Set (or, with no value, remove) node `node`'s transient attribute
    /// `name`; its controller writes it after `dampen_ms` without further
    /// change.
    Attribute {
        node: String,
        name: String,
        value: Option<String>,
        dampen_ms: u64,
    },
    /// Forget `resource`'s history and failures (on `node`, or on every
    /// node when empty), so that the cluster probes it afresh.
    Cleanup { resource: String, node: String },
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Message> {
        postcard::from_bytes(bytes).ok()
    }
}

/// The DC of a group: the member with the lowest node id (every member
/// sees the same members at the same point, so all agree, and a new DC
/// follows the membership change that removes the old one).
pub fn dc(members: impl IntoIterator<Item = u32>) -> Option<u32> {
    members.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_dc() {
        let m = Message::Result {
            to: 1,
            from: 2,
            key: "4:3:0:n1-17".into(),
            ok: true,
            reason: String::new(),
            version: (0, 5, 12),
        };
        assert_eq!(Message::decode(&m.encode()), Some(m));
        let s = Message::Shutdown {
            to: 2,
            from: 1,
            key: "9:3:0:n1-17".into(),
        };
        assert_eq!(Message::decode(&s.encode()), Some(s));
        assert_eq!(Message::decode(b"junk"), None);
        assert_eq!(dc([3, 1, 2]), Some(1));
        assert_eq!(dc([]), None);
    }
}
