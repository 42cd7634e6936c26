//! What the web dashboard needs of the store: browser sessions
//! (`ses/<device>`: a session is a device enrolled from a browser, with an
//! expiry), when each device was last heard from (`seen/<device>`), a peek
//! at an enrollment code before it is used.

use super::*;

/// A browser session: the device it is, and when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub device: DeviceId,
    pub expires_at: DateTime<Utc>,
}

impl ServerStore {
    /// The enrollment code `code` as stored, without using it; `None` if
    /// it is unknown or used up.
    pub fn peek_code(&self, code: &str) -> Result<Option<EnrollmentCode>> {
        let key = Kind::Codes.key(hash_secret(&normalize_code(code)).as_bytes());
        Ok(self
            .db()
            .get(key)?
            .map(|b| decode::<EnrollmentCode>(&b))
            .transpose()?
            .filter(|c| c.uses_left > 0))
    }

    /// Makes device `device` a browser session that ends at `expires_at`
    /// (or moves the end of one).
    pub fn start_session(&self, device: DeviceId, expires_at: DateTime<Utc>) -> Result<Session> {
        let session = Session { device, expires_at };
        self.db()
            .insert(Kind::Sessions.key(device.0.as_bytes()), encode(&session))?;
        self.db().flush()?;
        Ok(session)
    }

    /// The session device `device` is, if it is one.
    pub fn session(&self, device: DeviceId) -> Result<Option<Session>> {
        self.db()
            .get(Kind::Sessions.key(device.0.as_bytes()))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every browser session, ended ones included.
    pub fn sessions(&self) -> Result<Vec<Session>> {
        self.db()
            .scan_prefix(Kind::Sessions.prefix())
            .map(|i| decode(&i?.1))
            .collect()
    }

    /// Notes that `device` was heard from at `at` (not flushed: a lost
    /// note only makes a device look a little less recent).
    pub fn note_seen(&self, device: DeviceId, at: DateTime<Utc>) -> Result<()> {
        self.db().insert(
            Kind::Seen.key(device.0.as_bytes()),
            at.timestamp().to_be_bytes().to_vec(),
        )?;
        Ok(())
    }

    /// When each device was last heard from, as far as noted.
    pub fn last_seen(&self) -> Result<BTreeMap<DeviceId, DateTime<Utc>>> {
        let prefix = Kind::Seen.prefix();
        let mut out = BTreeMap::new();
        for item in self.db().scan_prefix(prefix) {
            let (k, v) = item?;
            let id = uuid::Uuid::from_slice(&k[prefix.len()..])
                .map_err(|_| damaged("a last-seen key"))?;
            let secs = i64::from_be_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| damaged("a last-seen time"))?,
            );
            if let Some(at) = DateTime::from_timestamp(secs, 0) {
                out.insert(DeviceId(id), at);
            }
        }
        Ok(out)
    }
}
