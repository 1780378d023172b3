//! The CIB on disk: `<dir>/cib.xml`, its digest `<dir>/cib.xml.sig` (the
//! MD5 of the file, in hex, as Pacemaker's `cib.xml.sig`), and the last
//! [`BACKUPS`] versions under `<dir>/backups/`.
//!
//! A write never leaves a half-written file where a reader looks: the new
//! document and its digest go to temporary files, are synced, then renamed
//! over the old ones, and the directory is synced. A crash between the two
//! renames leaves `cib.xml` new and `cib.xml.sig` old; [`Store::open`]
//! recognises that case (the pending digest matches the file) and finishes
//! the write. Any other mismatch means the file was changed or damaged
//! behind the daemon's back: it is refused with an error that names the
//! file and says how to recover, and nothing is overwritten.
//!
//! Before a write replaces `cib.xml`, the file is kept (hard-linked, so
//! this costs no copy) as `backups/cib-ADMIN.EPOCH.UPDATES.xml`, with its
//! digest; only the newest [`BACKUPS`] are kept.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use vigil_cib::model::CibVersion;
use vigil_cib::xml::Document;

/// Where production nodes keep the CIB.
pub const DEFAULT_DIR: &str = "/var/lib/vigil/cib";
/// How many earlier versions are kept.
pub const BACKUPS: usize = 16;

const FILE: &str = "cib.xml";
const SIG: &str = "cib.xml.sig";
const FILE_TMP: &str = "cib.xml.tmp";
const SIG_TMP: &str = "cib.xml.sig.tmp";
const BACKUP_DIR: &str = "backups";
/// Beside the CIB: which nodes saw every change made since the last sync
/// round (see `replica`), for the version it names.
const WITNESSES: &str = "cib.xml.witnesses";
const WITNESSES_TMP: &str = "cib.xml.witnesses.tmp";

/// Why the stored CIB cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{file}: its digest does not match {sig} (the file was changed or damaged outside \
         vigil-cibd); nothing was overwritten. To take the cluster's copy instead, move both \
         away (`mv {file} {file}.bad; mv {sig} {sig}.bad`) and start again: this node then \
         receives the CIB from the other nodes. If you know the file is right, accept it with \
         `vigil-cibd --accept-digest --state-dir {dir}`. Earlier versions are in {dir}/backups."
    )]
    DigestMismatch {
        file: String,
        sig: String,
        dir: String,
    },
    #[error(
        "{file}:{pos}: not a CIB: {message}; fix the file, or move it away to receive the \
         cluster's copy, or restore one from {dir}/backups"
    )]
    Unreadable {
        file: String,
        pos: String,
        message: String,
        dir: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The hex MD5 digest of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CIB directory of this node.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// The digest and version of what `cib.xml` holds now.
    current: Option<(String, CibVersion)>,
}

/// What [`Store::open`] found.
#[derive(Debug)]
pub struct Opened {
    pub store: Store,
    /// The stored CIB, if there is one.
    pub cib: Option<Document>,
    /// Things worth a log line (a finished interrupted write, a file
    /// without a digest).
    pub notes: Vec<String>,
    /// The nodes present at every change of the stored CIB since its last
    /// sync round (`None`: no such change, or not known).
    pub witnesses: Option<BTreeSet<u32>>,
}

impl Store {
    /// Opens `dir` (creating it), checks the stored CIB against its
    /// digest and reads it. With `accept_digest`, a file whose digest does
    /// not match is accepted and its digest rewritten (the operator's
    /// explicit decision).
    pub fn open(dir: &Path, accept_digest: bool) -> Result<Opened, StoreError> {
        fs::create_dir_all(dir.join(BACKUP_DIR)).map_err(io_err(dir))?;
        let file = dir.join(FILE);
        let sig = dir.join(SIG);
        let mut notes = Vec::new();
        // A temporary document left by a crash before its rename: the old
        // file and digest are still a pair.
        let file_tmp = dir.join(FILE_TMP);
        if file_tmp.exists() {
            fs::remove_file(&file_tmp).map_err(io_err(&file_tmp))?;
        }
        let bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_file(dir.join(SIG_TMP));
                return Ok(Opened {
                    store: Store {
                        dir: dir.to_path_buf(),
                        current: None,
                    },
                    cib: None,
                    notes,
                    witnesses: None,
                });
            }
            Err(e) => return Err(io_err(&file)(e)),
        };
        let actual = digest(&bytes);
        let sig_tmp = dir.join(SIG_TMP);
        let pending = read_sig(&sig_tmp)?;
        let stored = read_sig(&sig)?;
        if pending.as_deref() == Some(actual.as_str()) {
            // The write got as far as renaming the document: finish it.
            fs::rename(&sig_tmp, &sig).map_err(io_err(&sig))?;
            sync_dir(dir)?;
            notes.push(format!(
                "{}: finished a write that was interrupted between the document and its digest",
                file.display()
            ));
        } else {
            if pending.is_some() {
                fs::remove_file(&sig_tmp).map_err(io_err(&sig_tmp))?;
            }
            match stored {
                Some(d) if d == actual => {}
                Some(_) if !accept_digest => {
                    return Err(StoreError::DigestMismatch {
                        file: file.display().to_string(),
                        sig: sig.display().to_string(),
                        dir: dir.display().to_string(),
                    });
                }
                Some(_) => {
                    write_atomic(&sig, &sig_tmp, format!("{actual}\n").as_bytes())?;
                    sync_dir(dir)?;
                    notes.push(format!(
                        "{}: accepted with a new digest, as asked (--accept-digest)",
                        file.display()
                    ));
                }
                None => {
                    // A file put there by hand (a Pacemaker cib.xml, say):
                    // taken as it is, and given its digest.
                    write_atomic(&sig, &sig_tmp, format!("{actual}\n").as_bytes())?;
                    sync_dir(dir)?;
                    notes.push(format!(
                        "{}: had no digest beside it; taken as it is and its digest written",
                        file.display()
                    ));
                }
            }
        }
        let text = String::from_utf8(bytes).map_err(|_| StoreError::Unreadable {
            file: file.display().to_string(),
            pos: "1:1".into(),
            message: "the file is not UTF-8 text".into(),
            dir: dir.display().to_string(),
        })?;
        let doc = Document::parse(&text).map_err(|e| StoreError::Unreadable {
            file: file.display().to_string(),
            pos: e.pos.to_string(),
            message: e.message.clone(),
            dir: dir.display().to_string(),
        })?;
        if doc.root.name != "cib" {
            return Err(StoreError::Unreadable {
                file: file.display().to_string(),
                pos: doc.root.pos.to_string(),
                message: format!("the root element is <{}>, not <cib>", doc.root.name),
                dir: dir.display().to_string(),
            });
        }
        let version = version_of(&doc);
        let witnesses = read_witnesses(&dir.join(WITNESSES), version);
        Ok(Opened {
            store: Store {
                dir: dir.to_path_buf(),
                current: Some((actual, version)),
            },
            cib: Some(doc),
            notes,
            witnesses,
        })
    }

    /// Replaces the stored CIB with `xml` (of version `version`), keeping
    /// the previous one as a backup. Returns once the new file and its
    /// digest are durable. `witnesses` goes beside it (not synced: losing
    /// it only loses a warning).
    pub fn write(
        &mut self,
        xml: &str,
        version: CibVersion,
        witnesses: Option<&BTreeSet<u32>>,
    ) -> Result<(), StoreError> {
        let file = self.dir.join(FILE);
        let sig = self.dir.join(SIG);
        let new = digest(xml.as_bytes());
        let w = self.dir.join(WITNESSES);
        let w_tmp = self.dir.join(WITNESSES_TMP);
        let text = match witnesses {
            Some(set) => format!(
                "{}.{}.{} {}\n",
                version.admin_epoch,
                version.epoch,
                version.num_updates,
                set.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
            ),
            None => String::new(),
        };
        fs::write(&w_tmp, text).map_err(io_err(&w_tmp))?;
        fs::rename(&w_tmp, &w).map_err(io_err(&w))?;
        if self.current.as_ref().is_some_and(|c| c.0 == new) {
            return Ok(());
        }
        if let Some((old, old_version)) = &self.current {
            self.backup(old, *old_version)?;
        }
        let file_tmp = self.dir.join(FILE_TMP);
        let sig_tmp = self.dir.join(SIG_TMP);
        write_synced(&file_tmp, xml.as_bytes())?;
        write_synced(&sig_tmp, format!("{new}\n").as_bytes())?;
        fs::rename(&file_tmp, &file).map_err(io_err(&file))?;
        fs::rename(&sig_tmp, &sig).map_err(io_err(&sig))?;
        sync_dir(&self.dir)?;
        self.current = Some((new, version));
        Ok(())
    }

    /// Keeps the current file as a backup named by its version (hard
    /// links: no copy), then drops the oldest beyond [`BACKUPS`].
    fn backup(&self, old_digest: &str, version: CibVersion) -> Result<(), StoreError> {
        let file = self.dir.join(FILE);
        let dir = self.dir.join(BACKUP_DIR);
        let name = format!(
            "cib-{}.{}.{}.xml",
            version.admin_epoch, version.epoch, version.num_updates
        );
        let target = dir.join(&name);
        let target_sig = dir.join(format!("{name}.sig"));
        let _ = fs::remove_file(&target);
        fs::hard_link(&file, &target).map_err(io_err(&target))?;
        fs::write(&target_sig, format!("{old_digest}\n")).map_err(io_err(&target_sig))?;
        let mut kept = self.backups();
        while kept.len() > BACKUPS {
            let (_, path) = kept.remove(0);
            let _ = fs::remove_file(&path);
            let mut sig = path.into_os_string();
            sig.push(".sig");
            let _ = fs::remove_file(PathBuf::from(sig));
        }
        Ok(())
    }

    /// The backups, oldest first.
    pub fn backups(&self) -> Vec<(CibVersion, PathBuf)> {
        let mut v: Vec<(CibVersion, PathBuf)> = fs::read_dir(self.dir.join(BACKUP_DIR))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                parse_backup_name(&name).map(|v| (v, e.path()))
            })
            .collect();
        v.sort();
        v
    }
}

/// The version a CIB document states (0.0.0 where it states none).
pub fn version_of(doc: &Document) -> CibVersion {
    vigil_cib::ops::version(&doc.root)
}

/// The witnesses file, if it is about `version`.
fn read_witnesses(path: &Path, version: CibVersion) -> Option<BTreeSet<u32>> {
    let text = fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let v = words.next()?;
    let want = format!(
        "{}.{}.{}",
        version.admin_epoch, version.epoch, version.num_updates
    );
    if v != want {
        return None;
    }
    words.map(|w| w.parse().ok()).collect()
}

fn parse_backup_name(name: &str) -> Option<CibVersion> {
    let v = name.strip_prefix("cib-")?.strip_suffix(".xml")?;
    let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
    let version = CibVersion {
        admin_epoch: parts.next()??,
        epoch: parts.next()??,
        num_updates: parts.next()??,
    };
    parts.next().is_none().then_some(version)
}

fn read_sig(path: &Path) -> Result<Option<String>, StoreError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_synced(tmp, bytes)?;
    fs::rename(tmp, path).map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cib(epoch: u64) -> String {
        format!(
            "<cib admin_epoch=\"0\" epoch=\"{epoch}\" num_updates=\"0\" validate-with=\"pacemaker-3.0\"><configuration><crm_config/><nodes/><resources/><constraints/></configuration><status/></cib>"
        )
    }

    fn v(epoch: u64) -> CibVersion {
        CibVersion {
            admin_epoch: 0,
            epoch,
            num_updates: 0,
        }
    }

    #[test]
    fn writes_reads_and_keeps_bounded_backups() {
        let dir = tempfile::tempdir().unwrap();
        let opened = Store::open(dir.path(), false).unwrap();
        assert!(opened.cib.is_none());
        let mut store = opened.store;
        for e in 1..=(BACKUPS as u64 + 5) {
            store.write(&cib(e), v(e), None).unwrap();
        }
        let backups = store.backups();
        assert_eq!(backups.len(), BACKUPS);
        assert_eq!(backups.last().unwrap().0, v(BACKUPS as u64 + 4));
        assert_eq!(backups[0].0, v(5));
        let again = Store::open(dir.path(), false).unwrap();
        assert_eq!(
            version_of(again.cib.as_ref().unwrap()),
            v(BACKUPS as u64 + 5)
        );
        assert!(again.notes.is_empty(), "{:?}", again.notes);
        // Each backup holds the version it is named after, and its digest.
        for (version, path) in backups {
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(version_of(&Document::parse(&text).unwrap()), version);
            let sig = fs::read_to_string(format!("{}.sig", path.display())).unwrap();
            assert_eq!(sig.trim(), digest(text.as_bytes()));
        }
    }

    #[test]
    fn witnesses_are_kept_for_their_version_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), false).unwrap().store;
        let w: BTreeSet<u32> = [1, 3].into();
        store.write(&cib(2), v(2), Some(&w)).unwrap();
        assert_eq!(Store::open(dir.path(), false).unwrap().witnesses, Some(w));
        store.write(&cib(3), v(3), None).unwrap();
        assert_eq!(Store::open(dir.path(), false).unwrap().witnesses, None);
        // A witnesses file about another version says nothing.
        fs::write(dir.path().join(WITNESSES), "0.2.0 1 3\n").unwrap();
        assert_eq!(Store::open(dir.path(), false).unwrap().witnesses, None);
    }

    #[test]
    fn a_changed_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), false).unwrap().store;
        store.write(&cib(3), v(3), None).unwrap();
        let file = dir.path().join(FILE);
        let tampered = cib(3).replace("epoch=\"3\"", "epoch=\"9\"");
        fs::write(&file, &tampered).unwrap();
        let err = Store::open(dir.path(), false).unwrap_err().to_string();
        assert!(
            err.contains("cib.xml") && err.contains("--accept-digest") && err.contains("mv "),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&file).unwrap(), tampered);
        // The operator accepts it.
        let opened = Store::open(dir.path(), true).unwrap();
        assert_eq!(version_of(opened.cib.as_ref().unwrap()), v(9));
        assert!(Store::open(dir.path(), false).is_ok());
    }

    #[test]
    fn an_interrupted_write_is_finished_or_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path(), false).unwrap().store;
        store.write(&cib(1), v(1), None).unwrap();
        // Crash after the document's rename, before the digest's.
        let new = cib(2);
        fs::write(dir.path().join(FILE), &new).unwrap();
        fs::write(
            dir.path().join(SIG_TMP),
            format!("{}\n", digest(new.as_bytes())),
        )
        .unwrap();
        let opened = Store::open(dir.path(), false).unwrap();
        assert_eq!(version_of(opened.cib.as_ref().unwrap()), v(2));
        assert_eq!(opened.notes.len(), 1, "{:?}", opened.notes);
        // Crash before the document's rename: the old pair stands.
        fs::write(dir.path().join(FILE_TMP), cib(3)).unwrap();
        fs::write(
            dir.path().join(SIG_TMP),
            format!("{}\n", digest(cib(3).as_bytes())),
        )
        .unwrap();
        let opened = Store::open(dir.path(), false).unwrap();
        assert_eq!(version_of(opened.cib.as_ref().unwrap()), v(2));
        assert!(!dir.path().join(FILE_TMP).exists());
        assert!(!dir.path().join(SIG_TMP).exists());
    }

    #[test]
    fn a_hand_placed_file_is_taken_and_garbage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE), cib(4)).unwrap();
        let opened = Store::open(dir.path(), false).unwrap();
        assert_eq!(version_of(opened.cib.as_ref().unwrap()), v(4));
        assert!(opened.notes[0].contains("no digest"), "{:?}", opened.notes);
        let other = tempfile::tempdir().unwrap();
        fs::write(other.path().join(FILE), "<cib><configuration></cib>").unwrap();
        let err = Store::open(other.path(), false).unwrap_err().to_string();
        assert!(err.contains("cib.xml:1:"), "{err}");
        fs::write(other.path().join(FILE), "<other/>").unwrap();
        fs::remove_file(other.path().join(SIG)).unwrap();
        let err = Store::open(other.path(), false).unwrap_err().to_string();
        assert!(err.contains("not <cib>"), "{err}");
    }
}
