//! The client side of the sync protocol, without a transport: a state
//! machine that says what a device sends next and takes what comes back.
//!
//! A sync pushes the device's queue in batches, then pulls the log after the
//! device's cursor in pages (PROTOCOL.md). [`ClientSync`] decides each
//! request from the store's durable state ([`SyncStore`]) and feeds each
//! answer back to it; the caller carries requests to the server and answers
//! back (HTTP in `cli/src/sync.rs`, direct calls in the convergence test).
//!
//! Nothing here waits, reads a clock or touches storage. A request whose
//! answer never comes (link cut, server killed) is simply not followed by
//! [`ClientSync::on_push`] or [`ClientSync::on_pull`]: the next
//! [`ClientSync::next`] asks the store again, so the same batch is sent
//! again (the server recognises every operation) or the same page pulled
//! again (its cursor was not stored).

use crate::wire::{
    FIRST_PUSH_BATCH, MAX_PULL_OPS, MAX_PUSH_OPS, PullResponse, PushResponse, SyncCursor,
};

/// What the engine needs of a device's store. Each method is one durable
/// step of the protocol; the store keeps its queued operations in whatever
/// form it sends them (`Queued`: the laptop keeps each one's JSON), so the
/// engine neither decodes nor re-encodes them.
pub trait SyncStore {
    /// One queued operation as the store hands it out for a push.
    type Queued;
    type Error;

    /// The oldest operations waiting to be pushed, at most `limit`.
    fn pending(&self, limit: usize) -> Result<Vec<Self::Queued>, Self::Error>;

    /// The oldest operations waiting after the batches `sent` (the oldest
    /// of the queue, in order, sent and not acknowledged yet), at most
    /// `limit`: the batch a device prepares while they are on their way. By
    /// default read past them.
    fn pending_after(
        &self,
        sent: &[&[Self::Queued]],
        limit: usize,
    ) -> Result<Vec<Self::Queued>, Self::Error> {
        let skip: usize = sent.iter().map(|b| b.len()).sum();
        let mut all = self.pending(skip + limit)?;
        Ok(all.split_off(skip.min(all.len())))
    }

    /// The server acknowledged `sent` with `ack`: drop them from the queue
    /// (holding the ones in `ack.rejected` aside) and move the cursor over
    /// `ack.logged` if it stands just before it, atomically.
    fn acknowledge(&self, sent: &[Self::Queued], ack: &PushResponse) -> Result<(), Self::Error>;

    /// Where the next pull starts.
    fn cursor(&self) -> Result<SyncCursor, Self::Error>;

    /// Applies a pulled page and stores its cursor, atomically; returns how
    /// many operations were new here.
    fn apply_pull(&self, page: PullResponse) -> Result<u64, Self::Error>;
}

/// What to send next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<Q> {
    /// `POST /v1/sync/push` of these operations, in this order.
    Push(Vec<Q>),
    /// `GET /v1/sync/pull?after=…&limit=…`.
    Pull { after: SyncCursor, limit: usize },
}

/// What a sync did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Operations the server acknowledged and kept (new there or already held).
    pub pushed: u64,
    /// Operations received from other devices and new here.
    pub pulled: u64,
    /// Operations the server refused (the store holds them aside).
    pub rejected: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Push,
    Pull,
    Done,
}

/// The size of each push batch: the first at most [`FIRST_PUSH_BATCH`], then
/// the server's advice (`next_batch`), never above the device's own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSizer {
    max: usize,
    next: usize,
}

impl BatchSizer {
    /// For a device whose batches carry at most `max` operations (its
    /// `--batch-size`, within `1..=MAX_PUSH_OPS`).
    pub fn new(max: usize) -> Self {
        let max = max.clamp(1, MAX_PUSH_OPS);
        BatchSizer {
            max,
            next: max.min(FIRST_PUSH_BATCH),
        }
    }

    /// The size of the next batch.
    pub fn next(&self) -> usize {
        self.next
    }

    /// Follows the advice of an acknowledgement. An older server gives none:
    /// then the full size.
    pub fn advised(&mut self, next_batch: Option<u32>) {
        self.next = next_batch
            .map_or(self.max, |n| n as usize)
            .clamp(1, self.max);
    }
}

/// Where the pull after a page starts, if one follows: at the page's cursor
/// when the server says more wait and the cursor moved (a cursor that did
/// not move would ask for the same page for ever).
pub fn next_pull_after(after: SyncCursor, cursor: SyncCursor, more: bool) -> Option<SyncCursor> {
    (more && cursor > after).then_some(cursor)
}

/// One sync of one device: push everything, then pull everything.
#[derive(Debug, Clone)]
pub struct ClientSync {
    sizer: BatchSizer,
    pull_limit: usize,
    phase: Phase,
    counts: SyncCounts,
}

impl ClientSync {
    /// A sync whose batches and pages carry at most `batch_size` operations.
    pub fn new(batch_size: usize) -> Self {
        ClientSync {
            sizer: BatchSizer::new(batch_size),
            pull_limit: batch_size.clamp(1, MAX_PULL_OPS),
            phase: Phase::Push,
            counts: SyncCounts::default(),
        }
    }

    /// The same sync with pull pages of at most `page` operations (the
    /// batch size otherwise).
    pub fn pull_pages(mut self, page: usize) -> Self {
        self.pull_limit = page.clamp(1, MAX_PULL_OPS);
        self
    }

    /// A sync that only pulls.
    pub fn pull_only(batch_size: usize) -> Self {
        ClientSync {
            phase: Phase::Pull,
            ..ClientSync::new(batch_size)
        }
    }

    /// What was done so far.
    pub fn counts(&self) -> SyncCounts {
        self.counts
    }

    /// Whether the sync is over: the queue was empty and the last page said
    /// nothing more waits.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The next request, from the store's durable state; `None` once the
    /// sync is over. Asked again without an answer in between, it asks for
    /// the same thing again.
    pub fn next<S: SyncStore>(
        &mut self,
        store: &S,
    ) -> Result<Option<Request<S::Queued>>, S::Error> {
        if self.phase == Phase::Push {
            let batch = store.pending(self.sizer.next())?;
            if !batch.is_empty() {
                return Ok(Some(Request::Push(batch)));
            }
            self.phase = Phase::Pull;
        }
        if self.phase == Phase::Pull {
            return Ok(Some(Request::Pull {
                after: store.cursor()?,
                limit: self.pull_limit,
            }));
        }
        Ok(None)
    }

    /// The push batch after the batches `sent` (in order, the first handed
    /// out by [`ClientSync::next`], each acknowledgement yet to come);
    /// `None` when nothing else waits. A device prepares it (reads, encodes,
    /// compresses) while they are on their way; acknowledgements must still
    /// be given to [`ClientSync::on_push`] in the order the batches were
    /// handed out. Its size follows the advice received so far.
    pub fn next_push_after<S: SyncStore>(
        &self,
        store: &S,
        sent: &[&[S::Queued]],
    ) -> Result<Option<Vec<S::Queued>>, S::Error> {
        if self.phase != Phase::Push {
            return Ok(None);
        }
        let batch = store.pending_after(sent, self.sizer.next())?;
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// The server acknowledged the batch `sent` with `ack`.
    pub fn on_push<S: SyncStore>(
        &mut self,
        store: &S,
        sent: &[S::Queued],
        ack: &PushResponse,
    ) -> Result<(), S::Error> {
        store.acknowledge(sent, ack)?;
        self.sizer.advised(ack.next_batch);
        let rejected = ack.rejected.len().min(sent.len());
        self.counts.pushed += (sent.len() - rejected) as u64;
        self.counts.rejected += rejected;
        Ok(())
    }

    /// A page answered the pull that started at `after`: applied with its
    /// cursor. Returns how many of its operations were new here.
    pub fn on_pull<S: SyncStore>(
        &mut self,
        store: &S,
        after: SyncCursor,
        page: PullResponse,
    ) -> Result<u64, S::Error> {
        let next = next_pull_after(after, page.cursor, page.more);
        let applied = store.apply_pull(page)?;
        self.counts.pulled += applied;
        if next.is_none() {
            self.phase = Phase::Done;
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::family::OpId;
    use crate::wire::RejectedOp;

    /// A store of numbered operations; a pull page's cursor is stored as is.
    #[derive(Default)]
    struct Mem {
        queue: RefCell<Vec<u32>>,
        cursor: RefCell<SyncCursor>,
        held: RefCell<Vec<u32>>,
    }

    impl SyncStore for Mem {
        type Queued = u32;
        type Error = ();
        fn pending(&self, limit: usize) -> Result<Vec<u32>, ()> {
            Ok(self.queue.borrow().iter().take(limit).copied().collect())
        }
        fn acknowledge(&self, sent: &[u32], ack: &PushResponse) -> Result<(), ()> {
            self.queue.borrow_mut().retain(|q| !sent.contains(q));
            let n = ack.rejected.len();
            self.held.borrow_mut().extend(&sent[..n]);
            let c = *self.cursor.borrow();
            *self.cursor.borrow_mut() = ack.logged.map_or(c, |l| l.advance(c));
            Ok(())
        }
        fn cursor(&self) -> Result<SyncCursor, ()> {
            Ok(*self.cursor.borrow())
        }
        fn apply_pull(&self, page: PullResponse) -> Result<u64, ()> {
            *self.cursor.borrow_mut() = page.cursor;
            Ok(page.cursor.0)
        }
    }

    fn queued(n: u32) -> Mem {
        let m = Mem::default();
        m.queue.borrow_mut().extend(0..n);
        m
    }

    fn ack(next_batch: Option<u32>) -> PushResponse {
        PushResponse {
            next_batch,
            ..PushResponse::default()
        }
    }

    fn push_len(r: Option<Request<u32>>) -> Vec<u32> {
        match r {
            Some(Request::Push(b)) => b,
            other => panic!("expected a push, got {other:?}"),
        }
    }

    fn page(cursor: u64, more: bool) -> PullResponse {
        PullResponse {
            ops: Vec::new(),
            forget: Vec::new(),
            cursor: SyncCursor(cursor),
            more,
            remaining: None,
        }
    }

    #[test]
    fn the_first_batch_is_small_then_the_advice_is_followed_within_the_limit() {
        let store = queued(5000);
        let mut sync = ClientSync::new(1000);
        let first = push_len(sync.next(&store).unwrap());
        assert_eq!(first.len(), FIRST_PUSH_BATCH);
        sync.on_push(&store, &first, &ack(Some(300))).unwrap();
        let second = push_len(sync.next(&store).unwrap());
        assert_eq!(second.len(), 300);
        sync.on_push(&store, &second, &ack(Some(9000))).unwrap();
        let third = push_len(sync.next(&store).unwrap());
        assert_eq!(third.len(), 1000, "never above the device's own limit");
        // An older server advises nothing: the full size.
        sync.on_push(&store, &third, &ack(None)).unwrap();
        assert_eq!(push_len(sync.next(&store).unwrap()).len(), 1000);
        assert_eq!(sync.counts().pushed, 1400);
    }

    #[test]
    fn the_batch_after_one_on_its_way_is_the_next_in_the_queue() {
        let store = queued(250);
        let mut sync = ClientSync::new(100);
        let first = push_len(sync.next(&store).unwrap());
        assert_eq!(first, (0..100).collect::<Vec<_>>());
        // Prepared while the first is on its way: the 100 after it.
        let second = sync.next_push_after(&store, &[&first]).unwrap().unwrap();
        assert_eq!(second, (100..200).collect::<Vec<_>>());
        sync.on_push(&store, &first, &ack(Some(40))).unwrap();
        // The advice sizes the batch prepared next, after the second.
        let third = sync.next_push_after(&store, &[&second]).unwrap().unwrap();
        assert_eq!(third, (200..240).collect::<Vec<_>>());
        // Two on their way: the last 10 after both.
        let fourth = sync
            .next_push_after(&store, &[&second, &third])
            .unwrap()
            .unwrap();
        assert_eq!(fourth, (240..250).collect::<Vec<_>>());
        sync.on_push(&store, &second, &ack(None)).unwrap();
        sync.on_push(&store, &third, &ack(None)).unwrap();
        assert_eq!(sync.next_push_after(&store, &[&fourth]).unwrap(), None);
        sync.on_push(&store, &fourth, &ack(None)).unwrap();
        assert_eq!(sync.counts().pushed, 250);
        // Nothing left: the pull comes next.
        assert!(matches!(
            sync.next(&store).unwrap(),
            Some(Request::Pull { .. })
        ));
    }

    #[test]
    fn batch_sizes_stay_within_one_and_the_protocol_limit() {
        assert_eq!(BatchSizer::new(0).next(), 1);
        assert_eq!(BatchSizer::new(20).next(), 20);
        let mut s = BatchSizer::new(usize::MAX);
        assert_eq!(s.next(), FIRST_PUSH_BATCH);
        s.advised(None);
        assert_eq!(s.next(), MAX_PUSH_OPS);
        s.advised(Some(0));
        assert_eq!(s.next(), 1);
    }

    #[test]
    fn a_lost_acknowledgement_sends_the_same_batch_again() {
        let store = queued(10);
        let mut sync = ClientSync::new(4);
        let sent = push_len(sync.next(&store).unwrap());
        // No answer: the same operations again.
        assert_eq!(push_len(sync.next(&store).unwrap()), sent);
        sync.on_push(&store, &sent, &ack(Some(4))).unwrap();
        assert_eq!(push_len(sync.next(&store).unwrap()), vec![4, 5, 6, 7]);
    }

    #[test]
    fn rejected_operations_are_counted_apart() {
        let store = queued(3);
        let mut sync = ClientSync::new(10);
        let sent = push_len(sync.next(&store).unwrap());
        let refused = PushResponse {
            rejected: vec![RejectedOp {
                op: OpId(uuid::Uuid::nil()),
                error: "forbidden".into(),
                message: String::new(),
            }],
            ..ack(None)
        };
        sync.on_push(&store, &sent, &refused).unwrap();
        assert_eq!(sync.counts().pushed, 2);
        assert_eq!(sync.counts().rejected, 1);
        assert_eq!(*store.held.borrow(), vec![0]);
    }

    #[test]
    fn pulls_follow_the_cursor_until_nothing_more_waits() {
        let store = queued(1);
        let mut sync = ClientSync::new(50);
        let sent = push_len(sync.next(&store).unwrap());
        sync.on_push(&store, &sent, &ack(None)).unwrap();
        let first = sync.next(&store).unwrap();
        assert_eq!(
            first,
            Some(Request::Pull {
                after: SyncCursor(0),
                limit: 50
            })
        );
        // Lost: the same pull again.
        assert_eq!(sync.next(&store).unwrap(), first);
        sync.on_pull(&store, SyncCursor(0), page(50, true)).unwrap();
        assert_eq!(
            sync.next(&store).unwrap(),
            Some(Request::Pull {
                after: SyncCursor(50),
                limit: 50
            })
        );
        sync.on_pull(&store, SyncCursor(50), page(70, false))
            .unwrap();
        assert!(sync.is_done());
        assert_eq!(sync.next(&store).unwrap(), None);
        assert_eq!(sync.counts().pulled, 120);
    }

    #[test]
    fn pull_pages_have_their_own_size_within_the_limit() {
        let store = Mem::default();
        let limit = |mut sync: ClientSync| match sync.next(&store).unwrap() {
            Some(Request::Pull { limit, .. }) => limit,
            other => panic!("expected a pull, got {other:?}"),
        };
        assert_eq!(limit(ClientSync::new(2000).pull_pages(5000)), 5000);
        assert_eq!(limit(ClientSync::new(2000)), 2000);
        assert_eq!(
            limit(ClientSync::new(10).pull_pages(usize::MAX)),
            MAX_PULL_OPS
        );
    }

    #[test]
    fn a_page_whose_cursor_does_not_move_ends_the_pull() {
        assert_eq!(next_pull_after(SyncCursor(5), SyncCursor(5), true), None);
        assert_eq!(next_pull_after(SyncCursor(5), SyncCursor(9), false), None);
        assert_eq!(
            next_pull_after(SyncCursor(5), SyncCursor(9), true),
            Some(SyncCursor(9))
        );
        let store = Mem::default();
        let mut sync = ClientSync::pull_only(10);
        assert!(matches!(
            sync.next(&store).unwrap(),
            Some(Request::Pull { .. })
        ));
        sync.on_pull(&store, SyncCursor(0), page(0, true)).unwrap();
        assert!(sync.is_done());
    }

    #[test]
    fn a_logged_span_moves_the_cursor_the_next_pull_starts_from() {
        let store = queued(2);
        let mut sync = ClientSync::new(10);
        let sent = push_len(sync.next(&store).unwrap());
        let logged = PushResponse {
            logged: Some(crate::wire::LoggedSpan {
                first: SyncCursor(1),
                last: SyncCursor(2),
            }),
            ..ack(None)
        };
        sync.on_push(&store, &sent, &logged).unwrap();
        assert_eq!(
            sync.next(&store).unwrap(),
            Some(Request::Pull {
                after: SyncCursor(2),
                limit: 10
            })
        );
    }
}
