//! Core crates stay pure: no I/O or runtime crates in their dependencies and
//! no file, network, process or clock access in their library code (unit
//! test modules may read fixtures).

use std::path::Path;

const CORE: &[&str] = &[
    "services/types",
    "services/cib/core",
    "services/scheduler/core",
    "services/membership/core",
    "services/executor/core",
    "services/fencer/core",
    "services/controller/core",
];
const FORBIDDEN_CRATES: &[&str] = &[
    "tokio",
    "zbus",
    "nix",
    "sd-notify",
    "tracing-journald",
    "libc",
];
const FORBIDDEN_CODE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "SystemTime",
    "Instant::now",
    "std::env",
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn core_crates_depend_on_no_io_crate() {
    for c in CORE {
        let manifest = std::fs::read_to_string(root().join(c).join("Cargo.toml")).unwrap();
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .unwrap_or("")
            .split("\n[")
            .next()
            .unwrap_or("");
        for line in deps.lines() {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            assert!(
                !FORBIDDEN_CRATES.contains(&name),
                "{c} depends on {name}, an I/O crate; core crates must stay pure"
            );
        }
    }
}

#[test]
fn core_sources_do_no_io() {
    for c in CORE {
        let mut files = Vec::new();
        rust_files(&root().join(c).join("src"), &mut files);
        assert!(!files.is_empty(), "{c} has no sources?");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // Unit tests may read fixtures; only the library code must be pure.
            let text = text.split("#[cfg(test)]").next().unwrap_or("");
            for bad in FORBIDDEN_CODE {
                assert!(
                    !text.contains(bad),
                    "{} uses {bad}; core crates take time and data as arguments",
                    f.display()
                );
            }
        }
    }
}
