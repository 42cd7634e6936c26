//! One sync: push every pending operation in batches, then pull everything
//! after this device's cursor in batches.
//!
//! Each pushed batch is removed from the queue only once the server has
//! acknowledged it (its operations are then durable there); each pulled batch
//! is applied together with the cursor that follows it, atomically. A sync
//! cut off anywhere resumes where it stopped and resends at most the one batch
//! that was not acknowledged, which the server recognises by operation id.

use chrono::Utc;
use returnee_shared::wire::{FIRST_PUSH_BATCH, MAX_PUSH_OPS};
use serde::Serialize;

use crate::client::{ClientError, ServerClient};
use crate::error::CliError;
use returnee_store::laptop::LocalStore;

/// The most operations per batch unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 2000;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncSummary {
    /// Operations the server acknowledged (new there or already held).
    pub pushed: u64,
    /// Operations received from other devices and applied here.
    pub pulled: u64,
    /// Open conflicts on this device after the sync.
    pub conflicts: usize,
    /// Operations the server refused in this sync (kept here, see `status`).
    pub rejected: usize,
}

/// Progress callbacks, so the command can draw bars and tests stay quiet.
pub trait SyncProgress {
    fn pushed(&self, _done: u64, _total: u64) {}
    fn pulled(&self, _done: u64) {}
}

impl SyncProgress for () {}

/// Runs one sync of `store` with `client`: push everything, then pull everything.
pub fn sync(
    store: &LocalStore,
    client: &ServerClient,
    batch_size: usize,
    progress: &dyn SyncProgress,
) -> Result<SyncSummary, CliError> {
    let mut summary = push_all(store, client, batch_size, progress)?;
    summary.pulled = pull_all(store, client, batch_size, progress)?;
    store.set_last_sync(Utc::now())?;
    summary.conflicts = store.conflicts()?.len();
    Ok(summary)
}

/// Pushes every pending operation, one acknowledged batch at a time.
///
/// `batch_size` is the most one batch carries. The first batch is smaller
/// ([`FIRST_PUSH_BATCH`]); after that the server's advice sizes each batch
/// (`next_batch`: smaller when many devices push at once), never above
/// `batch_size`.
pub fn push_all(
    store: &LocalStore,
    client: &ServerClient,
    batch_size: usize,
    progress: &dyn SyncProgress,
) -> Result<SyncSummary, CliError> {
    let max = batch_size.clamp(1, MAX_PUSH_OPS);
    let mut size = max.min(FIRST_PUSH_BATCH);
    let mut summary = SyncSummary::default();
    let total = store.pending_count()? as u64;
    loop {
        let batch = store.pending(size)?;
        if batch.is_empty() {
            break;
        }
        let json: Vec<&[u8]> = batch.iter().map(|q| q.json.as_slice()).collect();
        let ack = client.push_json(&json)?;
        store.acknowledge_logged(&batch, &ack.rejected, ack.logged)?;
        // An older server gives no advice: then the full size.
        size = ack.next_batch.map_or(max, |n| n as usize).clamp(1, max);
        summary.pushed += batch.len() as u64 - ack.rejected.len() as u64;
        summary.rejected += ack.rejected.len();
        progress.pushed(summary.pushed, total);
    }
    Ok(summary)
}

/// Pulls everything after this device's cursor, one applied batch at a
/// time; returns how many operations were new here.
///
/// The next page is fetched while this one is applied (at most one page
/// waits), so the link and the store work at the same time. A page is
/// applied with the cursor that follows it, so a sync cut off anywhere
/// resumes after the last page applied.
pub fn pull_all(
    store: &LocalStore,
    client: &ServerClient,
    batch_size: usize,
    progress: &dyn SyncProgress,
) -> Result<u64, CliError> {
    let batch_size = batch_size.clamp(1, returnee_shared::wire::MAX_PULL_OPS);
    // A pull writes page after page into sled: memory freed is handed back
    // after 10 ms rather than a second (a million-family pull peaked at
    // 88-110 MB rather than 110-144; 0 ms made the pull 10-20 % slower,
    // 10 ms nothing measurable; `returnee_memory`).
    let _purge = returnee_memory::EagerPurge::after(10);
    let start = store.cursor()?;
    std::thread::scope(|s| {
        let (pages, arrived) = std::sync::mpsc::sync_channel(1);
        s.spawn(move || {
            let mut cursor = start;
            loop {
                let page = client.pull(cursor, batch_size);
                let next = match &page {
                    Ok(p) if p.more && p.cursor > cursor => Some(p.cursor),
                    _ => None,
                };
                // Stop when the store side gave up (its error is returned).
                if pages.send(page).is_err() {
                    return;
                }
                match next {
                    Some(c) => cursor = c,
                    None => return,
                }
            }
        });
        let mut pulled = 0;
        for page in arrived {
            let page = page?;
            pulled += store.apply_remote(page.ops, &page.forget, page.cursor)? as u64;
            progress.pulled(pulled);
        }
        Ok(pulled)
    })
}

/// The client for the server this store is enrolled with.
pub fn enrolled_client(
    store: &LocalStore,
    ca_file: Option<&std::path::Path>,
) -> Result<ServerClient, CliError> {
    let e = store.enrollment()?.ok_or(ClientError::NotEnrolled)?;
    // A --ca given now wins over the one saved at enrollment.
    Ok(match (ca_file, &e.ca_pem) {
        (None, Some(pem)) => ServerClient::with_ca_pem(
            &e.server,
            Some(e.token.clone()),
            Some((pem.as_bytes(), "the CA saved at enrollment")),
        )?,
        _ => ServerClient::new(&e.server, Some(e.token), ca_file)?,
    })
}

/// What a device does when the server says it was revoked: it erases its
/// local copy, the changes it had not yet sent included, and removes the
/// store's folder. A revoked laptop is presumed lost or in the wrong hands;
/// the server would refuse its changes anyway (SECURITY.md). Any other
/// result passes through unchanged.
pub fn erase_if_revoked<T>(store: LocalStore, result: Result<T, CliError>) -> Result<T, CliError> {
    let message = match &result {
        Err(CliError::Client(e @ ClientError::Refused { message, .. })) if e.is_revoked() => {
            message.clone()
        }
        _ => return result,
    };
    // The erasure goes ahead even if the queue cannot be counted.
    let unsent = store.pending_count().ok();
    let dir = store.dir().to_path_buf();
    let wiped = store.wipe();
    drop(store);
    let removed = wiped
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::remove_dir_all(&dir).map_err(|e| e.to_string()));
    Err(CliError::Revoked {
        message,
        unsent,
        erased: removed,
    })
}
