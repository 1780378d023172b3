//! The served D-Bus interfaces are the reviewed contracts in
//! `dbus-interfaces/org.vigil.fencing1.xml` (the manager) and
//! `dbus-interfaces/org.vigil.fencing1.Job.xml` (job objects): a change to
//! either side must change the other in the same commit.
//! `VIGIL_CONTRACT_UPDATE=1` rewrites the files from the daemon (then
//! review the diff).

fn contract(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../dbus-interfaces")
        .join(name)
}

#[test]
fn manager_introspection_matches_the_contract() {
    vigil_testkit::check_contract(
        env!("CARGO_BIN_EXE_vigil-fenced"),
        &contract("org.vigil.fencing1.xml"),
    );
}

#[test]
fn job_introspection_matches_the_contract() {
    vigil_testkit::check_contract_of(
        env!("CARGO_BIN_EXE_vigil-fenced"),
        "--bus-introspect-job",
        &contract("org.vigil.fencing1.Job.xml"),
    );
}
