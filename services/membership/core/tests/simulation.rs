//! Deterministic network simulation of `vigil-membership` (see `sim/`).
//!
//! Random runs (a safety phase with faults, then a liveness phase):
//!
//! ```text
//! cargo test -p vigil-membership --test simulation random_seeds
//! VIGIL_SIM_SEEDS=200 VIGIL_SIM_SEED_START=5000 cargo test ... random_seeds
//! VIGIL_SIM_SEED=1234 cargo test ... random_seeds -- --nocapture   # one seed
//! cargo test -p vigil-membership --release --test simulation -- --ignored  # many seeds
//! ```
//!
//! `VIGIL_SIM_THREADS` sets how many seeds run at once (default: the
//! available cores, at most 4); `VIGIL_SIM_SAFETY_MS` the length of the
//! safety phase in simulated ms (default 20 000).
//!
//! The scenario tests use no randomness at all: a tick every 10 ms, a 1 ms
//! network that loses nothing, default timings. Their bounds are on
//! simulated time.

mod sim;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sim::net::Time;
use sim::random;
use sim::world::{MS, SendOutcome, Sim, SimConfig, Stats};
use vigil_membership::NodeId;

// ----- random runs -------------------------------------------------------

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number: unset it or give a u64")),
    )
}

/// Runs the seeds the environment asks for (or the defaults), several at
/// once; panics with the lowest failing seed's report.
fn run_seeds(test: &'static str, default_start: u64, default_count: u64) {
    let seeds = match env_u64("VIGIL_SIM_SEED") {
        Some(seed) => vec![seed],
        None => {
            let start = env_u64("VIGIL_SIM_SEED_START").unwrap_or(default_start);
            let count = env_u64("VIGIL_SIM_SEEDS").unwrap_or(default_count);
            (start..start + count).collect()
        }
    };
    let threads = env_u64("VIGIL_SIM_THREADS")
        .map(|t| t.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)))
        .min(seeds.len());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failures = Mutex::new(Vec::<(u64, String)>::new());
    let totals = Mutex::new((0usize, Stats::default()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&seed) = seeds.get(i) else { break };
                    match catch_unwind(AssertUnwindSafe(|| random::run_seed(seed, test))) {
                        Ok(stats) => {
                            let mut t = totals.lock().expect("not poisoned");
                            t.0 += 1;
                            add(&mut t.1, &stats);
                        }
                        Err(e) => {
                            let text = e
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default();
                            let text = if text.contains("SIMULATION FAILURE") {
                                text
                            } else {
                                format!(
                                    "seed {seed} panicked outside the checks: {text}\nrerun: \
                                     VIGIL_SIM_SEED={seed} cargo test -p vigil-membership --test \
                                     simulation {test} -- --exact --include-ignored --nocapture"
                                )
                            };
                            failures.lock().expect("not poisoned").push((seed, text));
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let (passed, t) = totals.into_inner().expect("not poisoned");
    println!(
        "{passed} seed(s) passed: {} steps, {} views installed, {} deliveries, {} sends accepted, \
         {} refused ({} Congested), {} crashes, {} pauses, {} partitions",
        t.steps,
        t.views_installed,
        t.deliveries,
        t.accepted,
        t.refused,
        t.congested,
        t.crashes,
        t.pauses,
        t.partitions
    );
    let mut failures = failures.into_inner().expect("not poisoned");
    failures.sort_by_key(|(seed, _)| *seed);
    if let Some((seed, text)) = failures.into_iter().next() {
        panic!("seed {seed} failed:\n{text}");
    }
}

fn add(t: &mut Stats, s: &Stats) {
    t.steps += s.steps;
    t.views_installed += s.views_installed;
    t.deliveries += s.deliveries;
    t.accepted += s.accepted;
    t.refused += s.refused;
    t.congested += s.congested;
    t.crashes += s.crashes;
    t.pauses += s.pauses;
    t.partitions += s.partitions;
}

/// 32 seeds, quick enough for every `cargo test` (about 30 s in debug on
/// two cores).
#[test]
fn random_seeds() {
    run_seeds("random_seeds", 0, 32);
}

/// Many more seeds (run with `--ignored`, preferably `--release`).
#[test]
#[ignore = "long: thousands of simulated runs"]
fn random_seeds_long() {
    run_seeds("random_seeds_long", 1_000_000, 2_000);
}

// ----- scenarios ---------------------------------------------------------

/// How long, beyond the token timeout, a view change may take on a
/// perfect network: detection is the token timeout; proposing, accepting,
/// syncing and installing are a few 1 ms round trips and 10 ms ticks.
const MARGIN: Time = 500 * MS;

/// Runs until `nodes` (all up) share one view of exactly themselves; fails
/// unless it happens within `within`. Returns how long it took.
fn expect_view(sim: &mut Sim, nodes: &[NodeId], within: Time, what: &str) -> Time {
    let start = sim.now;
    match sim.run_until(start + within, |s| s.agreed_on(nodes)) {
        Some(t) => t - start,
        None => sim.fail(
            "scenario",
            &format!(
                "{what}: nodes {nodes:?} did not agree on a view of exactly themselves within \
                 {} ms",
                within / MS
            ),
        ),
    }
}

fn bound(sim: &Sim) -> Time {
    sim.token_timeout() + MARGIN
}

/// Every node's client 0 joins `group`; waits until every node's
/// GroupChanges list all of them.
fn join_all(sim: &mut Sim, nodes: &[NodeId], group: &str) {
    for &n in nodes {
        sim.join(n, 0, group);
    }
    let want = nodes.to_vec();
    let within = sim.now + bound(sim);
    let ok = sim.run_until(within, |s| {
        want.iter().all(|&n| {
            want.iter().all(|&m| {
                s.history
                    .live(n)
                    .is_some_and(|l| l.confirmed(s.client(m, 0), group))
            })
        })
    });
    if ok.is_none() {
        sim.fail(
            "scenario",
            &format!(
                "the clients of {nodes:?} joined {group:?} but not every node reports all of them"
            ),
        );
    }
}

/// Whether client 0 of every node in `nodes` got message `m` (exactly once
/// is the "no duplicates" invariant's job).
fn delivered_to_all(sim: &Sim, nodes: &[NodeId], m: u64) -> bool {
    nodes.iter().all(|&n| {
        sim.history
            .live(n)
            .is_some_and(|l| l.client_deliveries.contains(&(sim.client(n, 0), m)))
    })
}

#[test]
fn three_nodes_form_one_view() {
    let mut sim = Sim::new(SimConfig::scenario("three_nodes_form_one_view", 3));
    sim.phase = "formation";
    let b = bound(&sim);
    let took = expect_view(&mut sim, &[1, 2, 3], b, "three nodes starting together");
    println!("one view of 3 nodes after {} ms", took / MS);
    // And it stays: nothing changes for a while with no fault.
    let ring = sim.view(1).expect("up").ring;
    sim.advance_ms(10 * sim.token_timeout() / MS);
    if !sim.agreed_on(&[1, 2, 3]) || sim.view(1).expect("up").ring != ring {
        sim.fail("scenario", "the view of 3 nodes changed with no fault");
    }
    sim.finish();
}

#[test]
fn killed_node_leaves_the_view_and_rejoins_after_restart() {
    let mut sim = Sim::new(SimConfig::scenario(
        "killed_node_leaves_the_view_and_rejoins_after_restart",
        3,
    ));
    let b = bound(&sim);
    expect_view(&mut sim, &[1, 2, 3], b, "formation");
    sim.advance_ms(1000);
    sim.phase = "after killing n3";
    sim.crash(3);
    let took = expect_view(&mut sim, &[1, 2], b, "n3 killed");
    println!(
        "2-node view {} ms after the kill (token timeout {} ms)",
        took / MS,
        sim.token_timeout() / MS
    );
    sim.advance_ms(1000);
    sim.phase = "after restarting n3";
    sim.restart(3);
    let took = expect_view(&mut sim, &[1, 2, 3], b, "n3 restarted");
    println!("3-node view {} ms after the restart", took / MS);
    sim.finish();
}

#[test]
fn paused_node_leaves_the_view_and_comes_back_when_resumed() {
    let mut sim = Sim::new(SimConfig::scenario(
        "paused_node_leaves_the_view_and_comes_back_when_resumed",
        3,
    ));
    let b = bound(&sim);
    expect_view(&mut sim, &[1, 2, 3], b, "formation");
    sim.phase = "n3 paused";
    sim.pause(3);
    expect_view(&mut sim, &[1, 2], b, "n3 paused");
    sim.advance_ms(2 * sim.token_timeout() / MS);
    sim.phase = "n3 resumed";
    sim.resume(3);
    expect_view(&mut sim, &[1, 2, 3], b, "n3 resumed with its old state");
    sim.finish();
}

#[test]
fn two_two_split_of_four_nodes_heals_into_one_view() {
    let mut sim = Sim::new(SimConfig::scenario(
        "two_two_split_of_four_nodes_heals_into_one_view",
        4,
    ));
    let b = bound(&sim);
    expect_view(&mut sim, &[1, 2, 3, 4], b, "formation");
    sim.phase = "split 1,2 | 3,4";
    let links = sim.partition(&[vec![1, 2], vec![3, 4]]);
    let start = sim.now;
    let ok = sim.run_until(start + b, |s| s.agreed_on(&[1, 2]) && s.agreed_on(&[3, 4]));
    if ok.is_none() {
        sim.fail(
            "scenario",
            "after a 2|2 split the halves did not form views [1, 2] and [3, 4]",
        );
    }
    sim.advance_ms(2000);
    sim.phase = "healed";
    sim.uncut(&links);
    let took = expect_view(&mut sim, &[1, 2, 3, 4], b, "2|2 split healed");
    println!("one view of 4 nodes {} ms after healing", took / MS);
    sim.finish();
}

#[test]
fn messages_sent_during_view_changes_are_delivered_exactly_once() {
    let mut sim = Sim::new(SimConfig::scenario(
        "messages_sent_during_view_changes_are_delivered_exactly_once",
        3,
    ));
    let b = bound(&sim);
    expect_view(&mut sim, &[1, 2, 3], b, "formation");
    join_all(&mut sim, &[1, 2, 3], "alpha");

    // Everyone sends every 20 ms; n3 is killed in the middle, restarted
    // later, and everyone goes on sending through both view changes.
    sim.phase = "sending through a kill and a restart";
    let mut sent: Vec<(NodeId, u64, Time)> = Vec::new();
    let kill_at = sim.now + 500 * MS;
    let restart_at = kill_at + sim.token_timeout() + 1500 * MS;
    let stop_at = restart_at + sim.token_timeout() + 1500 * MS;
    let mut killed = false;
    let mut restarted = false;
    while sim.now < stop_at {
        if !killed && sim.now >= kill_at {
            sim.crash(3);
            killed = true;
        }
        if killed && !restarted && sim.now >= restart_at {
            sim.restart(3);
            sim.join(3, 0, "alpha");
            restarted = true;
        }
        for n in [1, 2, 3] {
            if sim.is_up(n) {
                match sim.send(n, 0, "alpha", 64) {
                    SendOutcome::Accepted(m) => sent.push((n, m, sim.now)),
                    SendOutcome::Congested => {}
                    other => sim.fail("scenario", &format!("n{n} sending got {other:?}")),
                }
            }
        }
        sim.advance_ms(20);
    }
    expect_view(&mut sim, &[1, 2, 3], b, "after the restart");
    sim.advance_ms(3 * sim.token_timeout() / MS);

    // n1 and n2 were there throughout: each got every message they sent,
    // and each message of the killed n3 reached both or neither.
    for &(n, m, at) in &sent {
        let by_1 = sim.history.life(sim.life(1)).node_deliveries.contains(&m);
        let by_2 = sim.history.life(sim.life(2)).node_deliveries.contains(&m);
        let ok = match (n, sim.history.msgs[&m].life.1) {
            (3, 1) => by_1 == by_2,
            (3, _) => true, // the restarted n3: checked below once it is back
            _ => by_1 && by_2,
        };
        if !ok {
            sim.fail(
                "scenario",
                &format!(
                    "message {m} sent by n{n} at {} ms: delivered by n1 {by_1}, by n2 {by_2}",
                    at / MS
                ),
            );
        }
    }
    // Messages sent once the restarted n3 was back reach it too.
    let back = sim
        .history
        .life(sim.life(3))
        .installed_views()
        .next()
        .map(|v| v.at);
    let back = back.unwrap_or(Time::MAX);
    let late = sent
        .iter()
        .filter(|(_, _, at)| *at > back + sim.token_timeout());
    for &(n, m, at) in late {
        if !delivered_to_all(&sim, &[1, 2, 3], m) {
            sim.fail(
                "scenario",
                &format!(
                    "message {m} sent by n{n} at {} ms did not reach all three nodes",
                    at / MS
                ),
            );
        }
    }
    println!("{} messages sent through two view changes", sent.len());
    sim.finish();
}

#[test]
fn one_mebibyte_message_arrives_intact_everywhere() {
    let mut sim = Sim::new(SimConfig::scenario(
        "one_mebibyte_message_arrives_intact_everywhere",
        3,
    ));
    let b = bound(&sim);
    expect_view(&mut sim, &[1, 2, 3], b, "formation");
    join_all(&mut sim, &[1, 2, 3], "alpha");
    sim.phase = "1 MiB message";
    let max = sim.cfg.membership.max_message;
    let SendOutcome::Accepted(m) = sim.send(2, 0, "alpha", max) else {
        sim.fail(
            "scenario",
            &format!("n2 could not send a {max}-byte message"),
        );
    };
    match sim.send(2, 0, "alpha", max + 1) {
        SendOutcome::TooLarge => {}
        other => sim.fail(
            "scenario",
            &format!("a {}-byte message got {other:?}", max + 1),
        ),
    }
    let start = sim.now;
    if sim
        .run_until(start + 10_000 * MS, |s| delivered_to_all(s, &[1, 2, 3], m))
        .is_none()
    {
        sim.fail(
            "scenario",
            "the 1 MiB message did not reach every node within 10 s",
        );
    }
    println!(
        "1 MiB delivered everywhere in {} ms",
        (sim.now - start) / MS
    );
    sim.advance_ms(1000);
    sim.finish();
}

#[test]
fn burst_beyond_the_send_window_is_congested_then_writable() {
    let mut cfg = SimConfig::scenario("burst_beyond_the_send_window_is_congested_then_writable", 3);
    cfg.membership.send_window = 16;
    let mut sim = Sim::new(cfg);
    let b = bound(&sim);
    expect_view(&mut sim, &[1, 2, 3], b, "formation");
    join_all(&mut sim, &[1, 2, 3], "alpha");
    sim.phase = "burst";
    let mut accepted = Vec::new();
    let mut congested_after = None;
    for i in 0..40 {
        match sim.send(3, 0, "alpha", 100) {
            SendOutcome::Accepted(m) => accepted.push(m),
            SendOutcome::Congested => {
                congested_after = Some(i);
                break;
            }
            other => sim.fail("scenario", &format!("send {i} of the burst got {other:?}")),
        }
    }
    let Some(after) = congested_after else {
        sim.fail(
            "scenario",
            "40 sends at once with send_window 16 were all accepted",
        );
    };
    println!("Congested after {after} sends");
    let start = sim.now;
    if sim
        .run_until(start + b, |s| !s.nodes[&3].congested)
        .is_none()
    {
        sim.fail("scenario", "n3 never answered Writable after Congested");
    }
    while accepted.len() < 40 {
        match sim.send(3, 0, "alpha", 100) {
            SendOutcome::Accepted(m) => accepted.push(m),
            SendOutcome::Congested => {
                let t = sim.now;
                if sim.run_until(t + b, |s| !s.nodes[&3].congested).is_none() {
                    sim.fail("scenario", "n3 never answered Writable after Congested");
                }
            }
            other => sim.fail("scenario", &format!("a send got {other:?}")),
        }
    }
    let start = sim.now;
    let all = accepted.clone();
    if sim
        .run_until(start + b, |s| {
            all.iter().all(|&m| delivered_to_all(s, &[1, 2, 3], m))
        })
        .is_none()
    {
        sim.fail("scenario", "the burst was not delivered everywhere");
    }
    sim.advance_ms(500);
    sim.finish();
}
