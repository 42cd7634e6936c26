//! `returnee review`: a supervisor or admin marks a family `approved`,
//! `has-issues` or `sent-back` (the last two with a note for the worker);
//! the worker marks it `resubmitted` once fixed. The review is a field of
//! the family: saved here as an edit, it syncs and merges like one (the
//! server checks the role again, by the same access policy).

use returnee_shared::access::Action;
use returnee_shared::{FieldValue, Review, ReviewState};

use crate::cli::ReviewArgs;
use crate::commands::{authorize_local, now, open_store, today};
use crate::config::Config;
use crate::error::CliError;

pub fn run(args: ReviewArgs, config: &Config) -> Result<(), CliError> {
    let state = ReviewState::parse(&args.state).ok_or_else(|| {
        CliError::Usage(format!(
            "--state '{}' is not a review state; use one of {}",
            args.state,
            ReviewState::allowed()
        ))
    })?;
    let note = args
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if note.is_none() && matches!(state, ReviewState::HasIssues | ReviewState::SentBack) {
        return Err(CliError::Usage(format!(
            "--state {state} needs --note TEXT saying what to fix"
        )));
    }
    let store = open_store(config)?;
    let id = store.resolve_id(&args.id)?;
    authorize_local(&store, Action::SetReview(state))?;
    let review = Review { state, note };
    let changed = store.edit(
        id,
        vec![FieldValue::Review(Some(review.clone()))],
        today(),
        now(),
    )?;
    if changed.is_empty() {
        println!("{id}: already {review}");
    } else {
        println!("{id}: {review} (`returnee sync` sends it)");
    }
    Ok(())
}
