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
