//! The crossings admins add (`m/crossings`): one versioned list, which
//! devices learn at their syncs. Append only: a crossing is deactivated,
//! never removed, so its index in stored report rows never moves.

use returnee_shared::reference::{CrossingDef, CrossingList};

use super::*;

impl ServerStore {
    /// The crossings added so far (version 0: none).
    pub fn crossings(&self) -> Result<CrossingList> {
        Ok(self
            .db()
            .get(CROSSINGS_KEY)?
            .map(|b| decode(&b))
            .transpose()?
            .unwrap_or_default())
    }

    /// Changes the list as `change` says (its refusal in words, or the
    /// audit event), bumping the version, journaled and durable when this
    /// returns.
    fn change_crossings(
        &self,
        by: DeviceId,
        now: DateTime<Utc>,
        change: impl FnOnce(&mut CrossingList) -> std::result::Result<AuditEvent, String>,
    ) -> Result<std::result::Result<CrossingList, String>> {
        let guard = self.writer.lock().expect("writer lock");
        let mut list = self.crossings()?;
        let event = match change(&mut list) {
            Ok(e) => e,
            Err(why) => return Ok(Err(why)),
        };
        list.version += 1;
        let mut b = Writes::default();
        b.insert(CROSSINGS_KEY, encode(&list));
        self.stage_audit(&mut b, now, Some(by), event)?;
        self.commit_writes(guard, b)?;
        Ok(Ok(list))
    }

    /// Adds a crossing (active); the refusal in words if it is not a new,
    /// well-formed one.
    pub fn add_crossing(
        &self,
        def: CrossingDef,
        by: DeviceId,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<CrossingList, String>> {
        self.change_crossings(by, now, |list| {
            let def = CrossingDef {
                active: true,
                ..def
            };
            if let Some(why) = list.refuse_new(&def) {
                return Err(why);
            }
            let code = def.code.clone();
            list.crossings.push(def);
            Ok(AuditEvent::CrossingChanged { code, active: true })
        })
    }

    /// Deactivates an added crossing: kept for the families recorded
    /// there, offered no more for new ones.
    pub fn deactivate_crossing(
        &self,
        code: &str,
        by: DeviceId,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<CrossingList, String>> {
        self.change_crossings(by, now, |list| {
            let found = list.crossings.iter_mut().find(|c| c.code == code).ok_or_else(|| {
                format!(
                    "no crossing '{code}' was added on this server (the compiled-in ones cannot be deactivated); `returnee admin crossing list` shows them"
                )
            })?;
            found.active = false;
            Ok(AuditEvent::CrossingChanged {
                code: code.to_string(),
                active: false,
            })
        })
    }
}
