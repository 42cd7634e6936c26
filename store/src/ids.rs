//! Fresh ids. `returnee-shared` reads no clock and no random source, so
//! they are made here and passed in.

use returnee_shared::{DeviceId, OpId, RecordId};
use uuid::Uuid;

/// A fresh, time-ordered record id (UUID v7: new records fill the last
/// pack of each kind).
pub fn new_record_id() -> RecordId {
    RecordId(Uuid::now_v7())
}

/// A fresh operation id (UUID v7; used for identity, never for order).
pub fn new_op_id() -> OpId {
    OpId(Uuid::now_v7())
}

/// A fresh device id (random).
pub fn new_device_id() -> DeviceId {
    DeviceId(Uuid::new_v4())
}
