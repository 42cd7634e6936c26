//! One sync over HTTP: a thin driver of the sync engine
//! ([`returnee_shared::sync::ClientSync`]), which decides every request from
//! the laptop store's durable state; this module carries the requests to
//! the server with [`ServerClient`] and the answers back.
//!
//! Each pushed batch is removed from the queue only once the server has
//! acknowledged it (its operations are then durable there); each pulled batch
//! is applied together with the cursor that follows it, atomically. A sync
//! cut off anywhere resumes where it stopped and resends at most the one batch
//! that was not acknowledged, which the server recognises by operation id.

use chrono::Utc;
use returnee_shared::sync::{ClientSync, Request, SyncCounts, next_pull_after};
use returnee_shared::wire::{DeviceName, Health};
use serde::Serialize;

use crate::client::{ClientError, PushBody, ServerClient};
use crate::error::CliError;
use returnee_shared::RecordId;
use returnee_store::laptop::{LocalStore, QueuedOp};

/// The most operations per push batch unless `--batch-size` says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 2000;
/// The most operations per pull page unless `--pull-page` says otherwise:
/// a page costs the laptop a batch write and the server a read of the log,
/// so larger pages pull a new laptop faster than pages of 2,000; 5,000
/// brought a laptop pulling a million families to its memory budget.
pub const DEFAULT_PULL_PAGE: usize = 4000;

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
    /// The protocols the server speaks, when it said.
    #[serde(skip)]
    pub server: Option<Health>,
}

impl SyncSummary {
    fn of(counts: SyncCounts) -> Self {
        SyncSummary {
            pushed: counts.pushed,
            pulled: counts.pulled,
            conflicts: 0,
            rejected: counts.rejected,
            server: None,
        }
    }
}

/// Progress callbacks, so the command can draw bars and tests stay quiet.
pub trait SyncProgress {
    fn pushed(&self, _done: u64, _total: u64) {}
    /// `left`: what the server says is left after this page, at most.
    fn pulled(&self, _done: u64, _left: Option<u64>) {}
}

impl SyncProgress for () {}

/// Runs one sync of `store` with `client`: push everything, then pull
/// everything, in push batches and pull pages of at most `batch_size`.
pub fn sync(
    store: &LocalStore,
    client: &ServerClient,
    batch_size: usize,
    progress: &dyn SyncProgress,
) -> Result<SyncSummary, CliError> {
    sync_with(store, client, batch_size, batch_size, progress)
}

/// [`sync`] with pull pages of at most `pull_page` operations.
pub fn sync_with(
    store: &LocalStore,
    client: &ServerClient,
    batch_size: usize,
    pull_page: usize,
    progress: &dyn SyncProgress,
) -> Result<SyncSummary, CliError> {
    let check_in = renew_credential(store, client)?;
    let client = check_in.client.as_ref().unwrap_or(client);
    let mut engine = ClientSync::new(batch_size).pull_pages(pull_page);
    push(&mut engine, store, client, progress)?;
    pull(&mut engine, store, client, progress)?;
    send_export_notes(store, client)?;
    // Names are for people's eyes: a server without the list (older than
    // this release) leaves the ids shown. The check-in carries them from
    // servers of this release on.
    let names = match check_in.names {
        Some(names) => Some(names),
        None => match client.device_names() {
            Ok(names) => Some(names),
            Err(e) if e.is_unknown_endpoint() => None,
            Err(e) => return Err(e.into()),
        },
    };
    if let Some(names) = names {
        store.set_device_names(&names.into_iter().map(|d| (d.id, d.name)).collect())?;
    }
    // A store rebuilt by `repair` has now pulled everything back.
    store.clear_full_repull()?;
    store.set_last_sync(Utc::now())?;
    let mut summary = SyncSummary::of(engine.counts());
    summary.conflicts = store.conflicts()?.len();
    // Best effort: a server that does not say which protocols it speaks
    // changes nothing.
    summary.server = check_in.health.or_else(|| client.health().ok());
    Ok(summary)
}

/// What the check-in at the start of a sync brought.
#[derive(Default)]
pub struct CheckIn {
    /// The client that sends the new token, when the token was rotated.
    pub client: Option<ServerClient>,
    /// Every device's name (`None` from a server before the check-in
    /// carried them: ask `GET /v1/devices/names`).
    pub names: Option<Vec<DeviceName>>,
    /// The protocols the server speaks (`None` likewise: ask
    /// `GET /v1/health`).
    pub health: Option<Health>,
}

/// Asks the server about this device's credential at the start of a sync
/// and keeps what it says: the role and sites the device has now, and,
/// when rotation was due, the new token (saved, flushed, in place of the
/// old one). Returns the client that sends the new token; its first
/// request confirms it on the server, which only then retires the old one,
/// so a rotation cut off anywhere leaves a token that works. Returns too
/// the device names and protocols the answer carried. A server without
/// the endpoint (older) changes nothing.
pub fn renew_credential(store: &LocalStore, client: &ServerClient) -> Result<CheckIn, CliError> {
    let answer = match client.device_token() {
        Ok(a) => a,
        // A refusal (expired, revoked, …) stops the sync; an older server
        // without the endpoint, or an answer lost on the way, does not: the
        // push goes ahead with the token held (which still works), and the
        // next sync checks in again.
        Err(e) if e.is_unknown_endpoint() => return Ok(CheckIn::default()),
        Err(e @ ClientError::Refused { .. }) => return Err(e.into()),
        Err(_) => return Ok(CheckIn::default()),
    };
    let Some(mut e) = store.enrollment()? else {
        return Ok(CheckIn::default());
    };
    let before = e.clone();
    e.role = answer.role;
    e.sites = answer.sites;
    e.token_expires_at = answer.token_expires_at.or(Some(answer.expires_at));
    let renewed = answer.token.map(|token| {
        e.token = token.clone();
        client.clone().with_token(token)
    });
    if e != before {
        store.set_enrollment(&e)?;
    }
    let client = renewed.as_ref().unwrap_or(client);
    if answer.crossings_version > store.learnt_crossings()?.version {
        let list = client.crossings()?;
        returnee_shared::reference::learn(&list);
        for code in store.set_learnt_crossings(&list)? {
            eprintln!(
                "the crossing '{code}' is listed on the server now: its families here count in reports"
            );
        }
        crate::commands::install_crossings(store, true)?;
    }
    Ok(CheckIn {
        client: renewed,
        names: answer.names,
        health: answer.health,
    })
}

/// Hands the server the notes of exports made from this store, for its
/// audit trail; each is dropped here once the server has it (a note sent
/// twice is recorded once).
fn send_export_notes(store: &LocalStore, client: &ServerClient) -> Result<(), CliError> {
    let notes = store.export_notes()?;
    for page in notes.chunks(returnee_shared::wire::MAX_EXPORT_NOTES) {
        match client.note_exports(page) {
            Ok(_) => store.forget_export_notes(page)?,
            // A server older than this release: the notes wait here for
            // one that takes them (`returnee status` counts them).
            Err(e) if e.is_unknown_endpoint() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Pushes every pending operation, one acknowledged batch at a time.
///
/// `batch_size` is the most one batch carries. The first batch is smaller
/// ([`returnee_shared::wire::FIRST_PUSH_BATCH`]); after that the server's
/// advice sizes each batch (`next_batch`: smaller when many devices push at
/// once), never above `batch_size` ([`returnee_shared::sync::BatchSizer`]).
pub fn push_all(
    store: &LocalStore,
    client: &ServerClient,
    batch_size: usize,
    progress: &dyn SyncProgress,
) -> Result<SyncSummary, CliError> {
    let mut engine = ClientSync::new(batch_size);
    push(&mut engine, store, client, progress)?;
    Ok(SyncSummary::of(engine.counts()))
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
    pull(
        &mut ClientSync::pull_only(batch_size),
        store,
        client,
        progress,
    )
}

/// Push batches on their way at once, at most.
const PUSHES_ON_THEIR_WAY: usize = 2;

/// The engine's push phase: each batch it asks for, sent as its queued
/// JSON (nothing decoded or re-encoded), until it asks for a pull.
///
/// The laptop's work and the server's overlap: the next batch is read from
/// the queue and compressed while others are on their way, and up to
/// [`PUSHES_ON_THEIR_WAY`] batches are on their way at once (the server
/// decodes one while it commits the other), unless the next batch changes
/// or names a family that one on its way also does ([`Families`]): then it
/// waits for that acknowledgement, so a family's operations reach the
/// server in the order they were made. Acknowledgements are written in queue order; one that
/// a crash loses only means sending those operations again (the server
/// recognises each one).
fn push(
    engine: &mut ClientSync,
    store: &LocalStore,
    client: &ServerClient,
    progress: &dyn SyncProgress,
) -> Result<(), CliError> {
    let total = store.pending_count()? as u64;
    let Some(Request::Push(first)) = engine.next(store)? else {
        return Ok(());
    };
    let body = |batch: &[QueuedOp]| {
        let json: Vec<&[u8]> = batch.iter().map(|q| q.json.as_slice()).collect();
        PushBody::of(&json)
    };
    std::thread::scope(|s| {
        let send = |batch: Vec<QueuedOp>, body: PushBody, families: Families| {
            let answer = s.spawn(move || client.push_body(body));
            (batch, families, answer)
        };
        // Returning early (an error) waits for the batches on their way;
        // their acknowledgements are not written, so they are sent again.
        let mut on_their_way = std::collections::VecDeque::new();
        let (first_body, first_families) = (body(&first)?, Families::of(&first));
        on_their_way.push_back(send(first, first_body, first_families));
        let mut ready: Option<(Vec<QueuedOp>, PushBody, Families)> = None;
        loop {
            if ready.is_none() {
                let sent: Vec<&[QueuedOp]> =
                    on_their_way.iter().map(|(b, _, _)| b.as_slice()).collect();
                if let Some(batch) = engine.next_push_after(store, &sent)? {
                    let (ready_body, families) = (body(&batch)?, Families::of(&batch));
                    ready = Some((batch, ready_body, families));
                }
            }
            if let Some((_, _, families)) = &ready
                && on_their_way.len() < PUSHES_ON_THEIR_WAY
                && on_their_way.iter().all(|(_, f, _)| f.apart_from(families))
            {
                let (batch, next_body, families) = ready.take().expect("ready");
                on_their_way.push_back(send(batch, next_body, families));
                continue;
            }
            let Some((batch, _, answer)) = on_their_way.pop_front() else {
                return Ok(());
            };
            let ack = answer
                .join()
                .expect("sending a push batch does not panic")?;
            engine.on_push(store, &batch, &ack)?;
            progress.pushed(engine.counts().pushed, total);
        }
    })
}

/// The families a push batch changes or names (a merge's survivor, the
/// duplicate whose values a merge takes, the other of a dismissed pair),
/// or `None` when an operation's JSON does not tell.
struct Families(Option<std::collections::HashSet<RecordId>>);

impl Families {
    fn of(batch: &[QueuedOp]) -> Families {
        #[derive(serde::Deserialize)]
        struct Named {
            change: Names,
        }
        #[derive(serde::Deserialize)]
        struct Names {
            into: Option<RecordId>,
            from: Option<RecordId>,
            other: Option<RecordId>,
        }
        let mut all = std::collections::HashSet::with_capacity(batch.len());
        for q in batch {
            let Ok(Named { change }) = serde_json::from_slice::<Named>(&q.json) else {
                return Families(None);
            };
            all.extend(
                [Some(q.record), change.into, change.from, change.other]
                    .into_iter()
                    .flatten(),
            );
        }
        Families(Some(all))
    }

    /// Whether two batches may be on their way at once: neither changes
    /// or names a family the other does.
    fn apart_from(&self, other: &Families) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => a.is_disjoint(b),
            _ => false,
        }
    }
}

/// The engine's pull phase; returns how many operations were new here.
///
/// A page's cursor says where the next pull starts
/// ([`next_pull_after`]), so a thread fetches page N+1 while the engine
/// applies page N.
fn pull(
    engine: &mut ClientSync,
    store: &LocalStore,
    client: &ServerClient,
    progress: &dyn SyncProgress,
) -> Result<u64, CliError> {
    let Some(Request::Pull {
        after: start,
        limit,
    }) = engine.next(store)?
    else {
        return Ok(0);
    };
    // A pull writes page after page into sled: memory freed is handed back
    // after 10 ms rather than a second, and what is left after each page
    // at once, or a million-family pull runs past the laptop's memory
    // budget (mimalloc purges only when a thread next looks: the laptop
    // kept about 30 MB more than it holds live). Purging everything at
    // once (0 ms) would slow the pull (`returnee_memory`; PERFORMANCE.md).
    let _purge = returnee_memory::EagerPurge::after(10);
    let before = engine.counts().pulled;
    let own = store.full_repull()?;
    std::thread::scope(|s| {
        let (pages, arrived) = std::sync::mpsc::sync_channel(1);
        s.spawn(move || {
            let mut after = start;
            loop {
                let page = client.pull_with(after, limit, own);
                let next = match &page {
                    Ok(p) => next_pull_after(after, p.cursor, p.more),
                    Err(_) => None,
                };
                // Stop when the store side gave up (its error is returned).
                if pages.send((after, page)).is_err() {
                    return;
                }
                match next {
                    Some(c) => after = c,
                    None => return,
                }
            }
        });
        for (after, page) in arrived {
            let page = page?;
            let left = page.remaining.map(|r| if page.more { r } else { 0 });
            // Freed memory is not handed back here page by page
            // (`returnee_memory::release_freed`): the next page faults it
            // in again, and the pull of 100,000 families took a fifth
            // longer (PERFORMANCE.md, "Memory, 1,000,000 families").
            engine.on_pull(store, after, page)?;
            progress.pulled(engine.counts().pulled - before, left);
        }
        Ok(engine.counts().pulled - before)
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

#[cfg(test)]
mod tests {
    use super::*;
    use returnee_shared::OpId;
    use returnee_store::laptop::QueueRef;

    fn op(record: u128, change: &str) -> QueuedOp {
        QueuedOp {
            at: QueueRef { seq: 0, index: 0 },
            record: RecordId(uuid::Uuid::from_u128(record)),
            id: OpId(uuid::Uuid::from_u128(record + 1000)),
            json: format!(r#"{{"id":"x","change":{change}}}"#).into_bytes(),
        }
    }

    #[test]
    fn batches_on_their_way_at_once_change_and_name_no_family_in_common() {
        let create = |r| Families::of(&[op(r, r#"{"kind":"create","fields":{}}"#)]);
        let merge = format!(
            r#"{{"kind":"merge","into":"{}"}}"#,
            uuid::Uuid::from_u128(2)
        );
        let merge_3_into_2 = Families::of(&[op(3, &merge)]);
        assert!(create(1).apart_from(&create(2)));
        assert!(!create(1).apart_from(&create(1)));
        assert!(!create(2).apart_from(&merge_3_into_2), "the merge names 2");
        assert!(create(1).apart_from(&merge_3_into_2));
        let unreadable = Families::of(&[QueuedOp {
            json: b"not json".to_vec(),
            ..op(4, "{}")
        }]);
        assert!(!unreadable.apart_from(&create(1)), "sent alone");
    }
}
