//! Per-record values kept in the order records arrived in a store, whatever
//! their ids.
//!
//! Record ids are not in arrival order: an imported family's id starts with
//! its crossing date, and a file or a pull brings dates in any order. Packs
//! in id order would rewrite a pack (several kilobytes) for nearly every
//! record of such a batch. Here each record gets a [`Place`] when it first
//! arrives (the store's count of records placed before it), its values lie
//! in packs sorted by place, so that new records append to the last pack of
//! each kind, and one index (packs of 24-byte entries sorted by record id)
//! says where each record lies. A record keeps its place until it is
//! forgotten (a laptop's purge).
//!
//! A place pack's entry is the record's id (16 bytes) then its value, so a
//! scan yields ids without the index. The caller holds the lock that
//! serialises the store's writes from the first read of [`Placement::stage`]
//! until the batch is applied (the laptop's commit lock, the server's
//! writer lock): a place is handed out once.

use returnee_shared::RecordId;
use returnee_shared::packs::{DamagedPack, Place};

use crate::packs::{Packs, Seal};

mod known_ids;

pub use known_ids::KnownIds;

/// Where each record of a store lies, and the next free place.
pub struct Placement<'a, S> {
    index: Packs<'a, S, RecordId>,
    /// The key of the next free place's number.
    next_key: &'static [u8],
    /// Where the index entries of records placed lately wait, in runs, and
    /// how many at most ([`Placement::with_runs`]); `None`: straight into
    /// the index's packs.
    runs: Option<(&'static [u8], usize)>,
    /// Which records may be placed ([`Placement::with_known_ids`]).
    known: Option<&'a KnownIds>,
}

/// Index entries waiting in runs at most, before they are merged into the
/// index's packs in one batch.
///
/// A batch of new records has ids all over the id space: written straight
/// into the index, it rewrites most of its packs (2,000 records into an
/// index of 100,000 rewrote about 1,300 packs of 1.3 KB each, a third of the
/// server's push). Runs take a batch's entries as a few keys, and a merge
/// rewrites each pack once for up to this many records. Every lookup reads
/// the runs (at most about 400 KB) whole.
pub const RUN_LIMIT: usize = 16 * 1024;

/// Entries in one key of a run: 6 KB, like a pack ([`returnee_shared::packs::PACK_BYTES`]).
const RUN_PIECE: usize = 256;

/// One entry of a run: the record's id, then its place (big-endian).
const RUN_ENTRY: usize = 24;

/// One kind of per-record value: packs in place order, in some tree.
pub type Kind<'a, S> = Packs<'a, S, Place>;

/// The values of some records, in their order (`None`: none stored).
pub type Values = Vec<Option<Vec<u8>>>;

/// Values set (`Some`) or removed (`None`) by record, sorted by id, each id
/// once: what one kind's part of a batch writes.
pub type Updates = [(RecordId, Option<Vec<u8>>)];

impl<'a, S: Seal> Placement<'a, S> {
    /// The placement whose index is the packs under `index_prefix` in `tree`
    /// (their first pack written when the store is made if
    /// `index_always_exists`, so that its absence is damage) and whose next
    /// free place is kept under `next_key`.
    pub const fn new(
        tree: &'a sled::Tree,
        seal: &'a S,
        index_prefix: &'static [u8],
        index_always_exists: bool,
        next_key: &'static [u8],
    ) -> Self {
        Placement {
            index: Packs::new(tree, index_prefix, index_always_exists, seal),
            next_key,
            runs: None,
            known: None,
        }
    }

    /// The same placement, whose new index entries wait in runs under
    /// `prefix` (in the index's tree) until more than `limit` would (the
    /// store's [`RUN_LIMIT`]), when they are merged into the index's packs; a
    /// record's place is in one or the other. A store written with runs
    /// must always be read with them.
    pub const fn with_runs(mut self, prefix: &'static [u8], limit: usize) -> Self {
        self.runs = Some((prefix, limit));
        self
    }

    /// The same placement, which looks records up in the index only when
    /// `known` says they may be placed, and notes there the records it
    /// places. Only for callers that hold the lock serialising the store's
    /// writes, and every write that places records goes through such a
    /// placement with the same `known`.
    pub const fn with_known_ids(mut self, known: &'a KnownIds) -> Self {
        self.known = Some(known);
        self
    }

    /// The key of the index's first pack, for a store to write when it is
    /// made.
    pub fn first_index_key(&self) -> Vec<u8> {
        self.index.first_key()
    }

    /// The places of `ids` (sorted, each once), in their order: `None` for a
    /// record this store has not placed.
    pub fn places(&self, ids: &[RecordId]) -> Result<Vec<Option<Place>>, S::Error> {
        let mut out = vec![None; ids.len()];
        let mut asked: Vec<usize> = (0..ids.len()).collect();
        if let Some(known) = self.known
            && known.worth_asking(ids.len(), || self.next_place())?
        {
            // A record the filter has not seen is in no run and no pack.
            let may = known.may_hold(ids, || {
                let runs = self.read_runs(true)?;
                let every = Packs::scan(self.index)
                    .map(|item| item.map(|(id, _)| id))
                    .chain(runs.entries.into_iter().map(|e| Ok(e.0)));
                Ok((self.next_place()?, every))
            })?;
            asked.retain(|i| may[*i]);
            if asked.is_empty() {
                return Ok(out);
            }
        }
        // The runs are not sorted: each entry is looked for among the ids
        // asked (sorted), so one lookup costs a pass over the runs, not a
        // sort of them.
        let wanted: Vec<RecordId> = asked.iter().map(|i| ids[*i]).collect();
        for (id, place) in self.read_runs(true)?.entries {
            if let Ok(k) = wanted.binary_search(&id) {
                out[asked[k]] = Some(place);
            }
        }
        asked.retain(|i| out[*i].is_none());
        let wanted: Vec<RecordId> = asked.iter().map(|i| ids[*i]).collect();
        for (i, place) in asked.into_iter().zip(self.packed_places(&wanted)?) {
            out[i] = place;
        }
        Ok(out)
    }

    /// The places of `ids` (sorted, each once) in the index's packs.
    fn packed_places(&self, ids: &[RecordId]) -> Result<Vec<Option<Place>>, S::Error> {
        self.index
            .get_many(ids)?
            .into_iter()
            .map(|v| v.map(|v| slot_of(&v)).transpose())
            .collect::<Result<_, DamagedPack>>()
            .map_err(S::Error::from)
    }

    /// The runs' keys and number of entries, and with `entries` every run's
    /// entries, in no order.
    fn read_runs(&self, entries: bool) -> Result<Runs, S::Error> {
        let mut runs = Runs::default();
        let Some((prefix, _)) = self.runs else {
            return Ok(runs);
        };
        for item in self.index.tree.scan_prefix(prefix) {
            let (key, value) = item?;
            let plain = self.index.seal.open(&key, value)?;
            if plain.len() % RUN_ENTRY != 0 {
                return Err(DamagedPack.into());
            }
            runs.count += plain.len() / RUN_ENTRY;
            runs.keys.push(key.to_vec());
            if !entries {
                continue;
            }
            runs.entries.extend(plain.chunks_exact(RUN_ENTRY).map(|e| {
                let id = RecordId(uuid::Uuid::from_bytes(
                    e[..16].try_into().expect("16 bytes"),
                ));
                let place = Place(u64::from_be_bytes(e[16..].try_into().expect("8 bytes")));
                (id, place)
            }));
        }
        Ok(runs)
    }

    /// Stages index entries (`index`: new places, and removals), with runs
    /// ([`Placement::with_runs`]): the new places as a run, or, when the runs
    /// would then hold more than their limit or a record leaves,
    /// every run and these merged into the packs. Returns the keys of the
    /// packs written.
    fn stage_index(
        &self,
        batch: &mut sled::Batch,
        index: Vec<(RecordId, Option<Vec<u8>>)>,
    ) -> Result<Vec<Vec<u8>>, S::Error> {
        let Some((prefix, limit)) = self.runs else {
            return self.index.stage(batch, &index);
        };
        let runs = self.read_runs(false)?;
        let leaving = index.iter().any(|e| e.1.is_none());
        if !leaving && runs.count + index.len() <= limit {
            let next = runs.keys.last().map_or(0, |k| run_number(prefix, k) + 1);
            for (i, piece) in index.chunks(RUN_PIECE).enumerate() {
                let key = crate::db::key(prefix, &[&(next + i as u64).to_be_bytes()]);
                let mut plain = Vec::with_capacity(piece.len() * RUN_ENTRY);
                for (id, place) in piece {
                    plain.extend_from_slice(id.0.as_bytes());
                    plain.extend_from_slice(place.as_deref().expect("a new place"));
                }
                let sealed = self.index.seal.seal(&key, plain);
                batch.insert(key, sealed);
            }
            return Ok(Vec::new());
        }
        // The runs' entries are in no pack: the batch's own entries win
        // (a record that leaves may be in a run).
        let runs = self.read_runs(true)?;
        let mut merged: std::collections::BTreeMap<RecordId, Option<Vec<u8>>> = runs
            .entries
            .iter()
            .map(|(id, place)| (*id, Some(place.0.to_be_bytes().to_vec())))
            .collect();
        merged.extend(index);
        for key in runs.keys {
            batch.remove(key);
        }
        let merged: Vec<(RecordId, Option<Vec<u8>>)> = merged.into_iter().collect();
        self.index.stage(batch, &merged)
    }

    /// The value of record `id` in `kind`.
    pub fn get(&self, kind: Kind<'_, S>, id: RecordId) -> Result<Option<Vec<u8>>, S::Error> {
        Ok(self.get_many(kind, &[id])?.pop().flatten())
    }

    /// The values of `ids` (sorted, each once) in `kind`, in their order:
    /// each pack read and opened once.
    pub fn get_many(
        &self,
        kind: Kind<'_, S>,
        ids: &[RecordId],
    ) -> Result<Vec<Option<Vec<u8>>>, S::Error> {
        Ok(self.get_many_placed(kind, ids)?.1)
    }

    /// [`Placement::get_many`], with the places it found: a caller that
    /// stages these records next, under the same lock, hands them to
    /// [`Placement::stage_knowing`] rather than reading the index again.
    pub fn get_many_placed(
        &self,
        kind: Kind<'_, S>,
        ids: &[RecordId],
    ) -> Result<(Known, Values), S::Error> {
        let places = self.places(ids)?;
        let mut wanted: Vec<(Place, usize)> = places
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (s, i)))
            .collect();
        wanted.sort_unstable();
        let keys: Vec<Place> = wanted.iter().map(|w| w.0).collect();
        let mut out = vec![None; ids.len()];
        for ((_, i), value) in wanted.iter().zip(kind.get_many(&keys)?) {
            out[*i] = value
                .map(|v| value_of(ids[*i], v))
                .transpose()
                .map_err(S::Error::from)?;
        }
        let known = Known {
            ids: ids.to_vec(),
            places,
        };
        Ok((known, out))
    }

    /// Stages the updates of each kind into `batch`: records not placed yet
    /// get the next places, the records in `forget` (whose values the caller
    /// removes from every kind in this batch) leave the index. Returns the
    /// keys of the packs written.
    pub fn stage(
        &self,
        batch: &mut sled::Batch,
        kinds: &[(Kind<'_, S>, &Updates)],
        forget: &[RecordId],
    ) -> Result<Vec<Vec<u8>>, S::Error> {
        self.stage_knowing(batch, kinds, forget, &Known::default())
    }

    /// [`Placement::stage`], with the places of some records already read
    /// (`known`, under the lock held since): only the others are looked up
    /// in the index. A batch of new records reads the index packs they
    /// fall in once rather than twice.
    pub fn stage_knowing(
        &self,
        batch: &mut sled::Batch,
        kinds: &[(Kind<'_, S>, &Updates)],
        forget: &[RecordId],
        known: &Known,
    ) -> Result<Vec<Vec<u8>>, S::Error> {
        let mut ids: Vec<RecordId> = kinds
            .iter()
            .flat_map(|(_, u)| u.iter().map(|u| u.0))
            .chain(forget.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut places = self.places_knowing(&ids, known)?;
        let setting: std::collections::HashSet<RecordId> = kinds
            .iter()
            .flat_map(|(_, u)| u.iter().filter(|u| u.1.is_some()).map(|u| u.0))
            .collect();
        let mut next = self.next_place()?;
        let first_free = next;
        let mut index: Vec<(RecordId, Option<Vec<u8>>)> = Vec::new();
        for (id, place) in ids.iter().zip(places.iter_mut()) {
            if place.is_none() && setting.contains(id) {
                *place = Some(Place(next));
                index.push((*id, Some(next.to_be_bytes().to_vec())));
                next += 1;
            } else if place.is_some() && forget.binary_search(id).is_ok() {
                index.push((*id, None));
            }
        }
        if let Some(known) = self.known {
            known.note(
                index
                    .iter()
                    .filter(|e| e.1.is_some())
                    .map(|e| e.0)
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
        }
        let mut written = Vec::new();
        for (kind, updates) in kinds {
            let mut placed: Vec<(Place, Option<Vec<u8>>)> = updates
                .iter()
                .filter_map(|(id, value)| {
                    let at = ids.binary_search(id).ok()?;
                    let place = places[at]?;
                    Some((place, value.as_ref().map(|v| entry(*id, v))))
                })
                .collect();
            placed.sort_unstable_by_key(|p| p.0);
            written.extend(kind.stage(batch, &placed)?);
        }
        if !index.is_empty() {
            written.extend(self.stage_index(batch, index)?);
        }
        if next != first_free {
            let key = self.next_key;
            batch.insert(key, self.index.seal.seal(key, next.to_be_bytes().to_vec()));
        }
        Ok(written)
    }

    /// Stages `updates` of `kind` (sorted by id, each id once) for records
    /// this store has placed already (a projection's values of records
    /// another batch wrote); a value for a record not placed is damage.
    /// Returns the
    /// keys of the packs written.
    pub fn stage_placed(
        &self,
        batch: &mut sled::Batch,
        kind: Kind<'_, S>,
        updates: &Updates,
    ) -> Result<Vec<Vec<u8>>, S::Error> {
        let ids: Vec<RecordId> = updates.iter().map(|u| u.0).collect();
        let mut placed = Vec::with_capacity(updates.len());
        for ((id, value), place) in updates.iter().zip(self.places(&ids)?) {
            match (place, value) {
                (Some(place), value) => placed.push((place, value.as_ref().map(|v| entry(*id, v)))),
                // Nothing stored to remove.
                (None, None) => {}
                (None, Some(_)) => return Err(DamagedPack.into()),
            }
        }
        placed.sort_unstable_by_key(|p| p.0);
        kind.stage(batch, &placed)
    }

    /// Every value in `kind`, with its record's id, in the order records
    /// arrived.
    pub fn scan(
        kind: Kind<'a, S>,
    ) -> impl Iterator<Item = Result<(RecordId, sled::IVec), S::Error>> + 'a {
        kind.scan().map(|item| {
            let (_, v) = item?;
            let id = v
                .get(..16)
                .and_then(|b| <[u8; 16]>::try_from(b).ok())
                .map(|b| RecordId(uuid::Uuid::from_bytes(b)))
                .ok_or(DamagedPack)?;
            Ok((id, v.subslice(16, v.len() - 16)))
        })
    }

    /// The places of `ids` (sorted, each once), from `known` where it has
    /// them, else from the index.
    fn places_knowing(
        &self,
        ids: &[RecordId],
        known: &Known,
    ) -> Result<Vec<Option<Place>>, S::Error> {
        let found: Vec<Option<Option<Place>>> = ids
            .iter()
            .map(|id| known.ids.binary_search(id).ok().map(|i| known.places[i]))
            .collect();
        let missing: Vec<RecordId> = ids
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(id, _)| *id)
            .collect();
        let mut looked_up = self.places(&missing)?.into_iter();
        Ok(found
            .into_iter()
            .map(|f| f.unwrap_or_else(|| looked_up.next().flatten()))
            .collect())
    }

    fn next_place(&self) -> Result<u64, S::Error> {
        let Some(stored) = self.index.tree.get(self.next_key)? else {
            return Ok(0);
        };
        let plain = self.index.seal.open(self.next_key, stored)?;
        Ok(slot_of(&plain)?.0)
    }
}

/// The entries of every run, sorted by id, and the runs' keys in order.
#[derive(Default)]
struct Runs {
    entries: Vec<(RecordId, Place)>,
    /// Entries in every run (read or not).
    count: usize,
    keys: Vec<Vec<u8>>,
}

/// The number of the run key `key` under `prefix`.
fn run_number(prefix: &[u8], key: &[u8]) -> u64 {
    key.get(prefix.len()..)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Places read from the index ([`Placement::get_many_placed`]): `ids`
/// sorted, each once, and the place of each (`None`: not placed).
#[derive(Debug, Default)]
pub struct Known {
    ids: Vec<RecordId>,
    places: Vec<Option<Place>>,
}

fn slot_of(v: &[u8]) -> Result<Place, DamagedPack> {
    <[u8; 8]>::try_from(v)
        .map(|b| Place(u64::from_be_bytes(b)))
        .map_err(|_| DamagedPack)
}

fn entry(id: RecordId, value: &[u8]) -> Vec<u8> {
    [id.0.as_bytes(), value].concat()
}

/// The value of a place pack's entry, which must be `id`'s.
fn value_of(id: RecordId, mut entry: Vec<u8>) -> Result<Vec<u8>, DamagedPack> {
    if entry.get(..16) != Some(id.0.as_bytes()) {
        return Err(DamagedPack);
    }
    entry.drain(..16);
    Ok(entry)
}

#[cfg(test)]
mod tests;
