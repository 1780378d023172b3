//! Every CIB of Pacemaker's scheduler corpus parses, and what Vigil writes
//! back parses to the same tree: nothing is lost, unknown parts included.

use vigil_cib::xml::Document;

#[test]
fn whole_corpus_round_trips() {
    let Some(dir) = vigil_tests::corpus_dir() else {
        return;
    };
    let names = vigil_tests::case_names(&dir);
    assert!(
        names.len() > 600,
        "corpus looks incomplete: {}",
        names.len()
    );
    let mut failures = Vec::new();
    for name in &names {
        let path = dir.join("xml").join(format!("{name}.xml"));
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = match Document::parse(&text) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{name}: parse: {e}"));
                continue;
            }
        };
        let written = doc.to_xml();
        match Document::parse(&written) {
            Ok(again) if again == doc => {}
            Ok(_) => failures.push(format!("{name}: written tree differs")),
            Err(e) => failures.push(format!("{name}: reparse: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
