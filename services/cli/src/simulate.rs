//! `vigil simulate`: the policy engine on a CIB file, printed as
//! crm_simulate prints it.

use anyhow::{Context, bail};
use vigil_cib::time::DateTime;
use vigil_cib::xml::Document;
use vigil_scheduler::output::TextOptions;
use vigil_scheduler::{Options, Scheduler};

use crate::SimulateArgs;

pub fn simulate(args: &SimulateArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.xml_file)
        .with_context(|| format!("cannot read {}", args.xml_file.display()))?;
    let doc =
        Document::parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", args.xml_file.display()))?;
    if doc.root.name != "cib" {
        bail!(
            "{}: the root element is <{}>, not <cib>",
            args.xml_file.display(),
            doc.root.name
        );
    }
    // Report what is wrong with the configuration, as Pacemaker would, and
    // go on: the scheduler ignores what it cannot use.
    for d in vigil_cib::validate::validate(&doc) {
        let level = match d.severity {
            vigil_cib::validate::Severity::Error => "error",
            vigil_cib::validate::Severity::Warning => "warning",
        };
        eprintln!("{}: {level}: {d}", args.xml_file.display());
    }
    // crm_simulate says when it replays a CIB at the date it was saved.
    let original_date = args.datetime.is_none()
        && doc
            .root
            .attr("execution-date")
            .is_some_and(|v| v.parse::<i64>().is_ok());

    let now = match &args.datetime {
        Some(t) => Some(
            DateTime::parse(t)
                .map_err(|e| anyhow::anyhow!("invalid --set-datetime '{t}': {e}"))?
                .to_epoch_seconds(),
        ),
        None => doc
            .root
            .attr("execution-date")
            .and_then(|v| v.parse::<i64>().ok())
            .or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs() as i64)
            }),
    };
    let sched = Scheduler::run(&doc, &Options { now });
    let out = sched.simulate_text(&TextOptions {
        simulate: args.simulate,
        scores: args.show_scores,
        original_date,
    });
    print!("{out}");
    if let Some(path) = &args.save_graph {
        std::fs::write(path, sched.graph_xml())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    for e in &sched.diag.errors {
        eprintln!("error: {e}");
    }
    Ok(())
}
