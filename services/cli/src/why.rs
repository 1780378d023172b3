//! `vigil why RESOURCE`: in plain words, where a resource runs (or why it
//! is stopped), and the scores and constraints that decided it: the
//! controller's `Explain` (the policy engine run on the live CIB, see
//! `vigil_scheduler::explain`).

use anyhow::bail;

pub fn run(bus: Option<String>, resource: &str) -> anyhow::Result<()> {
    let rt = crate::bus::runtime()?;
    let text = rt.block_on(async {
        let (conn, where_) = crate::bus::connect(bus.as_deref()).await?;
        let ctl = crate::bus::controller(&conn, &where_).await?;
        let (text, ..) = ctl.explain(resource).await.map_err(crate::bus::message)?;
        anyhow::Ok(text)
    })?;
    if text.is_empty() {
        bail!("nothing is known about {resource}");
    }
    print!("{text}");
    Ok(())
}
