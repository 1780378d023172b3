//! A deterministic network simulation of `vigil-membership` nodes, in the
//! style of openraft's turmoil suite: one seed drives every choice, every
//! step is checked against the invariants (one per file in `invariants/`),
//! and a failure prints the seed that replays it.
//!
//! - `world`: the clock, event queue, nodes and clients ([`world::Sim`]).
//! - `net`: loss, duplication, delay, partitions.
//! - `history`: what the nodes reported, per life.
//! - `payload`: self-describing message bodies.
//! - `random`: the seeded safety + liveness run.

pub mod history;
pub mod invariants;
pub mod net;
pub mod payload;
pub mod random;
pub mod trace;
pub mod world;
