//! The .deb and .rpm that `packaging/build` makes (CI's packages step sets
//! `VIGIL_PACKAGES_DIR`; elsewhere this skips): the same files in both,
//! as the package metadata lists them, with their modes, dependencies and
//! maintainer scripts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn packages() -> Option<(PathBuf, PathBuf)> {
    const T: &str = "packages";
    let Some(dir) = std::env::var_os("VIGIL_PACKAGES_DIR") else {
        eprintln!("SKIPPED {T}: set VIGIL_PACKAGES_DIR to what packaging/build made (CI does)");
        return None;
    };
    let dir = PathBuf::from(dir);
    let find = |ext: &str| -> PathBuf {
        let found: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        assert_eq!(found.len(), 1, "one .{ext} in {}: {found:?}", dir.display());
        found[0].clone()
    };
    Some((find("deb"), find("rpm")))
}

fn run(cmd: &str, args: &[&str], file: &Path) -> String {
    let out = Command::new(cmd)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (destination, mode) of every packaged file, from the package metadata.
fn expected() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = std::fs::read_to_string(root.join("services/cli/Cargo.toml")).unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    doc["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let a = a.as_array().unwrap();
            (
                format!("/{}", a[1].as_str().unwrap()),
                a[2].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_deb_and_the_rpm_ship_the_same_files_and_scripts() {
    let Some((deb, rpm)) = packages() else {
        return;
    };
    let want = expected();
    // The .deb: its files with their modes.
    let listing = run("dpkg-deb", &["-c"], &deb);
    let mut in_deb = BTreeSet::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (perm, path) = (f[0], f[5].trim_start_matches('.'));
        if perm.starts_with('-') {
            let mode = if perm.contains('x') { "755" } else { "644" };
            in_deb.insert((path.to_string(), mode.to_string()));
        }
    }
    for w in &want {
        assert!(in_deb.contains(w), "the .deb lacks {w:?}");
    }
    let control = run("dpkg-deb", &["-f"], &deb);
    assert!(control.contains("Package: vigil\n"), "{control}");
    let depends = control
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_default();
    assert!(
        depends.contains("dbus") && depends.contains("systemd"),
        "{depends}"
    );
    let info = run("dpkg-deb", &["-I"], &deb);
    for s in ["postinst", "prerm", "postrm"] {
        assert!(info.contains(s), "the .deb lacks its {s}:\n{info}");
    }
    // The binaries are stripped (a few MB each, not tens).
    for (path, _) in want.iter().filter(|(p, _)| p.contains("bin/vigil")) {
        let size: u64 = listing
            .lines()
            .find(|l| l.ends_with(&format!(".{path}")))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(size < 40 << 20, "{path} is {size} bytes: not stripped?");
    }
    // The .rpm: the same files, the same modes.
    let listing = run(
        "rpm",
        &["-qp", "--qf", "[%{FILEMODES:perms} %{FILENAMES}\\n]"],
        &rpm,
    );
    let mut in_rpm = BTreeSet::new();
    for line in listing.lines() {
        let (perm, path) = line.split_once(' ').unwrap();
        if perm.starts_with('-') {
            let mode = if perm.contains('x') { "755" } else { "644" };
            in_rpm.insert((path.to_string(), mode.to_string()));
        }
    }
    for w in &want {
        assert!(in_rpm.contains(w), "the .rpm lacks {w:?}");
    }
    let scripts = run("rpm", &["-qp", "--scripts"], &rpm);
    for s in ["postinstall", "preuninstall", "postuninstall"] {
        assert!(scripts.contains(s), "the .rpm lacks its {s}:\n{scripts}");
    }
    let requires = run("rpm", &["-qpR"], &rpm);
    assert!(
        requires.contains("dbus") && requires.contains("systemd"),
        "{requires}"
    );
}
