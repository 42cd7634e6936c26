//! The crossings this laptop learnt from the server (`m/crossings`, the
//! server's versioned list) and the codes it accepted offline before
//! learning them (`m/provisional_crossings`), with the report rows of the
//! families recorded there made once the code is learnt.

use std::collections::HashSet;

use returnee_shared::reference::CrossingList;

use super::*;

const META_CROSSINGS: &str = "crossings";
const META_PROVISIONAL: &str = "provisional_crossings";

impl LocalStore {
    /// The crossings learnt from the server (version 0: none yet).
    pub fn learnt_crossings(&self) -> Result<CrossingList> {
        Ok(self.meta(META_CROSSINGS)?.unwrap_or_default())
    }

    /// Codes accepted offline and not learnt yet.
    pub fn provisional_crossings(&self) -> Result<Vec<String>> {
        Ok(self.meta(META_PROVISIONAL)?.unwrap_or_default())
    }

    /// Remembers a code accepted offline (once).
    pub fn add_provisional_crossing(&self, code: &str) -> Result<()> {
        let mut codes = self.provisional_crossings()?;
        if !codes.iter().any(|c| c == code) {
            codes.push(code.to_string());
            self.set_meta(META_PROVISIONAL, &codes)?;
        }
        Ok(())
    }

    /// Keeps the server's list, and makes the report rows of the families
    /// recorded at codes that were provisional and are learnt now (they
    /// had none: a provisional code has no place in the stored rows).
    /// Returns the codes learnt that were provisional. The caller has
    /// handed `list` to `returnee_shared::reference::learn` first.
    pub fn set_learnt_crossings(&self, list: &CrossingList) -> Result<Vec<String>> {
        let provisional = self.provisional_crossings()?;
        let (learnt, still): (Vec<String>, Vec<String>) = provisional
            .into_iter()
            .partition(|code| list.crossings.iter().any(|c| c.code == *code));
        if !learnt.is_empty() {
            let codes: HashSet<&str> = learnt.iter().map(String::as_str).collect();
            let lock = self.write_lock();
            let mut w = self.writes();
            for item in self.record_docs() {
                let (id, doc) = item?;
                let at_learnt = doc
                    .view(id)
                    .family
                    .is_some_and(|f| codes.contains(f.fields.crossing.as_str()));
                if at_learnt {
                    Self::stage_doc(&mut w, id, &doc);
                }
            }
            self.commit(&lock, w)?;
        }
        self.set_meta(META_PROVISIONAL, &still)?;
        self.set_meta(META_CROSSINGS, list)?;
        Ok(learnt)
    }
}
