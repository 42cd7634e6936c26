//! `returnee erase`: a supervisor or admin erases a family's personal data
//! (its head's name, document number, notes, vulnerabilities and
//! referral) at the family's request. Here at once, with the store's files
//! rewritten; on the server and every other laptop at their next sync.
//! The family still counts. It cannot be undone, so it is asked on a
//! terminal, and a script must say `--yes`.

use returnee_shared::access::Action;
use returnee_shared::merge::erasure::MAX_REASON;

use crate::cli::EraseArgs;
use crate::commands::{authorize_local, now, open_store};
use crate::config::Config;
use crate::error::CliError;
use crate::output::print_json;

pub fn run(args: EraseArgs, config: &Config) -> Result<(), CliError> {
    let reason = args.reason.trim().to_string();
    if reason.is_empty() || reason.len() > MAX_REASON {
        return Err(CliError::Usage(format!(
            "--reason must say why, in 1 to {MAX_REASON} characters (it goes to the audit trail; write no name or number in it)"
        )));
    }
    let store = open_store(config)?;
    let id = store.resolve_id(&args.id)?;
    authorize_local(&store, Action::EraseFamily)?;
    let view = store
        .get(id)?
        .ok_or_else(|| CliError::Usage(format!("family {id} is not on this laptop")))?;
    if !args.yes {
        if !config.interactive {
            return Err(CliError::Usage(
                "erasing cannot be undone: add --yes to erase without a question".into(),
            ));
        }
        let f = &view.family.fields;
        let question = format!(
            "Erase the name, document number, notes, vulnerabilities and referral of the family of {} people who crossed at {} on {}, on this laptop, the server and every laptop? This cannot be undone",
            f.members.individuals(),
            f.crossing,
            f.crossed_on
        );
        let yes = dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| CliError::Other(format!("the question could not be asked: {e}")))?;
        if !yes {
            println!("{id}: not erased");
            return Ok(());
        }
    }
    let (_store, erased) = store.erase(id, &reason, now())?;
    if args.json {
        return print_json(&erased);
    }
    for family in &erased.families {
        println!("{family}: personal data erased on this laptop");
    }
    println!("`returnee sync` erases it on the server and, at their next sync, on every laptop");
    Ok(())
}
