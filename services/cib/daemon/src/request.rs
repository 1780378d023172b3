//! A change as it travels to every replica: what the caller asked, and what
//! the originating node decided for it (the time, who asked), so that every
//! replica applies exactly the same thing.

use serde::{Deserialize, Serialize};

/// The largest XML document or fragment a request may carry (what
/// `vigil-cib`'s operations accept).
pub const MAX_XML: usize = vigil_cib::ops::MAX_XML_BYTES;

/// A change to the CIB (the cibadmin set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// Adds `xml` to `section`.
    Create { section: String, xml: String },
    /// Merges `xml` into the element with its tag and id (or the section).
    Modify {
        section: String,
        xml: String,
        create_if_missing: bool,
    },
    /// Replaces what `xpath` (or `section`, or the whole CIB when both are
    /// empty) selects with `xml`.
    Replace {
        section: String,
        xpath: String,
        xml: String,
    },
    /// Deletes the element of `section` matching `xml`.
    Delete { section: String, xml: String },
    /// Deletes what `xpath` selects (the first match, or all).
    DeleteXpath { xpath: String, all: bool },
    /// Applies a v2 patchset.
    Patch { xml: String },
    /// Empties the configuration and status.
    Erase,
    /// Increments `epoch`.
    Bump,
    /// Moves the CIB to the newest schema.
    Upgrade,
    /// Several of the above (no patches, no batches) as one change: all or
    /// none, one version step.
    Batch { changes: Vec<Change> },
}

impl Change {
    /// The operation's name, as cibadmin calls it (for logs and errors).
    pub fn name(&self) -> &'static str {
        match self {
            Change::Create { .. } => "create",
            Change::Modify { .. } => "modify",
            Change::Replace { .. } => "replace",
            Change::Delete { .. } => "delete",
            Change::DeleteXpath { .. } => "delete",
            Change::Patch { .. } => "patch",
            Change::Erase => "erase",
            Change::Bump => "bump",
            Change::Upgrade => "upgrade",
            Change::Batch { .. } => "batch",
        }
    }

    /// The largest XML argument it carries.
    pub fn xml_len(&self) -> usize {
        match self {
            Change::Create { xml, .. }
            | Change::Modify { xml, .. }
            | Change::Replace { xml, .. }
            | Change::Delete { xml, .. }
            | Change::Patch { xml } => xml.len(),
            Change::Batch { changes } => changes.iter().map(Change::xml_len).sum(),
            _ => 0,
        }
    }
}

/// What the originating node decided for a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The node's name (`update-origin`).
    pub node: String,
    /// The client, for `update-client` (the caller's bus name or process).
    pub client: String,
    /// The caller's user name (`update-user`); the CIB's ACLs apply to
    /// it unless it is a superuser (root, hacluster).
    pub user: String,
    /// The caller's groups (for `acl_group`).
    pub groups: Vec<String>,
    /// When it was asked, as Pacemaker writes `cib-last-written`.
    pub now: String,
}

/// A change with its origin: the payload of a replicated change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub change: Change,
    pub origin: Origin,
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Request> {
        postcard::from_bytes(bytes).ok()
    }
}
