//! `returnee-shared`: what the laptop client and the server agree on.
//!
//! - [`access`]: roles, and who may do what (the one access policy);
//! - [`audit`]: the hash-chained audit trail's entries and how to check them;
//! - [`family`]: the family record and its closed value sets;
//! - [`reference`]: crossings and provinces, from the CSV lists in `reference/`;
//! - [`validate`]: parsing typed input and the rules every record obeys;
//! - [`merge`]: operations on records and the pure, order-independent merge;
//! - [`packs`]: per-record entries stored many to a key, the layout both stores use;
//! - [`duplicates`]: which records look like the same family, and why;
//! - [`report`]: the published figures;
//! - [`wire`]: the sync protocol's messages;
//! - [`sync`]: the client side of the protocol, as a state machine over a
//!   store trait, without a transport.
//!
//! This crate does no I/O: no files, no network, no storage, no async runtime.
//! The caller passes in the clock (`today`, timestamps) and fresh ids.

pub mod access;
pub mod audit;
pub mod duplicates;
pub mod family;
pub mod merge;
pub mod packs;
pub mod reference;
pub mod report;
pub mod sync;
pub mod validate;
pub mod wire;

pub use family::{
    AGE_BANDS, DeviceId, DocType, Documentation, ExtraFields, Family, FamilyFields, Members, OpId,
    RecordId, Referral, ReturnType, Review, ReviewState, Sex, Vulnerability,
};
pub use merge::{Change, Conflict, ConflictValue, Lifecycle, Op, RecordDoc, RecordView, Slot};
pub use report::{
    Breakdown, Group, GroupBy, Report, ReportBuilder, ReportFilter, ReportRow, Totals,
};
pub use validate::{FamilyDraft, FieldName, FieldValue, Problem, ValidationError};
