//! The datagrams nodes exchange: a batch of protocol messages, encoded with
//! postcard. Authentication and encryption are the transport's job; this
//! layer only refuses what does not decode.

use serde::{Deserialize, Serialize};

use crate::{ClientId, NodeId, RingId};

/// What an ordered (or to-be-ordered) unit carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Body {
    /// One fragment of a client message.
    App {
        group: String,
        client: ClientId,
        /// Index of this fragment and how many the message has.
        frag: u32,
        frags: u32,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// A local client joins a group.
    Join { group: String, client: ClientId },
    /// A local client leaves a group.
    Leave { group: String, client: ClientId },
    /// After a view change: every group membership of the sender's
    /// clients, so that all members agree on the groups again.
    JoinList { entries: Vec<(String, ClientId)> },
    /// Expected votes change, applied in order by every member.
    ExpectedVotes { votes: u32 },
}

/// A unit in the total order of a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ordered {
    pub ring: RingId,
    pub seq: u64,
    pub sender: NodeId,
    /// The sender's own number for the unit, in this view.
    pub sender_seq: u64,
    pub body: Body,
}

/// Old-view delivery targets a view change must reach: members coming
/// from view `old` deliver up to `target`, fetching what they miss from
/// `source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SyncTarget {
    pub old: RingId,
    pub target: u64,
    pub source: NodeId,
    /// The accepting members that come from `old`.
    pub movers: Vec<NodeId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Msg {
    /// Liveness and progress, sent to every configured node.
    Heartbeat {
        ring: RingId,
        /// Highest ring sequence this node has seen.
        max_seq_seen: u64,
        /// Highest sequence delivered in `ring`.
        delivered: u64,
        /// For the sequencer: the highest sequence it has assigned.
        assigned: u64,
    },
    /// A coordinator proposes a new view.
    Propose { ring: RingId, members: Vec<NodeId> },
    /// A member accepts a proposal, saying where it stands in its view.
    Accept {
        ring: RingId,
        old: RingId,
        delivered: u64,
    },
    /// The coordinator says how far each old view must be delivered.
    Sync {
        ring: RingId,
        targets: Vec<SyncTarget>,
    },
    /// A member reached its old view's target.
    Synced { ring: RingId },
    /// The coordinator installs the view.
    Install { ring: RingId, members: Vec<NodeId> },
    /// A unit for the sequencer to order.
    Data {
        ring: RingId,
        sender_seq: u64,
        body: Body,
    },
    /// An ordered unit (first sending or retransmission).
    Ordered(Ordered),
    /// Please resend ordered units `from..=to` of `ring`.
    Nack { ring: RingId, from: u64, to: u64 },
    /// Progress report for stability (between heartbeats under load).
    Ack { ring: RingId, delivered: u64 },
}

/// Encodes one message, to be packed into a datagram by [`pack`].
pub(crate) fn encode_one(m: &Msg) -> Vec<u8> {
    postcard::to_allocvec(m).unwrap_or_default()
}

/// Encodes a batch of messages as one datagram.
#[cfg(test)]
pub(crate) fn encode(msgs: &[Msg]) -> Vec<u8> {
    let encoded: Vec<Vec<u8>> = msgs.iter().map(encode_one).collect();
    pack(&encoded, usize::MAX).concat()
}

/// Packs encoded messages, in order, into datagrams of at most `budget`
/// bytes each (a message larger than the budget alone goes in a datagram
/// of its own). A datagram is a postcard sequence: the number of messages
/// as a varint, then the messages, so that [`decode`] reads it as a
/// `Vec<Msg>`.
pub(crate) fn pack(encoded: &[Vec<u8>], budget: usize) -> Vec<Vec<u8>> {
    const COUNT_MAX: usize = 10; // a u64 varint's largest size
    let mut out = Vec::new();
    let mut start = 0;
    while start < encoded.len() {
        let mut end = start;
        let mut size = COUNT_MAX;
        while end < encoded.len() && (end == start || size + encoded[end].len() <= budget) {
            size += encoded[end].len();
            end += 1;
        }
        let mut d = Vec::with_capacity(size);
        push_varint(&mut d, (end - start) as u64);
        for m in &encoded[start..end] {
            d.extend_from_slice(m);
        }
        out.push(d);
        start = end;
    }
    out
}

fn push_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Decodes a datagram; `None` when it is not a valid batch.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<Msg>> {
    postcard::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let msgs = vec![
            Msg::Heartbeat {
                ring: RingId { seq: 3, rep: 1 },
                max_seq_seen: 3,
                delivered: 10,
                assigned: 12,
            },
            Msg::Ordered(Ordered {
                ring: RingId { seq: 3, rep: 1 },
                seq: 11,
                sender: 2,
                sender_seq: 4,
                body: Body::App {
                    group: "cib".into(),
                    client: 7,
                    frag: 0,
                    frags: 1,
                    payload: b"hello".to_vec(),
                },
            }),
        ];
        let bytes = encode(&msgs);
        assert_eq!(decode(&bytes).as_ref(), Some(&msgs));
        assert_eq!(decode(&[0xff, 0xff, 0xff]), None);
        // Packing splits by bytes and every datagram decodes to its share,
        // in order.
        let many: Vec<Msg> = (0..300)
            .map(|i| Msg::Ack {
                ring: RingId { seq: 1, rep: 1 },
                delivered: i * 1000,
            })
            .collect();
        let encoded: Vec<Vec<u8>> = many.iter().map(encode_one).collect();
        let datagrams = pack(&encoded, 200);
        assert!(datagrams.len() > 1);
        assert!(datagrams.iter().all(|d| d.len() <= 200));
        let back: Vec<Msg> = datagrams.iter().flat_map(|d| decode(d).unwrap()).collect();
        assert_eq!(back, many);
        // One message over the budget still goes, alone.
        let big = encode_one(&msgs[1]);
        assert_eq!(pack(&[big.clone(), big], 10).len(), 2);
        assert_eq!(decode(&bytes[..bytes.len() - 2]), None);
    }
}
