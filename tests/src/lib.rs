//! Helpers shared by Vigil's cross-crate tests: where the shared corpus is,
//! and how a test skips when it is absent.

use std::path::PathBuf;

/// The scheduler corpus (`../shared/cts/scheduler` beside the project), or
/// `None` with a message on stderr when it is not there.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("VIGIL_CTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/cts/scheduler")
        });
    if dir.join("xml").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: scheduler corpus not found at {} (set VIGIL_CTS_DIR)",
            dir.display()
        );
        None
    }
}

/// Names of every case in the corpus, sorted.
pub fn case_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("xml"))
        .expect("corpus xml directory is readable")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".xml").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}
