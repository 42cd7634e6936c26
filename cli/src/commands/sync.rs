//! `returnee sync`: push local changes, pull everyone else's.

use indicatif::ProgressBar;

use crate::cli::SyncArgs;
use crate::commands::open_store;
use crate::config::Config;
use crate::error::CliError;
use crate::output::{bar_style, count, print_json, progress, spinner, thousands};
use crate::sync::{SyncProgress, enrolled_client, erase_if_revoked, sync_with};
use returnee_shared::wire::{Health, PROTOCOL_VERSION};
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
    fn pulled(&self, done: u64, left: Option<u64>) {
        match left {
            // The server's count of what is left: a bar from the first page.
            Some(left) => {
                if self.pull.length().is_none() {
                    self.pull.set_style(bar_style("pulling"));
                }
                self.pull.set_length(done + left);
                self.pull.set_position(done);
            }
            None => self
                .pull
                .set_message(format!("pulling: {} received", thousands(done))),
        }
    }
}

pub fn run(args: SyncArgs, config: &Config) -> Result<(), CliError> {
    let store = open_store(config)?;
    let client = enrolled_client(&store, config.ca_file.as_deref())?;
    let pending = store.pending_count()? as u64;
    let bars = Bars {
        push: progress(config, pending, "pushing"),
        // How much is left is known from the first page's answer (a
        // server before that sends none: then a count, not an invented
        // total).
        pull: spinner(config, "pulling"),
    };
    let summary = sync_with(&store, &client, args.batch_size, args.pull_page, &bars);
    bars.push.finish_and_clear();
    bars.pull.finish_and_clear();
    let notice = match &summary {
        Ok(s) => update_notice(&store, s.server.as_ref())?,
        Err(_) => None,
    };
    // A pull that brought an erasure: the store's files are rewritten.
    let store = store.finish_erasure()?;
    let summary = erase_if_revoked(store, summary)?;
    if args.json {
        print_json(&summary)?;
    } else {
        println!(
            "pushed {}, pulled {}; {} open",
            count(summary.pushed, "change", "changes"),
            count(summary.pulled, "change", "changes"),
            count(summary.conflicts as u64, "conflict", "conflicts"),
        );
    }
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    if summary.rejected > 0 {
        return Err(CliError::Refused(format!(
            "the server refused {}: kept on this laptop only, and not counted by the server. \
             Run `returnee status` to see which families, why, and what to do",
            count(summary.rejected as u64, "change", "changes")
        )));
    }
    Ok(())
}

/// Keeps what the server said of its protocols (at the sync's check-in),
/// for `status`, and says whether this laptop should be updated. Best
/// effort: a server that said nothing changes nothing.
fn update_notice(store: &LocalStore, health: Option<&Health>) -> Result<Option<String>, CliError> {
    let Some(health) = health else {
        return Ok(None);
    };
    store.set_server_health(health)?;
    Ok(health.compatibility(PROTOCOL_VERSION).notice())
}
