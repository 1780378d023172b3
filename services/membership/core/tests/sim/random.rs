//! One seeded random run: a safety phase (clients join, leave and send
//! while the network loses, duplicates and delays datagrams, partitions
//! come and go, nodes crash, restart and pause), then a liveness phase
//! (faults off, every node up: one view of all nodes, every group agreed,
//! every new message delivered everywhere, the view stable).

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use vigil_membership::quorum::{QuorumOptions, TieBreaker};
use vigil_membership::{Config, NodeId};

use super::invariants::life_name;
use super::net::{NetParams, Time};
use super::world::{MS, SendOutcome, Sim, SimConfig, Stats};

pub const GROUPS: [&str; 3] = ["alpha", "beta", "gamma"];
/// Local clients per node.
pub const CLIENTS: u32 = 2;

/// Length of the safety phase, in simulated ms.
pub fn safety_ms() -> u64 {
    std::env::var("VIGIL_SIM_SAFETY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[derive(Debug)]
enum Action {
    Client,
    Fault,
    Uncut(Vec<(NodeId, NodeId)>),
    LinkBack(NodeId, NodeId),
    Restart(NodeId),
    Resume(NodeId),
}

struct Driver {
    agenda: BTreeMap<(Time, u64), Action>,
    next: u64,
    big_sent: bool,
}

impl Driver {
    fn at(&mut self, t: Time, a: Action) {
        self.agenda.insert((t, self.next), a);
        self.next += 1;
    }
}

/// The cluster a seed describes.
pub fn config_for_seed(seed: u64, test: &str) -> SimConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_0FC0_FFEE);
    let n: NodeId = rng.random_range(3..=7);
    let nodes = (1..=n).collect::<Vec<_>>();
    let mut membership = Config::new(1, nodes.clone());
    if rng.random_bool(0.3) {
        membership.send_window = 48; // congestion, and only small messages fit
    }
    membership.quorum = match rng.random_range(0..4) {
        0 => QuorumOptions::default(),
        1 => QuorumOptions {
            wait_for_all: Some(true),
            ..QuorumOptions::default()
        },
        2 => QuorumOptions {
            wait_for_all: Some(true),
            last_man_standing: true,
            last_man_standing_window_ms: 3_000,
            ..QuorumOptions::default()
        },
        _ => QuorumOptions {
            wait_for_all: Some(true),
            auto_tie_breaker: true,
            auto_tie_breaker_node: if rng.random_bool(0.5) {
                TieBreaker::Lowest
            } else {
                TieBreaker::Highest
            },
            ..QuorumOptions::default()
        },
    };
    // Drawn last, so that the choices above stay what they were for
    // every seed.
    if rng.random_bool(0.3) {
        membership.max_datagram = 1500; // batches split into many datagrams
    }
    let defer = if rng.random_bool(0.5) { 0.5 } else { 0.0 };
    SimConfig {
        seed,
        defer,
        rerun: format!(
            "VIGIL_SIM_SEED={seed} cargo test -p vigil-membership --test simulation {test} -- \
             --exact --include-ignored --nocapture"
        ),
        nodes,
        membership,
        tick_us: (10 * MS, 50 * MS),
        net: NetParams {
            loss: 0.01,
            dup: 0.01,
            delay_us: (100, 3 * MS),
            spike: 0.01,
            spike_us: 20 * MS,
        },
    }
}

/// Runs seed `seed` to the end; panics (with the seed) on any failure.
pub fn run_seed(seed: u64, test: &str) -> Stats {
    let mut sim = Sim::new(config_for_seed(seed, test));
    safety_phase(&mut sim);
    liveness_phase(&mut sim);
    sim.stats.clone()
}

fn safety_phase(sim: &mut Sim) {
    sim.phase = "safety";
    let end = safety_ms() * MS;
    let mut d = Driver {
        agenda: BTreeMap::new(),
        next: 0,
        big_sent: false,
    };
    d.at(0, Action::Client);
    d.at(500 * MS, Action::Fault);
    while let Some(((t, _), action)) = d.agenda.pop_first() {
        if t > end {
            break;
        }
        sim.advance_to(t);
        act(sim, &mut d, action);
    }
    sim.advance_to(end);
}

fn act(sim: &mut Sim, d: &mut Driver, action: Action) {
    let now = sim.now;
    let nodes = sim.cfg.nodes.clone();
    let tt = sim.token_timeout();
    match action {
        Action::Client => {
            let gap = sim.rng.random_range(1..=40) * MS;
            d.at(now + gap, Action::Client);
            let node = nodes[sim.rng.random_range(0..nodes.len())];
            let k = sim.rng.random_range(0..CLIENTS);
            client_step(sim, d, node, k);
        }
        Action::Fault => {
            let gap = sim.rng.random_range(200..=2000) * MS;
            d.at(now + gap, Action::Fault);
            fault(sim, d, &nodes, tt);
        }
        Action::Uncut(links) => sim.uncut(&links),
        Action::LinkBack(a, b) => {
            sim.net.link_loss.remove(&(a, b));
        }
        Action::Restart(n) => sim.restart(n),
        Action::Resume(n) => {
            if sim.is_paused(n) {
                sim.resume(n);
            }
        }
    }
}

fn client_step(sim: &mut Sim, d: &mut Driver, node: NodeId, k: u32) {
    if !sim.is_up(node) {
        return;
    }
    let client = sim.client(node, k);
    let life = sim.history.live(node).expect("up");
    let wants = life.wants.get(&client).cloned().unwrap_or_default();
    // A client never joins a group again once it left it (so a client's
    // membership is one stretch of the order, which the invariants rely on).
    let free = GROUPS
        .iter()
        .filter(|g| !wants.contains(**g))
        .filter(|g| !life.leave_inputs.contains_key(&(client, g.to_string())))
        .collect::<Vec<_>>();
    let r: f64 = sim.rng.random();
    if !free.is_empty() && (wants.is_empty() || r < 0.06) {
        let g = free[sim.rng.random_range(0..free.len())];
        sim.join(node, k, g);
        return;
    }
    if wants.is_empty() {
        return;
    }
    let wants = wants.into_iter().collect::<Vec<_>>();
    let g = wants[sim.rng.random_range(0..wants.len())].clone();
    if r < 0.08 {
        sim.leave(node, k, &g);
        return;
    }
    if r < 0.085 {
        sim.disconnect(node, k);
        return;
    }
    if sim.nodes[&node].congested && sim.rng.random_bool(0.9) {
        return;
    }
    let burst = if sim.rng.random_bool(0.03) {
        sim.rng.random_range(10..=40)
    } else {
        1
    };
    for _ in 0..burst {
        let len = message_len(sim, d, burst > 1);
        let outcome = sim.send(node, k, &g, len);
        check_outcome(sim, node, client, &g, len, outcome);
        if outcome == SendOutcome::Congested {
            break;
        }
    }
}

/// Mostly small; some up to the window's worth of fragments; one 1 MiB
/// message per run when the window allows it; rarely one byte too many.
fn message_len(sim: &mut Sim, d: &mut Driver, small: bool) -> usize {
    let m = &sim.cfg.membership;
    let fits = m.fragment_size * (m.send_window / 2);
    let r: f64 = sim.rng.random();
    if small || r < 0.80 {
        sim.rng.random_range(32..=300)
    } else if r < 0.95 {
        sim.rng.random_range(300..=8_000.min(fits))
    } else if r < 0.995 {
        sim.rng.random_range(8_000..=100_000.min(fits))
    } else if r < 0.998 && !d.big_sent && m.max_message <= fits {
        d.big_sent = true;
        m.max_message
    } else if r < 0.998 {
        sim.rng.random_range(32..=300)
    } else {
        m.max_message + 1
    }
}

fn check_outcome(
    sim: &Sim,
    node: NodeId,
    client: u64,
    group: &str,
    len: usize,
    outcome: SendOutcome,
) {
    let max = sim.cfg.membership.max_message;
    let who = format!("client {client} of n{node}");
    match outcome {
        SendOutcome::Accepted(m) if len > max => sim.fail(
            "client API",
            &format!("{who} sent {len} bytes (max_message {max}) and message {m} was accepted: expected TooLarge"),
        ),
        SendOutcome::TooLarge if len <= max => {
            sim.fail("client API", &format!("{who} sent {len} bytes (max_message {max}) and got TooLarge"))
        }
        SendOutcome::NotJoined => sim.fail(
            "client API",
            &format!("{who} sent to {group:?}, which it joined (Join input, no Leave), and got NotJoined"),
        ),
        _ => {}
    }
}

fn fault(sim: &mut Sim, d: &mut Driver, nodes: &[NodeId], tt: Time) {
    let now = sim.now;
    let up = nodes
        .iter()
        .copied()
        .filter(|&n| sim.is_up(n))
        .collect::<Vec<_>>();
    let pick = |sim: &mut Sim, from: &[NodeId]| from[sim.rng.random_range(0..from.len())];
    match sim.rng.random_range(0..100) {
        0..20 => {
            let loss = [0.0, 0.01, 0.05, 0.15, 0.3][sim.rng.random_range(0..5)];
            let dup = [0.0, 0.01, 0.05][sim.rng.random_range(0..3)];
            let hi = [MS, 5 * MS, 20 * MS][sim.rng.random_range(0..3)];
            let spike = [0.0, 0.01, 0.05][sim.rng.random_range(0..3)];
            let params = NetParams {
                loss,
                dup,
                delay_us: (100, hi),
                spike,
                spike_us: 30 * MS,
            };
            sim.net.params = params;
        }
        20..30 => {
            let a = pick(sim, nodes);
            let b = pick(sim, nodes);
            if a != b {
                let p = sim.rng.random_range(0.5..=1.0);
                sim.net.link_loss.insert((a, b), p);
                let back = now + sim.rng.random_range(500..=5000) * MS;
                d.at(back, Action::LinkBack(a, b));
            }
        }
        30..50 => {
            let k = if nodes.len() > 4 && sim.rng.random_bool(0.3) {
                3
            } else {
                2
            };
            let mut sides = vec![Vec::new(); k];
            for (i, &n) in nodes.iter().enumerate() {
                let side = if i < k { i } else { sim.rng.random_range(0..k) };
                sides[side].push(n);
            }
            let links = sim.partition(&sides);
            let back = now + sim.rng.random_range(300..=6000) * MS;
            d.at(back, Action::Uncut(links));
        }
        50..60 => {
            let mut links = Vec::new();
            for _ in 0..sim.rng.random_range(1..=3) {
                let a = pick(sim, nodes);
                let b = pick(sim, nodes);
                if a != b {
                    links.extend(sim.cut_one_way(a, b));
                }
            }
            let back = now + sim.rng.random_range(300..=6000) * MS;
            d.at(back, Action::Uncut(links));
        }
        60..80 => {
            if !up.is_empty() {
                let n = pick(sim, &up);
                sim.crash(n);
                let back = now + sim.rng.random_range(100..=5000) * MS;
                d.at(back, Action::Restart(n));
            }
        }
        _ => {
            if !up.is_empty() {
                let n = pick(sim, &up);
                sim.pause(n);
                let factor = sim.rng.random_range(0.2..=3.0);
                d.at(now + (tt as f64 * factor) as Time, Action::Resume(n));
            }
        }
    }
}

fn liveness_phase(sim: &mut Sim) {
    sim.phase = "liveness";
    let nodes = sim.cfg.nodes.clone();
    let tt = sim.token_timeout();
    sim.heal_network(NetParams {
        loss: 0.0,
        dup: 0.0,
        delay_us: (100, 2 * MS),
        spike: 0.0,
        spike_us: 0,
    });
    for &n in &nodes {
        if sim.is_down(n) {
            sim.restart(n);
        } else if sim.is_paused(n) {
            sim.resume(n);
        }
    }
    let healed = sim.now;

    // 1. One view of every node, which then holds for twice the token
    //    timeout (a view change may still be under way at the heal).
    let bound = 10 * tt;
    let deadline = healed + bound;
    loop {
        if sim.run_until(deadline, |s| s.agreed_on(&nodes)).is_none() {
            sim.fail(
                "liveness: one view",
                &format!(
                    "{} ms after the faults stopped (10 × the token timeout of {} ms), the \
                     nodes still do not share one view of all {} nodes (for 2 × the token \
                     timeout)",
                    bound / MS,
                    tt / MS,
                    nodes.len()
                ),
            );
        }
        let ring = sim.view(nodes[0]).map(|v| v.ring);
        sim.advance_to(sim.now + 2 * tt);
        if sim.agreed_on(&nodes) && sim.view(nodes[0]).map(|v| v.ring) == ring {
            break;
        }
    }
    let converged = sim.now;
    let views_at_convergence = nodes
        .iter()
        .map(|&n| (n, sim.history.live(n).map_or(0, |l| l.views.len())))
        .collect::<BTreeMap<_, _>>();

    // 2. Every client in at least one group; every node agrees on every
    //    group.
    for &n in &nodes {
        for k in 0..CLIENTS {
            let c = sim.client(n, k);
            let l = sim.history.live(n).expect("up");
            if l.wants.get(&c).is_some_and(|w| !w.is_empty()) {
                continue;
            }
            let never_left = GROUPS
                .iter()
                .find(|g| !l.leave_inputs.contains_key(&(c, g.to_string())));
            if let Some(g) = never_left {
                sim.join(n, k, g);
            }
        }
    }
    if sim.run_until(sim.now + bound, groups_agreed).is_none() {
        let detail = group_disagreement(sim);
        sim.fail(
            "liveness: groups",
            &format!(
                "{} ms after one view formed, the nodes' group memberships (by their \
                 GroupChanges) do not match the clients' joins: {detail}",
                bound / MS
            ),
        );
    }

    // 3. New messages reach every member, sender included.
    let mut to_send = Vec::new();
    for &n in &nodes {
        for k in 0..CLIENTS {
            let c = sim.client(n, k);
            let groups = sim
                .history
                .live(n)
                .and_then(|l| l.wants.get(&c))
                .cloned()
                .unwrap_or_default();
            for g in groups {
                for i in 0..3 {
                    let len = if n == 1 && k == 0 && i == 0 {
                        30_000
                    } else {
                        32 + 100 * i
                    };
                    to_send.push((n, k, g.clone(), len));
                }
            }
        }
    }
    let deadline = sim.now + bound;
    let mut sent = Vec::new();
    for (n, k, g, len) in to_send {
        loop {
            match sim.send(n, k, &g, len) {
                SendOutcome::Accepted(m) => {
                    sent.push(m);
                    break;
                }
                SendOutcome::Congested if sim.now < deadline => sim.advance_ms(20),
                other => sim.fail(
                    "liveness: sends",
                    &format!("client {k} of n{n} sending {len} bytes to {g:?} after healing got {other:?}"),
                ),
            }
        }
        sim.advance_ms(2);
    }
    if sim
        .run_until(deadline, |s| missing_deliveries(s, &sent).is_empty())
        .is_none()
    {
        let missing = missing_deliveries(sim, &sent);
        sim.fail(
            "liveness: delivery",
            &format!(
                "{} ms after one view of all nodes formed, {} deliveries of the {} messages \
                 sent since are missing, e.g. {:?} (message, node, client)",
                (sim.now - converged) / MS,
                missing.len(),
                sent.len(),
                &missing[..missing.len().min(8)]
            ),
        );
    }
    // Let acknowledgements and Writable come through.
    sim.advance_ms(3 * tt / MS);

    // 4. No view change without a fault; no node left congested.
    for &n in &nodes {
        let l = sim.history.live(n).expect("every node is up");
        if l.views.len() != views_at_convergence[&n] {
            let extra = l.views[views_at_convergence[&n]..]
                .iter()
                .map(|v| {
                    format!(
                        "ring {} {:?} at {} ms",
                        v.view.ring,
                        v.view.members,
                        v.at / MS
                    )
                })
                .collect::<Vec<_>>();
            sim.fail(
                "liveness: stable view",
                &format!(
                    "{} installed more views after the cluster converged at {} ms with no \
                     fault at all: {extra:?}",
                    life_name(l.id),
                    converged / MS
                ),
            );
        }
        if sim.nodes[&n].congested {
            sim.fail(
                "liveness: flow control",
                &format!(
                    "n{n} answered Congested and never Writable, though everything was delivered"
                ),
            );
        }
    }
    sim.finish();
}

/// Every running node's groups are exactly the clients' wishes.
fn groups_agreed(sim: &Sim) -> bool {
    group_disagreement(sim).is_empty()
}

fn group_disagreement(sim: &Sim) -> String {
    let mut want: BTreeMap<String, BTreeSet<(NodeId, u64)>> = BTreeMap::new();
    for &n in &sim.cfg.nodes {
        if let Some(l) = sim.history.live(n) {
            for (c, gs) in &l.wants {
                for g in gs {
                    want.entry(g.clone()).or_default().insert((n, *c));
                }
            }
        }
    }
    for &n in &sim.cfg.nodes {
        let Some(l) = sim.history.live(n) else {
            continue;
        };
        let names = want.keys().chain(l.groups.keys()).collect::<BTreeSet<_>>();
        for g in names {
            let have = l
                .groups
                .get(g)
                .map(|m| {
                    m.iter()
                        .map(|m| (m.node, m.client))
                        .collect::<BTreeSet<_>>()
                })
                .unwrap_or_default();
            let w = want.get(g).cloned().unwrap_or_default();
            if have != w {
                return format!(
                    "{} has {g:?} = {have:?}, clients joined {w:?}",
                    life_name(l.id)
                );
            }
        }
    }
    String::new()
}

/// (message, node, client) for every joined client that has not got a
/// message yet.
fn missing_deliveries(sim: &Sim, sent: &[u64]) -> Vec<(u64, NodeId, u64)> {
    let mut missing = Vec::new();
    for &m in sent {
        let g = &sim.history.msgs[&m].group;
        for &n in &sim.cfg.nodes {
            let Some(l) = sim.history.live(n) else {
                continue;
            };
            for (c, gs) in &l.wants {
                if gs.contains(g) && !l.client_deliveries.contains(&(*c, m)) {
                    missing.push((m, n, *c));
                }
            }
        }
    }
    missing
}
