//! The simulated network: per-link loss, duplication, variable delay
//! (hence reordering) and cut links (symmetric or one-way partitions).
//! Every random choice comes from the simulation's seeded generator.

use std::collections::BTreeMap;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use vigil_membership::NodeId;

/// Microseconds of simulated time.
pub type Time = u64;

/// The largest UDP payload (IPv4); a bigger datagram cannot be sent at all.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// How datagrams fare, for every link.
#[derive(Debug, Clone, PartialEq)]
pub struct NetParams {
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram arrives twice.
    pub dup: f64,
    /// Delay, uniform in this range (µs).
    pub delay_us: (Time, Time),
    /// Probability of a late datagram (overtaken by later ones).
    pub spike: f64,
    /// Largest extra delay of a late datagram (µs).
    pub spike_us: Time,
}

impl NetParams {
    /// A perfect LAN: 1 ms, nothing lost, duplicated or reordered; uses no
    /// randomness at all.
    pub fn perfect() -> NetParams {
        NetParams {
            loss: 0.0,
            dup: 0.0,
            delay_us: (1_000, 1_000),
            spike: 0.0,
            spike_us: 0,
        }
    }
}

/// Links and their faults.
#[derive(Debug, Clone)]
pub struct Net {
    pub params: NetParams,
    /// Extra loss probability on one directed link.
    pub link_loss: BTreeMap<(NodeId, NodeId), f64>,
    /// Directed links that carry nothing, with how many faults cut them
    /// (partitions may overlap).
    cut: BTreeMap<(NodeId, NodeId), u32>,
    pub stats: NetStats,
}

/// What happened to datagrams.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    pub sent: u64,
    pub lost: u64,
    pub cut: u64,
    pub duplicated: u64,
    pub to_dead_node: u64,
    pub bytes: u64,
    pub largest: usize,
}

impl Net {
    pub fn new(params: NetParams) -> Net {
        Net {
            params,
            link_loss: BTreeMap::new(),
            cut: BTreeMap::new(),
            stats: NetStats::default(),
        }
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains_key(&(from, to))
    }

    /// Cuts `from → to` once more.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        *self.cut.entry((from, to)).or_default() += 1;
    }

    /// Undoes one [`Net::cut`].
    pub fn uncut(&mut self, from: NodeId, to: NodeId) {
        if let Some(n) = self.cut.get_mut(&(from, to)) {
            *n -= 1;
            if *n == 0 {
                self.cut.remove(&(from, to));
            }
        }
    }

    /// Every cut link, as (from, to).
    pub fn cut_links(&self) -> Vec<(NodeId, NodeId)> {
        self.cut.keys().copied().collect()
    }

    /// Back to a fault-free network with `params`.
    pub fn heal_all(&mut self, params: NetParams) {
        self.params = params;
        self.link_loss.clear();
        self.cut.clear();
    }

    /// When the copies of a datagram sent now arrive: none (lost or cut),
    /// one, or two (duplicated).
    pub fn fate(
        &mut self,
        rng: &mut ChaCha8Rng,
        now: Time,
        from: NodeId,
        to: NodeId,
        len: usize,
    ) -> Vec<Time> {
        self.stats.sent += 1;
        self.stats.bytes += len as u64;
        self.stats.largest = self.stats.largest.max(len);
        if self.is_cut(from, to) {
            self.stats.cut += 1;
            return Vec::new();
        }
        let loss = self.params.loss + self.link_loss.get(&(from, to)).copied().unwrap_or(0.0);
        if loss > 0.0 && rng.random_bool(loss.min(1.0)) {
            self.stats.lost += 1;
            return Vec::new();
        }
        let copies = if self.params.dup > 0.0 && rng.random_bool(self.params.dup) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        (0..copies).map(|_| now + self.delay(rng)).collect()
    }

    fn delay(&self, rng: &mut ChaCha8Rng) -> Time {
        let (lo, hi) = self.params.delay_us;
        let mut d = if lo == hi {
            lo
        } else {
            rng.random_range(lo..=hi)
        };
        if self.params.spike > 0.0 && rng.random_bool(self.params.spike) {
            d += rng.random_range(0..=self.params.spike_us);
        }
        d
    }
}
