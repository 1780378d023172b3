//! Every graph the scheduler writes for Pacemaker's regression corpus can
//! be run to its end: each action starts only after the actions it waits
//! for, nothing stalls, and every action runs once. (Cases the scheduler
//! cannot handle yet, or that panic, are counted and skipped.)

use std::collections::BTreeSet;

use vigil_cib::xml::Document;
use vigil_controller::graph::Graph;
use vigil_controller::transition::{Status, Transition};
use vigil_scheduler::{Options, Scheduler};

#[test]
fn corpus_graphs_run_to_completion() {
    let Some(dir) = vigil_testkit::corpus_dir() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(dir.join("xml"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let (mut ran, mut skipped, mut actions) = (0, 0, 0usize);
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(doc) = Document::parse(&text) else {
            skipped += 1;
            continue;
        };
        let now = doc
            .root
            .attr("execution-date")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(1_700_000_000);
        let Ok(xml) = std::panic::catch_unwind(|| {
            Scheduler::run(&doc, &Options { now: Some(now) }).graph_xml()
        }) else {
            skipped += 1;
            continue;
        };
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let graph = Graph::parse(&xml).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        let inputs: Vec<(u32, Vec<u32>)> = graph
            .synapses
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| (*a, s.inputs.clone())))
            .collect();
        let total = graph.actions.len();
        let (mut t, mut queue) = Transition::start(graph, 3);
        let mut started = BTreeSet::new();
        while let Some(a) = queue.first().copied() {
            queue.remove(0);
            assert!(started.insert(a), "{name}: action {a} started twice");
            let needs = &inputs.iter().find(|(x, _)| *x == a).unwrap().1;
            for i in needs {
                assert!(
                    t.state(*i) == Some(vigil_controller::transition::State::Done),
                    "{name}: action {a} started before its input {i}"
                );
            }
            queue.extend(t.done(a, true, ""));
        }
        assert_eq!(t.status(), Status::Complete, "{name}: {xml}");
        actions += total;
        ran += 1;
    }
    eprintln!("corpus graphs: {ran} ran to completion ({actions} actions), {skipped} skipped");
    assert!(ran > 500, "only {ran} graphs ran");
}
