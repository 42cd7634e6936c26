//! The merge-cycle rule (`returnee_shared::merge::cycles`) over a model of
//! the sync: a few laptops that merge, unmerge and edit offline, and a
//! server that logs what they push and settles rings of merges after each
//! push, as `ServerStore::push_settled` does.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use returnee_shared::merge::cycles::{RULE_DEVICE, settle_cycles};
use returnee_shared::merge::{Change, Lifecycle, Op, RecordDoc, plan_merge, plan_unmerge};
use returnee_shared::{DeviceId, FamilyFields, FieldName, FieldValue, Members, OpId, RecordId};
use returnee_shared::{DocType, ReturnType};
use uuid::Uuid;

const RECORDS: usize = 4;
const LAPTOPS: usize = 3;

fn record(i: usize) -> RecordId {
    RecordId(Uuid::from_u128(
        0x0193_0000_0000_7000_8000_0000_0000_0000 | i as u128,
    ))
}

fn fields(i: usize) -> FamilyFields {
    FamilyFields {
        crossing: "torkham".into(),
        crossed_on: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        return_type: ReturnType::Spontaneous,
        departure_province: "PK-KP".into(),
        destination_province: "AF-NAN".into(),
        members: Members {
            males: [0, 1, 0, i as u32, 0],
            females: [0, 0, 0, 1, 0],
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

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 9, minute % 60, 0).unwrap()
}

/// One replica: the records' operations, and those made here not yet pushed.
#[derive(Clone, Default)]
struct Replica {
    docs: BTreeMap<RecordId, RecordDoc>,
    pending: Vec<Op>,
    /// How much of the server's log this replica has pulled.
    cursor: usize,
}

impl Replica {
    fn insert(&mut self, op: Op) -> bool {
        self.docs.entry(op.record).or_default().insert(op)
    }
    fn lifecycle(&self, id: RecordId) -> Lifecycle {
        self.docs[&id].view(id).lifecycle
    }
}

struct World {
    laptops: Vec<Replica>,
    server: Replica,
    log: Vec<Op>,
    next_op: u128,
    minute: u32,
}

#[derive(Debug, Clone)]
enum Action {
    Merge { by: usize, keep: usize, lose: usize },
    Unmerge { by: usize, rec: usize },
    Edit { by: usize, rec: usize, note: u8 },
    Sync { by: usize },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..LAPTOPS, 0..RECORDS, 0..RECORDS)
            .prop_map(|(by, keep, lose)| Action::Merge { by, keep, lose }),
        1 => (0..LAPTOPS, 0..RECORDS).prop_map(|(by, rec)| Action::Unmerge { by, rec }),
        2 => (0..LAPTOPS, 0..RECORDS, 0..4u8)
            .prop_map(|(by, rec, note)| Action::Edit { by, rec, note }),
        2 => (0..LAPTOPS).prop_map(|by| Action::Sync { by }),
    ]
}

impl World {
    fn new() -> Self {
        let mut server = Replica::default();
        let mut log = Vec::new();
        for i in 0..RECORDS {
            let op = Op {
                id: OpId(Uuid::from_u128(0xc0 + i as u128)),
                record: record(i),
                device: DeviceId(Uuid::from_u128(0xd0)),
                at: at(0),
                base: vec![],
                resolution: false,
                change: Change::Create {
                    fields: fields(i),
                    origin: None,
                },
            };
            server.insert(op.clone());
            log.push(op);
        }
        let mut laptop = server.clone();
        laptop.cursor = log.len();
        World {
            laptops: vec![laptop; LAPTOPS],
            server,
            log,
            next_op: 1,
            minute: 1,
        }
    }

    /// An operation made on laptop `by`: ids spread over the tie-break's bits.
    fn make(&mut self, by: usize) -> impl FnMut(RecordId, Vec<OpId>, Change) -> Op + use<> {
        let device = DeviceId(Uuid::from_u128(0xd1 + by as u128));
        let first = self.next_op;
        self.next_op += 16;
        self.minute += 1;
        let when = at(self.minute);
        let mut n = 0u128;
        move |record, base, change| {
            n += 1;
            let k = (first + n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            Op {
                id: OpId(Uuid::from_u128(k)),
                record,
                device,
                at: when,
                base,
                resolution: true,
                change,
            }
        }
    }

    fn local(&mut self, by: usize, ops: Vec<Op>) {
        for op in ops {
            self.laptops[by].insert(op.clone());
            self.laptops[by].pending.push(op);
        }
    }

    fn apply(&mut self, a: &Action) {
        match *a {
            Action::Merge { by, keep, lose } => {
                let (keep, lose) = (record(keep), record(lose));
                let l = &self.laptops[by];
                if keep == lose
                    || l.lifecycle(keep) != Lifecycle::Active
                    || l.lifecycle(lose) != Lifecycle::Active
                {
                    return;
                }
                let (kd, ld) = (l.docs[&keep].clone(), l.docs[&lose].clone());
                let ops = plan_merge((keep, &kd), (lose, &ld), self.make(by));
                self.local(by, ops);
            }
            Action::Unmerge { by, rec } => {
                let rec = record(rec);
                let l = &self.laptops[by];
                let Some(into) = l.lifecycle(rec).merged_into() else {
                    return;
                };
                let (rd, kd) = (l.docs[&rec].clone(), l.docs[&into].clone());
                let ops = plan_unmerge((rec, &rd), Some((into, &kd)), self.make(by));
                self.local(by, ops);
            }
            Action::Edit { by, rec, note } => {
                let rec = record(rec);
                let l = &self.laptops[by];
                if l.lifecycle(rec) != Lifecycle::Active {
                    return;
                }
                let base = l.docs[&rec].base_for_edit(FieldName::Notes, false);
                let mut make = self.make(by);
                let mut op = make(
                    rec,
                    base,
                    Change::edit(vec![FieldValue::Notes(Some(format!("note {note}")))]),
                );
                op.resolution = false;
                self.local(by, vec![op]);
            }
            Action::Sync { by } => self.sync(by),
        }
    }

    /// A push of everything pending, the server settling rings, then a pull.
    fn sync(&mut self, by: usize) {
        let pushed = std::mem::take(&mut self.laptops[by].pending);
        let mut lifecycles = Vec::new();
        for op in pushed {
            if op.lifecycle().is_some() {
                lifecycles.push(op.record);
            }
            if self.server.insert(op.clone()) {
                self.log.push(op);
            }
        }
        let server = &self.server;
        let restores = settle_cycles(lifecycles, |id| server.docs.get(&id).cloned());
        for op in restores {
            assert_eq!(op.device, RULE_DEVICE);
            if self.server.insert(op.clone()) {
                self.log.push(op);
            }
        }
        let l = &mut self.laptops[by];
        for op in &self.log[l.cursor..] {
            l.docs.entry(op.record).or_default().insert(op.clone());
        }
        l.cursor = self.log.len();
    }
}

/// Where a record is counted: the active record its chain of merges ends
/// at; `None` for a ring or a chain that does not end.
fn counted_at(r: &Replica, id: RecordId) -> Option<RecordId> {
    let mut current = id;
    for _ in 0..=RECORDS {
        match r.lifecycle(current) {
            Lifecycle::Active => return Some(current),
            Lifecycle::Merged { into } => current = into,
            Lifecycle::Deleted => return None,
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever merges, unmerges and edits the laptops make offline and in
    /// whatever order they sync, once everyone has synced every family is
    /// counted exactly once (its chain of merges ends at a family that
    /// counts) and every replica holds the same operations.
    #[test]
    fn after_everyone_syncs_every_family_counts_once_and_replicas_agree(
        actions in proptest::collection::vec(action(), 1..40)
    ) {
        let mut w = World::new();
        for a in &actions {
            w.apply(a);
        }
        for _ in 0..2 {
            for by in 0..LAPTOPS {
                w.sync(by);
            }
        }
        for i in 0..RECORDS {
            let id = record(i);
            prop_assert!(
                counted_at(&w.server, id).is_some(),
                "record {} is counted nowhere: {:?}", i, w.server.lifecycle(id)
            );
            for l in &w.laptops {
                prop_assert_eq!(&l.docs[&id], &w.server.docs[&id]);
            }
        }
    }
}

/// The case: two supervisors merge the same pair in opposite
/// directions offline. After both sync, the lower id counts, the other is
/// merged into it, and the rule made one `Restore`, whoever synced first.
#[test]
fn opposite_merges_of_one_pair_leave_the_lower_id_counting() {
    for first in [0, 1] {
        let mut w = World::new();
        w.apply(&Action::Merge {
            by: 0,
            keep: 0,
            lose: 1,
        });
        w.apply(&Action::Merge {
            by: 1,
            keep: 1,
            lose: 0,
        });
        for by in [first, 1 - first, 0, 1] {
            w.sync(by);
        }
        let s = &w.server;
        assert_eq!(s.lifecycle(record(0)), Lifecycle::Active);
        assert_eq!(
            s.lifecycle(record(1)),
            Lifecycle::Merged { into: record(0) }
        );
        let rule_ops: Vec<&Op> = w.log.iter().filter(|o| o.device == RULE_DEVICE).collect();
        assert_eq!(rule_ops.len(), 1, "one Restore, made once");
        // The merge of 0 into 1 carried 0's values onto 1 (now merged), and
        // the merge of 1 into 0 carried 1's onto 0: they compete with 0's own.
        let view = s.docs[&record(0)].view(record(0));
        assert!(
            view.conflicts.iter().any(|c| c.field == "members"),
            "the carried count is a conflict: {:?}",
            view.conflicts
        );
    }
}

/// A ring of three merges made on three laptops: one survivor, the lowest id.
#[test]
fn a_ring_of_three_merges_keeps_the_lowest_id() {
    let mut w = World::new();
    for (by, keep, lose) in [(0, 2, 1), (1, 3, 2), (2, 1, 3)] {
        w.apply(&Action::Merge { by, keep, lose });
    }
    for by in 0..LAPTOPS {
        w.sync(by);
    }
    for by in 0..LAPTOPS {
        w.sync(by);
    }
    let s = &w.server;
    assert_eq!(s.lifecycle(record(1)), Lifecycle::Active);
    for i in [2, 3] {
        assert_eq!(counted_at(s, record(i)), Some(record(1)));
    }
    assert_eq!(counted_at(s, record(0)), Some(record(0)));
}
