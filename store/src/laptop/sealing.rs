//! Encryption at rest: every value the laptop store writes goes through a
//! [`StoreCipher`].
//!
//! - A plain store's cipher is the identity (values are written as they are).
//! - An encrypted store seals each value with XChaCha20-Poly1305 under a
//!   random 32-byte *data key*, with a fresh random 24-byte nonce per value
//!   and the value's sled key as associated data, so a sealed value cannot
//!   be moved to another key (or another record) without failing to open.
//!   Stored as `nonce ‖ ciphertext ‖ tag`.
//! - The data key is made at `init` and kept *wrapped* (sealed) under a key
//!   derived from the passphrase with Argon2id ([`KDF_MEMORY_KIB`],
//!   [`KDF_PASSES`], [`KDF_LANES`], a random salt). The parameters, the salt,
//!   the wrapped data key and a verifier (a known value sealed under the data
//!   key) are the one plain entry, `m/crypt` ([`CryptHeader`]). A wrong
//!   passphrase fails to unwrap the data key, so it is detected before
//!   anything is read or written. Changing the passphrase re-wraps the
//!   data key only ([`StoreCipher::rewrap`]: a new salt, the one header
//!   entry rewritten), so no value is re-encrypted.
//! - No key holds a name or a document number: keys are record ids, places
//!   and sequence numbers; duplicate detection reads sealed features.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Argon2id memory cost in KiB (19 MiB, OWASP's minimum for Argon2id).
pub const KDF_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes over the memory.
pub const KDF_PASSES: u32 = 2;
/// Argon2id lanes.
pub const KDF_LANES: u32 = 1;
/// Bytes of random salt for the passphrase key.
const SALT_LEN: usize = 16;
/// Bytes of a nonce (XChaCha20).
const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Bytes a sealed value is longer than the plain one.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Associated data of the wrapped data key.
const WRAP_AD: &[u8] = b"returnee/data-key/v1";
/// Associated data and contents of the verifier.
const VERIFIER_AD: &[u8] = b"returnee/verifier/v1";
const VERIFIER: &[u8] = b"returnee store v1";

/// What can go wrong unlocking or opening sealed values.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The passphrase does not unwrap the data key.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A sealed value did not open (damaged, or moved to another key).
    #[error("a sealed value in the store does not open")]
    Damaged,
    #[error("the store's encryption header is damaged or of an unknown kind")]
    BadHeader,
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// A passphrase, wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(text: String) -> Self {
        Passphrase(Zeroizing::new(text))
    }
    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
    /// Its length in characters.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(…)")
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, SealError> {
    let mut b = Zeroizing::new([0u8; N]);
    getrandom::fill(b.as_mut()).map_err(|e| SealError::Random(e.to_string()))?;
    Ok(b)
}

/// The plain `m/crypt` entry of an encrypted store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CryptHeader {
    /// "argon2id+xchacha20poly1305"
    pub scheme: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    /// Hex.
    pub salt: String,
    /// The data key sealed under the passphrase key (hex).
    pub wrapped_key: String,
    /// [`VERIFIER`] sealed under the data key (hex).
    pub verifier: String,
}

const SCHEME: &str = "argon2id+xchacha20poly1305";

fn derive(pass: &Passphrase, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Cipher, SealError> {
    let params = Params::new(m, t, p, Some(32)).map_err(|_| SealError::BadHeader)?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.bytes(), salt, key.as_mut())
        .map_err(|_| SealError::BadHeader)?;
    Ok(Cipher::new(&key))
}

/// An AEAD under one key.
#[derive(Clone)]
pub struct Cipher(XChaCha20Poly1305);

impl Cipher {
    fn new(key: &[u8; 32]) -> Self {
        Cipher(XChaCha20Poly1305::new(key.into()))
    }

    fn seal(&self, ad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = random::<NONCE_LEN>().expect("the system's random source works");
        let nonce = XNonce::from_slice(nonce.as_ref());
        let ct = self
            .0
            .encrypt(
                nonce,
                Payload {
                    msg: plain,
                    aad: ad,
                },
            )
            .expect("sealing in memory does not fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        out
    }

    fn open(&self, ad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < SEAL_OVERHEAD {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: ad })
            .ok()
    }
}

/// How the store's values are written: as they are, or sealed.
#[derive(Clone, Default)]
pub enum StoreCipher {
    /// A plain store: the identity.
    #[default]
    Plain,
    /// An encrypted store, unlocked.
    Sealed(Arc<Cipher>),
}

impl std::fmt::Debug for StoreCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreCipher::Plain => "StoreCipher::Plain",
            StoreCipher::Sealed(_) => "StoreCipher::Sealed",
        })
    }
}

impl StoreCipher {
    /// Makes a new data key, wrapped under `pass`: the cipher and the header to store.
    pub fn create(pass: &Passphrase) -> Result<(Self, CryptHeader), SealError> {
        let data_key = random::<32>()?;
        let data = Cipher::new(&data_key);
        let verifier = hex::encode(data.seal(VERIFIER_AD, VERIFIER));
        let header = Self::wrap(pass, data_key.as_ref(), verifier)?;
        Ok((StoreCipher::Sealed(Arc::new(data)), header))
    }

    /// The header of `data_key` wrapped under `pass` with a fresh salt and
    /// today's Argon2id parameters.
    fn wrap(
        pass: &Passphrase,
        data_key: &[u8],
        verifier: String,
    ) -> Result<CryptHeader, SealError> {
        let salt = random::<SALT_LEN>()?;
        let wrapping = derive(pass, salt.as_ref(), KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES)?;
        Ok(CryptHeader {
            scheme: SCHEME.into(),
            m_kib: KDF_MEMORY_KIB,
            t: KDF_PASSES,
            p: KDF_LANES,
            salt: hex::encode(salt.as_ref()),
            wrapped_key: hex::encode(wrapping.seal(WRAP_AD, data_key)),
            verifier,
        })
    }

    /// Unlocks an encrypted store's data key with `pass`.
    pub fn unlock(header: &CryptHeader, pass: &Passphrase) -> Result<Self, SealError> {
        Self::with_key(header, &Self::unwrap_key(header, pass)?)
    }

    /// The data key of an encrypted store, unwrapped with `pass` (what
    /// `returnee unlock` keeps for a while, so that commands skip the
    /// passphrase).
    pub fn unwrap_key(header: &CryptHeader, pass: &Passphrase) -> Result<DataKey, SealError> {
        if header.scheme != SCHEME {
            return Err(SealError::BadHeader);
        }
        let salt = hex::decode(&header.salt).map_err(|_| SealError::BadHeader)?;
        let wrapped = hex::decode(&header.wrapped_key).map_err(|_| SealError::BadHeader)?;
        let wrapping = derive(pass, &salt, header.m_kib, header.t, header.p)?;
        let key = Zeroizing::new(
            wrapping
                .open(WRAP_AD, &wrapped)
                .ok_or(SealError::WrongPassphrase)?,
        );
        DataKey::from_bytes(&key).ok_or(SealError::BadHeader)
    }

    /// The cipher of an encrypted store under its data key, checked
    /// against the header's verifier (a stale key is a wrong passphrase).
    pub fn with_key(header: &CryptHeader, key: &DataKey) -> Result<Self, SealError> {
        let verifier = hex::decode(&header.verifier).map_err(|_| SealError::BadHeader)?;
        let data = Cipher::new(&key.0);
        match data.open(VERIFIER_AD, &verifier) {
            Some(v) if v == VERIFIER => Ok(StoreCipher::Sealed(Arc::new(data))),
            _ => Err(SealError::WrongPassphrase),
        }
    }

    /// The header of the same data key wrapped under `new` (a fresh salt,
    /// today's Argon2id parameters), once `old` unwraps it.
    pub fn rewrap(
        header: &CryptHeader,
        old: &Passphrase,
        new: &Passphrase,
    ) -> Result<CryptHeader, SealError> {
        let key = Self::unwrap_key(header, old)?;
        Self::wrap(new, key.as_bytes(), header.verifier.clone())
    }

    pub fn is_sealed(&self) -> bool {
        matches!(self, StoreCipher::Sealed(_))
    }

    /// The value to write under `key`.
    pub fn seal(&self, key: &[u8], value: Vec<u8>) -> Vec<u8> {
        match self {
            StoreCipher::Plain => value,
            StoreCipher::Sealed(c) => c.seal(key, &value),
        }
    }

    /// The value read under `key`, opened.
    pub fn open(&self, key: &[u8], stored: sled::IVec) -> Result<sled::IVec, SealError> {
        match self {
            StoreCipher::Plain => Ok(stored),
            StoreCipher::Sealed(c) => c
                .open(key, &stored)
                .map(sled::IVec::from)
                .ok_or(SealError::Damaged),
        }
    }
}

/// An encrypted store's data key (32 bytes, wiped when dropped).
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// From its 32 bytes; `None` for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<DataKey> {
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey(Zeroizing::new(key)))
    }

    /// Its bytes, to hand to a key store that keeps secrets (the kernel keyring).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_own_key_and_plain_is_identity() {
        let pass = Passphrase::new("correct horse".into());
        let (c, header) = StoreCipher::create(&pass).unwrap();
        let sealed = c.seal(b"d/one", b"secret name".to_vec());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(sealed.len(), 11 + SEAL_OVERHEAD);
        assert_eq!(
            &c.open(b"d/one", sealed.clone().into()).unwrap()[..],
            b"secret name"
        );
        assert!(matches!(
            c.open(b"d/two", sealed.clone().into()),
            Err(SealError::Damaged)
        ));
        // Two seals of one value differ (fresh nonces).
        assert_ne!(sealed, c.seal(b"d/one", b"secret name".to_vec()));

        let again = StoreCipher::unlock(&header, &pass).unwrap();
        assert_eq!(
            &again.open(b"d/one", sealed.clone().into()).unwrap()[..],
            b"secret name"
        );
        assert!(matches!(
            StoreCipher::unlock(&header, &Passphrase::new("wrong".into())),
            Err(SealError::WrongPassphrase)
        ));

        let plain = StoreCipher::Plain;
        assert_eq!(plain.seal(b"k", b"v".to_vec()), b"v");
        assert_eq!(&plain.open(b"k", b"v".as_slice().into()).unwrap()[..], b"v");
    }
}
