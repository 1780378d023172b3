//! The served D-Bus interface is the reviewed contract in
//! `dbus-interfaces/org.vigil.controller1.xml`: a change to either must
//! change the other in the same commit. `VIGIL_CONTRACT_UPDATE=1` rewrites
//! the file from the daemon (then review the diff).

#[test]
fn introspection_matches_the_contract() {
    let contract = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../dbus-interfaces/org.vigil.controller1.xml");
    vigil_testkit::check_contract(env!("CARGO_BIN_EXE_vigil-controld"), &contract);
}
