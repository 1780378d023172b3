//! What controllers say to each other in the group `crmd`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A message of the group `crmd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// The DC asks node `to` to run a resource operation of a transition.
    Execute {
        to: u32,
        transition: u64,
        action: u32,
        resource: String,
        /// `ocf:heartbeat:Dummy`.
        agent: String,
        operation: String,
        interval_ms: u64,
        timeout_ms: u64,
        params: BTreeMap<String, String>,
        meta: BTreeMap<String, String>,
        target_rc: i32,
        /// The transition key, recorded with the result.
        key: String,
    },
    /// Node `from`'s result of an action the DC asked for.
    Result {
        to: u32,
        from: u32,
        transition: u64,
        action: u32,
        ok: bool,
        reason: String,
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
            transition: 3,
            action: 4,
            ok: true,
            reason: String::new(),
        };
        assert_eq!(Message::decode(&m.encode()), Some(m));
        assert_eq!(Message::decode(b"junk"), None);
        assert_eq!(dc([3, 1, 2]), Some(1));
        assert_eq!(dc([]), None);
    }
}
