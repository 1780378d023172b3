//! The served D-Bus interfaces are the reviewed contract in
//! `dbus-interfaces/org.vigil.cib1.xml`: a change to either must
//! change the other in the same commit. `VIGIL_CONTRACT_UPDATE=1` rewrites
//! the file from the daemon (then review the diff).

use std::path::PathBuf;
use std::process::Command;

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../dbus-interfaces/org.vigil.cib1.xml")
}

#[test]
fn introspection_matches_the_contract() {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil-cibd"))
        .arg("--bus-introspect")
        .output()
        .expect("run vigil-cibd --bus-introspect");
    assert!(
        out.status.success(),
        "--bus-introspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = String::from_utf8(out.stdout).expect("UTF-8 introspection");
    let path = contract_path();
    if std::env::var_os("VIGIL_CONTRACT_UPDATE").is_some() {
        std::fs::write(&path, &live).expect("write the contract");
        return;
    }
    let contract = std::fs::read_to_string(&path).expect("read the contract");
    if live != contract {
        let first = live
            .lines()
            .zip(contract.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| live.lines().count().min(contract.lines().count()));
        panic!(
            "the served interfaces differ from {} from line {}:\n  served:   {:?}\n  contract: {:?}\n\
             Update the contract deliberately with VIGIL_CONTRACT_UPDATE=1 and review the diff.",
            path.display(),
            first + 1,
            live.lines().nth(first).unwrap_or("<end>"),
            contract.lines().nth(first).unwrap_or("<end>"),
        );
    }
}
