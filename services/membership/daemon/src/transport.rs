//! Authenticated encryption of cluster datagrams with the shared cluster key.
//!
//! Pure functions and small state: nothing here touches a socket. The daemon
//! hands every outgoing datagram to a [`Sealer`] and every incoming one to an
//! [`Opener`], and moves the bytes itself. No key, no traffic: a datagram that
//! does not authenticate under the cluster key is dropped and counted
//! ([`DropStats`]), and so is a replayed one.
//!
//! # The cluster key
//!
//! [`KEY_LEN`] (32) random bytes, by default in [`DEFAULT_KEY_PATH`]
//! (`/etc/vigil/authkey`, mode 0400), identical on every node.
//! [`AuthKey::generate`] makes one from the operating system's randomness,
//! [`write_key`] stores it atomically (temporary file, `fsync`, rename) with
//! mode 0400 and [`read_key`] loads it, refusing a file of the wrong size or
//! one that group or others may access. [`AuthKey::fingerprint`] is a short,
//! stable identifier for logs (a keyed PRF of a fixed label: it says whether
//! two nodes have the same key and nothing about the key itself). Every
//! cluster should have its own key.
//!
//! # Datagram format (version 1)
//!
//! All integers are big-endian.
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! |      0 |    1 | magic/version byte, [`MAGIC`] (`0x56`, "V")                    |
//! |      1 |    4 | cluster tag ([`ClusterTag`])                                   |
//! |      5 |    4 | sender node id (`u32`)                                         |
//! |      9 |    8 | sender epoch (`u64`)                                           |
//! |     17 |    8 | counter (`u64`, below 2^63)                                    |
//! |     25 |    n | ciphertext of the `n`-byte plaintext                           |
//! | 25 + n |   16 | Poly1305 tag                                                   |
//!
//! The first [`HEADER_LEN`] (25) bytes are the header, sent in clear and
//! authenticated as the AEAD's associated data; the rest is
//! XChaCha20-Poly1305 output. The overhead is [`OVERHEAD`] (41) bytes and a
//! whole datagram is at most [`MAX_DATAGRAM`] bytes, so a plaintext is at most
//! [`MAX_PLAINTEXT`] bytes ([`Sealer::seal`] refuses larger ones).
//!
//! * **Cluster tag**: the first 4 bytes of a keyed PRF (the Poly1305 tag of
//!   XChaCha20-Poly1305 under the cluster key, with a nonce reserved for this
//!   purpose) of the cluster name. Two clusters sharing a network differ in
//!   their tags as soon as their names or their keys differ, so they drop each
//!   other's datagrams ([`DropReason::OtherCluster`]) without even trying to
//!   decrypt them.
//! * **Epoch**: chosen by the sender when it starts ([`clock_epoch`]): the wall
//!   clock in milliseconds since the Unix epoch, shifted left by 16 bits, with
//!   16 random bits below. A restarted sender thus has a higher epoch than
//!   before (its counters start afresh and are accepted), and two starts in the
//!   same millisecond still differ.
//! * **Counter**: per sender epoch, starting at 0 and increasing by one per
//!   datagram. Counters at or above 2^63 are never sent (that half of the
//!   nonce space is reserved for key-derived values) and are refused on input.
//!
//! **Nonce**: the 24-byte XChaCha20 nonce is header bytes 1..25, that is
//! cluster tag ‖ sender ‖ epoch ‖ counter. It is never reused under one key as
//! long as a node id is used by one daemon at a time and a sender's epochs
//! differ, which the clock and the random bits see to. The nonces used to
//! derive the cluster tag and the fingerprint end in eight `0xff` bytes, that
//! is a counter of at least 2^63, which no datagram uses.
//!
//! # Replay protection
//!
//! The [`Opener`] knows the configured node ids and, per sender, the highest
//! epoch seen and a sliding window of [`REPLAY_WINDOW`] (1024) counters below
//! the highest counter seen in that epoch (a bitmap). A counter is accepted
//! once: above the highest, or within the window and not seen yet. Older
//! counters and lower epochs are replays; a higher epoch (the sender
//! restarted) starts a new window. The window only moves after a datagram has
//! authenticated, so forged datagrams cannot disturb it. A sender whose clock
//! went back across a restart has a lower epoch than before and is dropped as
//! a replay until the receiver forgets it ([`Opener::forget`]) or restarts.
//! Datagrams claiming this node as sender are dropped
//! ([`DropReason::FromSelf`]), and so are those of unconfigured node ids.
//!
//! A datagram is bound to its cluster and its sender, not to a receiver: a
//! message meant for one node only must say so in its payload.
//!
//! [`Opener::open`] never panics, whatever its input, and checks lengths
//! before anything else.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use chacha20poly1305::aead::{AeadInOut, Generate, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use vigil_membership::NodeId;

/// Where the cluster key lives on a production node.
pub const DEFAULT_KEY_PATH: &str = "/etc/vigil/authkey";
/// Length of the cluster key, in bytes.
pub const KEY_LEN: usize = 32;
/// First byte of every datagram: magic number and format version in one.
pub const MAGIC: u8 = 0x56;
/// Length of the clear-text header.
pub const HEADER_LEN: usize = 25;
/// Length of the Poly1305 authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed datagram has on top of its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// Largest datagram sealed or opened (fits an IPv4 or IPv6 UDP payload).
pub const MAX_DATAGRAM: usize = 65_000;
/// Largest plaintext [`Sealer::seal`] accepts.
pub const MAX_PLAINTEXT: usize = MAX_DATAGRAM - OVERHEAD;
/// How many counters below the highest one seen are still accepted (once).
pub const REPLAY_WINDOW: u64 = 1024;
/// Counters are below this; the upper half of the range is reserved.
pub const COUNTER_LIMIT: u64 = 1 << 63;

const WINDOW_WORDS: usize = (REPLAY_WINDOW / 64) as usize;
/// Label of the nonce that derives cluster tags (16 bytes, then eight 0xff).
const CLUSTER_TAG_LABEL: &[u8; 16] = b"vigil:clustertag";
/// Label of the nonce that derives key fingerprints.
const FINGERPRINT_LABEL: &[u8; 16] = b"vigil:fingerprnt";
/// Largest key file `read_key` looks at (it reports the size of larger ones).
const KEY_FILE_READ_LIMIT: u64 = 4096;

// ---------------------------------------------------------------------------
// Key

/// Why a cluster key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key material is not [`KEY_LEN`] bytes long.
    #[error(
        "the cluster key must be exactly {KEY_LEN} bytes, found {found} byte(s); \
         generate one with `vigil cluster keygen`"
    )]
    WrongLength {
        /// How many bytes there were.
        found: usize,
    },
    /// Every byte of the key is zero: not a generated key.
    #[error(
        "the cluster key is all zero bytes, which is not a generated key; \
         generate one with `vigil cluster keygen`"
    )]
    AllZero,
    /// The key file does not exist.
    #[error(
        "the cluster key {} does not exist; generate it with `vigil cluster keygen` \
         and copy it to every node",
        .path.display()
    )]
    Missing {
        /// The path looked at.
        path: PathBuf,
    },
    /// The key file may be read or written by its group or by others.
    #[error(
        "the cluster key {} is accessible to group or others (mode {mode:04o}); \
         run `chmod 0400 {}`",
        .path.display(),
        .path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing the key file failed.
    #[error("cluster key {}: {source}", .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
}

/// The shared cluster key: 32 secret bytes.
///
/// Its `Debug` shows the fingerprint, never the key; the bytes are
/// overwritten (best effort) when it is dropped.
#[derive(Clone)]
pub struct AuthKey {
    bytes: [u8; KEY_LEN],
}

impl AuthKey {
    /// A new key from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes (see
    /// [`AuthKey::try_generate`] for the fallible form).
    #[must_use]
    pub fn generate() -> AuthKey {
        match AuthKey::try_generate() {
            Ok(key) => key,
            Err(e) => panic!("{e}"),
        }
    }

    /// A new key from the operating system's random number generator.
    ///
    /// # Errors
    ///
    /// [`KeyError::Random`] if the operating system cannot provide random
    /// bytes.
    pub fn try_generate() -> Result<AuthKey, KeyError> {
        let bytes = <[u8; KEY_LEN]>::try_generate().map_err(|e| KeyError::Random(e.to_string()))?;
        // All zero from a working generator has probability 2^-256.
        AuthKey::from_bytes(&bytes)
    }

    /// The key made of these bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::WrongLength`] unless there are exactly [`KEY_LEN`] bytes,
    /// [`KeyError::AllZero`] if they are all zero.
    pub fn from_bytes(bytes: &[u8]) -> Result<AuthKey, KeyError> {
        let bytes: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength { found: bytes.len() })?;
        if bytes.iter().all(|&b| b == 0) {
            return Err(KeyError::AllZero);
        }
        Ok(AuthKey { bytes })
    }

    /// The key's bytes (what goes into the key file).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.bytes
    }

    /// A short stable identifier of the key for logs and status output: 16 hex
    /// digits of a keyed PRF of a fixed label. Equal keys have equal
    /// fingerprints; the fingerprint reveals nothing about the key.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let tag = self.prf(FINGERPRINT_LABEL, b"vigil cluster key fingerprint v1");
        hex(&tag[..8])
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.bytes))
    }

    /// A keyed PRF of `data`: the Poly1305 tag of an empty message with
    /// `data` as associated data, under a nonce that no datagram uses
    /// (`label` then eight 0xff bytes, a counter of at least 2^63).
    fn prf(&self, label: &[u8; 16], data: &[u8]) -> [u8; TAG_LEN] {
        let mut nonce = [0xff_u8; 24];
        nonce[..16].copy_from_slice(label);
        let mut empty: [u8; 0] = [];
        let tag = self
            .cipher()
            .encrypt_inout_detached(&XNonce::from(nonce), data, (&mut empty[..]).into())
            .expect("ChaCha20-Poly1305 only fails on messages of 256 GiB or more");
        tag.into()
    }
}

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl std::ops::Drop for AuthKey {
    fn drop(&mut self) {
        self.bytes.fill(0);
        std::hint::black_box(&self.bytes);
    }
}

/// Reads the cluster key from `path` (normally [`DEFAULT_KEY_PATH`]).
///
/// # Errors
///
/// [`KeyError::Missing`] if there is no such file,
/// [`KeyError::InsecurePermissions`] if group or others have any access to
/// it, [`KeyError::WrongLength`] / [`KeyError::AllZero`] if its content is not
/// a key, [`KeyError::Io`] for any other failure.
pub fn read_key(path: &Path) -> Result<AuthKey, KeyError> {
    let io_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            KeyError::Missing {
                path: path.to_owned(),
            }
        } else {
            KeyError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let file = fs::File::open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Vec::with_capacity(KEY_LEN);
    file.take(KEY_FILE_READ_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() != KEY_LEN {
        let found = if bytes.len() as u64 == KEY_FILE_READ_LIMIT {
            usize::try_from(meta.len()).unwrap_or(usize::MAX)
        } else {
            bytes.len()
        };
        bytes.fill(0);
        return Err(KeyError::WrongLength { found });
    }
    let key = AuthKey::from_bytes(&bytes);
    bytes.fill(0);
    key
}

/// Writes `key` to `path` atomically with mode 0400: into a new temporary
/// file in the same directory, synced, then renamed over `path` (an existing
/// key is replaced; asking first is the caller's business).
///
/// # Errors
///
/// [`KeyError::Io`] if any step fails; the temporary file is removed then.
pub fn write_key(path: &Path, key: &AuthKey) -> Result<(), KeyError> {
    let io_err = |source: io::Error| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let write = || -> io::Result<()> {
        // A leftover from an earlier failed attempt by a process of this id.
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // create_new: O_EXCL, so a planted file or symlink is not followed.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(0o400))?;
        file.write_all(&key.bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // Make the rename durable; some file systems cannot sync directories.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(e)
    })
}

// ---------------------------------------------------------------------------
// Cluster tag, epoch, header

/// Four bytes naming the cluster (name and key) in every datagram header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterTag([u8; 4]);

impl ClusterTag {
    /// The tag of the cluster called `cluster_name` using `key`.
    #[must_use]
    pub fn derive(key: &AuthKey, cluster_name: &str) -> ClusterTag {
        let prf = key.prf(CLUSTER_TAG_LABEL, cluster_name.as_bytes());
        ClusterTag([prf[0], prf[1], prf[2], prf[3]])
    }

    /// The tag with these bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 4]) -> ClusterTag {
        ClusterTag(bytes)
    }

    /// The tag's bytes, as sent.
    #[must_use]
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for ClusterTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// A fresh sender epoch: milliseconds since the Unix epoch (from the system
/// clock) shifted left by 16 bits, with 16 random bits below.
///
/// Later starts give higher epochs (while the clock does not go back), and
/// two starts within one millisecond still differ with high probability.
#[must_use]
pub fn clock_epoch() -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let ms = u64::try_from(ms).unwrap_or(u64::MAX) & ((1 << 48) - 1);
    // If there is no randomness, the clock alone still orders restarts.
    let salt = u32::try_generate().unwrap_or(0) & 0xffff;
    (ms << 16) | u64::from(salt)
}

/// The clear-text header of a datagram. Parsing it checks the format only:
/// nothing in it is authenticated until [`Opener::open`] succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The sender's cluster.
    pub cluster: ClusterTag,
    /// The sender's node id.
    pub sender: NodeId,
    /// The sender's epoch.
    pub epoch: u64,
    /// The datagram's number within the sender's epoch.
    pub counter: u64,
}

impl Header {
    /// The header of `datagram`, checking its length and magic byte.
    ///
    /// # Errors
    ///
    /// [`DropReason::TooShort`], [`DropReason::BadMagic`] or
    /// [`DropReason::Oversize`].
    pub fn parse(datagram: &[u8]) -> Result<Header, DropReason> {
        match datagram.first() {
            None => return Err(DropReason::TooShort),
            Some(&b) if b != MAGIC => return Err(DropReason::BadMagic),
            Some(_) => {}
        }
        if datagram.len() < OVERHEAD {
            return Err(DropReason::TooShort);
        }
        if datagram.len() > MAX_DATAGRAM {
            return Err(DropReason::Oversize);
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&datagram[..HEADER_LEN]);
        Ok(Header::decode(&h))
    }

    fn decode(h: &[u8; HEADER_LEN]) -> Header {
        fn field<const N: usize>(h: &[u8; HEADER_LEN], at: usize) -> [u8; N] {
            let mut a = [0u8; N];
            a.copy_from_slice(&h[at..at + N]);
            a
        }
        Header {
            cluster: ClusterTag(field(h, 1)),
            sender: NodeId::from_be_bytes(field(h, 5)),
            epoch: u64::from_be_bytes(field(h, 9)),
            counter: u64::from_be_bytes(field(h, 17)),
        }
    }

    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = MAGIC;
        h[1..5].copy_from_slice(&self.cluster.0);
        h[5..9].copy_from_slice(&self.sender.to_be_bytes());
        h[9..17].copy_from_slice(&self.epoch.to_be_bytes());
        h[17..25].copy_from_slice(&self.counter.to_be_bytes());
        h
    }
}

/// The AEAD nonce of the datagram whose header is `h`: header bytes 1..25.
fn nonce_of(h: &[u8; HEADER_LEN]) -> XNonce {
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&h[1..]);
    XNonce::from(nonce)
}

// ---------------------------------------------------------------------------
// Sealing

/// Why a plaintext could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The plaintext is longer than [`MAX_PLAINTEXT`].
    #[error("a datagram payload of {len} bytes is over the limit of {MAX_PLAINTEXT} bytes")]
    Oversize {
        /// The plaintext's length.
        len: usize,
    },
    /// The sender has used every counter of its epoch (2^63 datagrams).
    #[error("the datagram counter of this epoch is exhausted; restart the daemon")]
    CounterExhausted,
}

/// Seals this node's outgoing datagrams: one per daemon run, with the node's
/// id and the run's epoch; it numbers the datagrams itself.
#[derive(Debug, Clone)]
pub struct Sealer {
    node_id: NodeId,
    epoch: u64,
    counter: u64,
}

impl Sealer {
    /// A sealer for `node_id` in `epoch`, starting at counter 0. The epoch
    /// must not have been used by this node id before (use [`clock_epoch`]
    /// or [`Sealer::start`]).
    #[must_use]
    pub fn new(node_id: NodeId, epoch: u64) -> Sealer {
        Sealer {
            node_id,
            epoch,
            counter: 0,
        }
    }

    /// A sealer for `node_id` with a fresh epoch from [`clock_epoch`].
    #[must_use]
    pub fn start(node_id: NodeId) -> Sealer {
        Sealer::new(node_id, clock_epoch())
    }

    /// This node's id.
    #[must_use]
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// This run's epoch.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The counter the next datagram gets.
    #[must_use]
    pub fn next_counter(&self) -> u64 {
        self.counter
    }

    /// Encrypts and authenticates `plaintext` for the cluster `cluster`,
    /// returning the datagram to send (`plaintext.len() + OVERHEAD` bytes).
    ///
    /// # Errors
    ///
    /// [`SealError::Oversize`] if the plaintext is over [`MAX_PLAINTEXT`]
    /// bytes, [`SealError::CounterExhausted`] after 2^63 datagrams; nothing is
    /// consumed then.
    pub fn seal(
        &mut self,
        key: &AuthKey,
        cluster: ClusterTag,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(SealError::Oversize {
                len: plaintext.len(),
            });
        }
        if self.counter >= COUNTER_LIMIT {
            return Err(SealError::CounterExhausted);
        }
        let header = Header {
            cluster,
            sender: self.node_id,
            epoch: self.epoch,
            counter: self.counter,
        }
        .encode();
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&header);
        out.extend_from_slice(plaintext);
        let tag = key
            .cipher()
            .encrypt_inout_detached(&nonce_of(&header), &header, (&mut out[HEADER_LEN..]).into())
            .expect("ChaCha20-Poly1305 only fails on messages of 256 GiB or more");
        out.extend_from_slice(&tag);
        self.counter += 1;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Opening

/// Why an incoming datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum DropReason {
    /// Shorter than a header and a tag.
    #[error("datagram too short")]
    TooShort,
    /// Not a Vigil datagram, or another version of the format.
    #[error("bad magic/version byte")]
    BadMagic,
    /// Longer than [`MAX_DATAGRAM`].
    #[error("datagram too large")]
    Oversize,
    /// From another cluster (or the same name with another key).
    #[error("datagram of another cluster (another cluster name or another key)")]
    OtherCluster,
    /// From a node id that is not configured.
    #[error("datagram from an unknown node id")]
    UnknownSender,
    /// Claims to come from this node (a reflection, or a loop).
    #[error("datagram claims to come from this node")]
    FromSelf,
    /// A counter in the reserved range (at least 2^63).
    #[error("datagram with an invalid counter")]
    BadCounter,
    /// Seen before, older than the replay window, or of an older epoch.
    #[error("replayed or stale datagram")]
    Replay,
    /// Does not authenticate under the cluster key (wrong key, or altered).
    #[error("datagram does not authenticate (wrong key or altered)")]
    BadTag,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 9] = [
        DropReason::TooShort,
        DropReason::BadMagic,
        DropReason::Oversize,
        DropReason::OtherCluster,
        DropReason::UnknownSender,
        DropReason::FromSelf,
        DropReason::BadCounter,
        DropReason::Replay,
        DropReason::BadTag,
    ];

    /// A stable snake_case name, for metrics and D-Bus properties.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::BadMagic => "bad_magic",
            DropReason::Oversize => "oversize",
            DropReason::OtherCluster => "other_cluster",
            DropReason::UnknownSender => "unknown_sender",
            DropReason::FromSelf => "from_self",
            DropReason::BadCounter => "bad_counter",
            DropReason::Replay => "replay",
            DropReason::BadTag => "bad_tag",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// How many datagrams were dropped, per reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropStats {
    counts: [u64; DropReason::ALL.len()],
}

impl DropStats {
    /// Counts one more drop for `reason`.
    pub fn record(&mut self, reason: DropReason) {
        let n = &mut self.counts[reason.index()];
        *n = n.saturating_add(1);
    }

    /// Drops counted for `reason`.
    #[must_use]
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Drops counted for all reasons.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |a, &n| a.saturating_add(n))
    }

    /// Every reason with its count, in [`DropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|&r| (r, self.get(r)))
    }
}

impl fmt::Display for DropStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (reason, n)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{}={n}", reason.as_str())?;
        }
        Ok(())
    }
}

/// What has been accepted from one sender: its epoch, the highest counter of
/// that epoch, and which of the [`REPLAY_WINDOW`] counters up to it were seen
/// (bit `c % REPLAY_WINDOW` for counter `c`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ReplayWindow {
    epoch: u64,
    highest: u64,
    seen: [u64; WINDOW_WORDS],
}

impl ReplayWindow {
    fn new(epoch: u64, counter: u64) -> ReplayWindow {
        let mut w = ReplayWindow {
            epoch,
            highest: counter,
            seen: [0; WINDOW_WORDS],
        };
        w.set(counter, true);
        w
    }

    fn slot(counter: u64) -> (usize, u64) {
        let i = (counter % REPLAY_WINDOW) as usize;
        (i / 64, 1 << (i % 64))
    }

    fn is_set(&self, counter: u64) -> bool {
        let (word, bit) = ReplayWindow::slot(counter);
        self.seen[word] & bit != 0
    }

    fn set(&mut self, counter: u64, on: bool) {
        let (word, bit) = ReplayWindow::slot(counter);
        if on {
            self.seen[word] |= bit;
        } else {
            self.seen[word] &= !bit;
        }
    }

    /// Would `counter` of `epoch` be new?
    fn is_fresh(&self, epoch: u64, counter: u64) -> bool {
        if epoch != self.epoch {
            return epoch > self.epoch;
        }
        if counter > self.highest {
            return true;
        }
        self.highest - counter < REPLAY_WINDOW && !self.is_set(counter)
    }

    /// Records `counter` of `epoch`, which [`ReplayWindow::is_fresh`] accepted.
    fn accept(&mut self, epoch: u64, counter: u64) {
        if epoch > self.epoch {
            *self = ReplayWindow::new(epoch, counter);
            return;
        }
        if counter > self.highest {
            let advance = counter - self.highest;
            if advance >= REPLAY_WINDOW {
                self.seen = [0; WINDOW_WORDS];
            } else {
                for c in self.highest + 1..counter {
                    self.set(c, false);
                }
            }
            self.highest = counter;
        }
        self.set(counter, true);
    }
}

/// Opens incoming datagrams: checks them, authenticates and decrypts them,
/// and remembers per sender what it accepted so that nothing is accepted
/// twice. One per daemon, for all peers.
#[derive(Debug, Clone)]
pub struct Opener {
    own_id: NodeId,
    /// Configured peers and, once one authenticated, their replay state.
    peers: BTreeMap<NodeId, Option<ReplayWindow>>,
    stats: DropStats,
    accepted: u64,
}

impl Opener {
    /// An opener for the node `own_id` accepting datagrams from the configured
    /// node ids `nodes`. Datagrams claiming to come from `own_id` are dropped
    /// ([`DropReason::FromSelf`]) whether or not `nodes` lists it.
    pub fn new(own_id: NodeId, nodes: impl IntoIterator<Item = NodeId>) -> Opener {
        let mut opener = Opener {
            own_id,
            peers: BTreeMap::new(),
            stats: DropStats::default(),
            accepted: 0,
        };
        opener.set_nodes(nodes);
        opener
    }

    /// Replaces the configured node ids (after a configuration reload). Nodes
    /// that stay keep their replay state; removed ones lose it.
    pub fn set_nodes(&mut self, nodes: impl IntoIterator<Item = NodeId>) {
        let mut old = std::mem::take(&mut self.peers);
        for node in nodes {
            if node != self.own_id {
                let state = old.remove(&node).flatten();
                self.peers.insert(node, state);
            }
        }
    }

    /// Forgets the replay state of `node`, so that its next datagram is
    /// accepted whatever its epoch. Meant for a node whose clock went back
    /// across a restart (its new epoch is lower than the old one); note that
    /// until the node's next datagram, recorded old datagrams of it could be
    /// replayed once each.
    pub fn forget(&mut self, node: NodeId) {
        if let Some(state) = self.peers.get_mut(&node) {
            *state = None;
        }
    }

    /// The epoch of `node`'s datagrams accepted last, if any.
    #[must_use]
    pub fn peer_epoch(&self, node: NodeId) -> Option<u64> {
        self.peers.get(&node)?.as_ref().map(|w| w.epoch)
    }

    /// Drops so far, per reason.
    #[must_use]
    pub fn stats(&self) -> &DropStats {
        &self.stats
    }

    /// Datagrams accepted so far.
    #[must_use]
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Checks, authenticates and decrypts `datagram` for the cluster
    /// `cluster`, returning its sender and plaintext. Each drop is counted in
    /// [`Opener::stats`]. Never panics.
    ///
    /// # Errors
    ///
    /// The [`DropReason`] for which the datagram was dropped.
    pub fn open(
        &mut self,
        key: &AuthKey,
        cluster: ClusterTag,
        datagram: &[u8],
    ) -> Result<(NodeId, Vec<u8>), DropReason> {
        let result = self.try_open(key, cluster, datagram);
        match result {
            Ok(_) => self.accepted = self.accepted.saturating_add(1),
            Err(reason) => self.stats.record(reason),
        }
        result
    }

    fn try_open(
        &mut self,
        key: &AuthKey,
        cluster: ClusterTag,
        datagram: &[u8],
    ) -> Result<(NodeId, Vec<u8>), DropReason> {
        let header = Header::parse(datagram)?;
        if header.cluster != cluster {
            return Err(DropReason::OtherCluster);
        }
        if header.sender == self.own_id {
            return Err(DropReason::FromSelf);
        }
        let state = self
            .peers
            .get_mut(&header.sender)
            .ok_or(DropReason::UnknownSender)?;
        if header.counter >= COUNTER_LIMIT {
            return Err(DropReason::BadCounter);
        }
        if let Some(window) = state
            && !window.is_fresh(header.epoch, header.counter)
        {
            return Err(DropReason::Replay);
        }

        let (head, rest) = datagram.split_at(HEADER_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let head: [u8; HEADER_LEN] = head.try_into().map_err(|_| DropReason::TooShort)?;
        let tag = Tag::try_from(tag).map_err(|_| DropReason::TooShort)?;
        let mut plaintext = ciphertext.to_vec();
        key.cipher()
            .decrypt_inout_detached(
                &nonce_of(&head),
                &head,
                plaintext.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| DropReason::BadTag)?;

        match state {
            Some(window) => window.accept(header.epoch, header.counter),
            None => *state = Some(ReplayWindow::new(header.epoch, header.counter)),
        }
        Ok((header.sender, plaintext))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER: &str = "alpha";

    fn key(seed: u8) -> AuthKey {
        let mut bytes = [0u8; KEY_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(i as u8) | 1;
        }
        AuthKey::from_bytes(&bytes).unwrap()
    }

    fn tag(key: &AuthKey) -> ClusterTag {
        ClusterTag::derive(key, CLUSTER)
    }

    /// Node 2's opener, with nodes 1, 2 and 3 configured.
    fn opener() -> Opener {
        Opener::new(2, [1, 2, 3])
    }

    /// A small deterministic generator (SplitMix64), no crate needed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn round_trip() {
        let k = key(1);
        let mut sealer = Sealer::new(1, 1000);
        let mut opener = opener();
        for msg in [&b""[..], b"hello", &[0xAB; 1000][..]] {
            let d = sealer.seal(&k, tag(&k), msg).unwrap();
            assert_eq!(d.len(), msg.len() + OVERHEAD);
            assert_eq!(d[0], MAGIC);
            assert_eq!(opener.open(&k, tag(&k), &d).unwrap(), (1, msg.to_vec()));
        }
        assert_eq!(opener.accepted(), 3);
        assert_eq!(opener.stats().total(), 0);
        assert_eq!(opener.peer_epoch(1), Some(1000));
        assert_eq!(sealer.next_counter(), 3);
    }

    #[test]
    fn plaintext_is_encrypted_and_nonces_differ() {
        let k = key(1);
        let mut sealer = Sealer::new(1, 7);
        let msg = b"the same secret message, twice";
        let a = sealer.seal(&k, tag(&k), msg).unwrap();
        let b = sealer.seal(&k, tag(&k), msg).unwrap();
        assert_ne!(&a[HEADER_LEN..HEADER_LEN + msg.len()], &msg[..]);
        assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
        let ha = Header::parse(&a).unwrap();
        let hb = Header::parse(&b).unwrap();
        assert_eq!(
            ha,
            Header {
                cluster: tag(&k),
                sender: 1,
                epoch: 7,
                counter: 0
            }
        );
        assert_eq!(hb.counter, 1);
    }

    #[test]
    fn size_limits() {
        let k = key(1);
        let mut sealer = Sealer::new(1, 1);
        let mut opener = opener();
        let max = vec![7u8; MAX_PLAINTEXT];
        let d = sealer.seal(&k, tag(&k), &max).unwrap();
        assert_eq!(d.len(), MAX_DATAGRAM);
        assert_eq!(opener.open(&k, tag(&k), &d).unwrap().1, max);

        let over = vec![7u8; MAX_PLAINTEXT + 1];
        let err = sealer.seal(&k, tag(&k), &over).unwrap_err();
        assert_eq!(err, SealError::Oversize { len: over.len() });
        assert!(err.to_string().contains("64959"), "{err}");
        assert_eq!(sealer.next_counter(), 1, "a refused seal uses no counter");

        let mut big = d.clone();
        big.push(0);
        assert_eq!(opener.open(&k, tag(&k), &big), Err(DropReason::Oversize));
    }

    #[test]
    fn counter_exhaustion() {
        let k = key(1);
        let mut sealer = Sealer::new(1, 1);
        sealer.counter = COUNTER_LIMIT - 1;
        let d = sealer.seal(&k, tag(&k), b"last").unwrap();
        assert_eq!(opener().open(&k, tag(&k), &d).unwrap().1, b"last");
        assert_eq!(
            sealer.seal(&k, tag(&k), b"x"),
            Err(SealError::CounterExhausted)
        );
    }

    #[test]
    fn each_drop_reason() {
        let k = key(1);
        let t = tag(&k);
        let mut opener = opener();
        let mut s1 = Sealer::new(1, 5);
        let good = s1.seal(&k, t, b"payload").unwrap();

        let cases: Vec<(Vec<u8>, DropReason)> = vec![
            (vec![], DropReason::TooShort),
            (vec![MAGIC], DropReason::TooShort),
            (good[..OVERHEAD - 1].to_vec(), DropReason::TooShort),
            (
                {
                    let mut d = good.clone();
                    d[0] = MAGIC + 1;
                    d
                },
                DropReason::BadMagic,
            ),
            (b"GET / HTTP/1.1".to_vec(), DropReason::BadMagic),
            (
                {
                    let mut d = vec![0u8; MAX_DATAGRAM + 1];
                    d[0] = MAGIC;
                    d
                },
                DropReason::Oversize,
            ),
            (
                Sealer::new(1, 5)
                    .seal(&k, ClusterTag::derive(&k, "beta"), b"x")
                    .unwrap(),
                DropReason::OtherCluster,
            ),
            (
                Sealer::new(9, 5).seal(&k, t, b"x").unwrap(),
                DropReason::UnknownSender,
            ),
            (
                Sealer::new(2, 5).seal(&k, t, b"x").unwrap(),
                DropReason::FromSelf,
            ),
            (
                {
                    let h = Header {
                        cluster: t,
                        sender: 3,
                        epoch: 5,
                        counter: COUNTER_LIMIT,
                    };
                    let mut d = h.encode().to_vec();
                    d.extend_from_slice(&[0; TAG_LEN + 3]);
                    d
                },
                DropReason::BadCounter,
            ),
            (
                {
                    let mut d = good.clone();
                    d[HEADER_LEN] ^= 1;
                    d
                },
                DropReason::BadTag,
            ),
            (
                {
                    let mut d = good.clone();
                    *d.last_mut().unwrap() ^= 0x80;
                    d
                },
                DropReason::BadTag,
            ),
        ];
        for (datagram, reason) in &cases {
            assert_eq!(opener.open(&k, t, datagram), Err(*reason), "{reason:?}");
        }
        // Now the good one, once; then it is a replay.
        assert_eq!(opener.open(&k, t, &good).unwrap().1, b"payload");
        assert_eq!(opener.open(&k, t, &good), Err(DropReason::Replay));

        let stats = opener.stats();
        for reason in DropReason::ALL {
            let expected = cases.iter().filter(|(_, r)| *r == reason).count() as u64
                + u64::from(reason == DropReason::Replay);
            assert_eq!(stats.get(reason), expected, "{reason:?}");
            assert!(expected > 0, "no test for {reason:?}");
        }
        assert_eq!(stats.total(), cases.len() as u64 + 1);
        assert_eq!(opener.accepted(), 1);
        let shown = stats.to_string();
        assert!(shown.starts_with("too_short=3 bad_magic=2 "), "{shown}");
        assert!(shown.ends_with("replay=1 bad_tag=2"), "{shown}");
    }

    #[test]
    fn wrong_key_is_bad_tag() {
        let k1 = key(1);
        let k2 = key(2);
        let t = tag(&k1);
        let d = Sealer::new(1, 1).seal(&k1, t, b"secret").unwrap();
        let mut opener = opener();
        // Same cluster tag given, other key: the tag does not verify.
        assert_eq!(opener.open(&k2, t, &d), Err(DropReason::BadTag));
        // With its own tag, the other key's node does not even try.
        assert_eq!(
            opener.open(&k2, tag(&k2), &d),
            Err(DropReason::OtherCluster)
        );
        // The failures left no state: the right key still opens it.
        assert_eq!(opener.open(&k1, t, &d).unwrap().1, b"secret");
    }

    #[test]
    fn altered_header_is_bad_tag() {
        let k = key(1);
        let t = tag(&k);
        let d = Sealer::new(1, 100).seal(&k, t, b"m").unwrap();
        let mut opener = opener();
        // Claim another configured sender, a higher epoch, another counter.
        for (at, flip) in [(8, 2u8), (16, 1), (24, 1), (17, 0x01)] {
            let mut bad = d.clone();
            bad[at] ^= flip;
            assert_eq!(opener.open(&k, t, &bad), Err(DropReason::BadTag), "{at}");
        }
        assert_eq!(opener.peer_epoch(1), None, "forgeries leave no state");
        assert!(opener.open(&k, t, &d).is_ok());
    }

    #[test]
    fn replay_of_old_datagram() {
        let k = key(1);
        let t = tag(&k);
        let mut sealer = Sealer::new(1, 1);
        let mut opener = opener();
        let all: Vec<_> = (0..2000)
            .map(|i| sealer.seal(&k, t, &u32::to_be_bytes(i)).unwrap())
            .collect();
        for d in &all[..10] {
            assert!(opener.open(&k, t, d).is_ok());
        }
        for d in &all[..10] {
            assert_eq!(opener.open(&k, t, d), Err(DropReason::Replay));
        }
        // Far ahead: everything older than the window is now stale.
        assert!(opener.open(&k, t, &all[1999]).is_ok());
        assert_eq!(opener.open(&k, t, &all[20]), Err(DropReason::Replay));
        let oldest_in_window = (1999 - REPLAY_WINDOW + 1) as usize;
        assert_eq!(
            opener.open(&k, t, &all[oldest_in_window - 1]),
            Err(DropReason::Replay)
        );
        assert!(opener.open(&k, t, &all[oldest_in_window]).is_ok());
        assert!(opener.open(&k, t, &all[1998]).is_ok());
        assert_eq!(opener.open(&k, t, &all[1998]), Err(DropReason::Replay));
        assert_eq!(opener.stats().get(DropReason::Replay), 13);
    }

    #[test]
    fn reordering_within_window_accepted() {
        let k = key(1);
        let t = tag(&k);
        let mut s1 = Sealer::new(1, 1);
        let mut s3 = Sealer::new(3, 9);
        let mut opener = opener();
        let from1: Vec<_> = (0..REPLAY_WINDOW)
            .map(|_| s1.seal(&k, t, b"one").unwrap())
            .collect();
        let from3: Vec<_> = (0..300)
            .map(|_| s3.seal(&k, t, b"three").unwrap())
            .collect();
        // Sender 1: newest first, then the rest shuffled. Sender 3: newest
        // first, then backwards. Interleaved.
        let mut rng = Rng(42);
        let mut order: Vec<usize> = (0..from1.len() - 1).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        order.insert(0, from1.len() - 1);
        let mut backwards3 = from3.iter().rev();
        for (n, &i) in order.iter().enumerate() {
            assert_eq!(opener.open(&k, t, &from1[i]).unwrap(), (1, b"one".to_vec()));
            if n.is_multiple_of(2)
                && let Some(d) = backwards3.next()
            {
                assert_eq!(opener.open(&k, t, d).unwrap(), (3, b"three".to_vec()));
            }
        }
        assert!(backwards3.next().is_none());
        assert_eq!(opener.accepted(), REPLAY_WINDOW + 300);
        for d in from1.iter().chain(&from3) {
            assert_eq!(opener.open(&k, t, d), Err(DropReason::Replay));
        }
    }

    #[test]
    fn window_slides_in_small_steps() {
        let k = key(1);
        let t = tag(&k);
        let mut sealer = Sealer::new(3, 1);
        let mut opener = opener();
        let all: Vec<_> = (0..5000)
            .map(|_| sealer.seal(&k, t, b"").unwrap())
            .collect();
        // Deliver every third one in order, then try all: exactly the
        // skipped ones within the window are still accepted.
        for d in all.iter().step_by(3) {
            assert!(opener.open(&k, t, d).is_ok());
        }
        let highest = 4998; // last multiple of three
        for (c, d) in all.iter().enumerate() {
            let c = c as u64;
            let fresh = c > highest || (highest - c < REPLAY_WINDOW && !c.is_multiple_of(3));
            assert_eq!(opener.open(&k, t, d).is_ok(), fresh, "counter {c}");
        }
    }

    #[test]
    fn restarted_sender_accepted() {
        let k = key(1);
        let t = tag(&k);
        let mut opener = opener();
        let mut before = Sealer::new(1, 1_000 << 16);
        let old: Vec<_> = (0..5)
            .map(|_| before.seal(&k, t, b"old").unwrap())
            .collect();
        for d in &old[..3] {
            assert!(opener.open(&k, t, d).is_ok());
        }
        // The node restarts: a new epoch, counters from 0 again.
        let mut after = Sealer::new(1, 5_000 << 16);
        let new0 = after.seal(&k, t, b"new").unwrap();
        assert_eq!(opener.open(&k, t, &new0).unwrap(), (1, b"new".to_vec()));
        assert_eq!(opener.peer_epoch(1), Some(5_000 << 16));
        // The old run's datagrams, even unseen ones, are now stale.
        for d in &old {
            assert_eq!(opener.open(&k, t, d), Err(DropReason::Replay));
        }
        assert_eq!(opener.open(&k, t, &new0), Err(DropReason::Replay));
        let new1 = after.seal(&k, t, b"new").unwrap();
        assert!(opener.open(&k, t, &new1).is_ok());

        // A node whose clock went back is a replay until forgotten.
        let mut back = Sealer::new(1, 3_000 << 16);
        let b0 = back.seal(&k, t, b"back").unwrap();
        assert_eq!(opener.open(&k, t, &b0), Err(DropReason::Replay));
        opener.forget(1);
        assert!(opener.open(&k, t, &b0).is_ok());
        assert_eq!(opener.open(&k, t, &b0), Err(DropReason::Replay));
    }

    #[test]
    fn clock_epochs_increase() {
        let a = clock_epoch();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let b = clock_epoch();
        assert!(b > a, "{a} {b}");
        assert!(a >> 16 > 1_600_000_000_000, "milliseconds since 1970");
        let s = Sealer::start(4);
        assert_eq!(s.node_id(), 4);
        assert!(s.epoch() >> 16 >= b >> 16);
    }

    #[test]
    fn set_nodes_keeps_state_of_remaining() {
        let k = key(1);
        let t = tag(&k);
        let mut opener = opener();
        let d1 = Sealer::new(1, 1).seal(&k, t, b"").unwrap();
        let d3 = Sealer::new(3, 1).seal(&k, t, b"").unwrap();
        assert!(opener.open(&k, t, &d1).is_ok());
        assert!(opener.open(&k, t, &d3).is_ok());
        opener.set_nodes([1, 2, 4]);
        assert_eq!(opener.open(&k, t, &d1), Err(DropReason::Replay));
        assert_eq!(opener.open(&k, t, &d3), Err(DropReason::UnknownSender));
        opener.set_nodes([1, 3]);
        assert_eq!(opener.peer_epoch(3), None);
        assert!(opener.open(&k, t, &d3).is_ok());
    }

    #[test]
    fn cluster_tags() {
        let k1 = key(1);
        let k2 = key(2);
        assert_eq!(
            ClusterTag::derive(&k1, "alpha"),
            ClusterTag::derive(&k1, "alpha")
        );
        assert_ne!(
            ClusterTag::derive(&k1, "alpha"),
            ClusterTag::derive(&k1, "beta")
        );
        assert_ne!(
            ClusterTag::derive(&k1, "alpha"),
            ClusterTag::derive(&k2, "alpha")
        );
        let t = ClusterTag::derive(&k1, "alpha");
        assert_eq!(ClusterTag::from_bytes(t.to_bytes()), t);
        assert_eq!(t.to_string().len(), 8);
    }

    #[test]
    fn keys_and_fingerprints() {
        let a = AuthKey::generate();
        let b = AuthKey::try_generate().unwrap();
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let a2 = AuthKey::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(a.fingerprint(), a2.fingerprint());
        let fp = a.fingerprint();
        assert_eq!(fp.len(), 16);
        assert!(fp.bytes().all(|c| c.is_ascii_hexdigit()));
        // Debug shows the fingerprint, not the key.
        let debug = format!("{a:?}");
        assert_eq!(debug, format!("AuthKey {{ fingerprint: {fp:?}, .. }}"));
    }

    /// Known answers, computed independently (Python: HChaCha20 by hand and
    /// the `cryptography` package's ChaCha20-Poly1305): the wire format, the
    /// cluster tag and the fingerprint must not change silently, or nodes of
    /// two versions stop understanding each other.
    #[test]
    fn known_answers() {
        let bytes: Vec<u8> = (1..=32).collect();
        let k = AuthKey::from_bytes(&bytes).unwrap();
        assert_eq!(k.fingerprint(), "e9b9008151990f89");
        let t = ClusterTag::derive(&k, "alpha");
        assert_eq!(t.to_string(), "0d0163d7");
        let mut sealer = Sealer::new(1, 0x0102_0304_0506_0708);
        let d = sealer.seal(&k, t, b"vigil").unwrap();
        assert_eq!(
            hex(&d),
            "560d0163d7000000010102030405060708000000000000000077\
             1f7ce3a59f86f3ca2d302422520dafea291fe268"
        );
        assert_eq!(opener().open(&k, t, &d).unwrap(), (1, b"vigil".to_vec()));
    }

    #[test]
    fn key_from_bytes_errors() {
        for len in [0, 16, 31, 33, 64] {
            let err = AuthKey::from_bytes(&vec![1; len]).unwrap_err();
            assert!(matches!(err, KeyError::WrongLength { found } if found == len));
            let msg = err.to_string();
            assert!(msg.contains(&format!("found {len} byte")), "{msg}");
            assert!(msg.contains("vigil cluster keygen"), "{msg}");
        }
        let err = AuthKey::from_bytes(&[0; KEY_LEN]).unwrap_err();
        assert!(matches!(err, KeyError::AllZero));
        assert!(err.to_string().contains("vigil cluster keygen"));
    }

    /// A fresh, empty directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vigil-transport-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn key_file_round_trip() {
        let dir = temp_dir("keyfile");
        let path = dir.join("authkey");
        let err = read_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains("vigil cluster keygen"), "{err}");

        let k = AuthKey::generate();
        write_key(&path, &k).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o400);
        assert_eq!(meta.len(), KEY_LEN as u64);
        assert_eq!(read_key(&path).unwrap().to_bytes(), k.to_bytes());

        // Replacing it is atomic and leaves no temporary file behind.
        let k2 = AuthKey::generate();
        write_key(&path, &k2).unwrap();
        assert_eq!(read_key(&path).unwrap().to_bytes(), k2.to_bytes());
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("authkey")]);

        // Too open.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 0400"), "{err}");

        // Wrong sizes, small and large.
        for len in [33_usize, 10_000] {
            fs::remove_file(&path).unwrap();
            fs::write(&path, vec![7; len]).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = read_key(&path).unwrap_err();
            assert!(
                matches!(err, KeyError::WrongLength { found } if found == len),
                "{err:?}"
            );
        }

        // Into a directory that does not exist.
        let err = write_key(&dir.join("nope/authkey"), &k).unwrap_err();
        assert!(matches!(err, KeyError::Io { .. }), "{err:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Thousands of random, truncated, extended and bit-flipped datagrams:
    /// `open` never panics and accepts exactly the unmodified ones.
    #[test]
    fn fuzz_never_panics_never_accepts_altered() {
        let k = key(1);
        let other = key(2);
        let t = tag(&k);
        let mut rng = Rng(0x5eed);
        let mut sealers = [Sealer::new(1, 77), Sealer::new(3, 78)];
        let originals: Vec<Vec<u8>> = (0..300)
            .map(|i| {
                let len = rng.below(200);
                let msg = rng.bytes(len);
                sealers[i % 2].seal(&k, t, &msg).unwrap()
            })
            .collect();
        let mut opener = opener();
        let mut tried = 0;
        for original in &originals {
            for _ in 0..25 {
                let mut d = original.clone();
                match rng.below(7) {
                    0 => d.truncate(rng.below(d.len() + 1)),
                    1 => {
                        for _ in 0..=rng.below(3) {
                            let at = rng.below(d.len());
                            d[at] ^= 1 << rng.below(8);
                        }
                    }
                    2 => {
                        let len = 1 + rng.below(40);
                        let extra = rng.bytes(len);
                        d.extend_from_slice(&extra);
                    }
                    3 => {
                        let len = rng.below(300);
                        d = rng.bytes(len);
                        if !d.is_empty() && rng.below(2) == 0 {
                            d[0] = MAGIC;
                        }
                    }
                    4 => {
                        // A valid-looking header with random fields.
                        let h = Header {
                            cluster: t,
                            sender: [1, 3, 2, 9][rng.below(4)],
                            epoch: rng.next() % 100,
                            counter: rng.next() >> rng.below(64),
                        };
                        d[..HEADER_LEN].copy_from_slice(&h.encode());
                    }
                    5 => {
                        // Body of one datagram under the header of another.
                        let donor = &originals[rng.below(originals.len())];
                        d[..HEADER_LEN].copy_from_slice(&donor[..HEADER_LEN]);
                    }
                    _ => {
                        // Sealed under another key, cluster tag patched in.
                        let mut s = Sealer::new(1, rng.next());
                        d = s.seal(&other, t, &d[HEADER_LEN..]).unwrap();
                    }
                }
                tried += 1;
                let result = opener.open(&k, t, &d);
                if &d != original {
                    assert!(result.is_err(), "altered datagram opened: {d:?}");
                }
                // An unmodified one was either just opened or is a replay.
            }
        }
        // Pure noise of every length, short and long.
        for _ in 0..2000 {
            let len = if rng.below(10) == 0 {
                rng.below(MAX_DATAGRAM + 100)
            } else {
                rng.below(100)
            };
            let mut d = rng.bytes(len);
            if let Some(first) = d.first_mut() {
                *first = MAGIC;
            }
            if d.len() >= HEADER_LEN && rng.below(2) == 0 {
                d[1..5].copy_from_slice(&t.to_bytes());
            }
            tried += 1;
            assert!(opener.open(&k, t, &d).is_err());
        }
        assert!(tried > 9000);
        assert_eq!(opener.stats().total() + opener.accepted(), tried);
        // Forgeries moved no window: every original not yet accepted opens
        // now, and none opens twice.
        let before = opener.accepted();
        for d in &originals {
            let _ = opener.open(&k, t, d);
        }
        assert_eq!(opener.accepted(), originals.len() as u64);
        assert!(before <= originals.len() as u64);
        for d in &originals {
            assert_eq!(opener.open(&k, t, d), Err(DropReason::Replay));
        }
    }
}
