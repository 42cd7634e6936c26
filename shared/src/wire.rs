//! The sync protocol's messages: the only definition of what travels between
//! a laptop and the server. `server` and `cli` convert to their own types at
//! their edges. See PROTOCOL.md for the exchanges.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::family::{DeviceId, OpId};
use crate::merge::Op;

/// The sync protocol this release speaks. Between two versions only
/// additions are allowed (PROTOCOL.md, "Versions"): the server accepts this
/// one and [`PREVIOUS_PROTOCOL_VERSION`], so laptops can be upgraded one
/// by one after it.
pub const PROTOCOL_VERSION: u32 = 2;
/// The version before [`PROTOCOL_VERSION`], still accepted by the server.
pub const PREVIOUS_PROTOCOL_VERSION: u32 = PROTOCOL_VERSION - 1;
/// Every version this server accepts, oldest first (as `/v1/health` lists them).
pub const ACCEPTED_PROTOCOLS: [u32; 2] = [PREVIOUS_PROTOCOL_VERSION, PROTOCOL_VERSION];
/// The most operations one push may carry.
pub const MAX_PUSH_OPS: usize = 10_000;
/// The most operations one pull answer carries.
pub const MAX_PULL_OPS: usize = 10_000;
/// The header that carries the protocol version on every sync request.
pub const PROTOCOL_HEADER: &str = "x-returnee-protocol";

/// What an enrolled device may do; defined with the access policy, in
/// [`crate::access`].
pub use crate::access::Role;

mod device;
pub use device::{SitesRequest, TokenAnswer};

/// The machine-readable code of a refusal: of a whole request
/// ([`ErrorBody::error`]) or of one pushed operation ([`RejectedOp::error`]).
/// On the wire, the snake_case name (`"forbidden"`, `"bad_request"`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No credential, or one this server does not know (HTTP 401).
    Unauthorized,
    /// The device was revoked by an admin: it must erase its local copy (HTTP 401).
    Revoked,
    /// The device's role or sites do not allow it ([`crate::access`]; HTTP
    /// 403, or a refused operation).
    Forbidden,
    /// The request, or an operation, is malformed (HTTP 400).
    BadRequest,
    /// An operation whose values break a validation rule (refused
    /// operations only).
    Invalid,
    /// HTTP 404.
    NotFound,
    /// HTTP 409: the device is already enrolled.
    Conflict,
    /// Client and server speak different sync protocols (HTTP 400).
    ProtocolMismatch,
    /// The body or batch is over the limit (HTTP 413).
    TooLarge,
    /// The server failed (HTTP 500).
    Internal,
    /// The path exists, but not with this HTTP method (HTTP 405).
    MethodNotAllowed,
    /// The body is not sent as JSON (HTTP 415).
    UnsupportedMediaType,
    /// The device's credential expired: it must enroll again with a new
    /// code (HTTP 401; nothing on the laptop is lost).
    TokenExpired,
    /// A code this version does not know (from a newer server), or an
    /// answer that was not an error body at all.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code, for tests and parsing.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::Unauthorized,
        ErrorCode::Revoked,
        ErrorCode::Forbidden,
        ErrorCode::BadRequest,
        ErrorCode::Invalid,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::ProtocolMismatch,
        ErrorCode::TooLarge,
        ErrorCode::Internal,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unknown,
        ErrorCode::TokenExpired,
    ];

    /// The wire form.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Revoked => "revoked",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Invalid => "invalid",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::ProtocolMismatch => "protocol_mismatch",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unknown => "unknown",
            ErrorCode::TokenExpired => "token_expired",
        }
    }

    /// The HTTP status a refusal of a whole request with this code has
    /// (`invalid` is for refused operations only: 400 if ever sent whole).
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized | ErrorCode::Revoked | ErrorCode::TokenExpired => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadRequest | ErrorCode::Invalid | ErrorCode::ProtocolMismatch => 400,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
        }
    }

    /// The code for an HTTP error status that no handler chose (a framework
    /// refusal): the one whose [`ErrorCode::status`] it is, else
    /// `bad_request` for a 4xx and `internal` for anything else.
    pub fn for_status(status: u16) -> ErrorCode {
        match status {
            400 => ErrorCode::BadRequest,
            401 => ErrorCode::Unauthorized,
            s => ErrorCode::ALL
                .into_iter()
                .find(|c| c.status() == s)
                .unwrap_or(if (400..500).contains(&s) {
                    ErrorCode::BadRequest
                } else {
                    ErrorCode::Internal
                }),
        }
    }

    /// The code of a wire form; [`ErrorCode::Unknown`] for any other text.
    pub fn parse(s: &str) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(ErrorCode::Unknown)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for ErrorCode {
    fn from(s: &str) -> ErrorCode {
        ErrorCode::parse(s)
    }
}

/// Compares with a wire form (`code == "forbidden"`).
impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Every error the server sends: `{"error": CODE, "message": TEXT}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code (`unauthorized`, `bad_request`, …).
    pub error: ErrorCode,
    /// What was wrong and how to fix it; never personal data.
    pub message: String,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The protocol this server speaks: a client on an older one is told
    /// that an update is available.
    pub protocol: u32,
    /// Every protocol the server accepts, oldest first. Absent from
    /// protocol 1 servers, which accept `protocol` only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepts: Vec<u32>,
}

impl Health {
    /// This server's answer: [`PROTOCOL_VERSION`], and [`ACCEPTED_PROTOCOLS`].
    pub fn current() -> Health {
        Health {
            status: "ok".into(),
            protocol: PROTOCOL_VERSION,
            accepts: ACCEPTED_PROTOCOLS.to_vec(),
        }
    }

    /// Whether a client on `version` may sync with this server, and whether
    /// it should be updated.
    pub fn compatibility(&self, version: u32) -> Compatibility {
        let accepted = if self.accepts.is_empty() {
            version == self.protocol
        } else {
            self.accepts.contains(&version)
        };
        match (accepted, version.cmp(&self.protocol)) {
            (true, std::cmp::Ordering::Less) => Compatibility::UpdateAvailable {
                server: self.protocol,
            },
            (true, _) => Compatibility::Current,
            (false, std::cmp::Ordering::Less) => Compatibility::UpdateRequired {
                server: self.protocol,
            },
            (false, _) => Compatibility::ServerTooOld {
                server: self.protocol,
            },
        }
    }
}

/// What a client on one protocol version makes of a server's [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    /// Same version, or a client newer than a server that still accepts it.
    Current,
    /// The server speaks a newer protocol but still accepts this one:
    /// syncing works, and the laptop should be updated.
    UpdateAvailable { server: u32 },
    /// The server no longer accepts this client's protocol.
    UpdateRequired { server: u32 },
    /// The client is newer than anything the server accepts.
    ServerTooOld { server: u32 },
}

impl Compatibility {
    /// A line for the person at the laptop, when there is something to say.
    pub fn notice(self) -> Option<String> {
        match self {
            Compatibility::Current => None,
            Compatibility::UpdateAvailable { server } => Some(format!(
                "an update of returnee is available: the server speaks sync protocol {server}, this laptop {PROTOCOL_VERSION}; syncing still works, install the new version when you can"
            )),
            Compatibility::UpdateRequired { server } => Some(format!(
                "this laptop must be updated: the server speaks sync protocol {server} and no longer accepts {PROTOCOL_VERSION}; install the new version of returnee, nothing stored here is lost"
            )),
            Compatibility::ServerTooOld { server } => Some(format!(
                "the server is older than this laptop (sync protocol {server}, this laptop {PROTOCOL_VERSION}); ask the admin to update the server"
            )),
        }
    }
}

/// `POST /v1/enroll`: a one-time code for a device credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollRequest {
    pub protocol: u32,
    /// The id the device made for itself at `init`; its operations carry it.
    pub device_id: DeviceId,
    pub code: String,
    pub device_name: String,
}

/// The credential is shown once; the server keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnrollResponse {
    pub device_id: DeviceId,
    /// Sent as `Authorization: Bearer TOKEN` on every later request.
    pub token: String,
    pub role: Role,
    /// Crossing codes the device works at; empty means every site.
    pub sites: Vec<String>,
}

/// `POST /v1/admin/codes` (admin only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    pub role: Role,
    #[serde(default)]
    pub sites: Vec<String>,
    pub uses: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeResponse {
    pub code: String,
    pub role: Role,
    pub sites: Vec<String>,
    pub uses: u32,
}

/// `POST /v1/sync/push`: operations in the order the device made them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushRequest<'a> {
    pub ops: Cow<'a, [Op]>,
}

/// [`PushRequest`] as the server receives it: each operation's JSON kept
/// apart, to be decoded one by one (several at once, on several cores).
#[derive(Debug, Deserialize)]
pub struct RawPushRequest {
    pub ops: Vec<Box<serde_json::value::RawValue>>,
}

/// The start of a push request or pull answer whose operations are
/// already JSON (a push queue, the server's log): `{"ops":[…]`, for the
/// caller to complete with the remaining fields and the closing brace.
/// Nothing is decoded or re-encoded.
pub fn ops_body_start<O: AsRef<[u8]>>(ops: &[O]) -> Vec<u8> {
    let mut body = Vec::with_capacity(ops.iter().map(|o| o.as_ref().len() + 1).sum::<usize>() + 64);
    body.extend_from_slice(b"{\"ops\":[");
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(op.as_ref());
    }
    body.push(b']');
    body
}

/// An operation the server would not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RejectedOp {
    pub op: OpId,
    /// `forbidden`, `bad_request` or `invalid`.
    pub error: ErrorCode,
    pub message: String,
}

/// The acknowledgement of a whole batch: once received, every operation in
/// the batch is durable on the server (applied, already there, or rejected).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushResponse {
    /// Newly applied.
    pub applied: u64,
    /// Already held (a re-send): nothing changed.
    pub already_held: u64,
    pub rejected: Vec<RejectedOp>,
    /// How many operations the device's next batch should carry, so that
    /// it comes back quickly however many devices push at once. Advice: a
    /// device never exceeds its own `--batch-size`, and sends its first
    /// batch of a sync at [`FIRST_PUSH_BATCH`] or less. Absent from older
    /// servers: keep the batch size as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_batch: Option<u32>,
    /// The log positions this batch's operations took, when the batch
    /// logged nothing but them. A pull leaves out a device's own
    /// operations, so a device whose cursor stands just before `first` may
    /// move it to `last`: a laptop that pushed a large backlog then does not
    /// read it all back on its next pull. Absent from older servers, when
    /// nothing was logged, and when the batch moved a family between sites
    /// (the entries that tell devices so are for the pushing device too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged: Option<LoggedSpan>,
}

/// Positions `first..=last` of the server's log, all taken by one push
/// batch's own operations ([`PushResponse::logged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoggedSpan {
    pub first: SyncCursor,
    pub last: SyncCursor,
}

impl LoggedSpan {
    /// Where a cursor that stood at `cursor` may move once this span is
    /// acknowledged: to its end if the cursor stood just before it (nothing
    /// of anyone else's lies between), otherwise where it was.
    pub fn advance(&self, cursor: SyncCursor) -> SyncCursor {
        if self.first.0 > 0 && cursor.0 == self.first.0 - 1 && self.last >= self.first {
            self.last
        } else {
            cursor
        }
    }
}

/// The size of the first batch of a push, before the server has advised
/// one: small, so that on a crowded server or a weak link the first
/// acknowledgement comes back soon.
pub const FIRST_PUSH_BATCH: usize = 100;

/// A position in the server's log of operations. Opaque to clients.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct SyncCursor(pub u64);

/// `GET /v1/sync/pull?after=CURSOR&limit=N`: the operations after a cursor,
/// leaving out the asking device's own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PullResponse {
    pub ops: Vec<Op>,
    /// Records that moved out of this device's sites: it should no longer
    /// hold them (unless it has changes to them not yet accepted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forget: Vec<crate::family::RecordId>,
    /// Where the next pull starts; store it once `ops` are applied.
    pub cursor: SyncCursor,
    /// Whether more operations wait after `cursor`.
    pub more: bool,
    /// How many log entries follow `cursor` on the server: what is left to
    /// pull, at most (entries of other sites count too), for a progress
    /// bar. Absent from servers before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
}

/// A [`PullResponse`] whose operations are already JSON (the server's log
/// keeps each operation's JSON once): what the server's store hands out and
/// the pull handler sends, written by [`PullPage::to_json`] with the
/// operations copied as they are, never decoded or re-encoded (a
/// `serde_json::value::RawValue` for each would parse it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPage<O> {
    /// Each operation's JSON.
    pub ops: Vec<O>,
    /// As [`PullResponse::forget`].
    pub forget: Vec<crate::family::RecordId>,
    pub cursor: SyncCursor,
    pub more: bool,
    /// As [`PullResponse::remaining`].
    pub remaining: u64,
}

impl<O: AsRef<[u8]>> PullPage<O> {
    /// The page as the JSON of a [`PullResponse`].
    pub fn to_json(&self) -> Vec<u8> {
        let mut body = ops_body_start(&self.ops);
        if !self.forget.is_empty() {
            body.extend_from_slice(b",\"forget\":");
            serde_json::to_writer(&mut body, &self.forget).expect("ids serialize");
        }
        body.extend_from_slice(b",\"cursor\":");
        serde_json::to_writer(&mut body, &self.cursor).expect("a number serializes");
        body.extend_from_slice(b",\"remaining\":");
        serde_json::to_writer(&mut body, &self.remaining).expect("a number serializes");
        body.extend_from_slice(if self.more {
            b",\"more\":true}"
        } else {
            b",\"more\":false}"
        });
        body
    }
}

/// The query of the paged endpoints, as the server reads it: `GET
/// /v1/sync/pull` and `GET /v1/admin/audit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The cursor (pull) or sequence number (audit) to start after; 0 for the start.
    #[serde(default)]
    #[param(minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: u64,
    /// The most items to answer with; clamped to 1..=the endpoint's maximum.
    #[param(minimum = 0)]
    pub limit: Option<usize>,
}

impl PageParams {
    /// The position to start after; a number past any position a log can
    /// reach (over `i64::MAX`, as the description says) is refused.
    pub fn after(&self) -> Result<u64, String> {
        if self.after > i64::MAX as u64 {
            Err(format!(
                "after must be from 0 to {}; pass a cursor this server gave",
                i64::MAX
            ))
        } else {
            Ok(self.after)
        }
    }

    /// The page size asked for, within `1..=max` (`max` when not given).
    pub fn limit(&self, max: usize) -> usize {
        self.limit.unwrap_or(max).clamp(1, max)
    }
}

/// The query of `GET /v1/reports`: each value as typed, checked by the
/// server with the same rules as a form (a wrong one is a 400 naming it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// A crossing, as `returnee report --crossing` takes it.
    pub crossing: Option<String>,
    /// The first crossing date counted, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// The last crossing date counted, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// `spontaneous`, `deported` or `assisted`.
    pub return_type: Option<String>,
    /// Only families in this review state: `approved`, `has-issues`,
    /// `sent-back` or `resubmitted`.
    pub review: Option<String>,
    /// Breakdowns, comma-separated: `date`, `week`, `month`, `crossing`,
    /// `return-type`, `departure`, `destination`.
    pub by: Option<String>,
    /// `json` (the default), `csv`, `xlsx`, `hxl` or `hxl-long`.
    pub format: Option<String>,
    /// A byte-order mark before a CSV, for Excel.
    #[serde(default)]
    pub excel: bool,
    /// Counts below `small_cells` shown as `<N`, for sharing.
    #[serde(default)]
    pub share: bool,
    /// The smallest count shown with `share` (5 when not given; at least 2).
    #[param(minimum = 0)]
    pub small_cells: Option<u64>,
    /// The sitrep sentence, as text.
    #[serde(default)]
    pub summary: bool,
}

/// The JSON body of `GET /v1/reports`: the report, or with `share=true`
/// its rows flattened, each count below the threshold shown as `<N`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ReportJson {
    Report(crate::Report),
    Shared(Vec<std::collections::BTreeMap<String, serde_json::Value>>),
}

/// The query of `GET /v1/export`: the families of the device's sites.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// A crossing, as `returnee report --crossing` takes it.
    pub crossing: Option<String>,
    /// The first crossing date exported, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// The last crossing date exported, `YYYY-MM-DD`.
    pub to: Option<String>,
    /// `spontaneous`, `deported` or `assisted`.
    pub return_type: Option<String>,
    /// `csv` (the default), `jsonl` or `xlsx`.
    pub format: Option<String>,
    /// Document numbers in full (admins only).
    #[serde(default)]
    pub full: bool,
    /// No name, document number or note; ids as keyed hashes.
    #[serde(default)]
    pub share: bool,
}

/// An export a laptop made from its own store (`returnee export`), kept
/// there until a sync tells the server, whose audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportNote {
    /// Made on the laptop: the server records a note once, however often
    /// it is sent.
    pub id: uuid::Uuid,
    /// When, by the laptop's clock.
    pub at: chrono::DateTime<chrono::Utc>,
    /// `csv`, `jsonl` or `xlsx`.
    pub format: String,
    /// The filter, as `ReportFilter::describe` says it.
    pub filter: String,
    pub rows: u64,
    /// Whether names, document numbers and notes were in it (not `--share`).
    pub personal: bool,
}

/// The most notes one [`ExportNotes`] may carry.
pub const MAX_EXPORT_NOTES: usize = 500;

/// `POST /v1/audit/exports`: a laptop's exports since its last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportNotes {
    pub notes: Vec<ExportNote>,
}

/// The answer to [`ExportNotes`]: how many notes were new to the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportNotesRecorded {
    pub recorded: u64,
}

/// The query of `GET /v1/sync/pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullQuery {
    pub after: SyncCursor,
    pub limit: usize,
}

/// `GET /v1/admin/devices` (admin only): one enrolled device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceSummary {
    pub id: DeviceId,
    pub name: String,
    pub role: Role,
    /// Crossing codes; empty means every site.
    pub sites: Vec<String>,
    pub enrolled_at: chrono::DateTime<chrono::Utc>,
    /// Set once an admin revoked it: the server then refuses it, and tells
    /// it to erase its local copy.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `GET /v1/devices/names` (every enrolled device): what people call each
/// device, so that conflicts and lists show `torkham-desk-1`, not an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceName {
    pub id: DeviceId,
    pub name: String,
}

/// `GET /v1/admin/audit?after=SEQ&limit=N` (admin only): entries of the
/// hash-chained audit trail after `after`, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<crate::audit::AuditEntry>,
    /// Whether more entries follow the last one.
    pub more: bool,
    /// The newest entry's sequence number (0 for an empty trail).
    #[serde(default)]
    pub newest: u64,
}

/// The query of `GET /v1/admin/audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub after: u64,
    pub limit: usize,
}

/// The most audit entries one page carries.
pub const MAX_AUDIT_PAGE: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_keep_their_wire_form_and_unknown_ones_still_read() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"too_large","message":"m"}"#).unwrap();
        assert_eq!(body.error, ErrorCode::TooLarge);
        assert!(body.error == "too_large");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"too_large","message":"m"}"#
        );
        let newer: ErrorBody =
            serde_json::from_str(r#"{"error":"rate_limited","message":"later"}"#).unwrap();
        assert_eq!(newer.error, ErrorCode::Unknown);
        assert_eq!(ErrorCode::from("rate_limited"), ErrorCode::Unknown);
        let refused: RejectedOp = serde_json::from_str(
            r#"{"op":"00000000-0000-0000-0000-000000000001","error":"invalid","message":"m"}"#,
        )
        .unwrap();
        assert_eq!(refused.error, ErrorCode::Invalid);
    }

    #[test]
    fn a_laptop_behind_the_server_is_told_of_an_update_and_keeps_syncing() {
        let this = Health::current();
        assert_eq!(this.accepts, vec![PROTOCOL_VERSION - 1, PROTOCOL_VERSION]);
        assert_eq!(this.compatibility(PROTOCOL_VERSION), Compatibility::Current);
        assert_eq!(
            this.compatibility(PREVIOUS_PROTOCOL_VERSION),
            Compatibility::UpdateAvailable {
                server: PROTOCOL_VERSION
            }
        );
        assert_eq!(Compatibility::Current.notice(), None);
        // The next release's server, seen from this one.
        let next = Health {
            status: "ok".into(),
            protocol: PROTOCOL_VERSION + 1,
            accepts: vec![PROTOCOL_VERSION, PROTOCOL_VERSION + 1],
        };
        let c = next.compatibility(PROTOCOL_VERSION);
        assert_eq!(
            c,
            Compatibility::UpdateAvailable {
                server: PROTOCOL_VERSION + 1
            }
        );
        let notice = c.notice().unwrap();
        assert!(
            notice.contains("update") && notice.contains("still works"),
            "{notice}"
        );
        // Two releases on: refused, and told so.
        let later = Health {
            status: "ok".into(),
            protocol: PROTOCOL_VERSION + 2,
            accepts: vec![PROTOCOL_VERSION + 1, PROTOCOL_VERSION + 2],
        };
        assert!(matches!(
            later.compatibility(PROTOCOL_VERSION),
            Compatibility::UpdateRequired { .. }
        ));
        // A protocol 1 server's answer (no `accepts`): it speaks only its own.
        let old: Health = serde_json::from_str(r#"{"status":"ok","protocol":1}"#).unwrap();
        assert!(old.accepts.is_empty());
        assert_eq!(old.compatibility(1), Compatibility::Current);
        assert_eq!(
            old.compatibility(PROTOCOL_VERSION),
            Compatibility::ServerTooOld { server: 1 }
        );
    }

    #[test]
    fn a_logged_span_moves_only_a_cursor_that_stands_just_before_it() {
        let span = LoggedSpan {
            first: SyncCursor(31),
            last: SyncCursor(40),
        };
        assert_eq!(span.advance(SyncCursor(30)), SyncCursor(40));
        // Positions 29 and 30 (someone else's, perhaps) are not read yet.
        assert_eq!(span.advance(SyncCursor(28)), SyncCursor(28));
        // Already past it (a pull got there first): stays.
        assert_eq!(span.advance(SyncCursor(45)), SyncCursor(45));
        let from_start = LoggedSpan {
            first: SyncCursor(1),
            last: SyncCursor(5),
        };
        assert_eq!(from_start.advance(SyncCursor(0)), SyncCursor(5));
        // Not a span a server sends: never moves anything.
        let odd = LoggedSpan {
            first: SyncCursor(0),
            last: SyncCursor(9),
        };
        assert_eq!(odd.advance(SyncCursor(0)), SyncCursor(0));
        let backwards = LoggedSpan {
            first: SyncCursor(8),
            last: SyncCursor(3),
        };
        assert_eq!(backwards.advance(SyncCursor(7)), SyncCursor(7));
    }

    #[test]
    fn a_pull_page_of_encoded_operations_reads_as_a_pull_response() {
        use crate::family::RecordId;
        let op = Op {
            id: OpId(uuid::Uuid::from_u128(1)),
            record: RecordId(uuid::Uuid::from_u128(2)),
            device: DeviceId(uuid::Uuid::from_u128(3)),
            at: chrono::DateTime::UNIX_EPOCH,
            base: vec![OpId(uuid::Uuid::from_u128(4))],
            resolution: false,
            change: crate::merge::Change::Delete,
        };
        let json = serde_json::to_vec(&op).unwrap();
        let forget = vec![RecordId(uuid::Uuid::from_u128(7))];
        let page = PullPage {
            ops: vec![json.clone(), json],
            forget: forget.clone(),
            cursor: SyncCursor(42),
            more: true,
            remaining: 9,
        };
        let read: PullResponse = serde_json::from_slice(&page.to_json()).unwrap();
        assert_eq!(
            read,
            PullResponse {
                ops: vec![op.clone(), op],
                forget,
                cursor: SyncCursor(42),
                more: true,
                remaining: Some(9),
            }
        );
        let empty = PullPage::<Vec<u8>> {
            ops: vec![],
            forget: vec![],
            cursor: SyncCursor(0),
            more: false,
            remaining: 0,
        };
        assert_eq!(
            empty.to_json(),
            br#"{"ops":[],"cursor":0,"remaining":0,"more":false}"#.to_vec()
        );
    }

    #[test]
    fn a_body_assembled_from_encoded_operations_reads_as_the_wire_types() {
        let ops: Vec<Vec<u8>> = vec![br#"{"a":1}"#.to_vec(), br#"[2, "x"]"#.to_vec()];
        let mut push = ops_body_start(&ops);
        push.push(b'}');
        let value: serde_json::Value = serde_json::from_slice(&push).unwrap();
        assert_eq!(value, serde_json::json!({"ops": [{"a": 1}, [2, "x"]]}));

        let mut pull = ops_body_start::<Vec<u8>>(&[]);
        pull.extend_from_slice(b",\"cursor\":7,\"more\":false}");
        let page: PullResponse = serde_json::from_slice(&pull).unwrap();
        assert!(page.ops.is_empty() && !page.more && page.cursor == SyncCursor(7));
    }
}
