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

/// Why a store's format is not one this version reads.
#[derive(Debug)]
pub enum FormatError<E> {
    /// Written by another version: `found` is its format (0 when the store
    /// holds data but no format number: written before format 1).
    Unknown { found: u32 },
    /// A migration or a read failed.
    Store(E),
}

impl<E> From<sled::Error> for FormatError<E>
where
    E: From<sled::Error>,
{
    fn from(e: sled::Error) -> Self {
        FormatError::Store(e.into())
    }
}

/// The format this list of migrations leads to.
pub const fn current<E>(migrations: &[Migration<E>]) -> u32 {
    migrations.len() as u32 + 1
}

/// Reads the format of the store `db` under `key` and brings it up to the
/// current one. An empty store (`empty`) gets the current format written
/// (with the caller's first writes, if any, staged in `first`).
pub fn open<E: From<sled::Error>>(
    db: &sled::Db,
    key: &[u8],
    migrations: &[Migration<E>],
    empty: bool,
    first: sled::Batch,
) -> Result<Opened, FormatError<E>> {
    let current = current(migrations);
    let found = match db.get(key)? {
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| FormatError::Unknown { found: 0 })?,
        None if empty => {
            let mut batch = first;
            batch.insert(key, current.to_be_bytes().to_vec());
            db.apply_batch(batch)?;
            db.flush()?;
            return Ok(Opened::Created);
        }
        None => return Err(FormatError::Unknown { found: 0 }),
    };
    if found == current {
        return Ok(Opened::Current);
    }
    if found == 0 || found > current {
        return Err(FormatError::Unknown { found });
    }
    for (i, migrate) in migrations.iter().enumerate().skip(found as usize - 1) {
        migrate(db).map_err(FormatError::Store)?;
        db.insert(key, (i as u32 + 2).to_be_bytes().to_vec())?;
        db.flush()?;
    }
    Ok(Opened::Migrated { from: found })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"m/format";

    fn step_2(db: &sled::Db) -> Result<(), sled::Error> {
        db.insert(b"ran", b"2".to_vec()).map(drop)
    }
    fn step_3(db: &sled::Db) -> Result<(), sled::Error> {
        // Sees what step 2 left: migrations run in order.
        let before = db.get(b"ran")?.expect("step 2 ran first");
        db.insert(b"ran", [&before[..], b"3"].concat()).map(drop)
    }
    const MIGRATIONS: &[Migration<sled::Error>] = &[step_2, step_3];

    fn format_of(db: &sled::Db) -> u32 {
        u32::from_be_bytes(db.get(KEY).unwrap().unwrap().as_ref().try_into().unwrap())
    }

    #[test]
    fn an_empty_store_gets_the_current_format_with_its_first_writes() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut first = sled::Batch::default();
        first.insert(b"hello", b"x".to_vec());
        let opened = open(&db, KEY, MIGRATIONS, true, first).unwrap();
        assert_eq!(opened, Opened::Created);
        assert_eq!(format_of(&db), 3);
        assert!(db.get(b"hello").unwrap().is_some());
        assert_eq!(
            open(&db, KEY, MIGRATIONS, false, Default::default()).unwrap(),
            Opened::Current
        );
        assert!(db.get(b"ran").unwrap().is_none(), "no migration ran");
    }

    #[test]
    fn an_older_store_runs_each_later_migration_in_order() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(KEY, 1u32.to_be_bytes().to_vec()).unwrap();
        let opened = open(&db, KEY, MIGRATIONS, false, Default::default()).unwrap();
        assert_eq!(opened, Opened::Migrated { from: 1 });
        assert_eq!(format_of(&db), 3);
        assert_eq!(&db.get(b"ran").unwrap().unwrap()[..], b"23");

        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(KEY, 2u32.to_be_bytes().to_vec()).unwrap();
        db.insert(b"ran", b"2".to_vec()).unwrap();
        open(&db, KEY, MIGRATIONS, false, Default::default()).unwrap();
        assert_eq!(&db.get(b"ran").unwrap().unwrap()[..], b"23", "only step 3");
    }

    #[test]
    fn a_newer_or_unnumbered_store_is_refused_and_left_alone() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(KEY, 4u32.to_be_bytes().to_vec()).unwrap();
        assert!(matches!(
            open(&db, KEY, MIGRATIONS, false, Default::default()),
            Err(FormatError::Unknown { found: 4 })
        ));
        assert_eq!(format_of(&db), 4);

        let db = sled::Config::new().temporary(true).open().unwrap();
        db.insert(b"data", b"x".to_vec()).unwrap();
        assert!(matches!(
            open(&db, KEY, MIGRATIONS, false, Default::default()),
            Err(FormatError::Unknown { found: 0 })
        ));
        assert!(db.get(KEY).unwrap().is_none());
    }
}
