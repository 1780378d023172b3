//! One replica of the CIB, kept equal to the others through the
//! membership layer's ordered group `cib`. Pure: the daemon feeds it the
//! group's events and local requests, and carries out what it returns.
//!
//! # How replicas stay equal
//!
//! Every change is a [`Message::Change`] sent to the group; every replica
//! applies the changes in the group's total order, with the same
//! deterministic function, so replicas that start equal stay equal — a
//! change that is refused is refused everywhere, with the same reason. The
//! replica that sent a change answers its caller when it applies it.
//!
//! Replicas that may differ — a node that joins, two partitions that
//! merge — are made equal by a *sync round*, started by every group change
//! (the membership layer reports one to every member, at the same point of
//! the order, for every join and leave and every view change) and
//! restarted by any group change during a round:
//!
//! 1. Every member sends an [`Message::Offer`]: its version, its digest, and
//!    the member list of the round.
//! 2. When every member's offer for the current member list is delivered,
//!    all know the *winner*: the highest `(admin_epoch, epoch,
//!    num_updates)`, ties to the lowest node id (Pacemaker also keeps the
//!    higher version). If all digests are equal the round ends here.
//! 3. Otherwise the winner sends its CIB in [`Message::Full`] chunks, and
//!    every replica whose digest differs takes it, logging what its own copy
//!    had that the winner's does not (a change made on the other side of a
//!    partition is reported, never dropped silently).
//!
//! Changes delivered during a round are held and applied, in order, when
//! it ends, so every replica applies them to the same CIB.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use vigil_cib::model::CibVersion;
use vigil_cib::xml::Document;

use crate::store::{digest, version_of};

/// A member of the group: (node, client).
pub type Member = (u32, u64);

/// Largest piece of a CIB in one group message.
pub const CHUNK: usize = 512 * 1024;

/// What replicas send each other (postcard-encoded group messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A change for every replica to apply. `origin`/`request` let the
    /// sender answer its caller; `change` is opaque here (the daemon's
    /// encoded request).
    Change {
        origin: u32,
        request: u64,
        change: Vec<u8>,
    },
    /// A replica's state at the start of a sync round.
    Offer {
        round: Vec<Member>,
        node: u32,
        version: (u64, u64, u64),
        digest: String,
    },
    /// A piece of a message too large for one group message (the
    /// membership layer carries at most 1 MiB): pieces of one sender come
    /// in order, and the whole is delivered where its last piece is.
    Part {
        /// The local request the whole is for (0: none), so that its
        /// sender can fail it if a part is not delivered.
        request: u64,
        index: u32,
        count: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// A piece of the winner's CIB.
    Full {
        round: Vec<Member>,
        index: u32,
        count: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

/// The largest group message this daemon sends; larger ones go in
/// [`Message::Part`]s.
pub const PART: usize = 768 * 1024;

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// The group messages that carry `encoded` (one message, or its
    /// parts, marked with `request`).
    pub fn frame(encoded: Vec<u8>, request: u64) -> Vec<Vec<u8>> {
        if encoded.len() <= PART {
            return vec![encoded];
        }
        let pieces: Vec<&[u8]> = encoded.chunks(PART).collect();
        let count = pieces.len() as u32;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, data)| {
                Message::Part {
                    request,
                    index: i as u32,
                    count,
                    data: data.to_vec(),
                }
                .encode()
            })
            .collect()
    }

    pub fn decode(bytes: &[u8]) -> Option<Message> {
        postcard::from_bytes(bytes).ok()
    }
}

/// The deterministic function every replica applies changes with.
pub trait Apply {
    /// Applies `change` to `cib`, returning the patch (Pacemaker's v2
    /// patchset, as XML) from the old CIB to the new one, or why the
    /// change is refused, leaving `cib` unchanged.
    fn apply(&mut self, cib: &mut Document, change: &[u8]) -> Result<String, String>;

    /// The patch from `old` to `new`.
    fn diff(&mut self, old: &Document, new: &Document) -> String;
}

/// What the replica wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this message to the group.
    Send(Message),
    /// Answer local request `request`: the version it produced, or why it
    /// was refused.
    Reply {
        request: u64,
        result: Result<CibVersion, String>,
    },
    /// The CIB changed from version `from` (by a change, or by taking the
    /// winner's copy); `patch` is the v2 patchset between them.
    Changed {
        from: CibVersion,
        to: CibVersion,
        patch: String,
    },
    /// The replica took another replica's CIB in a sync round, and its own
    /// copy (version `own`) had changes made without the winner, which are
    /// lost unless made again: worth a warning with the details. `lost` is
    /// the patch from the winner's copy to the own one (what the own copy
    /// had).
    Replaced {
        own: CibVersion,
        winner_node: u32,
        winner: CibVersion,
        lost: String,
    },
    /// The replica is now in step with the group (after a sync round).
    Synced,
}

#[derive(Debug)]
struct Round {
    members: Vec<Member>,
    offers: BTreeMap<u32, (CibVersion, String)>,
    /// The winner, once every offer is in.
    winner: Option<u32>,
    chunks: Vec<Option<Vec<u8>>>,
}

/// One replica.
#[derive(Debug)]
pub struct Replica {
    node: u32,
    cib: Document,
    /// The digest of `cib`, computed when a sync round needs it.
    digest: Option<String>,
    members: Vec<Member>,
    /// False until this replica has been through a sync round.
    synced: bool,
    round: Option<Round>,
    held: Vec<(u32, u64, Vec<u8>)>,
    /// Parts of large messages, per sender, until the last arrives.
    parts: BTreeMap<Member, Vec<Vec<u8>>>,
    /// The nodes known to have every change of this copy: those present
    /// at each change applied here, plus the members of each later sync
    /// round this copy went through unreplaced (None: no change of its
    /// own since it last took another replica's copy). If the copy is
    /// replaced by a node not among them, changes that node never had
    /// are lost, and that is reported.
    witnesses: Option<BTreeSet<u32>>,
}

impl Replica {
    /// A replica on `node` starting from `cib` (what this node stored, or
    /// an empty CIB), with the witnesses stored with it.
    pub fn new(node: u32, cib: Document, witnesses: Option<BTreeSet<u32>>) -> Replica {
        Replica {
            node,
            cib,
            digest: None,
            members: Vec::new(),
            synced: false,
            round: None,
            held: Vec::new(),
            parts: BTreeMap::new(),
            witnesses,
        }
    }

    /// The digest of the CIB.
    fn digest(&mut self) -> String {
        self.digest
            .get_or_insert_with(|| digest(self.cib.to_xml().as_bytes()))
            .clone()
    }

    /// Sets this node's id (known once the membership daemon answers;
    /// before any group event).
    pub fn set_node(&mut self, node: u32) {
        self.node = node;
    }

    /// The nodes present at every change since the last sync round.
    pub fn witnesses(&self) -> Option<&BTreeSet<u32>> {
        self.witnesses.as_ref()
    }

    pub fn cib(&self) -> &Document {
        &self.cib
    }

    pub fn version(&self) -> CibVersion {
        version_of(&self.cib)
    }

    /// Whether this replica is in step with the group (changes can be
    /// answered).
    pub fn synced(&self) -> bool {
        self.synced && self.round.is_none()
    }

    /// The group's membership changed.
    pub fn group_changed(
        &mut self,
        members: Vec<Member>,
        joined: &[Member],
        _left: &[Member],
    ) -> Vec<Effect> {
        let mut members = members;
        members.sort_unstable();
        self.members = members.clone();
        self.parts.retain(|m, _| members.contains(m));
        let _ = joined;
        // A new round at every group change: the membership layer reports
        // each change (and each view change, even one that leaves the group
        // as it was) to every member at the same point of the order, but
        // members that come from different partitions see different
        // `joined` lists, or none. Where nothing differs, the round ends
        // with the offers.
        if members.is_empty() {
            self.round = None;
            return Vec::new();
        }
        self.round = Some(Round {
            members: members.clone(),
            offers: BTreeMap::new(),
            winner: None,
            chunks: Vec::new(),
        });
        let v = self.version();
        vec![Effect::Send(Message::Offer {
            round: members,
            node: self.node,
            version: (v.admin_epoch, v.epoch, v.num_updates),
            digest: self.digest(),
        })]
    }

    /// A group message from `from` was delivered (in the total order);
    /// parts are gathered until the whole message is there.
    pub fn delivered_from(
        &mut self,
        from: Member,
        payload: &[u8],
        apply: &mut impl Apply,
    ) -> Vec<Effect> {
        let Some(Message::Part {
            index, count, data, ..
        }) = Message::decode(payload)
        else {
            return self.delivered(payload, apply);
        };
        let parts = self.parts.entry(from).or_default();
        if index == 0 {
            parts.clear();
        }
        if parts.len() as u32 != index || index >= count {
            // A piece of a message whose start this replica did not see
            // (it joined later): the whole is not for it.
            parts.clear();
            return Vec::new();
        }
        parts.push(data);
        if index + 1 < count {
            return Vec::new();
        }
        let whole: Vec<u8> = std::mem::take(parts).concat();
        self.parts.remove(&from);
        self.delivered(&whole, apply)
    }

    /// A whole group message was delivered (in the total order).
    pub fn delivered(&mut self, payload: &[u8], apply: &mut impl Apply) -> Vec<Effect> {
        let Some(msg) = Message::decode(payload) else {
            return Vec::new();
        };
        match msg {
            Message::Part { .. } => Vec::new(),
            Message::Change {
                origin,
                request,
                change,
            } => {
                if self.round.is_some() || !self.synced {
                    self.held.push((origin, request, change));
                    return Vec::new();
                }
                self.apply_change(origin, request, &change, apply)
            }
            Message::Offer {
                round,
                node,
                version,
                digest,
            } => self.offer(round, node, version, digest, apply),
            Message::Full {
                round,
                index,
                count,
                data,
            } => self.full(round, index, count, data, apply),
        }
    }

    fn apply_change(
        &mut self,
        origin: u32,
        request: u64,
        change: &[u8],
        apply: &mut impl Apply,
    ) -> Vec<Effect> {
        let from = self.version();
        let result = apply.apply(&mut self.cib, change);
        let mut out = Vec::new();
        if let Ok(patch) = &result {
            self.digest = None;
            let to = self.version();
            if to != from {
                out.push(Effect::Changed {
                    from,
                    to,
                    patch: patch.clone(),
                });
            }
            let present: BTreeSet<u32> = self.members.iter().map(|m| m.0).collect();
            self.witnesses = Some(match self.witnesses.take() {
                Some(w) => w.intersection(&present).copied().collect(),
                None => present,
            });
        }
        if origin == self.node {
            let version = self.version();
            out.push(Effect::Reply {
                request,
                result: result.map(|_| version),
            });
        }
        out
    }

    fn offer(
        &mut self,
        round: Vec<Member>,
        node: u32,
        version: (u64, u64, u64),
        digest: String,
        apply: &mut impl Apply,
    ) -> Vec<Effect> {
        let Some(r) = self.round.as_mut() else {
            return Vec::new();
        };
        if r.members != round || r.winner.is_some() {
            return Vec::new();
        }
        let version = CibVersion {
            admin_epoch: version.0,
            epoch: version.1,
            num_updates: version.2,
        };
        r.offers.insert(node, (version, digest));
        let nodes: BTreeSet<u32> = r.members.iter().map(|m| m.0).collect();
        if !nodes.iter().all(|n| r.offers.contains_key(n)) {
            return Vec::new();
        }
        // Every offer is in: the highest version wins, ties to the lowest
        // node id.
        let (&winner, (_, winner_digest)) = r
            .offers
            .iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(a.0)))
            .expect("at least one offer");
        let winner_digest = winner_digest.clone();
        r.winner = Some(winner);
        if r.offers.values().all(|(_, d)| *d == winner_digest) {
            return self.end_round(false, apply);
        }
        if winner != self.node {
            return Vec::new();
        }
        let xml = self.cib.to_xml().into_bytes();
        let pieces: Vec<&[u8]> = xml.chunks(CHUNK).collect();
        let count = pieces.len() as u32;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, data)| {
                Effect::Send(Message::Full {
                    round: round.clone(),
                    index: i as u32,
                    count,
                    data: data.to_vec(),
                })
            })
            .collect()
    }

    fn full(
        &mut self,
        round: Vec<Member>,
        index: u32,
        count: u32,
        data: Vec<u8>,
        apply: &mut impl Apply,
    ) -> Vec<Effect> {
        let Some(r) = self.round.as_mut() else {
            return Vec::new();
        };
        let Some(winner) = r.winner else {
            return Vec::new();
        };
        if r.members != round || count == 0 || index >= count {
            return Vec::new();
        }
        if r.chunks.len() != count as usize {
            r.chunks = vec![None; count as usize];
        }
        r.chunks[index as usize] = Some(data);
        if r.chunks.iter().any(Option::is_none) {
            return Vec::new();
        }
        let bytes: Vec<u8> = r
            .chunks
            .iter_mut()
            .flat_map(|c| c.take().unwrap_or_default())
            .collect();
        let mut out = Vec::new();
        let winner_version = r.offers.get(&winner).map(|o| o.0).unwrap_or_default();
        if winner != self.node {
            match String::from_utf8(bytes)
                .ok()
                .and_then(|t| Document::parse(&t).ok())
            {
                Some(doc) => {
                    let own = self.version();
                    let new_digest = digest(doc.to_xml().as_bytes());
                    if new_digest != self.digest() {
                        // A copy that was only behind is no news; one with
                        // changes made without the winner is.
                        if self
                            .witnesses
                            .as_ref()
                            .is_some_and(|w| !w.contains(&winner))
                        {
                            out.push(Effect::Replaced {
                                own,
                                winner_node: winner,
                                winner: winner_version,
                                lost: apply.diff(&doc, &self.cib),
                            });
                        }
                        let patch = apply.diff(&self.cib, &doc);
                        self.cib = doc;
                        self.digest = Some(new_digest);
                        out.push(Effect::Changed {
                            from: own,
                            to: self.version(),
                            patch,
                        });
                    }
                }
                None => {
                    // Cannot happen between replicas of one build; keep
                    // the own copy rather than stop.
                }
            }
        }
        let adopted = out.iter().any(|e| matches!(e, Effect::Changed { .. }));
        out.extend(self.end_round(adopted, apply));
        out
    }

    /// Ends the sync round. `adopted`: this replica took the winner's
    /// copy (its own changes are gone, so there is nothing to witness);
    /// otherwise every member of the round now has this copy.
    fn end_round(&mut self, adopted: bool, apply: &mut impl Apply) -> Vec<Effect> {
        let members: BTreeSet<u32> = self
            .round
            .take()
            .map(|r| r.members.iter().map(|m| m.0).collect())
            .unwrap_or_default();
        self.synced = true;
        if adopted {
            self.witnesses = None;
        } else if let Some(w) = self.witnesses.as_mut() {
            w.extend(members);
        }
        let mut out = vec![Effect::Synced];
        for (origin, request, change) in std::mem::take(&mut self.held) {
            out.extend(self.apply_change(origin, request, &change, apply));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sets `epoch` to the change's text (a number), refusing anything
    /// else.
    struct SetEpoch;

    impl Apply for SetEpoch {
        fn apply(&mut self, cib: &mut Document, change: &[u8]) -> Result<String, String> {
            let text = std::str::from_utf8(change).map_err(|e| e.to_string())?;
            let n: u64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
            cib.root.set_attr("epoch", n.to_string());
            Ok(format!("epoch={n}"))
        }

        fn diff(&mut self, old: &Document, new: &Document) -> String {
            format!(
                "{}->{}",
                old.root.attr("epoch").unwrap_or("?"),
                new.root.attr("epoch").unwrap_or("?")
            )
        }
    }

    impl Replica {
        fn new1(node: u32, cib: Document) -> Replica {
            Replica::new(node, cib, None)
        }
    }

    fn doc(epoch: u64, extra: &str) -> Document {
        Document::parse(&format!(
            "<cib admin_epoch=\"0\" epoch=\"{epoch}\" num_updates=\"0\"{extra}><configuration/><status/></cib>"
        ))
        .unwrap()
    }

    /// Delivers every sent message to every replica, in one order, until
    /// nothing is left; returns the effects per replica.
    fn run(replicas: &mut [Replica], first: Vec<(usize, Vec<Effect>)>) -> Vec<Vec<Effect>> {
        let mut seen: Vec<Vec<Effect>> = replicas.iter().map(|_| Vec::new()).collect();
        let mut queue: std::collections::VecDeque<Message> = Default::default();
        for (i, effects) in first {
            for e in effects {
                match e {
                    Effect::Send(m) => queue.push_back(m),
                    other => seen[i].push(other),
                }
            }
        }
        while let Some(m) = queue.pop_front() {
            let bytes = m.encode();
            for (i, r) in replicas.iter_mut().enumerate() {
                for e in r.delivered(&bytes, &mut SetEpoch) {
                    match e {
                        Effect::Send(m) => queue.push_back(m),
                        other => seen[i].push(other),
                    }
                }
            }
        }
        seen
    }

    fn change(origin: u32, request: u64, text: &str) -> Message {
        Message::Change {
            origin,
            request,
            change: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_joining_replica_takes_the_higher_version_and_held_changes_follow() {
        let mut rs = vec![Replica::new1(1, doc(7, "")), Replica::new1(2, doc(3, ""))];
        let members = vec![(1, 1), (2, 1)];
        let first = vec![
            (0, rs[0].group_changed(members.clone(), &[(2, 1)], &[])),
            (1, rs[1].group_changed(members.clone(), &[(2, 1)], &[])),
        ];
        // A change sent before the round ends is held, then applied on the
        // winner's copy everywhere.
        let mut first = first;
        first.push((1, vec![Effect::Send(change(2, 9, "8"))]));
        let seen = run(&mut rs, first);
        for r in &rs {
            assert_eq!(r.version().epoch, 8, "{:?}", r.cib().to_xml());
            assert!(r.synced());
        }
        assert_eq!(rs[0].cib().to_xml(), rs[1].cib().to_xml());
        // Node 2 was simply behind: no warning; it answered its caller.
        assert!(!seen[1].iter().any(|e| matches!(e, Effect::Replaced { .. })));
        assert!(seen[1].contains(&Effect::Reply {
            request: 9,
            result: Ok(CibVersion {
                admin_epoch: 0,
                epoch: 8,
                num_updates: 0
            })
        }));
        assert!(!seen[0].iter().any(|e| matches!(e, Effect::Reply { .. })));
    }

    #[test]
    fn a_partition_merge_keeps_the_higher_copy_and_reports_the_other() {
        let mut rs = vec![Replica::new1(1, doc(5, "")), Replica::new1(2, doc(5, ""))];
        let both = vec![(1, 4), (2, 4)];
        let first = vec![
            (0, rs[0].group_changed(both.clone(), &[(1, 4), (2, 4)], &[])),
            (1, rs[1].group_changed(both.clone(), &[(1, 4), (2, 4)], &[])),
        ];
        run(&mut rs, first);
        // A partition: each side alone makes a change; node 2's is newer.
        let alone = rs[0].group_changed(vec![(1, 4)], &[], &[(2, 4)]);
        run(&mut rs[0..1], vec![(0, alone)]);
        let alone = rs[1].group_changed(vec![(2, 4)], &[], &[(1, 4)]);
        run(&mut rs[1..2], vec![(0, alone)]);
        let bytes = change(1, 1, "6").encode();
        assert_eq!(rs[0].delivered(&bytes, &mut SetEpoch).len(), 2);
        let bytes = change(2, 1, "7").encode();
        assert_eq!(rs[1].delivered(&bytes, &mut SetEpoch).len(), 2);
        // The partition heals: node 2's copy wins; node 1 is told what it
        // loses; node 2 is not.
        let first = vec![
            (0, rs[0].group_changed(both.clone(), &[(2, 4)], &[])),
            (1, rs[1].group_changed(both.clone(), &[(1, 4)], &[])),
        ];
        let seen = run(&mut rs, first);
        assert_eq!(rs[0].version().epoch, 7);
        assert_eq!(rs[0].cib().to_xml(), rs[1].cib().to_xml());
        assert!(
            seen[0]
                .iter()
                .any(|e| matches!(e, Effect::Replaced { winner_node: 2, .. })),
            "{:?}",
            seen[0]
        );
        assert!(!seen[1].iter().any(|e| matches!(e, Effect::Replaced { .. })));
        // Equal versions, different content: the lower node id wins.
        let mut rs = vec![
            Replica::new1(1, doc(5, " a=\"left\"")),
            Replica::new1(2, doc(5, " a=\"right\"")),
        ];
        let first = vec![
            (0, rs[0].group_changed(both.clone(), &[(1, 4)], &[])),
            (1, rs[1].group_changed(both.clone(), &[(1, 4)], &[])),
        ];
        run(&mut rs, first);
        assert_eq!(rs[1].cib().root.attr("a"), Some("left"));
    }

    #[test]
    fn a_change_made_alone_is_reported_even_after_a_round_alone() {
        // Node 2 restarts alone (a round of one), changes the CIB, then
        // meets node 1, whose copy is newer.
        let mut lone = Replica::new1(2, doc(5, ""));
        let effects = lone.group_changed(vec![(2, 1)], &[(2, 1)], &[]);
        let mut rs = [lone];
        run(&mut rs, vec![(0, effects)]);
        let bytes = change(2, 1, "6").encode();
        rs[0].delivered(&bytes, &mut SetEpoch);
        assert_eq!(rs[0].witnesses(), Some(&BTreeSet::from([2])));
        let [lone] = rs;
        let mut rs = [Replica::new1(1, doc(9, "")), lone];
        let both = vec![(1, 1), (2, 1)];
        let first = vec![
            (0, rs[0].group_changed(both.clone(), &[(2, 1)], &[])),
            (1, rs[1].group_changed(both.clone(), &[(1, 1)], &[])),
        ];
        let seen = run(&mut rs, first);
        assert!(
            seen[1]
                .iter()
                .any(|e| matches!(e, Effect::Replaced { winner_node: 1, .. })),
            "{:?}",
            seen[1]
        );
        assert_eq!(rs[1].witnesses(), None);
        // Node 1 kept its copy: nothing to report there.
        assert!(!seen[0].iter().any(|e| matches!(e, Effect::Replaced { .. })));
    }

    #[test]
    fn changes_apply_in_order_and_refusals_are_the_same_everywhere() {
        let mut rs = vec![Replica::new1(1, doc(1, "")), Replica::new1(2, doc(1, ""))];
        let members = vec![(1, 1), (2, 1)];
        let first = vec![
            (
                0,
                rs[0].group_changed(members.clone(), &[(1, 1), (2, 1)], &[]),
            ),
            (
                1,
                rs[1].group_changed(members.clone(), &[(1, 1), (2, 1)], &[]),
            ),
        ];
        run(&mut rs, first);
        let seen = run(
            &mut rs,
            vec![(
                0,
                vec![
                    Effect::Send(change(1, 1, "4")),
                    Effect::Send(change(2, 1, "nonsense")),
                    Effect::Send(change(1, 2, "6")),
                ],
            )],
        );
        assert_eq!(rs[0].version().epoch, 6);
        assert_eq!(rs[0].cib().to_xml(), rs[1].cib().to_xml());
        assert!(seen[1].contains(&Effect::Reply {
            request: 1,
            result: Err("not a number: nonsense".into())
        }));
        assert_eq!(
            seen[0]
                .iter()
                .filter(|e| matches!(e, Effect::Reply { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn a_large_change_travels_in_parts() {
        let mut rs = [Replica::new1(1, doc(1, "")), Replica::new1(2, doc(1, ""))];
        let members = vec![(1, 1), (2, 1)];
        let first = vec![
            (
                0,
                rs[0].group_changed(members.clone(), &[(1, 1), (2, 1)], &[]),
            ),
            (
                1,
                rs[1].group_changed(members.clone(), &[(1, 1), (2, 1)], &[]),
            ),
        ];
        run(&mut rs, first);
        // A change of 2.5 parts' size whose text is still a number.
        let text = format!("{}7", "0".repeat(PART * 5 / 2));
        let framed = Message::frame(change(1, 5, &text).encode(), 5);
        assert_eq!(framed.len(), 3);
        let mut replies = Vec::new();
        for (i, piece) in framed.iter().enumerate() {
            for r in rs.iter_mut() {
                let out = r.delivered_from((1, 1), piece, &mut SetEpoch);
                if i < 2 {
                    assert!(out.is_empty(), "nothing before the last part");
                }
                replies.extend(
                    out.into_iter()
                        .filter(|e| matches!(e, Effect::Reply { .. })),
                );
            }
        }
        assert_eq!(replies.len(), 1);
        assert_eq!(rs[0].version().epoch, 7);
        assert_eq!(rs[1].version().epoch, 7);
        // A replica that missed the first part ignores the rest.
        let mut late = Replica::new1(3, doc(1, ""));
        for piece in &framed[1..] {
            assert!(late.delivered_from((1, 1), piece, &mut SetEpoch).is_empty());
        }
        assert_eq!(late.version().epoch, 1);
    }

    #[test]
    fn a_big_cib_travels_in_chunks() {
        let big = format!(" pad=\"{}\"", "x".repeat(CHUNK * 2 + 10));
        let mut rs = [Replica::new1(1, doc(9, &big)), Replica::new1(2, doc(1, ""))];
        let members = vec![(1, 1), (2, 1)];
        let mut sent = 0;
        let first = vec![
            (0, rs[0].group_changed(members.clone(), &[(2, 1)], &[])),
            (1, rs[1].group_changed(members.clone(), &[(2, 1)], &[])),
        ];
        // Count the Full messages by delivering by hand.
        let mut queue: Vec<Message> = first
            .into_iter()
            .flat_map(|(_, es)| es)
            .filter_map(|e| match e {
                Effect::Send(m) => Some(m),
                _ => None,
            })
            .collect();
        while !queue.is_empty() {
            let m = queue.remove(0);
            if matches!(m, Message::Full { .. }) {
                sent += 1;
            }
            let bytes = m.encode();
            for r in rs.iter_mut() {
                for e in r.delivered(&bytes, &mut SetEpoch) {
                    if let Effect::Send(m) = e {
                        queue.push(m);
                    }
                }
            }
        }
        assert_eq!(sent, 3);
        assert_eq!(rs[1].cib().to_xml(), rs[0].cib().to_xml());
    }
}
