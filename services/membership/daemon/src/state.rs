//! What the daemon keeps on disk between runs: the highest ring sequence it
//! has seen (`<state dir>/ring-seq`, a decimal number), so that a restarted
//! node numbers its rings above every ring it took part in, as corosync
//! keeps its ring id file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Where production nodes keep it.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vigil/membership";

const FILE: &str = "ring-seq";

/// The ring sequence file in `dir`.
#[derive(Debug, Clone)]
pub struct RingSeqFile {
    path: PathBuf,
    saved: u64,
}

impl RingSeqFile {
    /// Opens (creating the directory if needed) and reads the file; a
    /// missing file is 0, a file that is not a number is an error that
    /// names it.
    pub fn open(dir: &Path) -> anyhow::Result<RingSeqFile> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        let path = dir.join(FILE);
        let saved = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| {
                anyhow::anyhow!(
                    "{} does not hold a ring sequence number (found {:?}); it is written by \
                     vigil-membershipd: remove it only if no other node runs a newer ring",
                    path.display(),
                    text.chars().take(40).collect::<String>()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
                );
            }
        };
        Ok(RingSeqFile { path, saved })
    }

    /// The value read or last saved.
    pub fn saved(&self) -> u64 {
        self.saved
    }

    /// Saves `seq` if it is higher than what is saved: a new file, synced,
    /// then renamed over the old one.
    pub fn save(&mut self, seq: u64) -> std::io::Result<()> {
        if seq <= self.saved {
            return Ok(());
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            writeln!(f, "{seq}")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.saved = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_highest_sequence_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RingSeqFile::open(dir.path()).unwrap();
        assert_eq!(f.saved(), 0);
        f.save(7).unwrap();
        f.save(3).unwrap();
        assert_eq!(RingSeqFile::open(dir.path()).unwrap().saved(), 7);
        std::fs::write(dir.path().join(FILE), "seven").unwrap();
        let err = RingSeqFile::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("ring-seq") && err.contains("seven"), "{err}");
    }
}
