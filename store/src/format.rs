//! Stored formats: each store writes its format's number under one key and
//! keeps one ordered list of migrations. Migration `i` of a list turns a
//! store of format `i + 1` into one of format `i + 2`, so a store's current
//! format is one more than the length of its list. Formats before the
//! first release were changed in place; the lists start empty at format 1.
//!
//! A migration must be safe to run again after a crash part way: the
//! format's number is written (and flushed) only after it returns.

/// One step of a store's migrations: turns the store from the format before
/// into the next.
pub type Migration<E> = fn(&sled::Db) -> Result<(), E>;

/// What opening found of a store's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// An empty store: the current format was written.
    Created,
    /// Already the current format.
    Current,
    /// Brought from format `from` to the current one.
    Migrated { from: u32 },
}

/// The format this list of migrations leads to.
pub const fn current<E>(migrations: &[Migration<E>]) -> u32 {
    migrations.len() as u32 + 1
}

/// Reads the format of the store `db` under `key` and brings it up to the
/// current one. An empty store (`empty`) gets the current format written
/// with the caller's first writes (`first`). A store of a format this
/// version does not read is left alone: `unknown` makes the store's error
/// from what was found (0 when the store holds data but no format number:
/// written before format 1).
pub fn open<E: From<sled::Error>>(
    db: &sled::Db,
    key: &[u8],
    migrations: &[Migration<E>],
    empty: bool,
    first: sled::Batch,
    unknown: impl FnOnce(u32) -> E,
) -> Result<Opened, E> {
    let current = current(migrations);
    let found = match db.get(key)? {
        Some(v) => match <[u8; 4]>::try_from(v.as_ref()) {
            Ok(b) => u32::from_be_bytes(b),
            Err(_) => return Err(unknown(0)),
        },
        None if empty => {
            let mut batch = first;
            batch.insert(key, current.to_be_bytes().to_vec());
            db.apply_batch(batch)?;
            db.flush()?;
            return Ok(Opened::Created);
        }
        None => return Err(unknown(0)),
    };
    if found == current {
        return Ok(Opened::Current);
    }
    if found == 0 || found > current {
        return Err(unknown(found));
    }
    for (i, migrate) in migrations.iter().enumerate().skip(found as usize - 1) {
        migrate(db)?;
        db.insert(key, (i as u32 + 2).to_be_bytes().to_vec())?;
        db.flush()?;
    }
    tracing::info!(from = found, to = current, "store format migrated");
    Ok(Opened::Migrated { from: found })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"m/format";

    #[derive(Debug)]
    enum E {
        Sled,
        Unknown(u32),
    }
    impl From<sled::Error> for E {
        fn from(_: sled::Error) -> Self {
            E::Sled
        }
    }

    fn step_2(db: &sled::Db) -> Result<(), E> {
        Ok(db.insert(b"ran", b"2".to_vec()).map(drop)?)
    }
    fn step_3(db: &sled::Db) -> Result<(), E> {
        // Sees what step 2 left: migrations run in order.
        let before = db.get(b"ran")?.expect("step 2 ran first");
        Ok(db.insert(b"ran", [&before[..], b"3"].concat()).map(drop)?)
    }
    const MIGRATIONS: &[Migration<E>] = &[step_2, step_3];

    fn open_it(db: &sled::Db, empty: bool, first: sled::Batch) -> Result<Opened, E> {
        open(db, KEY, MIGRATIONS, empty, first, E::Unknown)
    }

    fn format_of(db: &sled::Db) -> u32 {
        u32::from_be_bytes(db.get(KEY).unwrap().unwrap().as_ref().try_into().unwrap())
    }

    #[test]
    fn an_empty_store_gets_the_current_format_with_its_first_writes() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut first = sled::Batch::default();
        first.insert(b"hello", b"x".to_vec());
        let opened = open_it(&db, true, first).unwrap();
        assert_eq!(opened, Opened::Created);
        assert_eq!(format_of(&db), 3);
        assert!(db.get(b"hello").unwrap().is_some());
        assert_eq!(
            open_it(&db, false, Default::default()).unwrap(),
            Opened::Current
        );
        assert!(db.get(b"ran").unwrap().is_none(), "no migration ran");
    }

    #[test]
    fn an_older_store_runs_each_later_migration_in_order() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(KEY, 1u32.to_be_bytes().to_vec()).unwrap();
        let opened = open_it(&db, false, Default::default()).unwrap();
        assert_eq!(opened, Opened::Migrated { from: 1 });
        assert_eq!(format_of(&db), 3);
        assert_eq!(&db.get(b"ran").unwrap().unwrap()[..], b"23");

        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(KEY, 2u32.to_be_bytes().to_vec()).unwrap();
        db.insert(b"ran", b"2".to_vec()).unwrap();
        open_it(&db, false, Default::default()).unwrap();
        assert_eq!(&db.get(b"ran").unwrap().unwrap()[..], b"23", "only step 3");
    }

    #[test]
    fn a_newer_or_unnumbered_store_is_refused_and_left_alone() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(KEY, 4u32.to_be_bytes().to_vec()).unwrap();
        assert!(matches!(
            open_it(&db, false, Default::default()),
            Err(E::Unknown(4))
        ));
        assert_eq!(format_of(&db), 4);

        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(b"data", b"x".to_vec()).unwrap();
        assert!(matches!(
            open_it(&db, false, Default::default()),
            Err(E::Unknown(0))
        ));
        assert!(db.get(KEY).unwrap().is_none());
    }
}
