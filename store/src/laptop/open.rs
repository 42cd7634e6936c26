//! Making a store, and opening one: its format checked, then unlocked.

use super::*;
use sealing::DataKey;

/// How an encrypted store is unlocked: with its passphrase, asked only if
/// it is encrypted, or with its data key.
enum Unlocker<'a> {
    Ask(PassphraseSource<'a>),
    Key(&'a DataKey),
}

impl LocalStore {
    /// Creates a plain store (and a device id) or finds the one already there.
    pub fn init(dir: &Path, device_name: &str) -> Result<(Self, InitOutcome)> {
        Self::init_with(dir, device_name, None, &|| None)
    }

    /// Creates the store, encrypted under `encrypt` if given, or finds the
    /// one already there (unlocked with `encrypt`, else with `passphrase`).
    /// A new store is written in one flushed batch: its encryption header,
    /// index key and device id land together or not at all.
    pub fn init_with(
        dir: &Path,
        device_name: &str,
        encrypt: Option<&Passphrase>,
        passphrase: PassphraseSource<'_>,
    ) -> Result<(Self, InitOutcome)> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Sled(sled::Error::Io(e)))?;
        let db = open_db(dir, CACHE_BYTES)?;
        if Self::has_device(&db)? {
            if encrypt.is_some() && db.get(meta_key(META_CRYPT))?.is_none() {
                return Err(StoreError::AlreadyPlain(dir.to_path_buf()));
            }
            let given = encrypt.cloned();
            let store = Self::unlock(db, dir, &|| given.clone().or_else(passphrase))?;
            return Ok((store, InitOutcome::AlreadyThere));
        }
        let mut batch = sled::Batch::default();
        let cipher = match encrypt {
            Some(pass) => {
                let (cipher, header) =
                    StoreCipher::create(pass).map_err(|e| Self::sealing(dir, e))?;
                batch.insert(meta_key(META_CRYPT), encode(&header));
                cipher
            }
            None => StoreCipher::Plain,
        };
        let store = LocalStore {
            db,
            dir: dir.to_path_buf(),
            cipher,
            commit_lock: Default::default(),
            outbox: Default::default(),
            recent: Default::default(),
            known: super::record_packs::known_ids(),
        };
        let mut w = store.writes();
        w.batch = batch;
        w.put(
            meta_key(META_DEVICE),
            &DeviceInfo {
                id: crate::ids::new_device_id(),
                name: device_name.to_string(),
            },
        );
        store.mark_duplicate_index_built(&mut w);
        w.batch.insert(FORMAT_KEY, FORMAT.to_be_bytes().to_vec());
        store.db.apply_batch(w.batch)?;
        store.db.flush()?;
        store.rewrite_outbox()?;
        Ok((store, InitOutcome::Created))
    }

    /// Opens an existing plain store (an encrypted one needs [`Self::open_with`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, &|| None)
    }

    /// Opens an existing store, asking `passphrase` if it is encrypted.
    pub fn open_with(dir: &Path, passphrase: PassphraseSource<'_>) -> Result<Self> {
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        let db = open_db(dir, CACHE_BYTES)?;
        if !Self::has_device(&db)? {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        Self::unlock(db, dir, passphrase)
    }

    /// Opens an existing store with an encrypted store's data key (kept by
    /// `returnee unlock`) instead of its passphrase; a plain store opens
    /// as it is. A key that is not this store's is a wrong passphrase.
    pub fn open_with_key(dir: &Path, key: &DataKey) -> Result<Self> {
        if !dir.join("conf").exists() && !dir.join("db").exists() {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        let db = open_db(dir, CACHE_BYTES)?;
        if !Self::has_device(&db)? {
            return Err(StoreError::NotInitialized(dir.to_path_buf()));
        }
        Self::unlock_as(db, dir, Unlocker::Key(key))
    }

    /// The data key of this store if it is encrypted, unwrapped with `pass`.
    pub fn data_key(&self, pass: &Passphrase) -> Result<Option<DataKey>> {
        let Some(raw) = self.db.get(meta_key(META_CRYPT))? else {
            return Ok(None);
        };
        let header: CryptHeader = decode(&raw)?;
        StoreCipher::unwrap_key(&header, pass)
            .map(Some)
            .map_err(|e| Self::sealing(&self.dir, e))
    }

    /// Changes an encrypted store's passphrase from `old` to `new`: the data
    /// key is wrapped again (one flushed write of the header), no value is
    /// re-encrypted. A wrong `old` changes nothing.
    pub fn change_passphrase(&self, old: &Passphrase, new: &Passphrase) -> Result<()> {
        let _lock = self.write_lock();
        let Some(raw) = self.db.get(meta_key(META_CRYPT))? else {
            return Err(StoreError::NotEncrypted(self.dir.clone()));
        };
        let header: CryptHeader = decode(&raw)?;
        let header =
            StoreCipher::rewrap(&header, old, new).map_err(|e| Self::sealing(&self.dir, e))?;
        self.db.insert(meta_key(META_CRYPT), encode(&header))?;
        self.db.flush()?;
        Ok(())
    }

    /// Whether the store is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_sealed()
    }

    pub(super) fn has_device(db: &sled::Db) -> Result<bool> {
        Ok(db.contains_key(meta_key(META_DEVICE))?)
    }

    pub(super) fn sealing(dir: &Path, source: SealError) -> StoreError {
        match source {
            SealError::WrongPassphrase => StoreError::WrongPassphrase(dir.to_path_buf()),
            source => StoreError::Sealing {
                dir: dir.to_path_buf(),
                source,
            },
        }
    }

    /// Checks an opened store's format, unlocks it (checking the passphrase
    /// before anything is read or written), and brings its duplicate index
    /// up to date.
    pub(super) fn unlock(
        db: sled::Db,
        dir: &Path,
        passphrase: PassphraseSource<'_>,
    ) -> Result<Self> {
        Self::unlock_as(db, dir, Unlocker::Ask(passphrase))
    }

    fn unlock_as(db: sled::Db, dir: &Path, how: Unlocker<'_>) -> Result<Self> {
        format::open(
            &db,
            FORMAT_KEY,
            MIGRATIONS,
            false,
            Default::default(),
            |found| StoreError::Format {
                dir: dir.to_path_buf(),
                found,
            },
        )?;
        let cipher = match db.get(meta_key(META_CRYPT))? {
            None => StoreCipher::Plain,
            Some(raw) => {
                let header: CryptHeader = decode(&raw)?;
                match how {
                    Unlocker::Ask(passphrase) => {
                        let pass =
                            passphrase().ok_or_else(|| StoreError::PassphraseNeeded(dir.into()))?;
                        StoreCipher::unlock(&header, &pass)
                    }
                    Unlocker::Key(key) => StoreCipher::with_key(&header, key),
                }
                .map_err(|e| Self::sealing(dir, e))?
            }
        };
        let store = LocalStore {
            db,
            dir: dir.to_path_buf(),
            cipher,
            commit_lock: Default::default(),
            outbox: Default::default(),
            recent: Default::default(),
            known: super::record_packs::known_ids(),
        };
        store.ensure_duplicate_index()?;
        // An erasure whose rewrite of the files did not finish.
        store.finish_erasure()
    }
}
