//! The server store's keyspace: every kind of key in its two trees, its
//! prefix, and what it holds. The one place a prefix is spelled;
//! ARCHITECTURE.md's keyspace registry lists the same.

/// A kind of key in the store's main tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `m/<name>`: `format`, `seq` (the last log position), `audit` (the
    /// audit trail's last sequence number and hash), `place` (the next free
    /// place of [`crate::placed`]): single keys, spelled whole below
    /// ([`FORMAT_KEY`], [`SEQ_KEY`], [`AUDIT_HEAD_KEY`], [`NEXT_PLACE_KEY`]).
    #[cfg_attr(not(test), allow(dead_code))]
    Meta,
    /// `l/<seq>`: a log chunk.
    Log,
    /// `p/<lower place>`: packs of record entries, in arrival order.
    Records,
    /// `i/<lower id>`: packs of each record's place ([`crate::placed`]).
    Places,
    /// `j/<run>`: places of records placed lately, waiting to be merged
    /// into the packs of `i/` ([`crate::placed::RUN_LIMIT`]).
    PlaceRuns,
    /// `c/<record>`: a record's open conflicts.
    Conflicts,
    /// `dev/<device>`: an enrolled device.
    Devices,
    /// `tok/<token hash>`: a device by its credential.
    Tokens,
    /// `code/<code hash>`: an enrollment code.
    Codes,
    /// `a/<seq>`: an audit entry.
    Audit,
    /// `ses/<device>`: a browser session's expiry (the device is the session).
    Sessions,
    /// `seen/<device>`: when a device was last heard from.
    Seen,
    /// `xn/<note id>`: a laptop's export note already in the audit trail.
    ExportNotes,
}

/// A kind of key in the duplicate index's tree (`duplicates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IndexKind {
    /// `b/<block hash><date><record>`: a block entry, valued with features.
    Blocks,
    /// `F/<lower place>`: packs of features, at the records' places.
    Features,
    /// `p/<pair id>`: an open candidate pair.
    Pairs,
    /// `r/<record><pair id>`: the pairs a record is in.
    Members,
    /// `x/<lower><higher>`: a dismissed pair.
    Dismissed,
    /// `state`: the index's version (a single key).
    State,
    /// `through`: the last log position taken in (a single key).
    Through,
}

impl Kind {
    #[cfg(test)]
    pub(super) const ALL: [Kind; 13] = [
        Kind::Meta,
        Kind::Log,
        Kind::Records,
        Kind::Places,
        Kind::PlaceRuns,
        Kind::Conflicts,
        Kind::Devices,
        Kind::Tokens,
        Kind::Codes,
        Kind::Audit,
        Kind::Sessions,
        Kind::Seen,
        Kind::ExportNotes,
    ];

    pub(super) const fn prefix(self) -> &'static [u8] {
        match self {
            Kind::Meta => b"m/",
            Kind::Log => b"l/",
            Kind::Records => b"p/",
            Kind::Places => b"i/",
            Kind::PlaceRuns => b"j/",
            Kind::Conflicts => b"c/",
            Kind::Devices => b"dev/",
            Kind::Tokens => b"tok/",
            Kind::Codes => b"code/",
            Kind::Audit => b"a/",
            Kind::Sessions => b"ses/",
            Kind::Seen => b"seen/",
            Kind::ExportNotes => b"xn/",
        }
    }

    /// The key of this kind made of `rest` after the prefix.
    pub(super) fn key(self, rest: &[u8]) -> Vec<u8> {
        crate::db::key(self.prefix(), &[rest])
    }
}

impl IndexKind {
    #[cfg(test)]
    pub(super) const ALL: [IndexKind; 7] = [
        IndexKind::Blocks,
        IndexKind::Features,
        IndexKind::Pairs,
        IndexKind::Members,
        IndexKind::Dismissed,
        IndexKind::State,
        IndexKind::Through,
    ];

    pub(super) const fn prefix(self) -> &'static [u8] {
        match self {
            IndexKind::Blocks => b"b/",
            IndexKind::Features => b"F/",
            IndexKind::Pairs => b"p/",
            IndexKind::Members => b"r/",
            IndexKind::Dismissed => b"x/",
            IndexKind::State => b"state",
            IndexKind::Through => b"through",
        }
    }

    /// The key of this kind made of `parts` after the prefix.
    pub(super) fn key(self, parts: &[&[u8]]) -> Vec<u8> {
        crate::db::key(self.prefix(), parts)
    }
}

/// The layout's version, under `m/format`.
pub(super) const FORMAT_KEY: &[u8] = b"m/format";
/// The last log position handed out.
pub(super) const SEQ_KEY: &[u8] = b"m/seq";
/// The audit trail's head: its last sequence number and hash.
pub(super) const AUDIT_HEAD_KEY: &[u8] = b"m/audit";
/// The next place a record placed in the store gets.
pub(super) const NEXT_PLACE_KEY: &[u8] = b"m/place";
/// The crossings added by admins (`returnee_shared::reference::CrossingList`).
pub(super) const CROSSINGS_KEY: &[u8] = b"m/crossings";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_kind_s_keys_fall_in_another_kind_s_scan() {
        let main: Vec<&[u8]> = Kind::ALL.iter().map(|k| k.prefix()).collect();
        let index: Vec<&[u8]> = IndexKind::ALL.iter().map(|k| k.prefix()).collect();
        for prefixes in [main, index] {
            for (i, a) in prefixes.iter().enumerate() {
                for (j, b) in prefixes.iter().enumerate() {
                    assert!(i == j || !b.starts_with(a), "{a:?} would read {b:?}");
                }
            }
        }
        for meta in [
            FORMAT_KEY,
            SEQ_KEY,
            AUDIT_HEAD_KEY,
            NEXT_PLACE_KEY,
            CROSSINGS_KEY,
        ] {
            assert!(meta.starts_with(Kind::Meta.prefix()));
        }
    }
}
