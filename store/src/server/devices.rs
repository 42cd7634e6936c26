//! Devices and enrollment codes: `dev/<device id>`, `tok/<token hash>`,
//! `code/<code hash>`. Secrets are stored only as SHA-256 hashes.

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
        let guard = self.writer.lock().expect("writer lock");
        let code_key = Kind::Codes.key(hash_secret(&normalize_code(code)).as_bytes());
        let Some(mut entry) = self
            .db
            .get(&code_key)?
            .map(|b| decode::<EnrollmentCode>(&b))
            .transpose()?
        else {
            return Ok(Err(EnrollRefusal::UnknownCode));
        };
        if entry.uses_left == 0 {
            return Ok(Err(EnrollRefusal::UnknownCode));
        }
        if self
            .db
            .contains_key(Kind::Devices.key(device_id.0.as_bytes()))?
        {
            return Ok(Err(EnrollRefusal::AlreadyEnrolled));
        }
        let token = format!("rt_{}", hex::encode(random::<32>()));
        let device = Device {
            id: device_id,
            name: device_name.chars().take(100).collect(),
            role: entry.role,
            sites: entry.sites.clone(),
            enrolled_at: now,
            revoked_at: None,
        };
        entry.uses_left -= 1;
        let mut b = Writes::default();
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
            .db
            .get(Kind::Tokens.key(hash_secret(token).as_bytes()))?
        else {
            return Ok(None);
        };
        self.db
            .get(Kind::Devices.key(&id))?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Every enrolled device.
    pub fn devices(&self) -> Result<Vec<Device>> {
        self.db
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
        let Some(mut device) = self.db.get(&k)?.map(|b| decode::<Device>(&b)).transpose()? else {
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
