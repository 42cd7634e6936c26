//! Packs over sled: values stored many to a key, in the order of a 16-byte
//! key (`returnee_shared::packs` has the layout and the pure planning). One
//! adapter for every kind of pack of both stores; a kind is a key prefix,
//! and its pack keys are the prefix then the pack's lower bound. Per-record
//! values are kept in arrival order through [`crate::placed`].
//!
//! Values pass through the store's [`Seal`]: the laptop's cipher seals a
//! whole pack as one value bound to its key; the server's values are plain.
//! A pack's key holds only a record id or a place, never a value.

use std::ops::Bound;

use rayon::prelude::*;
use returnee_shared::RecordId;
use returnee_shared::packs::{self, DamagedPack, PackKey, PackStore};

/// How a store turns stored values into plain ones and back.
pub trait Seal: Sync {
    type Error: From<sled::Error> + From<DamagedPack> + Send;
    /// The plain bytes of `value`, stored under `key`.
    fn open(&self, key: &[u8], value: sled::IVec) -> Result<sled::IVec, Self::Error>;
    /// The bytes to store under `key` for `plain`.
    fn seal(&self, key: &[u8], plain: Vec<u8>) -> Vec<u8>;
}

/// One kind of pack in one tree, sorted by `K`.
pub struct Packs<'a, S, K = RecordId> {
    pub tree: &'a sled::Tree,
    pub prefix: &'static [u8],
    /// Whether the first pack is written when the store is made, so that
    /// its absence is damage (otherwise there is none until a value lands).
    pub first_always_exists: bool,
    pub seal: &'a S,
    pub key: std::marker::PhantomData<K>,
}

impl<S, K> Clone for Packs<'_, S, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, K> Copy for Packs<'_, S, K> {}

impl<'a, S, K> Packs<'a, S, K> {
    pub const fn new(
        tree: &'a sled::Tree,
        prefix: &'static [u8],
        first_always_exists: bool,
        seal: &'a S,
    ) -> Self {
        Packs {
            tree,
            prefix,
            first_always_exists,
            seal,
            key: std::marker::PhantomData,
        }
    }
}

fn pack_key<K: PackKey>(prefix: &[u8], lower: K) -> Vec<u8> {
    [prefix, &lower.to_bytes()].concat()
}

fn bound_of<K: PackKey>(prefix: &[u8], key: &[u8]) -> Result<K, DamagedPack> {
    key.get(prefix.len()..)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(K::from_bytes)
        .ok_or(DamagedPack)
}

impl<S: Seal, K: PackKey> PackStore for Packs<'_, S, K> {
    type Key = K;
    type Error = S::Error;
    type Pack = sled::IVec;

    fn pack_holding(&self, id: K) -> Result<(K, sled::IVec), S::Error> {
        let range = pack_key(self.prefix, K::FIRST)..=pack_key(self.prefix, id);
        match self.tree.range(range).next_back() {
            Some(item) => {
                let (k, v) = item?;
                Ok((bound_of(self.prefix, &k)?, self.seal.open(&k, v)?))
            }
            None if self.first_always_exists => Err(DamagedPack.into()),
            // None yet: the first, empty.
            None => Ok((K::FIRST, sled::IVec::default())),
        }
    }

    fn pack_after(&self, lower: K) -> Result<Option<K>, S::Error> {
        let from = pack_key(self.prefix, lower);
        let end = pack_key(self.prefix, K::LAST);
        match self
            .tree
            .range::<&[u8], _>((Bound::Excluded(&from[..]), Bound::Included(&end[..])))
            .next()
        {
            Some(item) => Ok(Some(bound_of(self.prefix, &item?.0)?)),
            None => Ok(None),
        }
    }
}

impl<'a, S: Seal, K: PackKey + 'a> Packs<'a, S, K> {
    /// The key of this kind's first pack (written when a store is made, for
    /// a kind whose first pack always exists).
    pub fn first_key(&self) -> Vec<u8> {
        pack_key(self.prefix, K::FIRST)
    }

    /// The value under `key`.
    #[cfg(test)]
    pub fn get(&self, key: K) -> Result<Option<Vec<u8>>, S::Error> {
        packs::get(self, key)
    }

    /// The values of `keys` (sorted, each once), in their order: each pack
    /// read and opened once.
    pub fn get_many(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>, S::Error> {
        packs::get_many(self, keys)
    }

    /// Every value, in key order (a scan that keeps the page cache to its
    /// size: [`crate::db::weighed`]).
    pub fn scan(self) -> impl Iterator<Item = Result<(K, sled::IVec), S::Error>> + 'a {
        let (tree, seal) = (self.tree, self.seal);
        crate::db::weighed(tree, tree.scan_prefix(self.prefix)).flat_map(move |item| {
            match item
                .map_err(S::Error::from)
                .and_then(|(k, v)| seal.open(&k, v))
            {
                Err(e) => vec![Err(e)],
                Ok(pack) => packs::split(&pack, |at| pack.subslice(at.start, at.len())),
            }
        })
    }

    /// Stages `updates` (sorted by key, each key once; `None` removes) into
    /// `batch`, packs sealed on all cores. Returns the keys of the packs
    /// written. The caller holds a lock that keeps any other write from
    /// rewriting these packs until the batch is applied.
    pub fn stage(
        &self,
        batch: &mut sled::Batch,
        updates: &[(K, Option<Vec<u8>>)],
    ) -> Result<Vec<Vec<u8>>, S::Error> {
        let plan = packs::plan(self, updates)?;
        let sealed: Vec<(Vec<u8>, Option<Vec<u8>>)> = plan
            .into_par_iter()
            .with_min_len(16)
            .map(|(lower, pack)| {
                let key = pack_key(self.prefix, lower);
                let sealed = pack.map(|p| self.seal.seal(&key, p));
                (key, sealed)
            })
            .collect();
        let mut written = Vec::with_capacity(sealed.len());
        for (key, pack) in sealed {
            match pack {
                Some(p) => {
                    written.push(key.clone());
                    batch.insert(key, p);
                }
                None => batch.remove(key),
            }
        }
        Ok(written)
    }
}

/// Values stored as they are (the server's).
pub struct Plain<E>(std::marker::PhantomData<fn() -> E>);

impl<E> Plain<E> {
    pub const fn new() -> Self {
        Plain(std::marker::PhantomData)
    }
}

impl<E> Default for Plain<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: From<sled::Error> + From<DamagedPack> + Send> Seal for Plain<E> {
    type Error = E;
    fn open(&self, _: &[u8], value: sled::IVec) -> Result<sled::IVec, E> {
        Ok(value)
    }
    fn seal(&self, _: &[u8], plain: Vec<u8>) -> Vec<u8> {
        plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum E {
        Sled,
        Damaged,
    }
    impl From<sled::Error> for E {
        fn from(_: sled::Error) -> Self {
            E::Sled
        }
    }
    impl From<DamagedPack> for E {
        fn from(_: DamagedPack) -> Self {
            E::Damaged
        }
    }

    /// Seals by reversing the bytes and appending the key's last byte, so
    /// that a value read back unopened, or under another key, shows.
    struct Reverse;
    impl Seal for Reverse {
        type Error = E;
        fn open(&self, key: &[u8], value: sled::IVec) -> Result<sled::IVec, E> {
            let mut v = value.to_vec();
            if v.pop() != key.last().copied() {
                return Err(E::Damaged);
            }
            v.reverse();
            Ok(v.into())
        }
        fn seal(&self, key: &[u8], mut plain: Vec<u8>) -> Vec<u8> {
            plain.reverse();
            plain.extend(key.last());
            plain
        }
    }

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(n))
    }

    fn write<S: Seal>(db: &sled::Db, packs: &Packs<'_, S>, updates: &[(RecordId, Option<Vec<u8>>)])
    where
        S::Error: std::fmt::Debug,
    {
        let mut batch = sled::Batch::default();
        packs.stage(&mut batch, updates).unwrap();
        db.apply_batch(batch).unwrap();
    }

    #[test]
    fn values_in_any_order_read_back_sealed_and_scanned_in_id_order() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let packs = Packs::new(&db, b"X/", false, &Reverse);
        assert_eq!(packs.get(id(5)).unwrap(), None);
        // Three writes whose ids interleave, as an unsorted import's would.
        let n = 3 * packs::PACK_RECORDS as u128;
        for start in 0..3u128 {
            let updates: Vec<_> = (0..n / 3)
                .map(|i| (id(i * 3 + start), Some(vec![(i * 3 + start) as u8; 7])))
                .collect();
            write(&db, &packs, &updates);
        }
        for i in 0..n {
            assert_eq!(packs.get(id(i)).unwrap(), Some(vec![i as u8; 7]));
        }
        let ids: Vec<RecordId> = (0..n).map(id).collect();
        let many = packs.get_many(&ids).unwrap();
        assert!(
            many.iter()
                .enumerate()
                .all(|(i, v)| v.as_deref() == Some(&[i as u8; 7][..]))
        );
        let scanned: Vec<RecordId> = packs.scan().map(|r| r.unwrap().0).collect();
        assert_eq!(scanned, ids);
        // Removing every other value leaves the rest.
        let removals: Vec<_> = (0..n).step_by(2).map(|i| (id(i), None)).collect();
        write(&db, &packs, &removals);
        assert_eq!(packs.scan().count(), (n / 2) as usize);
        assert_eq!(packs.get(id(2)).unwrap(), None);
        assert_eq!(packs.get(id(3)).unwrap(), Some(vec![3; 7]));
        // Every stored byte went through the seal: no pack reads back as plain.
        for item in db.scan_prefix(b"X/") {
            let (_, v) = item.unwrap();
            assert!(packs::entries::<RecordId>(&v).is_err() || v.is_empty());
        }
    }

    #[test]
    fn a_missing_first_pack_is_damage_where_it_always_exists() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let plain = Plain::<E>::new();
        let packs = Packs::new(&db, b"p/", true, &plain);
        assert!(matches!(packs.get(id(1)), Err(E::Damaged)));
        db.insert(packs.first_key(), Vec::new()).unwrap();
        assert_eq!(packs.get(id(1)).unwrap(), None);
        db.insert(b"p/short", Vec::new()).unwrap();
        assert!(matches!(packs.get(id(u128::MAX)), Err(E::Damaged)));
        assert!(!matches!(packs.get(id(1)), Err(E::Sled)));
    }
}
