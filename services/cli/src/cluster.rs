//! `vigil cluster ...`: the cluster key (and, later, setup).

use std::path::Path;

use anyhow::{Context, bail};
use vigil_membershipd::transport::{AuthKey, write_key};

/// Writes a new cluster key to `path`, refusing to replace one unless
/// `force`: replacing a key cuts this node off until every node has the new
/// one.
pub fn keygen(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!(
            "{} already exists; nodes with a different key cannot talk to each other. \
             Use --force to replace it, then copy it to every node",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let key = AuthKey::try_generate().context("cannot generate a key")?;
    write_key(path, &key)?;
    println!(
        "wrote the cluster key {} (fingerprint {}); copy this same file, mode 0400, to every node",
        path.display(),
        key.fingerprint()
    );
    Ok(())
}
