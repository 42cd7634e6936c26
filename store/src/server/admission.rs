//! Which operations of a push the server takes: each must be the sending
//! device's own, within its sites and role, and valid.

use super::*;

/// Whether `device` may apply `op` to `doc`; the error code and message if not.
pub(super) fn admit(
    device: &Device,
    op: &Op,
    doc: &RecordDoc,
    today: NaiveDate,
) -> std::result::Result<(), (&'static str, String)> {
    if op.device != device.id {
        return Err((
            "forbidden",
            "the operation names another device; a device may only send its own changes".into(),
        ));
    }
    if !device.all_sites() {
        let sites = doc.sites();
        if !sites.is_empty() && !sites.iter().any(|s| device.works_at(s)) {
            return Err((
                "forbidden",
                format!(
                    "this family is recorded at {}; this device works at {} only",
                    sites.iter().cloned().collect::<Vec<_>>().join(", "),
                    device.sites.join(", ")
                ),
            ));
        }
        if let Some(FieldValue::Crossing(c)) = op.value(FieldName::Crossing)
            && !device.works_at(&c)
        {
            return Err((
                "forbidden",
                format!(
                    "this device records families for {} only, not {c}; a supervisor of both sites can move a family",
                    device.sites.join(", ")
                ),
            ));
        }
    }
    duplicates::admit_decision(device, op)?;
    if op.resolution && !device.role.may_resolve() {
        return Err((
            "forbidden",
            format!(
                "only supervisors and admins resolve conflicts; this device is {}",
                device.role
            ),
        ));
    }
    if matches!(op.change, Change::Restore) && !op.resolution {
        return Err((
            "bad_request",
            "keeping a deleted family is a conflict resolution".into(),
        ));
    }
    // Devices' dates run up to a day ahead of the server's across time zones.
    let tomorrow = today.succ_opt().unwrap_or(today);
    match &op.change {
        Change::Create { fields, .. } => {
            fields
                .check(tomorrow)
                .map_err(|e| ("invalid", e.one_line()))?;
        }
        Change::Edit { values } | Change::MergedValues { values, .. } => {
            let view = doc.view(op.record);
            if let Some(family) = view.family {
                let mut fields = family.fields.clone();
                let touched: Vec<FieldName> = values.iter().map(|v| v.name()).collect();
                for v in values {
                    fields.set(v.clone());
                }
                if let Err(e) = fields.check(tomorrow) {
                    let own: Vec<_> = e
                        .problems
                        .into_iter()
                        .filter(|p| touched.iter().any(|f| f.as_str() == p.field))
                        .collect();
                    if !own.is_empty() {
                        return Err((
                            "invalid",
                            returnee_shared::ValidationError { problems: own }.one_line(),
                        ));
                    }
                }
            }
        }
        Change::Delete | Change::Restore | Change::Merge { .. } | Change::Dismiss { .. } => {}
    }
    Ok(())
}
