//! Who may do what: the one access policy, for the server (which decides on
//! every request) and the laptop (which refuses early, with the same words).
//!
//! A [`Principal`] is an enrolled device as far as access goes: its id, its
//! [`Role`] and the sites (crossing codes) it works at. An [`Action`] names
//! one thing that is authorized. [`authorize`] says yes, or no with a
//! [`Denial`] whose message is shown to the user as it is. A laptop that is
//! not enrolled asks [`authorize_unenrolled`].
//!
//! The server's pull and report scans ask [`Principal::sees_any`] and
//! [`Principal::works_at`] directly, once per log entry or row: they are what
//! [`Action::SeeSite`] decides, without building a refusal's message.
//!
//! Pure code: this module imports nothing of the crate but the device id.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::family::{DeviceId, ReviewState};

/// What an enrolled device may do (its wire form is the snake_case name).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Records and edits families at its own site.
    Field,
    /// Also resolves conflicts and duplicates and reads reports, for its sites.
    Supervisor,
    /// Everything, plus devices and enrollment codes.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Field => "field",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "field" => Some(Role::Field),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An enrolled device, as access sees it. Borrows its sites, so that the
/// server builds one per request or per operation without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    pub device: DeviceId,
    pub role: Role,
    /// Crossing codes it works at; empty means every site. An admin works
    /// at every site whatever this holds.
    pub sites: &'a [String],
}

impl Principal<'_> {
    /// Whether it works at every site: admins, and devices given no site.
    pub fn every_site(&self) -> bool {
        self.role == Role::Admin || self.sites.is_empty()
    }

    /// Whether it works at `site` (a crossing code).
    pub fn works_at(&self, site: &str) -> bool {
        self.sees_any([site])
    }

    /// Whether a family recorded at `sites` (crossing codes, as bytes: the
    /// server matches its log's site tags without decoding them) is its to
    /// see: it works at every site, or at one of them.
    pub fn sees_any<S: AsRef<[u8]>>(&self, sites: impl IntoIterator<Item = S>) -> bool {
        self.every_site()
            || sites.into_iter().any(|site| {
                self.sites
                    .iter()
                    .any(|mine| mine.as_bytes() == site.as_ref())
            })
    }
}

/// A decision on a pair of possible duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// One family merged into the other (and the values carried with it).
    Merge,
    /// Not the same family: never suggested again.
    Dismiss,
    /// A merge undone.
    Unmerge,
}

impl Decision {
    fn what(self) -> &'static str {
        match self {
            Decision::Merge => "merge duplicates",
            Decision::Dismiss => "dismiss duplicates",
            Decision::Unmerge => "unmerge duplicates",
        }
    }
}

/// Everything that is authorized, on the server or on a laptop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// `POST /v1/admin/codes`.
    MintCodes,
    /// `GET /v1/admin/devices`.
    ListDevices,
    /// `POST /v1/admin/devices/{id}/revoke`.
    RevokeDevice,
    /// `GET /v1/admin/audit`.
    ReadAudit,
    /// `GET /v1/conflicts` (filtered to the device's sites).
    ListConflicts,
    /// `GET /v1/duplicates` (filtered to the device's sites).
    ListDuplicates,
    /// `GET /v1/reports` (counting the device's sites only).
    ReadReports,
    /// `GET /v1/export`: the families of the device's sites; document
    /// numbers in full only for an admin (`full_documents`).
    ExportFamilies { full_documents: bool },
    /// An operation that decides a conflict (`Op::resolution`; an unmerge
    /// is one too), and `returnee conflicts resolve`.
    ResolveConflict,
    /// A decision on duplicates: the operations that carry it, and
    /// `returnee duplicates merge|dismiss|unmerge`.
    DecideDuplicates(Decision),
    /// Pushing an operation made by `device`.
    SendOpsOf(DeviceId),
    /// Recording or changing a family: where it is recorded now (empty for
    /// a new family, or one whose creation has not arrived), and the
    /// crossing the change gives it, if it sets one.
    WriteFamilyAt {
        recorded_at: &'a BTreeSet<String>,
        crossing: Option<&'a str>,
    },
    /// Seeing the families of a site (pull, conflict and duplicate lists,
    /// reports).
    SeeSite(&'a str),
    /// `POST /v1/audit/exports`: telling the audit trail of exports this
    /// device made from its own store (every enrolled device).
    NoteOwnExports,
    /// `GET /v1/devices/names`: the names of devices, to show people names
    /// where operations carry ids (every enrolled device).
    ReadDeviceNames,
    /// Setting a family's review state (`returnee review`, and the edits
    /// that carry it): `approved`, `has-issues` and `sent-back` are a
    /// supervisor's or an admin's; `resubmitted` is for the worker who can
    /// see the family (the site check is `WriteFamilyAt`'s).
    SetReview(ReviewState),
    /// Erasing a family's personal data on every replica (`returnee
    /// erase`, and the operation that carries it): a supervisor's or an
    /// admin's (the site check is `WriteFamilyAt`'s).
    EraseFamily,
}

/// A refusal, with what to tell the user (never personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    pub message: String,
}

fn deny(message: String) -> Result<(), Denial> {
    Err(Denial { message })
}

/// Whether `principal` may do `action`; the refusal, with its message, if not.
///
/// The table: admins do everything; supervisors and admins list conflicts
/// and duplicates, read reports, resolve conflicts and decide duplicates;
/// only admins mint codes, list and revoke devices and read the audit trail;
/// every device sends its own operations only, and records, changes and
/// sees families of its own sites only (unless it works at every site).
pub fn authorize(principal: &Principal, action: &Action) -> Result<(), Denial> {
    const ADMIN: &[Role] = &[Role::Admin];
    const SUPERVISOR: &[Role] = &[Role::Supervisor, Role::Admin];
    let role = principal.role;
    let needs = |roles: &[Role], what: &str| {
        if roles.contains(&role) {
            Ok(())
        } else {
            deny(format!("a {role} device may not {what}; ask an admin"))
        }
    };
    let decides = |what: &str| {
        if SUPERVISOR.contains(&role) {
            Ok(())
        } else {
            deny(decider_only(what, &format!("enrolled as {role}")))
        }
    };
    let mine = || principal.sites.join(", ");
    match *action {
        Action::MintCodes => needs(ADMIN, "mint enrollment codes"),
        Action::ListDevices => needs(ADMIN, "list devices"),
        Action::RevokeDevice => needs(ADMIN, "revoke devices"),
        Action::ReadAudit => needs(ADMIN, "read the audit trail"),
        Action::ListConflicts => needs(SUPERVISOR, "list conflicts"),
        Action::ListDuplicates => needs(SUPERVISOR, "list duplicates"),
        Action::ReadReports => needs(SUPERVISOR, "read reports"),
        Action::ExportFamilies {
            full_documents: false,
        } => needs(SUPERVISOR, "export families"),
        Action::ExportFamilies {
            full_documents: true,
        } => needs(
            ADMIN,
            "export full document numbers (leave out full=true to have them masked)",
        ),
        Action::ResolveConflict => decides("resolve conflicts"),
        Action::DecideDuplicates(decision) => decides(decision.what()),
        Action::SendOpsOf(device) if device != principal.device => deny(
            "the operation names another device; a device may only send its own changes".into(),
        ),
        Action::SendOpsOf(_) => Ok(()),
        Action::WriteFamilyAt {
            recorded_at,
            crossing,
        } => {
            if !recorded_at.is_empty() && !principal.sees_any(recorded_at) {
                return deny(format!(
                    "this family is recorded at {}; this device works at {} only",
                    recorded_at.iter().cloned().collect::<Vec<_>>().join(", "),
                    mine()
                ));
            }
            match crossing {
                Some(c) if !principal.works_at(c) => deny(format!(
                    "this device is enrolled for {} only; a family at {c} is recorded by a device of that site (or moved there by a supervisor of both sites)",
                    mine()
                )),
                _ => Ok(()),
            }
        }
        Action::SeeSite(site) if !principal.works_at(site) => deny(format!(
            "the families of {site} are not this device's to see; it works at {} only",
            mine()
        )),
        Action::SeeSite(_) => Ok(()),
        Action::NoteOwnExports | Action::ReadDeviceNames => Ok(()),
        Action::SetReview(ReviewState::Resubmitted) => Ok(()),
        Action::SetReview(state) => decides(&format!("mark a family {state}")),
        Action::EraseFamily => decides("erase a family's personal data"),
    }
}

/// What a laptop not enrolled with any server may do: it has no site yet,
/// so it records and sees families anywhere (on its own copy), but it has
/// no role either, so it decides nothing that is a supervisor's, and it
/// asks the server nothing that needs an enrollment.
pub fn authorize_unenrolled(action: &Action) -> Result<(), Denial> {
    match *action {
        Action::MintCodes
        | Action::ListDevices
        | Action::RevokeDevice
        | Action::ReadAudit
        | Action::ListConflicts
        | Action::ListDuplicates
        | Action::ReadReports
        | Action::ExportFamilies { .. }
        | Action::NoteOwnExports
        | Action::ReadDeviceNames => deny(
            "this device is not enrolled with a server; run `returnee enroll --server URL --code CODE` first".into(),
        ),
        Action::ResolveConflict => deny(decider_only("resolve conflicts", "not enrolled")),
        Action::DecideDuplicates(decision) => deny(decider_only(decision.what(), "not enrolled")),
        Action::SendOpsOf(_) | Action::WriteFamilyAt { .. } | Action::SeeSite(_) => Ok(()),
        Action::SetReview(ReviewState::Resubmitted) => Ok(()),
        Action::SetReview(state) => deny(decider_only(
            &format!("mark a family {state}"),
            "not enrolled",
        )),
        Action::EraseFamily => deny(decider_only(
            "erase a family's personal data",
            "not enrolled",
        )),
    }
}

/// The refusal of a supervisor's decision to a device that is `who`.
fn decider_only(what: &str, who: &str) -> String {
    format!(
        "only a supervisor or admin device may {what}; this device is {who}. Ask your supervisor to decide it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The name of each variant: adding one fails to compile here, and then
    /// the table below until it has the new action's rows.
    fn variant(action: &Action) -> &'static str {
        match action {
            Action::MintCodes => "MintCodes",
            Action::ListDevices => "ListDevices",
            Action::RevokeDevice => "RevokeDevice",
            Action::ReadAudit => "ReadAudit",
            Action::ListConflicts => "ListConflicts",
            Action::ListDuplicates => "ListDuplicates",
            Action::ReadReports => "ReadReports",
            Action::ExportFamilies { .. } => "ExportFamilies",
            Action::ResolveConflict => "ResolveConflict",
            Action::DecideDuplicates(_) => "DecideDuplicates",
            Action::SendOpsOf(_) => "SendOpsOf",
            Action::WriteFamilyAt { .. } => "WriteFamilyAt",
            Action::SeeSite(_) => "SeeSite",
            Action::NoteOwnExports => "NoteOwnExports",
            Action::ReadDeviceNames => "ReadDeviceNames",
            Action::SetReview(_) => "SetReview",
            Action::EraseFamily => "EraseFamily",
        }
    }

    const VARIANTS: [&str; 17] = [
        "MintCodes",
        "ListDevices",
        "RevokeDevice",
        "ReadAudit",
        "ListConflicts",
        "ListDuplicates",
        "ReadReports",
        "ExportFamilies",
        "ResolveConflict",
        "DecideDuplicates",
        "SendOpsOf",
        "WriteFamilyAt",
        "SeeSite",
        "NoteOwnExports",
        "ReadDeviceNames",
        "SetReview",
        "EraseFamily",
    ];

    #[test]
    fn every_role_is_allowed_exactly_what_the_table_says() {
        let me = DeviceId(uuid::Uuid::from_u128(1));
        let other = DeviceId(uuid::Uuid::from_u128(2));
        let torkham = ["torkham".to_string()];
        let both = ["torkham".to_string(), "chaman".to_string()];
        let (none, at_torkham, at_chaman, at_both) = (
            sites(&[]),
            sites(&["torkham"]),
            sites(&["chaman"]),
            sites(&["torkham", "chaman"]),
        );
        let write = |recorded_at, crossing| Action::WriteFamilyAt {
            recorded_at,
            crossing,
        };
        // The principals: each role at torkham, a supervisor of two sites,
        // one of every site, and an admin (given a site, which it ignores).
        let principals = [
            ("field@torkham", Role::Field, &torkham[..]),
            ("supervisor@torkham", Role::Supervisor, &torkham[..]),
            ("supervisor@both", Role::Supervisor, &both[..]),
            ("supervisor@every", Role::Supervisor, &[][..]),
            ("admin", Role::Admin, &[][..]),
            ("admin@torkham", Role::Admin, &torkham[..]),
        ];
        // Each action, and whether each principal above (in that order) and
        // a laptop not enrolled may do it.
        let table: Vec<(Action, [bool; 6], bool)> = vec![
            (
                Action::MintCodes,
                [false, false, false, false, true, true],
                false,
            ),
            (
                Action::ListDevices,
                [false, false, false, false, true, true],
                false,
            ),
            (
                Action::RevokeDevice,
                [false, false, false, false, true, true],
                false,
            ),
            (
                Action::ReadAudit,
                [false, false, false, false, true, true],
                false,
            ),
            (
                Action::ListConflicts,
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::ListDuplicates,
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::ReadReports,
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::ExportFamilies {
                    full_documents: false,
                },
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::ExportFamilies {
                    full_documents: true,
                },
                [false, false, false, false, true, true],
                false,
            ),
            (
                Action::ResolveConflict,
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::EraseFamily,
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::DecideDuplicates(Decision::Merge),
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::DecideDuplicates(Decision::Dismiss),
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::DecideDuplicates(Decision::Unmerge),
                [false, true, true, true, true, true],
                false,
            ),
            (Action::SendOpsOf(me), [true; 6], true),
            (Action::SendOpsOf(other), [false; 6], true),
            // A new family at torkham, at chaman.
            (write(&none, Some("torkham")), [true; 6], true),
            (
                write(&none, Some("chaman")),
                [false, false, true, true, true, true],
                true,
            ),
            // An edit that leaves the crossing alone, of a family at
            // torkham, at chaman, at both (in conflict), or whose creation
            // has not arrived.
            (write(&at_torkham, None), [true; 6], true),
            (
                write(&at_chaman, None),
                [false, false, true, true, true, true],
                true,
            ),
            (write(&at_both, None), [true; 6], true),
            (write(&none, None), [true; 6], true),
            // Moving a family from torkham to chaman, and back.
            (
                write(&at_torkham, Some("chaman")),
                [false, false, true, true, true, true],
                true,
            ),
            (
                write(&at_chaman, Some("torkham")),
                [false, false, true, true, true, true],
                true,
            ),
            (Action::NoteOwnExports, [true; 6], false),
            (Action::ReadDeviceNames, [true; 6], false),
            (
                Action::SetReview(ReviewState::SentBack),
                [false, true, true, true, true, true],
                false,
            ),
            (
                Action::SetReview(ReviewState::Approved),
                [false, true, true, true, true, true],
                false,
            ),
            (Action::SetReview(ReviewState::Resubmitted), [true; 6], true),
            (Action::SeeSite("torkham"), [true; 6], true),
            (
                Action::SeeSite("chaman"),
                [false, false, true, true, true, true],
                true,
            ),
        ];
        let covered: BTreeSet<&str> = table.iter().map(|(a, _, _)| variant(a)).collect();
        assert_eq!(
            covered,
            VARIANTS.into_iter().collect(),
            "every action is in the table"
        );
        for (action, allowed, unenrolled) in &table {
            for ((name, role, sites), allowed) in principals.iter().zip(allowed) {
                let principal = Principal {
                    device: me,
                    role: *role,
                    sites,
                };
                let got = authorize(&principal, action);
                assert_eq!(got.is_ok(), *allowed, "{name} {action:?}: {got:?}");
                if let Err(denial) = got {
                    assert!(!denial.message.is_empty());
                }
            }
            let got = authorize_unenrolled(action);
            assert_eq!(
                got.is_ok(),
                *unenrolled,
                "not enrolled, {action:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_denial_says_why_in_the_words_users_see() {
        let me = DeviceId(uuid::Uuid::from_u128(1));
        let torkham = vec!["torkham".to_string()];
        let field = Principal {
            device: me,
            role: Role::Field,
            sites: &torkham,
        };
        let said = |p: &Principal, a: Action| authorize(p, &a).unwrap_err().message;
        assert_eq!(
            said(&field, Action::ListConflicts),
            "a field device may not list conflicts; ask an admin"
        );
        let supervisor = Principal {
            role: Role::Supervisor,
            ..field
        };
        assert_eq!(
            said(&supervisor, Action::ReadAudit),
            "a supervisor device may not read the audit trail; ask an admin"
        );
        assert_eq!(
            said(&field, Action::ResolveConflict),
            "only a supervisor or admin device may resolve conflicts; this device is enrolled as field. Ask your supervisor to decide it"
        );
        assert!(
            said(&field, Action::DecideDuplicates(Decision::Merge))
                .starts_with("only a supervisor or admin device may merge duplicates;")
        );
        assert!(
            authorize_unenrolled(&Action::DecideDuplicates(Decision::Dismiss))
                .unwrap_err()
                .message
                .starts_with(
                    "only a supervisor or admin device may dismiss duplicates; this device is not enrolled."
                )
        );
        assert_eq!(
            said(
                &field,
                Action::SendOpsOf(DeviceId(uuid::Uuid::from_u128(2)))
            ),
            "the operation names another device; a device may only send its own changes"
        );
        let chaman = sites(&["chaman", "spin-boldak"]);
        assert_eq!(
            said(
                &field,
                Action::WriteFamilyAt {
                    recorded_at: &chaman,
                    crossing: None
                }
            ),
            "this family is recorded at chaman, spin-boldak; this device works at torkham only"
        );
        assert!(
            said(
                &field,
                Action::WriteFamilyAt {
                    recorded_at: &sites(&[]),
                    crossing: Some("chaman")
                }
            )
            .starts_with(
                "this device is enrolled for torkham only; a family at chaman is recorded by a device of that site"
            )
        );
        // Where it is recorded is checked before where it goes.
        assert!(
            said(
                &field,
                Action::WriteFamilyAt {
                    recorded_at: &chaman,
                    crossing: Some("chaman")
                }
            )
            .starts_with("this family is recorded at chaman")
        );
    }

    #[test]
    fn site_tags_match_whole_codes_only() {
        let torkham = vec!["torkham".to_string()];
        let field = Principal {
            device: DeviceId(uuid::Uuid::from_u128(1)),
            role: Role::Field,
            sites: &torkham,
        };
        let tag = |t: &'static [u8]| t.split(|b| *b == b',');
        assert!(field.sees_any(tag(b"chaman,torkham")));
        assert!(!field.sees_any(tag(b"torkham-east")));
        assert!(!field.sees_any(tag(b"tork")));
        assert!(!field.sees_any(tag(b"")));
        let admin = Principal {
            role: Role::Admin,
            ..field
        };
        assert!(admin.sees_any(tag(b"")) && admin.sees_any(tag(b"chaman")));
    }

    #[test]
    fn a_role_keeps_its_wire_form() {
        for (role, text) in [
            (Role::Field, "\"field\""),
            (Role::Supervisor, "\"supervisor\""),
            (Role::Admin, "\"admin\""),
        ] {
            assert_eq!(serde_json::to_string(&role).unwrap(), text);
            assert_eq!(serde_json::from_str::<Role>(text).unwrap(), role);
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
