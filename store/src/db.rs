//! Opening a sled database, and scans that keep its page cache to its size:
//! what both stores do the same way.

use std::path::Path;
use std::time::{Duration, Instant};

/// Why a database did not open.
#[derive(Debug)]
pub enum OpenError {
    /// Another handle (another process, or this one) holds the store's lock.
    InUse,
    /// sled found its files damaged or of a form it does not read.
    Corrupt(sled::Error),
    /// Any other failure (I/O).
    Other(sled::Error),
}

/// How long `open` waits for a lock held by another handle: sled 0.34 can
/// still hold a store's lock for a moment after the handle that took it is
/// dropped (its issues 1234 and 1289).
const LOCK_WAIT: Duration = Duration::from_millis(1500);

/// Opens the sled database in `dir` with a page cache of `cache_bytes`
/// (what sled counts is the pages' size on disk; in memory they take more).
pub fn open(dir: &Path, cache_bytes: u64) -> Result<sled::Db, OpenError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if is_lock_conflict(&e) => {
                if Instant::now() >= deadline {
                    return Err(OpenError::InUse);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e @ (sled::Error::Corruption { .. } | sled::Error::Unsupported(_))) => {
                return Err(OpenError::Corrupt(e));
            }
            Err(e) => return Err(OpenError::Other(e)),
        }
    }
}

/// Whether sled failed to open because another handle holds the store's
/// lock. sled 0.34 wraps the OS's `WouldBlock` in an I/O error of kind
/// `Other` ("could not acquire lock on …"), so the kind alone does not tell.
fn is_lock_conflict(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.to_string().starts_with("could not acquire lock")
}

/// A key: `prefix`, then `parts` in order (each store's `keys::Kind` names
/// the prefixes).
pub(crate) fn key(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>());
    k.extend_from_slice(prefix);
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// `scan`, with each key it yields read once more from `tree`.
///
/// sled 0.34 weighs the pages it reads for eviction in batches: each of its
/// 256 cache shards notes 64 page accesses before it looks at them. A range
/// scan reads each leaf (16 keys) once, so up to 16,000 leaves can be read
/// in before any is weighed, and a long scan (a pull or a report over a
/// million families) would hold hundreds of megabytes past the cache's
/// size. The second read notes one more access per key, so a shard weighs
/// what it holds every few leaves; it costs a lookup per key (about a
/// microsecond). The second read's result is not used.
pub fn weighed<'a>(
    tree: &'a sled::Tree,
    scan: sled::Iter,
) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a {
    scan.inspect(move |item| {
        if let Ok((key, _)) = item {
            let _ = tree.get(key);
        }
    })
}

/// Copies every tree of `from` into `to` (a fresh database), in batches:
/// what an erasure's rewrite does, so that no byte `from` once held and
/// no longer does survives in `to`'s files. Returns the keys copied.
pub fn copy_into(from: &sled::Db, to: &sled::Db) -> sled::Result<u64> {
    // A batch of up to 10,000 keys or 4 MB (a laptop's packs are tens of
    // kilobytes each). Written pages stay in memory until flushed, whatever
    // the cache's size: flushed every 32 MB, so that a copy of a large
    // store stays within the process's memory budget.
    const BATCH_KEYS: usize = 10_000;
    const BATCH_BYTES: usize = 1 << 20;
    const FLUSH_BYTES: usize = 8 << 20;
    // Bulk work: freed pages go back to the system soon (`returnee_memory`).
    let _purge = returnee_memory::EagerPurge::after(10);
    let mut copied = 0;
    let mut unflushed = 0;
    for name in from.tree_names() {
        let (src, dst) = (from.open_tree(&name)?, to.open_tree(&name)?);
        let mut batch = sled::Batch::default();
        let mut keys: Vec<Vec<u8>> = Vec::with_capacity(BATCH_KEYS);
        let mut bytes = 0;
        let mut write = |batch: &mut sled::Batch, keys: &mut Vec<Vec<u8>>, bytes: &mut usize| {
            dst.apply_batch(std::mem::take(batch))?;
            // As a store's writes do: pages noted once would stay in
            // memory unweighed.
            weigh_written(&dst, keys);
            copied += keys.len() as u64;
            keys.clear();
            unflushed += std::mem::take(bytes);
            if unflushed >= FLUSH_BYTES {
                to.flush()?;
                unflushed = 0;
            }
            Ok::<(), sled::Error>(())
        };
        for item in weighed(&src, src.iter()) {
            let (k, v) = item?;
            bytes += k.len() + v.len();
            keys.push(k.to_vec());
            batch.insert(k, v);
            if keys.len() == BATCH_KEYS || bytes >= BATCH_BYTES {
                write(&mut batch, &mut keys, &mut bytes)?;
            }
        }
        write(&mut batch, &mut keys, &mut bytes)?;
    }
    to.flush()?;
    Ok(copied)
}

/// Reads each of `keys` a few times more, for the same reason as
/// [`weighed`]: pages a batch wrote are otherwise noted once, and thousands
/// of them could stay in memory unweighed.
pub fn weigh_written(tree: &sled::Tree, keys: &[Vec<u8>]) {
    for key in keys {
        for _ in 0..3 {
            let _ = tree.get(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_holds_every_tree_and_none_of_the_overwritten_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let old = open(&dir.path().join("old"), 1 << 20).unwrap();
        old.insert(b"name", b"Zarghona Wardak".to_vec()).unwrap();
        old.insert(b"name", b"(erased)".to_vec()).unwrap();
        let other = old.open_tree("duplicates").unwrap();
        for i in 0u32..25_000 {
            other.insert(i.to_be_bytes(), vec![7; 10]).unwrap();
        }
        old.flush().unwrap();
        let new = open(&dir.path().join("new"), 1 << 20).unwrap();
        assert_eq!(copy_into(&old, &new).unwrap(), 25_001);
        assert_eq!(new.get(b"name").unwrap().unwrap(), b"(erased)".as_slice());
        assert_eq!(new.open_tree("duplicates").unwrap().len(), 25_000);
        drop(new);
        let mut bytes = Vec::new();
        for entry in crate::files_under(&dir.path().join("new")) {
            bytes.extend(std::fs::read(entry).unwrap());
        }
        assert!(!bytes.windows(8).any(|w| w == b"Zarghona"));
    }

    #[test]
    fn a_weighed_scan_yields_what_the_scan_yields_in_order() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        for i in 0u32..2000 {
            db.insert(i.to_be_bytes(), vec![i as u8; (i % 50) as usize])
                .unwrap();
        }
        let plain: Vec<_> = db
            .range(100u32.to_be_bytes()..)
            .map(Result::unwrap)
            .collect();
        let weighed: Vec<_> = weighed(&db, db.range(100u32.to_be_bytes()..))
            .map(Result::unwrap)
            .collect();
        assert_eq!(weighed.len(), 1900);
        assert_eq!(weighed, plain);
    }

    #[test]
    fn a_second_open_of_a_database_in_use_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let _db = open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(open(dir.path(), 1 << 20), Err(OpenError::InUse)));
    }
}
