//! Convergence of the merge rules under random sync histories.
//!
//! Three devices and one server are modelled as plain data, following what
//! the CLI and the server do:
//! - a device makes operations the way `cli/src/store.rs` does (an edit's base
//!   is `plan_edit(fields, false)`, a delete's `base_for_lifecycle()`, a
//!   supervisor's decision `base_for_edit(field, true)` or
//!   `base_for_lifecycle()` with `resolution: true`), applies them to its own
//!   copy and queues them;
//! - a push sends the oldest queued operations; the server keeps those whose
//!   id it has not seen, appending them to its log. The response may be lost:
//!   the device then keeps them queued and sends them again later;
//! - a pull returns the log after the device's cursor, without the device's
//!   own operations, at most `k` of them. The response may be lost: the device
//!   then neither applies them nor moves its cursor.
//!
//! After the random history every device syncs everything, twice, with no
//! losses. Then every device must show what the server's log gives, no edit
//! or delete may have vanished without a trace, and the log must hold each
//! operation once.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::FileFailurePersistence;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use returnee_shared::merge::{
    Change, DECIDE_DELETED, Lifecycle, Op, RECORD_CONFLICT_FIELD, RecordDoc, RecordView, Slot,
};
use returnee_shared::{
    DeviceId, DocType, FamilyFields, FieldName, FieldValue, Members, OpId, RecordId, ReturnType,
};
use uuid::Uuid;

const DEVICES: usize = 3;
/// The device that may resolve conflicts.
const SUPERVISOR: usize = 0;
const MAX_ACTIONS: usize = 60;
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
    }
}

/// One of a few valid values of `field` (few, so that equal concurrent
/// values, and edits back to an earlier value, happen often).
fn value(field: FieldName, i: usize) -> FieldValue {
    match field {
        FieldName::Notes => {
            FieldValue::Notes([None, Some("a"), Some("b"), Some("c")][i % 4].map(String::from))
        }
        FieldName::Crossing => FieldValue::Crossing(
            ["torkham", "chaman", "angoor-adda", "ghulam-khan"][i % 4].to_string(),
        ),
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
        other => unreachable!("not edited in this model: {other}"),
    }
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
    Push {
        dev: usize,
        k: usize,
        lost: bool,
    },
    Pull {
        dev: usize,
        k: usize,
        lost: bool,
    },
    /// A whole sync with no losses: push everything, then pull everything.
    Sync {
        dev: usize,
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
        7 => (dev.clone(), 1..=MAX_BATCH, prop::bool::weighted(0.3))
            .prop_map(|(dev, k, lost)| Action::Push { dev, k, lost }),
        7 => (dev.clone(), 1..=MAX_BATCH, prop::bool::weighted(0.3))
            .prop_map(|(dev, k, lost)| Action::Pull { dev, k, lost }),
        7 => dev.prop_map(|dev| Action::Sync { dev }),
    ]
}

fn history() -> impl Strategy<Value = (u64, Vec<Action>)> {
    (
        any::<u64>(),
        prop::collection::vec(action(), 10..=MAX_ACTIONS),
    )
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Device {
    id: DeviceId,
    /// How far this device's clock is off: shown to people, never used to order.
    skew: Duration,
    docs: BTreeMap<RecordId, RecordDoc>,
    pending: VecDeque<Op>,
    /// How many log entries this device has seen.
    cursor: usize,
}

#[derive(Default)]
struct Server {
    log: Vec<Op>,
    ids: HashSet<OpId>,
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
    resent_duplicates: usize,
    lost_pulls: usize,
    open_field_conflicts_at_end: usize,
    open_record_conflicts_at_end: usize,
}

struct World {
    seed: u64,
    counter: u64,
    tick: i64,
    devices: Vec<Device>,
    server: Server,
    /// Every operation any device made, in the order made.
    made: Vec<Op>,
    stats: Stats,
}

impl World {
    fn new(seed: u64) -> Self {
        let skews = [Duration::zero(), Duration::days(365), Duration::days(-365)];
        World {
            seed,
            counter: 0,
            tick: 0,
            devices: (0..DEVICES)
                .map(|d| Device {
                    id: DeviceId(Uuid::from_u128(0xde71_ce00 + d as u128)),
                    skew: skews[d % skews.len()],
                    docs: BTreeMap::new(),
                    pending: VecDeque::new(),
                    cursor: 0,
                })
                .collect(),
            server: Server::default(),
            made: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// A deterministic id: a counter in the high bits (so ids are unique and
    /// sort in order made) and seeded noise in the low bits, which the
    /// tie-break reads first.
    fn fresh(&mut self) -> Uuid {
        self.counter += 1;
        let noise = splitmix(self.seed ^ self.counter.wrapping_mul(0x2545_f491_4f6c_dd1d));
        Uuid::from_u128(((self.counter as u128) << 64) | noise as u128)
    }

    fn now(&mut self, dev: usize) -> DateTime<Utc> {
        self.tick += 1;
        Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
            + Duration::minutes(self.tick)
            + self.devices[dev].skew
    }

    /// Makes an operation on device `dev`: applied there and queued for push.
    fn make(
        &mut self,
        dev: usize,
        record: RecordId,
        base: Vec<OpId>,
        resolution: bool,
        change: Change,
    ) -> Op {
        let op = Op {
            id: OpId(self.fresh()),
            record,
            device: self.devices[dev].id,
            at: self.now(dev),
            base,
            resolution,
            change,
        };
        let d = &mut self.devices[dev];
        assert!(d.docs.entry(record).or_default().insert(op.clone()));
        d.pending.push_back(op.clone());
        self.made.push(op.clone());
        op
    }

    /// The records `dev` shows as active (created and not deleted), in id order.
    fn active(&self, dev: usize) -> Vec<RecordId> {
        self.devices[dev]
            .docs
            .iter()
            .filter(|(id, doc)| doc.view(**id).active().is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    fn apply(&mut self, a: &Action) {
        match *a {
            Action::Create { dev } => {
                if self
                    .made
                    .iter()
                    .filter(|o| matches!(o.change, Change::Create { .. }))
                    .count()
                    >= MAX_RECORDS
                {
                    return;
                }
                let record = RecordId(self.fresh());
                let fields = new_family();
                fields.check(today()).expect("valid family");
                self.make(
                    dev,
                    record,
                    vec![],
                    false,
                    Change::Create {
                        fields,
                        origin: None,
                    },
                );
            }
            Action::Edit {
                dev,
                rec,
                field,
                value: v,
                also,
                on_conflict,
            } => {
                let active = self.active(dev);
                if active.is_empty() {
                    return;
                }
                let conflicted: Vec<(RecordId, FieldName)> = active
                    .iter()
                    .flat_map(|id| self.devices[dev].docs[id].view(*id).conflicts)
                    .filter_map(|c| Some((c.record_id, FieldName::parse(&c.field)?)))
                    .collect();
                let (record, field) = if on_conflict && !conflicted.is_empty() {
                    conflicted[rec.index(conflicted.len())]
                } else {
                    (active[rec.index(active.len())], FIELDS[field])
                };
                let doc = &self.devices[dev].docs[&record];
                let before = doc.view(record);
                let current = before.active().expect("active").fields.clone();
                let mut wanted = current.clone();
                wanted.set(value(field, v));
                if let Some((f2, v2)) = also {
                    wanted.set(value(FIELDS[f2], v2));
                }
                wanted
                    .check(today())
                    .expect("the model only makes valid values");
                let changes = current.changes_to(&wanted);
                if changes.is_empty() {
                    return;
                }
                let names: Vec<FieldName> = changes.iter().map(|v| v.name()).collect();
                let plan = doc.plan_edit(&names, false);
                let heads_before: Vec<BTreeSet<OpId>> = names
                    .iter()
                    .map(|f| doc.heads(Slot::Field(*f)).iter().map(|o| o.id).collect())
                    .collect();
                let mut made: Vec<(FieldName, OpId)> = Vec::new();
                for (group, base) in plan {
                    let values: Vec<FieldValue> = changes
                        .iter()
                        .filter(|v| group.contains(&v.name()))
                        .cloned()
                        .collect();
                    let op = self.make(dev, record, base, false, Change::Edit { values });
                    made.extend(group.iter().map(|f| (*f, op.id)));
                }
                self.stats.edits += 1;
                if names.len() > 1 {
                    self.stats.multi_field_edits += 1;
                }
                let doc = &self.devices[dev].docs[&record];
                for (f, before_heads) in names.iter().zip(&heads_before) {
                    let op_id = made
                        .iter()
                        .find(|(g, _)| g == f)
                        .expect("every field planned")
                        .1;
                    let after: BTreeSet<OpId> =
                        doc.heads(Slot::Field(*f)).iter().map(|o| o.id).collect();
                    assert!(after.contains(&op_id), "a new edit is a head of {f}");
                    let shown = before
                        .conflicts
                        .iter()
                        .find(|c| c.field == f.as_str())
                        .map(|c| c.values.iter().find(|v| v.shown).expect("one shown").op);
                    // (d) A field device's edit of a conflicted field replaces
                    // only the shown value, whatever else the edit changes.
                    if let Some(shown) = shown {
                        self.stats.field_edits_of_conflicts += 1;
                        let mut expected = before_heads.clone();
                        expected.remove(&shown);
                        expected.insert(op_id);
                        assert_eq!(
                            after, expected,
                            "a field device's edit of conflicted {f} replaced more than the shown value"
                        );
                    }
                }
            }
            Action::Delete { dev, rec } => {
                let active = self.active(dev);
                if active.is_empty() {
                    return;
                }
                let record = active[rec.index(active.len())];
                let base = self.devices[dev].docs[&record].base_for_lifecycle();
                self.make(dev, record, base, false, Change::Delete);
                self.stats.deletes += 1;
            }
            Action::Resolve { pick, value: v } => {
                let dev = SUPERVISOR;
                let conflicts: Vec<_> = self.devices[dev]
                    .docs
                    .iter()
                    .flat_map(|(id, doc)| doc.view(*id).conflicts)
                    .collect();
                if conflicts.is_empty() {
                    return;
                }
                let c = conflicts[pick.index(conflicts.len())].clone();
                let record = c.record_id;
                let doc = &self.devices[dev].docs[&record];
                if c.field == RECORD_CONFLICT_FIELD {
                    let change = if v % 2 == 0 {
                        Change::Delete
                    } else {
                        Change::Restore
                    };
                    let base = doc.base_for_lifecycle();
                    self.make(dev, record, base, true, change);
                    self.stats.record_resolutions += 1;
                } else {
                    let field = FieldName::parse(&c.field).expect("a field name");
                    // As typed by a supervisor: one of the competing values or another.
                    let text = if v % 3 == 0 {
                        value(field, v / 3).display()
                    } else {
                        c.values[v % c.values.len()].value.clone()
                    };
                    let parsed =
                        FieldValue::parse(field, &text).expect("displayed values parse back");
                    if let Some(f) = doc.view(record).family {
                        let mut fields = f.fields;
                        fields.set(parsed.clone());
                        fields.check(today()).expect("valid");
                    }
                    let base = doc.base_for_edit(field, true);
                    self.make(
                        dev,
                        record,
                        base,
                        true,
                        Change::Edit {
                            values: vec![parsed],
                        },
                    );
                    self.stats.field_resolutions += 1;
                }
                // A decision closes the conflict it decides, where it is made.
                let after = self.devices[dev].docs[&record].view(record);
                assert!(
                    after.conflicts.iter().all(|k| k.id != c.id),
                    "the resolution left conflict {} open: {:#?}",
                    c.field,
                    after.conflicts
                );
            }
            Action::Push { dev, k, lost } => self.push(dev, k, lost),
            Action::Pull { dev, k, lost } => self.pull(dev, k, lost),
            Action::Sync { dev } => self.sync(dev),
        }
    }

    fn push(&mut self, dev: usize, k: usize, lost: bool) {
        let d = &mut self.devices[dev];
        let n = k.min(d.pending.len());
        for op in d.pending.iter().take(n) {
            if self.server.ids.insert(op.id) {
                self.server.log.push(op.clone());
            } else {
                self.stats.resent_duplicates += 1;
            }
        }
        if !lost {
            d.pending.drain(..n);
        }
    }

    /// The server's pull: entries after the cursor, skipping the device's own,
    /// at most `k` operations; the cursor moves past every entry looked at.
    fn pull(&mut self, dev: usize, k: usize, lost: bool) {
        let d = &mut self.devices[dev];
        let mut ops = Vec::new();
        let mut cursor = d.cursor;
        for (i, op) in self.server.log.iter().enumerate().skip(d.cursor) {
            if ops.len() >= k {
                break;
            }
            cursor = i + 1;
            if op.device != d.id {
                ops.push(op.clone());
            }
        }
        if lost {
            self.stats.lost_pulls += 1;
            return;
        }
        for op in ops {
            d.docs.entry(op.record).or_default().insert(op);
        }
        d.cursor = cursor;
    }

    /// `dev` pushes everything, then pulls everything, with no losses.
    fn sync(&mut self, dev: usize) {
        while !self.devices[dev].pending.is_empty() {
            self.push(dev, MAX_BATCH, false);
        }
        while self.devices[dev].cursor < self.server.log.len() {
            self.pull(dev, MAX_BATCH, false);
        }
    }

    /// Every device syncs; twice over.
    fn quiesce(&mut self) {
        for _ in 0..2 {
            for dev in 0..DEVICES {
                self.sync(dev);
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
fn run(seed: u64, actions: &[Action]) -> Result<Stats, TestCaseError> {
    let mut w = World::new(seed);
    for n in 0..INITIAL_RECORDS {
        w.apply(&Action::Create { dev: n % DEVICES });
    }
    w.quiesce();
    for a in actions {
        w.apply(a);
    }
    w.quiesce();

    // (c) The log holds each operation once, and every operation made.
    let logged: HashSet<OpId> = w.server.log.iter().map(|o| o.id).collect();
    prop_assert_eq!(
        logged.len(),
        w.server.log.len(),
        "an operation is logged twice"
    );
    prop_assert_eq!(&logged, &w.server.ids);
    let made: HashSet<OpId> = w.made.iter().map(|o| o.id).collect();
    prop_assert_eq!(&logged, &made, "an operation never reached the server");
    for d in &w.devices {
        prop_assert!(d.pending.is_empty());
        prop_assert_eq!(d.cursor, w.server.log.len());
    }

    // (a) Every device shows what the server's log gives.
    let mut server_docs: BTreeMap<RecordId, RecordDoc> = BTreeMap::new();
    for op in &w.server.log {
        prop_assert!(server_docs.entry(op.record).or_default().insert(op.clone()));
    }
    let views: BTreeMap<RecordId, RecordView> = server_docs
        .iter()
        .map(|(id, doc)| (*id, doc.view(*id)))
        .collect();
    for (n, d) in w.devices.iter().enumerate() {
        prop_assert_eq!(
            d.docs.keys().collect::<Vec<_>>(),
            server_docs.keys().collect::<Vec<_>>(),
            "device {} holds other records",
            n
        );
        for (id, doc) in &d.docs {
            prop_assert_eq!(&doc.ops, &server_docs[id].ops, "device {} ops of {}", n, id);
            prop_assert_eq!(&doc.view(*id), &views[id], "device {} view of {}", n, id);
        }
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
            Change::Edit { values } => {
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
            // Duplicate decisions are not generated here (see shared/tests/duplicates.rs).
            Change::Create { .. }
            | Change::Merge { .. }
            | Change::MergedValues { .. }
            | Change::Dismiss { .. } => {}
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
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn devices_converge_on_the_servers_log((seed, actions) in history()) {
        run(seed, &actions)?;
    }
}

/// The generator reaches the cases the properties are about: conflicts of
/// both kinds, decisions, resent pushes and lost pulls.
#[test]
fn the_histories_exercise_conflicts_decisions_and_losses() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = history();
    let mut total = Stats::default();
    for _ in 0..256 {
        let (seed, actions) = strategy.new_tree(&mut runner).unwrap().current();
        let s = run(seed, &actions).expect("the properties hold");
        total.edits += s.edits;
        total.multi_field_edits += s.multi_field_edits;
        total.deletes += s.deletes;
        total.field_resolutions += s.field_resolutions;
        total.record_resolutions += s.record_resolutions;
        total.field_edits_of_conflicts += s.field_edits_of_conflicts;
        total.resent_duplicates += s.resent_duplicates;
        total.lost_pulls += s.lost_pulls;
        total.open_field_conflicts_at_end += s.open_field_conflicts_at_end;
        total.open_record_conflicts_at_end += s.open_record_conflicts_at_end;
    }
    println!("{total:#?}");
    assert!(total.edits > 500, "{total:?}");
    assert!(total.multi_field_edits > 20, "{total:?}");
    assert!(total.deletes > 50, "{total:?}");
    assert!(total.field_resolutions > 20, "{total:?}");
    assert!(total.record_resolutions > 5, "{total:?}");
    assert!(total.field_edits_of_conflicts > 10, "{total:?}");
    assert!(total.resent_duplicates > 50, "{total:?}");
    assert!(total.lost_pulls > 50, "{total:?}");
    assert!(total.open_field_conflicts_at_end > 10, "{total:?}");
    assert!(total.open_record_conflicts_at_end > 5, "{total:?}");
}
