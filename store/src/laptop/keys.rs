//! The laptop store's keyspace: every kind of key, its prefix, and what it
//! holds. The one place a prefix is spelled; ARCHITECTURE.md's keyspace
//! registry lists the same.

/// A kind of key in the laptop's tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `m/<name>`: metadata (device, enrollment, cursor, queue counters,
    /// next place, encryption header, format).
    Meta,
    /// `D/<lower place>`: packs of records' operations, in arrival order.
    Docs,
    /// `S/<lower place>`: packs of the report rows of families that count.
    Rows,
    /// `F/<lower place>`: packs of the duplicate index's features.
    Features,
    /// `I/<lower id>`: packs of each record's place ([`crate::placed`]).
    Places,
    /// `J/<run>`: places of records placed lately, waiting to be merged
    /// into the packs of `I/` ([`crate::placed::RUN_LIMIT`]).
    PlaceRuns,
    /// `c/<record>`: a record's open conflicts.
    Conflicts,
    /// `q/<seq>`: a push queue entry.
    Queue,
    /// `qd/<seq>`: how many leading operations of an entry are acknowledged.
    QueueDone,
    /// `h/<op id>`: an operation the server refused, with the reason.
    Held,
    /// `g/<record>`: a family purged from this laptop.
    Purged,
    /// `x/<lower><higher>`: a pair dismissed as not the same family.
    Dismissed,
    /// `e/<note id>`: an export from this store the server has not yet
    /// written to its audit trail.
    ExportNotes,
    /// `r/<number>`: values of records changed lately, waiting to be
    /// written into their packs ([`super::recent`]).
    Recent,
}

impl Kind {
    #[cfg(test)]
    pub(super) const ALL: [Kind; 14] = [
        Kind::Meta,
        Kind::Docs,
        Kind::Rows,
        Kind::Features,
        Kind::Places,
        Kind::PlaceRuns,
        Kind::Conflicts,
        Kind::Queue,
        Kind::QueueDone,
        Kind::Held,
        Kind::Purged,
        Kind::Dismissed,
        Kind::ExportNotes,
        Kind::Recent,
    ];

    pub(super) const fn prefix(self) -> &'static [u8] {
        match self {
            Kind::Meta => b"m/",
            Kind::Docs => b"D/",
            Kind::Rows => b"S/",
            Kind::Features => b"F/",
            Kind::Places => b"I/",
            Kind::PlaceRuns => b"J/",
            Kind::Conflicts => b"c/",
            Kind::Queue => b"q/",
            Kind::QueueDone => b"qd/",
            Kind::Held => b"h/",
            Kind::Purged => b"g/",
            Kind::Dismissed => b"x/",
            Kind::ExportNotes => b"e/",
            Kind::Recent => b"r/",
        }
    }

    /// The key of this kind made of `parts` after the prefix.
    pub(super) fn key(self, parts: &[&[u8]]) -> Vec<u8> {
        crate::db::key(self.prefix(), parts)
    }
}

/// The next place a record placed on this laptop gets (a meta key).
pub(super) const NEXT_PLACE_KEY: &[u8] = b"m/next_place";

/// The number the next `r/` key gets ([`super::recent`]; a meta key).
pub(super) const RECENT_NEXT_KEY: &[u8] = b"m/recent_next";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kind_s_keys_fall_in_another_kind_s_scan() {
        for a in Kind::ALL {
            for b in Kind::ALL {
                if a != b {
                    assert!(
                        !b.prefix().starts_with(a.prefix()),
                        "a scan of {a:?} would also read {b:?}"
                    );
                }
            }
        }
        assert!(NEXT_PLACE_KEY.starts_with(Kind::Meta.prefix()));
        assert!(RECENT_NEXT_KEY.starts_with(Kind::Meta.prefix()));
    }
}
