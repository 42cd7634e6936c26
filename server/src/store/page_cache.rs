//! Scans that keep sled's page cache within its bound.
//!
//! sled 0.34 weighs the pages it reads for eviction in batches: each of
//! its 256 cache shards notes 64 page accesses before it looks at them.
//! A range scan reads each leaf once (16 keys), so up to 16,000 leaves can
//! be read in before any of them is weighed: a pull of a million families
//! from a restarted server held about 270 MB of log pages against a cache
//! then set to 48 MB (a heap profile showed them as sled's deserialised nodes).
//! Reading each scanned key once more notes one more access of its leaf
//! per key, so a shard weighs what it holds every few leaves instead of
//! every few dozen: the same pull then peaks about 200 MB lower, for a
//! lookup per key (about a microsecond; a log key holds a few entries, a
//! pack key a few dozen records).

/// `scan`, with each key it yields read once more from `tree` (see the
/// module's docs). The second read's result is not used: the scan's own
/// item is what callers get.
pub(crate) fn weighed<'a>(
    tree: &'a sled::Tree,
    scan: sled::Iter,
) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a {
    scan.inspect(move |item| {
        if let Ok((key, _)) = item {
            let _ = tree.get(key);
        }
    })
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
}
