//! Writes the CIB to disk on a thread of its own, so that the loop never
//! waits on the disk, and coalesces: when several versions queue up while
//! one is being written, only the newest is written next (group commit).
//! Each write is acknowledged with the version now durable, which
//! releases every reply waiting for that version or an older one.

use std::collections::BTreeSet;
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;
use vigil_cib::model::CibVersion;

use crate::store::Store;

/// The result of one write: the version on disk, or why writing failed
/// (with the version that could not be written).
pub type Ack = Result<CibVersion, (CibVersion, String)>;

/// A version to write, with its witnesses.
type Job = (CibVersion, String, Option<BTreeSet<u32>>);

/// The handle the loop keeps.
#[derive(Debug)]
pub struct Writer {
    tx: std_mpsc::Sender<Job>,
    /// The newest version handed over.
    pub submitted: Option<CibVersion>,
    /// The newest version known durable.
    pub durable: Option<CibVersion>,
    /// The newest version that failed to be written.
    failed: Option<CibVersion>,
    /// A change since the last write was handed over.
    pub wanted: bool,
}

impl Writer {
    /// Starts the writing thread for `store`; acknowledgements arrive on
    /// the returned receiver.
    pub fn start(mut store: Store) -> std::io::Result<(Writer, mpsc::UnboundedReceiver<Ack>)> {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("cib-writer".into())
            .spawn(move || {
                while let Ok(mut next) = rx.recv() {
                    // Only the newest of what is waiting.
                    while let Ok(newer) = rx.try_recv() {
                        next = newer;
                    }
                    let (version, xml, witnesses) = next;
                    let ack = match store.write(&xml, version, witnesses.as_ref()) {
                        Ok(()) => Ok(version),
                        Err(e) => Err((version, e.to_string())),
                    };
                    if ack_tx.send(ack).is_err() {
                        return;
                    }
                }
            })?;
        Ok((
            Writer {
                tx,
                submitted: None,
                durable: None,
                failed: None,
                wanted: false,
            },
            ack_rx,
        ))
    }

    /// Hands a version over for writing.
    pub fn submit(&mut self, version: CibVersion, xml: String, witnesses: Option<BTreeSet<u32>>) {
        self.submitted = Some(version);
        let _ = self.tx.send((version, xml, witnesses));
    }

    /// Whether a write handed over is not acknowledged yet.
    pub fn busy(&self) -> bool {
        self.submitted.is_some_and(|s| {
            self.durable.is_none_or(|d| d < s) && self.failed.is_none_or(|f| f < s)
        })
    }

    /// Notes a failed write.
    pub fn failed(&mut self, version: CibVersion) {
        self.failed = Some(version);
    }

    /// Notes an acknowledgement.
    pub fn acked(&mut self, version: CibVersion) {
        if self.durable.is_none_or(|d| d < version) {
            self.durable = Some(version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_the_newest_and_acknowledges_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), false).unwrap().store;
        let (mut w, mut acks) = Writer::start(store).unwrap();
        let mut last = CibVersion::default();
        for e in 1..=50u64 {
            last = CibVersion {
                admin_epoch: 0,
                epoch: e,
                num_updates: 0,
            };
            w.submit(
                last,
                format!("<cib admin_epoch=\"0\" epoch=\"{e}\" num_updates=\"0\"/>"),
                None,
            );
        }
        // Acknowledgements only grow and end with the newest.
        let mut seen = Vec::new();
        while seen.last() != Some(&last) {
            let v = acks.recv().await.unwrap().unwrap();
            assert!(seen.last().is_none_or(|p| *p < v));
            seen.push(v);
        }
        let stored = Store::open(dir.path(), false).unwrap();
        assert_eq!(crate::store::version_of(stored.cib.as_ref().unwrap()), last);
    }
}
