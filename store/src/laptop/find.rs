//! Finding families as a person asks for them, and where each stands with
//! the server.
//!
//! [`LocalStore::find`] reads only the duplicate features every family that
//! counts keeps (sealed like every value): a document number is compared
//! with their normalised numbers, and a name with their canonical name
//! tokens, with the detector's own normalisation and similarity
//! (`returnee_shared::duplicates`). Deleted and merged families have no
//! features, so they are not found.

use std::collections::{HashMap, HashSet};

use returnee_shared::RecordId;
use returnee_shared::duplicates::{name_similarity, name_tokens, normalize_doc};

use super::duplicates::decode_features;
use super::record_packs::FEATURES;
use super::{LocalStore, Result};

/// How alike a name must be to the words asked for to be found.
pub const NAME_THRESHOLD: f64 = 0.85;

/// A family found, and how well it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub id: RecordId,
    /// 1 for a document number, else the name's similarity (0 to 1).
    pub score: f64,
    /// Found by its document number.
    pub by_document: bool,
}

/// Where a family stands with the server, as this laptop knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Changes made here that the server has not acknowledged yet.
    SavedHereOnly,
    /// A change of it was refused by the server (kept here).
    Refused,
    /// Everything of it is on the server (or it came from there).
    Sent,
}

impl SyncState {
    /// The words tables show.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::SavedHereOnly => "saved here only",
            SyncState::Refused => "refused",
            SyncState::Sent => "sent",
        }
    }
}

/// The sync state of every family that is not simply [`SyncState::Sent`].
#[derive(Debug, Clone, Default)]
pub struct SyncStates(HashMap<RecordId, SyncState>);

impl SyncStates {
    pub fn of(&self, id: RecordId) -> SyncState {
        self.0.get(&id).copied().unwrap_or(SyncState::Sent)
    }
}

/// How well a name's tokens match the tokens asked for: each word asked
/// for must be like one of the name's (the weakest counts), and a whole
/// name that matches ranks above a name that only contains the words.
fn name_score(asked: &[String], name: &[String]) -> Option<f64> {
    let whole = name_similarity(asked, name)?;
    let part = asked
        .iter()
        .map(|a| {
            name.iter()
                .filter_map(|t| name_similarity(std::slice::from_ref(a), std::slice::from_ref(t)))
                .fold(0.0, f64::max)
        })
        .fold(1.0, f64::min);
    Some(whole.max(part * 0.95))
}

impl LocalStore {
    /// The families that count whose document number is `text` (as
    /// normalised) or whose head's name is like it, best first.
    pub fn find(&self, text: &str) -> Result<Vec<Found>> {
        let mut found: HashMap<RecordId, Found> = HashMap::new();
        let doc = normalize_doc(text);
        let asked = name_tokens(text);
        for item in self.scan_packed(FEATURES) {
            let (id, v) = item?;
            let features = decode_features(&v)?;
            if doc.is_some() && features.doc == doc {
                found.insert(
                    id,
                    Found {
                        id,
                        score: 1.0,
                        by_document: true,
                    },
                );
                continue;
            }
            if asked.is_empty() {
                continue;
            }
            if let Some(score) = name_score(&asked, &features.name)
                && score >= NAME_THRESHOLD
            {
                found.insert(
                    id,
                    Found {
                        id,
                        score,
                        by_document: false,
                    },
                );
            }
        }
        let mut out: Vec<Found> = found.into_values().collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.id.cmp(&a.id)));
        Ok(out)
    }

    /// The id of every record this laptop holds, deleted ones included, in
    /// the order they arrived here.
    pub fn record_ids(&self) -> impl Iterator<Item = Result<RecordId>> + '_ {
        self.scan_packed(super::DOCS)
            .map(|item| item.map(|(id, _)| id))
    }

    /// Where every family stands with the server: those with changes still
    /// in the push queue, and those with a change the server refused.
    pub fn sync_states(&self) -> Result<SyncStates> {
        let mut states: HashMap<RecordId, SyncState> = self
            .queued_records()?
            .into_iter()
            .map(|id| (id, SyncState::SavedHereOnly))
            .collect();
        let refused: HashSet<RecordId> =
            self.held()?.into_iter().map(|(op, _)| op.record).collect();
        for id in refused {
            states.insert(id, SyncState::Refused);
        }
        Ok(SyncStates(states))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<String> {
        name_tokens(s)
    }

    #[test]
    fn a_whole_name_ranks_above_a_name_that_contains_the_words() {
        let asked = tokens("Gul Khan");
        let whole = name_score(&asked, &tokens("Gul")).unwrap();
        let part = name_score(&asked, &tokens("Gul Mohammad Khan")).unwrap();
        assert!(whole > part, "{whole} > {part}");
        assert!(part >= NAME_THRESHOLD);
        let spelled = name_score(&tokens("Mohammed Gul"), &tokens("Muhammad Gul")).unwrap();
        assert!(spelled >= NAME_THRESHOLD, "{spelled}");
        let other = name_score(&tokens("Abdul Karim"), &tokens("Abdul Rahman")).unwrap();
        assert!(other < NAME_THRESHOLD, "{other}");
    }
}
