//! Convergence of the real sync under random histories.
//!
//! Three real laptop stores (`LocalStore`, in temporary folders) and a real
//! server store (`ServerStore`) are synced by the real client engine
//! (`returnee_shared::sync::ClientSync`). The transport is in memory: a push
//! is `ServerStore::push` of the batch's operations (read from their queued
//! JSON as the server's handler reads them) and a pull is
//! `ServerStore::pull`, whose page goes through its wire encoding
//! (`PullPage::to_json`) and back as a `PullResponse`. Device 0 is a
//! supervisor; devices 1 and 2 are field devices of every crossing the
//! histories use.
//!
//! A random history mixes creates, edits (of one or two fields, some of a
//! field in conflict), deletes and a supervisor's decisions, made through
//! the laptop store's own commands, with pushes and pulls where the answer
//! is lost (the server applied the batch, the device never heard), the
//! request is lost (the server never saw it), and processes that stop part
//! of the way through a sync (the store is closed and opened again from its
//! folder, and the engine starts afresh).
//!
//! Then every device syncs everything, twice, with no losses, and:
//! - (a) every device holds and shows what the server's log gives;
//! - (b) no edit or delete vanished without a trace;
//! - (c) the log holds each operation once, and every operation made;
//! - (d) a field device's edit of a field in conflict replaces only the
//!   value it was shown.
//!
//! Operation and record ids are made by the stores (UUID v7, random bits):
//! a failing case replays its actions, with other ids.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use returnee_shared::merge::{
    Change, DECIDE_DELETED, DECIDE_KEPT, Lifecycle, Op, RECORD_CONFLICT_FIELD, RecordDoc,
    RecordView, Slot,
};
use returnee_shared::sync::{ClientSync, Request, SyncStore};
use returnee_shared::wire::{
    MAX_PULL_OPS, PullResponse, PushResponse, RawPushRequest, Role, SyncCursor, ops_body_start,
};
use returnee_shared::{
    DeviceId, DocType, FamilyFields, FieldName, FieldValue, Members, OpId, RecordId, ReturnType,
};
use returnee_store::laptop::LocalStore;
use returnee_store::server::{Device, ServerStore};

const DEVICES: usize = 3;
/// The device that may decide conflicts.
const SUPERVISOR: usize = 0;
const MAX_ACTIONS: usize = 50;
const MAX_BATCH: usize = 4;
/// Few records, so that devices often edit the same one concurrently.
const MAX_RECORDS: usize = 4;
/// Records made (by devices 0 and 1) and synced everywhere before the history.
const INITIAL_RECORDS: usize = 2;
/// The fields the random edits touch.
const FIELDS: [FieldName; 4] = [
    FieldName::Notes,
    FieldName::Crossing,
    FieldName::Members,
    FieldName::ReturnType,
];
/// Every crossing the histories use: the field devices work at all of
/// them, so that no operation is refused for its site.
const CROSSINGS: [&str; 4] = ["torkham", "chaman", "angoor-adda", "ghulam-khan"];

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 15).unwrap()
}

/// A family that passes `FamilyFields::check`.
fn new_family() -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        return_type: ReturnType::Spontaneous,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [0, 0, 0, 1, 0],
            females: [0, 0, 0, 0, 0],
        },
        head_name: None,
        head_sex: None,
        doc_type: DocType::None,
        doc_number: None,
        consent: false,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    }
}

/// One of a few valid values of `field` (few, so that equal concurrent
/// values, and edits back to an earlier value, happen often).
fn value(field: FieldName, i: usize) -> FieldValue {
    match field {
        FieldName::Notes => {
            FieldValue::Notes([None, Some("a"), Some("b"), Some("c")][i % 4].map(String::from))
        }
        FieldName::Crossing => FieldValue::Crossing(CROSSINGS[i % 4].to_string()),
        FieldName::Members => FieldValue::Members(
            [
                Members {
                    males: [0, 0, 0, 1, 0],
                    females: [0; 5],
                },
                Members {
                    males: [1, 0, 0, 1, 0],
                    females: [0, 0, 0, 1, 0],
                },
                Members {
                    males: [0; 5],
                    females: [0, 2, 0, 1, 1],
                },
                Members {
                    males: [3, 0, 0, 1, 0],
                    females: [0, 0, 1, 1, 0],
                },
            ][i % 4],
        ),
        FieldName::ReturnType => FieldValue::ReturnType(ReturnType::ALL[i % ReturnType::ALL.len()]),
        other => unreachable!("not edited in these histories: {other}"),
    }
}

/// What happens to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answered,
    /// The server never saw it.
    RequestLost,
    /// The server did its work; the answer never arrived.
    AnswerLost,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Answered),
        1 => Just(Fate::RequestLost),
        2 => Just(Fate::AnswerLost),
    ]
}

#[derive(Debug, Clone)]
enum Action {
    Create {
        dev: usize,
    },
    /// Edits one field, or two when `also` is given, of an active record;
    /// with `on_conflict`, a field the device shows in conflict, if any.
    Edit {
        dev: usize,
        rec: Index,
        field: usize,
        value: usize,
        also: Option<(usize, usize)>,
        on_conflict: bool,
    },
    Delete {
        dev: usize,
        rec: Index,
    },
    /// The supervisor decides an open conflict.
    Resolve {
        pick: Index,
        value: usize,
    },
    /// One push request of at most `k` operations.
    Push {
        dev: usize,
        k: usize,
        fate: Fate,
    },
    /// One pull request of at most `k` operations.
    Pull {
        dev: usize,
        k: usize,
        fate: Fate,
    },
    /// A whole sync with no losses.
    Sync {
        dev: usize,
    },
    /// A sync that stops after `steps` requests answered: the process ends
    /// (the store is closed) and starts again (opened from its folder).
    Crash {
        dev: usize,
        steps: usize,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let dev = 0..DEVICES;
    let field = 0..FIELDS.len();
    let val = 0..8usize;
    prop_oneof![
        2 => dev.clone().prop_map(|dev| Action::Create { dev }),
        14 => (
            dev.clone(),
            any::<Index>(),
            field.clone(),
            val.clone(),
            prop::option::weighted(0.2, (field, val.clone())),
            prop::bool::weighted(0.3),
        )
            .prop_map(|(dev, rec, field, value, also, on_conflict)| Action::Edit {
                dev,
                rec,
                field,
                value,
                also,
                on_conflict,
            }),
        1 => (dev.clone(), any::<Index>()).prop_map(|(dev, rec)| Action::Delete { dev, rec }),
        5 => (any::<Index>(), val).prop_map(|(pick, value)| Action::Resolve { pick, value }),
        7 => (dev.clone(), 1..=MAX_BATCH, fate())
            .prop_map(|(dev, k, fate)| Action::Push { dev, k, fate }),
        7 => (dev.clone(), 1..=MAX_BATCH, fate())
            .prop_map(|(dev, k, fate)| Action::Pull { dev, k, fate }),
        5 => dev.clone().prop_map(|dev| Action::Sync { dev }),
        2 => (dev, 0..4usize).prop_map(|(dev, steps)| Action::Crash { dev, steps }),
    ]
}

fn history() -> impl Strategy<Value = Vec<Action>> {
    prop::collection::vec(action(), 10..=MAX_ACTIONS)
}

/// What the random history exercised, to check the generator is meaningful.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    edits: usize,
    multi_field_edits: usize,
    deletes: usize,
    field_resolutions: usize,
    record_resolutions: usize,
    field_edits_of_conflicts: usize,
    resent_duplicates: u64,
    /// Acknowledgements that moved the cursor over the batch's own
    /// operations (`PushResponse::logged`).
    cursor_moves_by_push: usize,
    lost_push_requests: usize,
    lost_push_answers: usize,
    lost_pulls: usize,
    crashes: usize,
    open_field_conflicts_at_end: usize,
    open_record_conflicts_at_end: usize,
}

impl Stats {
    fn add(&mut self, s: Stats) {
        self.edits += s.edits;
        self.multi_field_edits += s.multi_field_edits;
        self.deletes += s.deletes;
        self.field_resolutions += s.field_resolutions;
        self.record_resolutions += s.record_resolutions;
        self.field_edits_of_conflicts += s.field_edits_of_conflicts;
        self.resent_duplicates += s.resent_duplicates;
        self.cursor_moves_by_push += s.cursor_moves_by_push;
        self.lost_push_requests += s.lost_push_requests;
        self.lost_push_answers += s.lost_push_answers;
        self.lost_pulls += s.lost_pulls;
        self.crashes += s.crashes;
        self.open_field_conflicts_at_end += s.open_field_conflicts_at_end;
        self.open_record_conflicts_at_end += s.open_record_conflicts_at_end;
    }
}

/// One laptop: its store (closed and opened again by a crash) and the
/// server's record of it.
struct Laptop {
    dir: PathBuf,
    store: Option<LocalStore>,
    device: Device,
    /// How far its clock is off: shown to people, never used to order.
    skew: Duration,
}

impl Laptop {
    fn store(&self) -> &LocalStore {
        self.store.as_ref().expect("open")
    }
}

struct World {
    _root: tempfile::TempDir,
    server: ServerStore,
    laptops: Vec<Laptop>,
    /// An admin device that never pushes: its pulls read the whole log.
    observer: Device,
    tick: i64,
    /// Every operation a laptop made, in the order made.
    made: Vec<Op>,
    stats: Stats,
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

fn enroll(server: &ServerStore, role: Role, sites: &[&str], id: DeviceId, name: &str) -> Device {
    let sites = sites.iter().map(|s| s.to_string()).collect();
    let code = server
        .mint_code(role, sites, 1, None, base_time())
        .expect("code");
    server
        .enroll(&code, id, name, base_time())
        .expect("store")
        .expect("enrolled")
        .0
}

impl World {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let server = ServerStore::open(&root.path().join("server")).expect("server store");
        let skews = [Duration::zero(), Duration::days(365), Duration::days(-365)];
        let laptops = (0..DEVICES)
            .map(|d| {
                let dir = root.path().join(format!("laptop-{d}"));
                let (store, _) = LocalStore::init(&dir, &format!("laptop {d}")).expect("init");
                let id = store.device().expect("device").id;
                let device = if d == SUPERVISOR {
                    enroll(&server, Role::Supervisor, &[], id, "supervisor")
                } else {
                    enroll(&server, Role::Field, &CROSSINGS, id, "field")
                };
                Laptop {
                    dir,
                    store: Some(store),
                    device,
                    skew: skews[d % skews.len()],
                }
            })
            .collect();
        let observer = enroll(
            &server,
            Role::Admin,
            &[],
            DeviceId(uuid::Uuid::now_v7()),
            "observer",
        );
        World {
            _root: root,
            server,
            laptops,
            observer,
            tick: 0,
            made: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The next minute, as `dev`'s clock shows it (`None`: the server's).
    fn now(&mut self, dev: Option<usize>) -> DateTime<Utc> {
        self.tick += 1;
        base_time()
            + Duration::minutes(self.tick)
            + dev.map_or(Duration::zero(), |d| self.laptops[d].skew)
    }

    fn doc(&self, dev: usize, id: RecordId) -> RecordDoc {
        self.laptops[dev]
            .store()
            .record_doc(id)
            .expect("read")
            .unwrap_or_default()
    }

    /// Records the operations a local write on `record` made (those in its
    /// doc now and not in `before`), and returns them.
    fn note_made(&mut self, dev: usize, record: RecordId, before: &RecordDoc) -> Vec<Op> {
        let known: HashSet<OpId> = before.ops.iter().map(|o| o.id).collect();
        let device = self.laptops[dev].device.id;
        let new: Vec<Op> = self
            .doc(dev, record)
            .ops
            .into_iter()
            .filter(|o| !known.contains(&o.id))
            .collect();
        assert!(!new.is_empty(), "a local write made no operation");
        assert!(new.iter().all(|o| o.device == device));
        self.made.extend(new.iter().cloned());
        new
    }

    /// The records `dev` shows as active, in id order.
    fn active(&self, dev: usize) -> Vec<RecordId> {
        self.laptops[dev]
            .store()
            .views()
            .map(|v| v.expect("read"))
            .filter_map(|v| v.active().map(|f| f.id))
            .collect()
    }

    fn apply(&mut self, a: &Action) {
        match *a {
            Action::Create { dev } => {
                let creates = self
                    .made
                    .iter()
                    .filter(|o| matches!(o.change, Change::Create { .. }))
                    .count();
                if creates >= MAX_RECORDS {
                    return;
                }
                let now = self.now(Some(dev));
                let id = self.laptops[dev]
                    .store()
                    .add(new_family(), now)
                    .expect("add");
                self.note_made(dev, id, &RecordDoc::default());
            }
            Action::Edit {
                dev,
                rec,
                field,
                value: v,
                also,
                on_conflict,
            } => self.edit(dev, rec, field, v, also, on_conflict),
            Action::Delete { dev, rec } => {
                let active = self.active(dev);
                if active.is_empty() {
                    return;
                }
                let record = active[rec.index(active.len())];
                let before = self.doc(dev, record);
                let now = self.now(Some(dev));
                self.laptops[dev]
                    .store()
                    .delete(record, now)
                    .expect("delete");
                let made = self.note_made(dev, record, &before);
                assert_eq!(made.len(), 1);
                assert_eq!(made[0].base, before.base_for_lifecycle());
                self.stats.deletes += 1;
            }
            Action::Resolve { pick, value: v } => self.resolve(pick, v),
            Action::Push { dev, k, fate } => {
                self.push_once(dev, k, fate);
            }
            Action::Pull { dev, k, fate } => {
                self.pull_once(dev, k, fate);
            }
            Action::Sync { dev } => self.sync(dev, usize::MAX),
            Action::Crash { dev, steps } => {
                self.sync(dev, steps);
                self.stats.crashes += 1;
                let l = &mut self.laptops[dev];
                drop(l.store.take());
                l.store = Some(LocalStore::open(&l.dir).expect("reopen after a crash"));
            }
        }
    }

    fn edit(
        &mut self,
        dev: usize,
        rec: Index,
        field: usize,
        v: usize,
        also: Option<(usize, usize)>,
        on_conflict: bool,
    ) {
        let active = self.active(dev);
        if active.is_empty() {
            return;
        }
        let store = self.laptops[dev].store();
        let conflicted: Vec<(RecordId, FieldName)> = store
            .conflicts()
            .expect("conflicts")
            .into_iter()
            .filter(|c| active.contains(&c.record_id))
            .filter_map(|c| Some((c.record_id, FieldName::parse(&c.field)?)))
            .collect();
        let (record, field) = if on_conflict && !conflicted.is_empty() {
            conflicted[rec.index(conflicted.len())]
        } else {
            (active[rec.index(active.len())], FIELDS[field])
        };
        let before_doc = self.doc(dev, record);
        let before = before_doc.view(record);
        let mut values = vec![value(field, v)];
        if let Some((f2, v2)) = also {
            values.push(value(FIELDS[f2], v2));
        }
        let names: Vec<FieldName> = values.iter().map(|v| v.name()).collect();
        let heads_before: Vec<BTreeSet<OpId>> = names
            .iter()
            .map(|f| {
                before_doc
                    .heads(Slot::Field(*f))
                    .iter()
                    .map(|o| o.id)
                    .collect()
            })
            .collect();
        let now = self.now(Some(dev));
        let changed = self.laptops[dev]
            .store()
            .edit(record, values, today(), now)
            .expect("the histories only make valid values");
        if changed.is_empty() {
            return;
        }
        let made = self.note_made(dev, record, &before_doc);
        self.stats.edits += 1;
        if changed.len() > 1 {
            self.stats.multi_field_edits += 1;
        }
        let doc = self.doc(dev, record);
        for f in &changed {
            let op_id = made
                .iter()
                .find(|o| o.touches(Slot::Field(*f)))
                .expect("every changed field has its operation")
                .id;
            let after: BTreeSet<OpId> = doc.heads(Slot::Field(*f)).iter().map(|o| o.id).collect();
            assert!(after.contains(&op_id), "a new edit is a head of {f}");
            let shown = before
                .conflicts
                .iter()
                .find(|c| c.field == f.as_str())
                .map(|c| c.values.iter().find(|v| v.shown).expect("one shown").op);
            // (d) A field device's edit of a conflicted field replaces only
            // the shown value, whatever else the edit changes.
            if let Some(shown) = shown {
                self.stats.field_edits_of_conflicts += 1;
                let i = names.iter().position(|n| n == f).expect("asked for");
                let mut expected = heads_before[i].clone();
                expected.remove(&shown);
                expected.insert(op_id);
                assert_eq!(
                    after, expected,
                    "an edit of conflicted {f} replaced more than the shown value"
                );
            }
        }
    }

    fn resolve(&mut self, pick: Index, v: usize) {
        let dev = SUPERVISOR;
        let conflicts = self.laptops[dev].store().conflicts().expect("conflicts");
        if conflicts.is_empty() {
            return;
        }
        let c = conflicts[pick.index(conflicts.len())].clone();
        let record = c.record_id;
        let before = self.doc(dev, record);
        let text = if c.field == RECORD_CONFLICT_FIELD {
            if v.is_multiple_of(2) {
                DECIDE_DELETED
            } else {
                DECIDE_KEPT
            }
            .to_string()
        } else {
            let field = FieldName::parse(&c.field).expect("a field name");
            // As typed by a supervisor: one of the competing values or another.
            if v.is_multiple_of(3) {
                value(field, v / 3).display()
            } else {
                c.values[v % c.values.len()].value.clone()
            }
        };
        let now = self.now(Some(dev));
        self.laptops[dev]
            .store()
            .resolve(&c.id, &text, today(), now)
            .expect("a decision the supervisor may make");
        let made = self.note_made(dev, record, &before);
        assert!(made.iter().all(|o| o.resolution));
        if c.field == RECORD_CONFLICT_FIELD {
            self.stats.record_resolutions += 1;
        } else {
            self.stats.field_resolutions += 1;
        }
        // A decision closes the conflict it decides, where it is made.
        let after = self.laptops[dev].store().conflicts().expect("conflicts");
        assert!(
            after.iter().all(|k| k.id != c.id),
            "the decision left conflict {} open: {after:#?}",
            c.field
        );
    }

    /// What the server answers to a push of these queued operations, read
    /// from their JSON as its handler reads them.
    fn serve_push(&mut self, dev: usize, json: &[&[u8]]) -> PushResponse {
        let mut body = ops_body_start(json);
        body.push(b'}');
        let raw: RawPushRequest = serde_json::from_slice(&body).expect("a push body");
        let ops: Vec<Op> = raw
            .ops
            .iter()
            .map(|o| serde_json::from_str(o.get()).expect("an operation"))
            .collect();
        let now = self.now(None);
        let ack = self
            .server
            .push(&self.laptops[dev].device, ops, now)
            .expect("push");
        assert!(ack.rejected.is_empty(), "refused: {:?}", ack.rejected);
        self.stats.resent_duplicates += ack.already_held;
        ack
    }

    /// The page the server answers to a pull, through its wire encoding.
    fn serve_pull(&self, device: &Device, after: SyncCursor, limit: usize) -> PullResponse {
        let page = self.server.pull(device, after, limit).expect("pull");
        serde_json::from_slice(&page.to_json()).expect("a pull answer")
    }

    /// One request of `engine` for `dev`, carried with `fate`; whether the
    /// engine had anything to ask.
    fn step(&mut self, dev: usize, engine: &mut ClientSync, fate: Fate) -> bool {
        let store = self.laptops[dev].store();
        let Some(request) = engine.next(store).expect("next request") else {
            return false;
        };
        match request {
            Request::Push(batch) => {
                if fate == Fate::RequestLost {
                    self.stats.lost_push_requests += 1;
                    return true;
                }
                let json: Vec<&[u8]> = batch.iter().map(|q| q.json.as_slice()).collect();
                let ack = self.serve_push(dev, &json);
                if fate == Fate::AnswerLost {
                    self.stats.lost_push_answers += 1;
                    return true;
                }
                // The answer as the device reads it off the wire.
                let ack: PushResponse =
                    serde_json::from_slice(&serde_json::to_vec(&ack).unwrap()).unwrap();
                let store = self.laptops[dev].store();
                let before = store.cursor().expect("cursor");
                engine.on_push(store, &batch, &ack).expect("acknowledge");
                if store.cursor().expect("cursor") != before {
                    self.stats.cursor_moves_by_push += 1;
                }
            }
            Request::Pull { after, limit } => {
                let page = self.serve_pull(&self.laptops[dev].device, after, limit);
                if fate != Fate::Answered {
                    self.stats.lost_pulls += 1;
                    return true;
                }
                let store = self.laptops[dev].store();
                engine.on_pull(store, after, page).expect("apply");
            }
        }
        true
    }

    /// One push of at most `k` operations, if any wait.
    fn push_once(&mut self, dev: usize, k: usize, fate: Fate) {
        let mut engine = ClientSync::new(k);
        let store = self.laptops[dev].store();
        if !SyncStore::pending(store, 1).expect("queue").is_empty() {
            self.step(dev, &mut engine, fate);
        }
    }

    /// One pull of at most `k` operations.
    fn pull_once(&mut self, dev: usize, k: usize, fate: Fate) {
        let mut engine = ClientSync::pull_only(k);
        self.step(dev, &mut engine, fate);
    }

    /// A sync of `dev` with no losses, cut after `steps` requests.
    fn sync(&mut self, dev: usize, steps: usize) {
        let mut engine = ClientSync::new(MAX_BATCH);
        let mut n = 0;
        while n < steps && self.step(dev, &mut engine, Fate::Answered) {
            n += 1;
            assert!(n < 10_000, "a sync that does not end");
        }
        if steps == usize::MAX {
            assert!(engine.is_done());
        }
    }

    /// Every device syncs; twice over.
    fn quiesce(&mut self) {
        for _ in 0..2 {
            for dev in 0..DEVICES {
                self.sync(dev, usize::MAX);
            }
        }
    }

    /// The whole log, in order, as the observer pulls it; and the cursor
    /// after its last entry.
    fn log(&self) -> (Vec<Op>, SyncCursor) {
        let mut ops = Vec::new();
        let mut after = SyncCursor(0);
        loop {
            let page = self.serve_pull(&self.observer, after, MAX_PULL_OPS);
            ops.extend(page.ops);
            after = page.cursor;
            if !page.more {
                return (ops, after);
            }
        }
    }
}

/// `from` has `target` in its causal past (through bases), or is it.
fn saw(ops: &BTreeMap<OpId, &Op>, from: OpId, target: OpId) -> bool {
    let mut stack = vec![from];
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if id == target {
            return true;
        }
        if seen.insert(id)
            && let Some(o) = ops.get(&id)
        {
            stack.extend(o.base.iter().copied());
        }
    }
    false
}

/// Runs a history, checks every property, and says what it exercised.
fn run(actions: &[Action]) -> Result<Stats, TestCaseError> {
    let mut w = World::new();
    for n in 0..INITIAL_RECORDS {
        w.apply(&Action::Create { dev: n % DEVICES });
    }
    w.quiesce();
    for a in actions {
        w.apply(a);
    }
    w.quiesce();

    // (c) The log holds each operation once, and every operation made.
    let (log, end) = w.log();
    let logged: HashSet<OpId> = log.iter().map(|o| o.id).collect();
    prop_assert_eq!(logged.len(), log.len(), "an operation is logged twice");
    let made: HashSet<OpId> = w.made.iter().map(|o| o.id).collect();
    prop_assert_eq!(&logged, &made, "an operation never reached the server");
    for (n, l) in w.laptops.iter().enumerate() {
        let store = l.store();
        prop_assert_eq!(store.pending_count().unwrap(), 0, "device {} queue", n);
        prop_assert!(store.held().unwrap().is_empty(), "device {} held", n);
        prop_assert_eq!(store.cursor().unwrap(), end, "device {} cursor", n);
    }

    // (a) Every device holds and shows what the server's log gives, as
    // does the server's own copy of each record.
    let mut server_docs: BTreeMap<RecordId, RecordDoc> = BTreeMap::new();
    for op in &log {
        prop_assert!(server_docs.entry(op.record).or_default().insert(op.clone()));
    }
    let stored: BTreeMap<RecordId, RecordDoc> = w
        .server
        .record_docs()
        .collect::<Result<_, _>>()
        .expect("server records");
    prop_assert_eq!(&stored, &server_docs, "the server's records and its log");
    let views: BTreeMap<RecordId, RecordView> = server_docs
        .iter()
        .map(|(id, doc)| (*id, doc.view(*id)))
        .collect();
    for (n, l) in w.laptops.iter().enumerate() {
        let store = l.store();
        let docs: BTreeMap<RecordId, RecordDoc> = store
            .record_docs()
            .collect::<Result<_, _>>()
            .expect("laptop records");
        prop_assert_eq!(
            docs.keys().collect::<Vec<_>>(),
            server_docs.keys().collect::<Vec<_>>(),
            "device {} holds other records",
            n
        );
        for (id, doc) in &docs {
            prop_assert_eq!(&doc.ops, &server_docs[id].ops, "device {} ops of {}", n, id);
            let view = &views[id];
            prop_assert_eq!(&doc.view(*id), view, "device {} view of {}", n, id);
            let shown = store.get(*id).unwrap().expect("a created record");
            prop_assert_eq!(Some(&shown.family), view.family.as_ref());
            prop_assert_eq!(&shown.lifecycle, &view.lifecycle);
            prop_assert_eq!(&shown.conflicts, &view.conflicts);
        }
        // Every family counted once: the report rows are the active ones.
        let active = views.values().filter(|v| v.active().is_some()).count();
        prop_assert_eq!(store.report_rows().count(), active, "device {} rows", n);
        let open: usize = views.values().map(|v| v.conflicts.len()).sum();
        prop_assert_eq!(store.conflicts().unwrap().len(), open);
    }

    // (b) Nothing made disappears without a trace.
    for op in &w.made {
        let doc = &server_docs[&op.record];
        let view = &views[&op.record];
        let family = &view.family.as_ref().expect("created").fields;
        let by_id: BTreeMap<OpId, &Op> = doc.ops.iter().map(|o| (o.id, o)).collect();
        let record_conflict = view
            .conflicts
            .iter()
            .find(|c| c.field == RECORD_CONFLICT_FIELD);
        match &op.change {
            Change::Edit { values, .. } => {
                for v in values {
                    let f = v.name();
                    let shown = family.get(f) == *v;
                    let replaced = doc.ops.iter().any(|o| {
                        o.id != op.id && o.touches(Slot::Field(f)) && o.base.contains(&op.id)
                    });
                    let competing = view.conflicts.iter().any(|c| {
                        c.field == f.as_str()
                            && c.values
                                .iter()
                                .any(|cv| cv.op == op.id && cv.value == v.display())
                    });
                    // A deletion that saw the edit settles it (and the
                    // record's field conflicts with it) unless it is itself
                    // in conflict.
                    let deleted_after_seeing = view.lifecycle == Lifecycle::Deleted
                        && record_conflict.is_none()
                        && doc
                            .ops
                            .iter()
                            .any(|o| matches!(o.change, Change::Delete) && o.base.contains(&op.id));
                    prop_assert!(
                        shown || replaced || competing || deleted_after_seeing,
                        "edit {} of {} to {:?} vanished: {:#?}",
                        op.id,
                        f,
                        v.display(),
                        view
                    );
                }
                // An edit on a deleted record was seen by a delete that
                // counts, or is (or led to) a "kept" value of a record conflict.
                if view.lifecycle == Lifecycle::Deleted {
                    let seen_by_delete = doc
                        .heads(Slot::Lifecycle)
                        .iter()
                        .any(|h| matches!(h.change, Change::Delete) && saw(&by_id, h.id, op.id));
                    let kept = record_conflict
                        .is_some_and(|c| c.values.iter().any(|cv| saw(&by_id, cv.op, op.id)));
                    prop_assert!(
                        seen_by_delete || kept,
                        "edit {} was deleted unseen, with no record conflict: {:#?}",
                        op.id,
                        view
                    );
                }
            }
            Change::Delete => {
                let deleted = view.lifecycle == Lifecycle::Deleted;
                let replaced = doc.ops.iter().any(|o| {
                    o.id != op.id && o.touches(Slot::Lifecycle) && o.base.contains(&op.id)
                });
                let competing = record_conflict.is_some_and(|c| {
                    c.values
                        .iter()
                        .any(|cv| cv.op == op.id && cv.value == DECIDE_DELETED)
                });
                prop_assert!(
                    deleted || replaced || competing,
                    "delete {} vanished: {:#?}",
                    op.id,
                    view
                );
            }
            Change::Restore => prop_assert!(op.resolution, "only a decision keeps a family"),
            // Duplicate decisions are not made here (see shared/tests/duplicates.rs).
            Change::Create { .. }
            | Change::Merge { .. }
            | Change::MergedValues { .. }
            | Change::Dismiss { .. }
            | Change::Erase { .. } => {}
            Change::Other(o) => prop_assert!(false, "this test makes no `{}`", o.kind),
        }
    }

    let mut stats = w.stats;
    for v in views.values() {
        for c in &v.conflicts {
            if c.field == RECORD_CONFLICT_FIELD {
                stats.open_record_conflicts_at_end += 1;
            } else {
                stats.open_field_conflicts_at_end += 1;
            }
        }
    }
    Ok(stats)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Ids differ from run to run: a saved case would not replay.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn devices_converge_on_the_servers_log(actions in history()) {
        run(&actions)?;
    }
}

/// The generator reaches the cases the properties are about: conflicts of
/// both kinds, decisions, lost requests and answers, re-sent batches and
/// crashes.
#[test]
fn the_histories_exercise_conflicts_decisions_and_losses() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = history();
    let mut total = Stats::default();
    for _ in 0..128 {
        let actions = strategy.new_tree(&mut runner).unwrap().current();
        total.add(run(&actions).expect("the properties hold"));
    }
    println!("{total:#?}");
    assert!(total.edits > 500, "{total:?}");
    assert!(total.multi_field_edits > 20, "{total:?}");
    assert!(total.deletes > 50, "{total:?}");
    assert!(total.field_resolutions > 10, "{total:?}");
    assert!(total.record_resolutions > 10, "{total:?}");
    // Ids are random, so who wins a tie varies from run to run: 10 to 17
    // such edits were seen; the test needs some, not a number.
    assert!(total.field_edits_of_conflicts > 5, "{total:?}");
    assert!(total.resent_duplicates > 50, "{total:?}");
    assert!(total.cursor_moves_by_push > 50, "{total:?}");
    assert!(total.lost_push_requests > 20, "{total:?}");
    assert!(total.lost_push_answers > 20, "{total:?}");
    assert!(total.lost_pulls > 50, "{total:?}");
    assert!(total.crashes > 50, "{total:?}");
    assert!(total.open_field_conflicts_at_end > 10, "{total:?}");
    assert!(total.open_record_conflicts_at_end > 10, "{total:?}");
}
