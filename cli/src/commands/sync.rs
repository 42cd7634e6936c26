//! `returnee sync`: push local changes, pull everyone else's.

use indicatif::ProgressBar;

use crate::cli::SyncArgs;
use crate::client::ServerClient;
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::{print_json, progress};
use crate::sync::{SyncProgress, enrolled_client, erase_if_revoked, sync};
use returnee_shared::wire::PROTOCOL_VERSION;
use returnee_store::laptop::LocalStore;

struct Bars {
    push: ProgressBar,
    pull: ProgressBar,
}

impl SyncProgress for Bars {
    fn pushed(&self, done: u64, total: u64) {
        self.push.set_length(total);
        self.push.set_position(done);
    }
    fn pulled(&self, done: u64) {
        self.pull.set_position(done);
    }
}

pub fn run(args: SyncArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let client = enrolled_client(&store, config.ca_file.as_deref())?;
    let pending = store.pending_count()? as u64;
    let bars = Bars {
        push: progress(config, pending, "pushing"),
        pull: progress(config, 0, "pulling"),
    };
    let summary = sync(&store, &client, args.batch_size, &bars);
    bars.push.finish_and_clear();
    bars.pull.finish_and_clear();
    let notice = match &summary {
        Ok(_) => update_notice(&store, &client)?,
        Err(_) => None,
    };
    let summary = erase_if_revoked(store, summary)?;
    if args.json {
        print_json(&summary)?;
    } else {
        println!(
            "pushed {}, pulled {}; {} open conflict(s){}",
            summary.pushed,
            summary.pulled,
            summary.conflicts,
            if summary.rejected > 0 {
                format!(
                    "; {} change(s) refused by the server, see `returnee status`",
                    summary.rejected
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    Ok(())
}

/// Asks the server which protocols it speaks, keeps the answer for
/// `status`, and says whether this laptop should be updated. Best effort:
/// a server that does not answer now changes nothing.
fn update_notice(store: &LocalStore, client: &ServerClient) -> Result<Option<String>, CliError> {
    let Ok(health) = client.health() else {
        return Ok(None);
    };
    store.set_server_health(&health)?;
    Ok(health.compatibility(PROTOCOL_VERSION).notice())
}
