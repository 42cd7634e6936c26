//! The laptop's per-record values in packs (`returnee_shared::packs`: many
//! records to a sled key, in id order): each record's operations under
//! `D/<lower bound>` and the report rows of the families that count under
//! `S/<lower bound>`. A pack is sealed as one value under its own key, like
//! every value ([`super::sealing`]); its key holds only a record id.
//!
//! A pull or an import writes a pack per few dozen families instead of two
//! keys per family (sled's cost is per key, and its page table grows with
//! them). Writes are gathered in [`Writes`] and turned into packs at commit,
//! under the store's commit lock, so that two commits cannot both rewrite
//! one pack from the same old value.
//!
//! Stores of earlier versions kept one key per record (`d/<id>`, `s/<id>`);
//! [`LocalStore::pack_loose_values`] moves them into packs when the store
//! is opened, a batch at a time (each batch removes the keys it packs, so an
//! interrupted move resumes where it stopped).

use std::collections::BTreeMap;
use std::ops::Bound;

use rayon::prelude::*;
use returnee_shared::RecordId;
use returnee_shared::packs::{self, FIRST, PackStore};

use super::{LocalStore, Result, StoreError, Writes};

/// Each record's operations (`RecordDoc` as JSON).
pub(super) const DOCS: &[u8] = b"D/";
/// The report row of each family that counts (`ReportRow`, 19 bytes).
pub(super) const ROWS: &[u8] = b"S/";
/// The duplicate index's features of each family that counts
/// (`Features::to_bytes`, about 50 bytes; earlier versions kept one
/// `bf/<record id>` key each).
pub(super) const FEATURES: &[u8] = b"F/";
/// The one-key-per-record prefixes of earlier versions, and their packs'.
const LOOSE: [(&[u8], &[u8]); 2] = [(b"d/", DOCS), (b"s/", ROWS)];

fn pack_key(prefix: &[u8], lower: RecordId) -> Vec<u8> {
    [prefix, lower.0.as_bytes()].concat()
}

fn bound_of(prefix: &[u8], key: &[u8]) -> Result<RecordId> {
    key.get(prefix.len()..)
        .and_then(|b| uuid::Uuid::from_slice(b).ok())
        .map(RecordId)
        .ok_or_else(|| StoreError::BadValue("a pack key in the store is damaged".into()))
}

impl From<packs::DamagedPack> for StoreError {
    fn from(e: packs::DamagedPack) -> Self {
        StoreError::BadValue(e.to_string())
    }
}

/// One kind of pack (`DOCS`, `ROWS` or `FEATURES`) of a store, values opened.
struct Packs<'a> {
    store: &'a LocalStore,
    prefix: &'static [u8],
}

impl PackStore for Packs<'_> {
    type Error = StoreError;
    type Pack = sled::IVec;

    fn pack_holding(&self, id: RecordId) -> Result<(RecordId, sled::IVec)> {
        let range = pack_key(self.prefix, FIRST)..=pack_key(self.prefix, id);
        match self.store.db.range(range).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok((bound_of(self.prefix, &k)?, self.store.open_value(&k, v)?))
            }
            // No pack yet: the first one, empty.
            None => Ok((FIRST, sled::IVec::default())),
        }
    }

    fn pack_after(&self, lower: RecordId) -> Result<Option<RecordId>> {
        let from = pack_key(self.prefix, lower);
        let end = pack_key(self.prefix, RecordId(uuid::Uuid::max()));
        match self
            .store
            .db
            .range::<&[u8], _>((Bound::Excluded(&from[..]), Bound::Included(&end[..])))
            .next()
        {
            Some(item) => Ok(Some(bound_of(self.prefix, &item?.0)?)),
            None => Ok(None),
        }
    }
}

impl LocalStore {
    fn packs(&self, prefix: &'static [u8]) -> Packs<'_> {
        Packs {
            store: self,
            prefix,
        }
    }

    /// The value of record `id` in the packs under `prefix`.
    pub(super) fn packed(&self, prefix: &'static [u8], id: RecordId) -> Result<Option<Vec<u8>>> {
        packs::get(&self.packs(prefix), id)
    }

    /// The values of `ids` (sorted, each once) in the packs under `prefix`,
    /// in their order: each pack read and opened once.
    pub(super) fn packed_many(
        &self,
        prefix: &'static [u8],
        ids: &[RecordId],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        packs::get_many(&self.packs(prefix), ids)
    }

    /// Every value in the packs under `prefix`, in record id order.
    pub(super) fn scan_packed(
        &self,
        prefix: &'static [u8],
    ) -> impl Iterator<Item = Result<(RecordId, sled::IVec)>> + '_ {
        self.scan_values(prefix).flat_map(|item| match item {
            Err(e) => vec![Err(e)],
            Ok((_, pack)) => packs::split(&pack, |at| pack.subslice(at.start, at.len())),
        })
    }

    /// Turns the docs, rows and features gathered in `w` into pack writes (sealed on
    /// all cores). The caller holds the commit lock until the batch is
    /// applied.
    pub(super) fn stage_packs(&self, w: &mut Writes) -> Result<Vec<Vec<u8>>> {
        let mut written = Vec::new();
        for (prefix, values) in [
            (DOCS, std::mem::take(&mut w.docs)),
            (ROWS, std::mem::take(&mut w.rows)),
            (FEATURES, std::mem::take(&mut w.features)),
        ] {
            if values.is_empty() {
                continue;
            }
            let updates: Vec<(RecordId, Option<Vec<u8>>)> = values.into_iter().collect();
            let plan = packs::plan(&self.packs(prefix), &updates)?;
            let cipher = &w.cipher;
            let sealed: Vec<(Vec<u8>, Option<Vec<u8>>)> = plan
                .into_par_iter()
                .map(|(lower, pack)| {
                    let key = pack_key(prefix, lower);
                    let sealed = pack.map(|p| cipher.seal(&key, p));
                    (key, sealed)
                })
                .collect();
            for (key, pack) in sealed {
                match pack {
                    Some(p) => {
                        written.push(key.clone());
                        w.batch.insert(key, p)
                    }
                    None => w.batch.remove(key),
                }
            }
        }
        Ok(written)
    }

    /// Moves the values a store of an earlier version kept one per key
    /// (`d/<id>`, `s/<id>`) into packs. Returns how many moved.
    pub(super) fn pack_loose_values(&self) -> Result<u64> {
        const PER_BATCH: usize = 4096;
        let mut moved = 0;
        for (loose_prefix, prefix) in LOOSE {
            loop {
                let mut loose: Vec<(RecordId, Vec<u8>)> = Vec::new();
                let mut batch = sled::Batch::default();
                for item in self.scan_values(loose_prefix).take(PER_BATCH) {
                    let (k, v) = item?;
                    loose.push((bound_of(loose_prefix, &k)?, v.to_vec()));
                    batch.remove(k);
                }
                if loose.is_empty() {
                    break;
                }
                let first_exists = self.db.get(pack_key(prefix, FIRST))?.is_some();
                let refs: Vec<(RecordId, &[u8])> =
                    loose.iter().map(|(id, v)| (*id, &v[..])).collect();
                for (lower, pack) in packs::pack_loose(&refs, first_exists) {
                    let key = pack_key(prefix, lower);
                    let pack = self.cipher.seal(&key, pack.expect("a loose value's pack"));
                    batch.insert(key, pack);
                }
                self.db.apply_batch(batch)?;
                moved += loose.len() as u64;
            }
        }
        if moved > 0 {
            self.db.flush()?;
            tracing::info!(values = moved, "per-record values moved into packs");
        }
        Ok(moved)
    }
}

/// Per-record values a batch of changes sets (`Some`) or removes (`None`),
/// by record, for [`LocalStore::stage_packs`].
pub(super) type PackedValues = BTreeMap<RecordId, Option<Vec<u8>>>;

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::super::sealing::Passphrase;
    use super::super::tests::fields;
    use super::*;

    /// Rewrites a store's packs as an earlier version kept its values: one
    /// key per record, each sealed under its own key.
    fn unpack(store: &LocalStore) {
        let mut batch = sled::Batch::default();
        for (loose_prefix, prefix) in LOOSE {
            for item in store.scan_packed(prefix) {
                let (id, v) = item.unwrap();
                let key = [loose_prefix, id.0.as_bytes()].concat();
                batch.insert(key.clone(), store.cipher.seal(&key, v.to_vec()));
            }
            for key in store.db.scan_prefix(prefix).keys() {
                batch.remove(key.unwrap());
            }
        }
        store.db.apply_batch(batch).unwrap();
        store.db.flush().unwrap();
    }

    #[test]
    fn an_encrypted_store_of_an_earlier_version_has_its_values_packed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new("a long enough passphrase".into());
        let ids: Vec<RecordId> = {
            let (store, _) = LocalStore::init_with(dir.path(), "t", Some(&pass), &|| None).unwrap();
            let ids: Vec<RecordId> = (0..300)
                .map(|n| store.add(fields(n), Utc::now()).unwrap())
                .collect();
            store.delete(ids[7], Utc::now()).unwrap();
            unpack(&store);
            assert_eq!(store.db.scan_prefix(DOCS).count(), 0);
            assert_eq!(store.db.scan_prefix(b"d/").count(), 300);
            ids
        };
        let store = LocalStore::open_with(dir.path(), &|| Some(pass.clone())).unwrap();
        assert_eq!(store.db.scan_prefix(b"d/").count(), 0);
        assert_eq!(store.db.scan_prefix(b"s/").count(), 0);
        assert!(store.db.scan_prefix(DOCS).count() > 1);
        for (n, id) in ids.iter().enumerate() {
            let view = store.get(*id).unwrap().expect("still there");
            assert_eq!(view.family.fields.notes, fields(n as u32).notes);
        }
        assert_eq!(
            store.report_rows().count(),
            299,
            "the deleted family does not count"
        );
        assert_eq!(store.views().count(), 300);
        // And it goes on: a change rewrites its pack, a new family lands.
        store.delete(ids[100], Utc::now()).unwrap();
        store.add(fields(1000), Utc::now()).unwrap();
        assert_eq!(store.report_rows().count(), 299);
    }

    #[test]
    fn every_commit_rewrites_packs_from_what_the_last_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LocalStore::init(dir.path(), "t").unwrap();
        // Commits from several threads at once: none may undo another's.
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let store = store.clone();
                s.spawn(move || {
                    for n in 0..50 {
                        store.add(fields(t * 100 + n), Utc::now()).unwrap();
                    }
                });
            }
        });
        assert_eq!(store.views().count(), 200);
        assert_eq!(store.report_rows().count(), 200);
    }
}
