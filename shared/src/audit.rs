//! The server's audit trail: what is recorded of every change, merge,
//! resolution, enrollment and revocation, and the hash chain that makes
//! tampering detectable.
//!
//! Each entry carries the hash of the entry before it (`prev`) and its own
//! `hash` = SHA-256(`prev` ‖ the JSON of its `seq`, `at`, `device` and
//! `event`). Changing, removing or reordering any entry breaks the chain at
//! that entry or the next; [`verify_chain`] finds where. The trail holds ids,
//! kinds and times only: never a name, a document number or a note.
//!
//! Pure code: the server stores and serves the entries; `returnee admin
//! audit` and `returnee-server audit-verify` check them with the same rule.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::Role;
use crate::family::{DeviceId, OpId, RecordId};
use crate::merge::{Change, Op};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A push: every operation the server applied from it, and how many it refused.
    Push {
        applied: Vec<AuditedOp>,
        rejected: u32,
    },
    /// A device exchanged an enrollment code for a credential.
    Enrolled {
        device: DeviceId,
        role: Role,
        sites: Vec<String>,
    },
    /// An admin revoked a device.
    Revoked { device: DeviceId },
    /// An enrollment code was minted (by an admin, or at first start).
    CodeMinted {
        role: Role,
        sites: Vec<String>,
        uses: u32,
    },
    /// Families were exported (`GET /v1/export`, or `returnee export` on a
    /// laptop, told at its next sync): in which format, under which
    /// filter, how many, and whether names or document numbers could
    /// leave with them (`personal`) and in full (`full_documents`).
    Exported {
        format: String,
        filter: String,
        rows: u64,
        personal: bool,
        full_documents: bool,
        /// For an export from a laptop's own store: when, by its clock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_laptop_at: Option<DateTime<Utc>>,
    },
    /// A device's new token was confirmed; its old one stopped working.
    TokenRotated { device: DeviceId },
    /// An admin asked a device to rotate its token at its next contact.
    RotationRequested { device: DeviceId },
    /// An admin added a crossing (`active`) or deactivated one.
    CrossingChanged { code: String, active: bool },
    /// An admin changed the sites of a device.
    SitesChanged {
        device: DeviceId,
        sites: Vec<String>,
    },
}

/// What the trail keeps of one applied operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditedOp {
    pub op: OpId,
    pub record: RecordId,
    /// create, edit, delete, restore, merge, merged_values, dismiss or erase.
    pub change: String,
    /// The fields an edit set (names only, never values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Whether it decided a conflict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resolution: bool,
    /// Why a family's personal data was erased (an erasure's reason, as
    /// the supervisor gave it; never what was erased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuditedOp {
    pub fn of(op: &Op) -> AuditedOp {
        let change = match &op.change {
            Change::Create { .. } => "create",
            Change::Edit { .. } => "edit",
            Change::Delete => "delete",
            Change::Restore => "restore",
            Change::Merge { .. } => "merge",
            Change::MergedValues { .. } => "merged_values",
            Change::Dismiss { .. } => "dismiss",
            Change::Erase { .. } => "erase",
            Change::Other(o) => o.kind.as_str(),
        };
        let fields = match &op.change {
            Change::Edit { .. } | Change::MergedValues { .. } => {
                op.fields().iter().map(|f| f.as_str().to_string()).collect()
            }
            _ => Vec::new(),
        };
        AuditedOp {
            op: op.id,
            record: op.record,
            change: change.into(),
            fields,
            resolution: op.resolution,
            reason: match &op.change {
                Change::Erase { reason } => Some(reason.clone()),
                _ => None,
            },
        }
    }
}

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// The device that acted; `None` for the server itself.
    pub device: Option<DeviceId>,
    pub event: AuditEvent,
    /// The hash of the entry before (hex; [`GENESIS`] for the first).
    pub prev: String,
    /// SHA-256 of `prev` and this entry's content (hex).
    pub hash: String,
}

#[derive(Serialize)]
struct Content<'a> {
    seq: u64,
    at: &'a DateTime<Utc>,
    device: &'a Option<DeviceId>,
    event: &'a AuditEvent,
}

impl AuditEntry {
    /// A new entry after one whose hash is `prev`.
    pub fn new(
        seq: u64,
        at: DateTime<Utc>,
        device: Option<DeviceId>,
        event: AuditEvent,
        prev: &str,
    ) -> AuditEntry {
        let mut entry = AuditEntry {
            seq,
            at,
            device,
            event,
            prev: prev.to_string(),
            hash: String::new(),
        };
        entry.hash = entry.expected_hash();
        entry
    }

    /// The hash this entry's content and `prev` give.
    pub fn expected_hash(&self) -> String {
        let content = serde_json::to_vec(&Content {
            seq: self.seq,
            at: &self.at,
            device: &self.device,
            event: &self.event,
        })
        .expect("audit content serializes");
        let mut h = Sha256::new();
        h.update(self.prev.as_bytes());
        h.update(&content);
        hex_of(&h.finalize())
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where and why a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit trail is broken at entry {seq}: {reason}")]
pub struct ChainBreak {
    pub seq: u64,
    pub reason: String,
}

/// Checks entries in order, starting after an entry with sequence `after`
/// and hash `prev` (0 and [`GENESIS`] for the whole trail). Returns the last
/// sequence number and hash.
pub fn verify_chain(
    entries: impl IntoIterator<Item = AuditEntry>,
    after: u64,
    prev: &str,
) -> Result<(u64, String), ChainBreak> {
    let mut last = (after, prev.to_string());
    for entry in entries {
        let expected_seq = last.0 + 1;
        if entry.seq != expected_seq {
            return Err(ChainBreak {
                seq: expected_seq,
                reason: format!(
                    "entry {expected_seq} is missing (found {} in its place)",
                    entry.seq
                ),
            });
        }
        if entry.prev != last.1 {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "it does not follow the entry before it (an entry was changed, removed or inserted)".into(),
            });
        }
        if entry.expected_hash() != entry.hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "its content does not match its hash (it was altered)".into(),
            });
        }
        last = (entry.seq, entry.hash);
    }
    Ok(last)
}
