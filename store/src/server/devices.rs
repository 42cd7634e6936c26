//! Devices and enrollment codes: `dev/<device id>`, `tok/<token hash>`,
//! `code/<code hash>`. Secrets are stored only as SHA-256 hashes.
//!
//! Credentials rotate in two steps, so that a rotation cut off anywhere
//! never locks a laptop out: [`ServerStore::rotate_token`] issues a new
//! token beside the old one (both work; a second rotation replaces the
//! unconfirmed one), and the first request made with the new token
//! confirms it ([`ServerStore::confirm_token`]): only then does the old
//! one stop working. How long a token lasts is the server's setting,
//! counted from [`Credential::issued_at`].

use super::*;

/// An enrollment code, stored under the hash of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentCode {
    pub role: Role,
    pub sites: Vec<String>,
    pub uses_left: u32,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<DeviceId>,
}

/// A device's credential: when it was issued, and a rotation under way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    /// When the token in use was issued (`None`: a device enrolled before
    /// tokens expired, whose token counts from its enrollment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    /// The hash of the token in use (`None`: a device enrolled before
    /// tokens rotated; learnt at its first rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// A token issued by a rotation and not used yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingToken>,
    /// An admin asked that the device rotate at its next contact.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotate_requested: bool,
}

/// A token a rotation issued, valid beside the old one until first used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingToken {
    pub hash: String,
    pub issued_at: DateTime<Utc>,
}

/// Why enrollment failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRefusal {
    UnknownCode,
    AlreadyEnrolled,
}

/// SHA-256 of a secret, hex-encoded.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Random bytes from the operating system.
pub(super) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}

/// A human-typeable enrollment code: 16 characters from an alphabet without
/// look-alikes, in groups of four (80 bits).
pub fn new_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let bytes = random::<16>();
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Codes are typed by people: case and dashes do not matter.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl ServerStore {
    /// Mints an enrollment code and returns its text (shown once).
    pub fn mint_code(
        &self,
        role: Role,
        sites: Vec<String>,
        uses: u32,
        by: Option<DeviceId>,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let guard = self.writer.lock().expect("writer lock");
        let code = new_code();
        let entry = EnrollmentCode {
            role,
            sites: sites.clone(),
            uses_left: uses,
            created_at: now,
            created_by: by,
        };
        let mut b = Writes::default();
        b.insert(
            Kind::Codes.key(hash_secret(&normalize_code(&code)).as_bytes()),
            encode(&entry),
        );
        self.stage_audit(
            &mut b,
            now,
            by,
            AuditEvent::CodeMinted { role, sites, uses },
        )?;
        self.commit_writes(guard, b)?;
        Ok(code)
    }

    /// Exchanges a code for a credential: registers the device and returns
    /// the device and its token (shown once; only its hash is kept).
    pub fn enroll(
        &self,
        code: &str,
        device_id: DeviceId,
        device_name: &str,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(Device, String), EnrollRefusal>> {
        self.enroll_replacing(code, device_id, device_name, now, &|_| false)
    }

    /// [`ServerStore::enroll`], also for a device already enrolled when
    /// `replace` says yes of it (its credential expired): it gets the code's
    /// role and sites and a new token, and its old tokens stop working.
    pub fn enroll_replacing(
        &self,
        code: &str,
        device_id: DeviceId,
        device_name: &str,
        now: DateTime<Utc>,
        replace: &dyn Fn(&Device) -> bool,
    ) -> Result<std::result::Result<(Device, String), EnrollRefusal>> {
        let guard = self.writer.lock().expect("writer lock");
        let code_key = Kind::Codes.key(hash_secret(&normalize_code(code)).as_bytes());
        let Some(mut entry) = self
            .db()
            .get(&code_key)?
            .map(|b| decode::<EnrollmentCode>(&b))
            .transpose()?
        else {
            return Ok(Err(EnrollRefusal::UnknownCode));
        };
        if entry.uses_left == 0 {
            return Ok(Err(EnrollRefusal::UnknownCode));
        }
        let mut b = Writes::default();
        let mut enrolled_at = now;
        if let Some(old) = self.load_device(device_id)? {
            if old.revoked_at.is_some() || !replace(&old) {
                return Ok(Err(EnrollRefusal::AlreadyEnrolled));
            }
            let c = old.credential;
            for hash in c.hash.into_iter().chain(c.pending.map(|p| p.hash)) {
                b.remove(Kind::Tokens.key(hash.as_bytes()));
            }
            enrolled_at = old.enrolled_at;
        }
        let token = format!("rt_{}", hex::encode(random::<32>()));
        let device = Device {
            id: device_id,
            name: device_name.chars().take(100).collect(),
            role: entry.role,
            sites: entry.sites.clone(),
            enrolled_at,
            revoked_at: None,
            credential: Credential {
                issued_at: Some(now),
                hash: Some(hash_secret(&token)),
                pending: None,
                rotate_requested: false,
            },
        };
        entry.uses_left -= 1;
        if entry.uses_left == 0 {
            b.remove(code_key);
        } else {
            b.insert(code_key, encode(&entry));
        }
        b.insert(Kind::Devices.key(device_id.0.as_bytes()), encode(&device));
        b.insert(
            Kind::Tokens.key(hash_secret(&token).as_bytes()),
            device_id.0.as_bytes().to_vec(),
        );
        self.stage_audit(
            &mut b,
            now,
            Some(device_id),
            AuditEvent::Enrolled {
                device: device_id,
                role: device.role,
                sites: device.sites.clone(),
            },
        )?;
        self.commit_writes(guard, b)?;
        Ok(Ok((device, token)))
    }

    /// The device a credential belongs to.
    pub fn device_by_token(&self, token: &str) -> Result<Option<Device>> {
        let Some(id) = self
            .db()
            .get(Kind::Tokens.key(hash_secret(token).as_bytes()))?
        else {
            return Ok(None);
        };
        self.db()
            .get(Kind::Devices.key(&id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every enrolled device.
    pub fn devices(&self) -> Result<Vec<Device>> {
        self.db()
            .scan_prefix(Kind::Devices.prefix())
            .map(|i| decode(&i?.1))
            .collect()
    }

    /// Revokes a device: from now on its credential is refused, and the
    /// device is told to erase its copy. Returns the device as it now is, or
    /// `None` if there is no such device. Revoking twice changes nothing.
    pub fn revoke(&self, id: DeviceId, by: DeviceId, now: DateTime<Utc>) -> Result<Option<Device>> {
        let guard = self.writer.lock().expect("writer lock");
        let k = Kind::Devices.key(id.0.as_bytes());
        let Some(mut device) = self
            .db()
            .get(&k)?
            .map(|b| decode::<Device>(&b))
            .transpose()?
        else {
            return Ok(None);
        };
        if device.revoked_at.is_some() {
            return Ok(Some(device));
        }
        device.revoked_at = Some(now);
        let mut b = Writes::default();
        b.insert(k, encode(&device));
        self.stage_audit(&mut b, now, Some(by), AuditEvent::Revoked { device: id })?;
        self.commit_writes(guard, b)?;
        Ok(Some(device))
    }
}

impl ServerStore {
    fn load_device(&self, id: DeviceId) -> Result<Option<Device>> {
        self.db()
            .get(Kind::Devices.key(id.0.as_bytes()))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Changes a device as `change` says, with its audit entry, journaled
    /// and durable when this returns; `None` if there is no such device.
    fn change_device(
        &self,
        id: DeviceId,
        now: DateTime<Utc>,
        by: Option<DeviceId>,
        change: impl FnOnce(&mut Device, &mut Writes) -> Option<AuditEvent>,
    ) -> Result<Option<Device>> {
        let guard = self.writer.lock().expect("writer lock");
        let Some(mut device) = self.load_device(id)? else {
            return Ok(None);
        };
        let mut b = Writes::default();
        let event = change(&mut device, &mut b);
        b.insert(Kind::Devices.key(id.0.as_bytes()), encode(&device));
        if let Some(event) = event {
            self.stage_audit(&mut b, now, by, event)?;
        }
        self.commit_writes(guard, b)?;
        Ok(Some(device))
    }

    /// Issues a new token for `id` beside the one it presented (`presented`,
    /// the token's hash), valid until confirmed or replaced; returns it
    /// (shown once). `None` if there is no such device.
    pub fn rotate_token(
        &self,
        id: DeviceId,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let token = format!("rt_{}", hex::encode(random::<32>()));
        let hash = hash_secret(&token);
        let changed = self.change_device(id, now, Some(id), |device, b| {
            let c = &mut device.credential;
            if let Some(old) = c.pending.take() {
                b.remove(Kind::Tokens.key(old.hash.as_bytes()));
            }
            c.hash.get_or_insert_with(|| presented.to_string());
            b.insert(Kind::Tokens.key(hash.as_bytes()), id.0.as_bytes().to_vec());
            c.pending = Some(PendingToken {
                hash: hash.clone(),
                issued_at: now,
            });
            None
        })?;
        Ok(changed.map(|_| token))
    }

    /// The device used the token a rotation issued (`hash`): it becomes the
    /// one in use and the old one stops working. Returns the device as it
    /// now is (unchanged if `hash` is not its pending token).
    pub fn confirm_token(
        &self,
        id: DeviceId,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Device>> {
        self.change_device(id, now, Some(id), |device, b| {
            let c = &mut device.credential;
            let pending = c.pending.take_if(|p| p.hash == hash)?;
            if let Some(old) = c.hash.replace(pending.hash) {
                b.remove(Kind::Tokens.key(old.as_bytes()));
            }
            c.issued_at = Some(pending.issued_at);
            c.rotate_requested = false;
            Some(AuditEvent::TokenRotated { device: id })
        })
    }

    /// An admin asks that device `id` rotate its token at its next contact.
    pub fn request_rotation(
        &self,
        id: DeviceId,
        by: DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Option<Device>> {
        self.change_device(id, now, Some(by), |device, _| {
            device.credential.rotate_requested = true;
            Some(AuditEvent::RotationRequested { device: id })
        })
    }

    /// An admin gives device `id` these sites (crossing codes; empty: all).
    pub fn set_sites(
        &self,
        id: DeviceId,
        sites: Vec<String>,
        by: DeviceId,
        now: DateTime<Utc>,
    ) -> Result<Option<Device>> {
        self.change_device(id, now, Some(by), |device, _| {
            device.sites = sites.clone();
            Some(AuditEvent::SitesChanged { device: id, sites })
        })
    }
}
