//! Which operations of a push the server takes: each must be the sending
//! device's own, within its sites and role, and valid.

use super::*;

/// Whether `device` may apply `op` to `doc`; the error code and message if not.
pub(super) fn admit(
    device: &Device,
    op: &Op,
    doc: &RecordDoc,
    today: NaiveDate,
) -> std::result::Result<(), (returnee_shared::wire::ErrorCode, String)> {
    use returnee_shared::access::{Action, authorize};
    use returnee_shared::wire::ErrorCode;
    let me = device.principal();
    let check = |action: &Action| {
        authorize(&me, action).map_err(|denial| (ErrorCode::Forbidden, denial.message))
    };
    check(&Action::SendOpsOf(op.device))?;
    // The record's sites come from its operations: worked out only for a
    // device that does not work at every site.
    if !me.every_site() {
        let crossing = match op.value(FieldName::Crossing) {
            Some(FieldValue::Crossing(c)) => Some(c),
            _ => None,
        };
        check(&Action::WriteFamilyAt {
            recorded_at: &doc.sites(),
            crossing: crossing.as_deref(),
        })?;
    }
    duplicates::admit_decision(device, op)?;
    if let Some(FieldValue::Review(review)) = op.value(FieldName::Review)
        && matches!(op.change, Change::Edit { .. })
    {
        // Clearing a review is a supervisor's, like setting most states.
        let state = review.map_or(returnee_shared::ReviewState::SentBack, |r| r.state);
        check(&Action::SetReview(state))?;
    }
    if op.resolution {
        check(&Action::ResolveConflict)?;
    }
    if matches!(op.change, Change::Restore)
        && !op.resolution
        && !returnee_shared::merge::resolve::undoes_own_delete(doc, op)
    {
        return Err((
            ErrorCode::BadRequest,
            "keeping a family another device deleted is a conflict resolution (a supervisor's)"
                .into(),
        ));
    }
    // Devices' dates run up to a day ahead of the server's across time zones.
    let tomorrow = today.succ_opt().unwrap_or(today);
    match &op.change {
        Change::Create { fields, .. } => {
            fields
                .check(tomorrow)
                .map_err(|e| (ErrorCode::Invalid, e.one_line()))?;
        }
        Change::Edit { values, .. } | Change::MergedValues { values, .. } => {
            let view = doc.view(op.record);
            if let Some(family) = view.family {
                let mut fields = family.fields.clone();
                let touched: Vec<FieldName> = values.iter().map(|v| v.name()).collect();
                for v in values {
                    fields.set(v.clone());
                }
                // Concurrent edits that break a rule across fields are
                // taken: the record shows a `rule` conflict (merge::rules).
                for rule in returnee_shared::validate::rules::broken_rules(&fields) {
                    rule.mend(&mut fields);
                }
                if let Err(e) = fields.check(tomorrow) {
                    let own: Vec<_> = e
                        .problems
                        .into_iter()
                        .filter(|p| touched.iter().any(|f| f.as_str() == p.field))
                        .collect();
                    if !own.is_empty() {
                        return Err((
                            ErrorCode::Invalid,
                            returnee_shared::ValidationError { problems: own }.one_line(),
                        ));
                    }
                }
            }
        }
        Change::Delete | Change::Restore | Change::Merge { .. } | Change::Dismiss { .. } => {}
        Change::Erase { reason } => {
            check(&Action::EraseFamily)?;
            let reason = reason.trim();
            if reason.is_empty() || reason.len() > returnee_shared::merge::erasure::MAX_REASON {
                return Err((
                    ErrorCode::Invalid,
                    format!(
                        "an erasure needs a reason of 1 to {} characters (it goes to the audit trail)",
                        returnee_shared::merge::erasure::MAX_REASON
                    ),
                ));
            }
        }
        // Who may do it cannot be told: a later release's server can.
        Change::Other(o) => {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "this server does not know operations of kind `{}`: upgrade the server, then sync again",
                    o.kind
                ),
            ));
        }
    }
    Ok(())
}
