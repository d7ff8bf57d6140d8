//! Key values of each item kind, in one place.

use time::OffsetDateTime;

use crate::appointments::AppointmentId;
use crate::geo::Cell;
use crate::throttle::ThrottleKey;
use crate::users::{Role, UserId, UserStatus};

pub const USER_SK: &str = "USER";
pub const EMAIL_SK: &str = "EMAIL";
pub const USERNAME_SK: &str = "USERNAME";

pub fn user_pk(id: UserId) -> String {
    format!("USER#{id}")
}

pub fn email_pk(normalised_email: &str) -> String {
    format!("EMAIL#{normalised_email}")
}

pub fn username_pk(unique_username: &str) -> String {
    format!("USERNAME#{unique_username}")
}

/// `gsi1` partition of users by role (for listing accounts by role).
pub fn users_by_role_pk(role: Role) -> String {
    format!("USERS#{}", role.as_str())
}

/// `gsi2` partition holding every user.
pub const ALL_USERS_PK: &str = "USERS";

/// The sort key of a user in both user listings: by status (`active` before `disabled`), then
/// by creation time and id, so that one status is a `begins_with` of its partition.
pub fn user_list_sk(status: UserStatus, created: OffsetDateTime, id: UserId) -> String {
    format!("{}{}#{id}", user_list_prefix(status), key_time(created))
}

/// The part of [`user_list_sk`] shared by every user of one status.
pub fn user_list_prefix(status: UserStatus) -> String {
    format!("{}#", status.as_str())
}

/// The item holding the number of active Admins (`active_admins`).
pub const ADMIN_TALLY_PK: &str = "ADMIN_TALLY";
pub const ADMIN_TALLY_SK: &str = "ACTIVE";

/// The counter of sign-in attempts of one account or address.
pub fn throttle_pk(key: &ThrottleKey) -> String {
    format!("THROTTLE#{}", key.as_str())
}

pub const THROTTLE_SK: &str = "THROTTLE";

/// A key no item ever has: the health check reads it.
pub const HEALTH_PROBE_PK: &str = "HEALTH_PROBE";
pub const HEALTH_PROBE_SK: &str = "NONE";

pub const PATIENT_SK: &str = "PATIENT";
pub const DOCTOR_SK: &str = "DOCTOR";

/// `gsi1` partition holding every doctor, sorted by name.
pub const ALL_DOCTORS_PK: &str = "DOCTORS";

/// `gsi2` partition of the doctors of one specialization (compared without case).
pub fn doctors_by_specialization_pk(specialization: &str) -> String {
    format!("DOCTORS#SPEC#{}", specialization.to_lowercase())
}

/// The sort key that orders doctors by name.
pub fn doctor_name_sk(username: &str, id: UserId) -> String {
    format!("{}#{id}", username.to_lowercase())
}

/// The partition of doctor locators under one coarse cell, for nearby searches.
pub fn doctors_near_pk(coarse: Cell) -> String {
    format!("DOCTORS_NEAR#{coarse}")
}

pub fn doctor_locator_sk(cell: Cell, id: UserId) -> String {
    format!("{cell}#{id}")
}

pub const APPOINTMENT_POINTER_SK: &str = "APPT";
pub const SLOT_SK: &str = "SLOT";

/// A time as it appears in keys: UTC to the second, fixed width, so text order is time order.
pub fn key_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The partition of a region's appointments: the patient's resolution-7 cell.
pub fn cell_pk(cell: Cell) -> String {
    format!("CELL#{cell}")
}

pub fn appointment_sk(start: OffsetDateTime, id: AppointmentId) -> String {
    format!("APPT#{}#{id}", key_time(start))
}

/// Sort key of an appointment in a party's index.
pub fn party_sk(start: OffsetDateTime, id: AppointmentId) -> String {
    format!("{}#{id}", key_time(start))
}

/// `gsi1` partition of a patient's appointments.
pub fn patient_appointments_pk(id: UserId) -> String {
    format!("PATIENT#{id}")
}

/// `gsi2` partition of a doctor's appointments.
pub fn doctor_appointments_pk(id: UserId) -> String {
    format!("DOCTOR#{id}")
}

/// The item that finds an appointment by id.
pub fn appointment_pointer_pk(id: AppointmentId) -> String {
    format!("APPT#{id}")
}

pub fn doctor_slot_pk(id: UserId, start: OffsetDateTime) -> String {
    format!("SLOT#DOCTOR#{id}#{}", key_time(start))
}

pub fn patient_slot_pk(id: UserId, start: OffsetDateTime) -> String {
    format!("SLOT#PATIENT#{id}#{}", key_time(start))
}

/// The outbox is spread over a few partitions so that a burst of writes has no hot key.
pub const OUTBOX_SHARDS: u64 = 4;

pub fn outbox_pk(shard: u64) -> String {
    format!("OUTBOX#{shard}")
}

pub fn outbox_sk(occurred_at: OffsetDateTime, event_id: u64) -> String {
    format!("{}#{event_id}", key_time(occurred_at))
}

/// The partition of a month's audit records (`2026-12`).
pub fn audit_month_pk(month: &str) -> String {
    format!("AUDIT#{month}")
}

pub fn month_of(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// A time to the nanosecond, fixed width: for items that must keep the order of events within
/// one second.
pub fn precise_key_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{}.{:09}Z", key_time(t).trim_end_matches('Z'), t.nanosecond())
}

/// Audit records sort by time, then by event id (fixed width, so text order is number order).
pub fn audit_sk(t: OffsetDateTime, event_id: u64) -> String {
    format!("{}#{event_id:016}", precise_key_time(t))
}

/// `gsi1` partition of one user's audit records.
pub fn audit_user_pk(id: UserId) -> String {
    format!("AUDIT_USER#{id}")
}

/// `gsi2` partition of one action's audit records.
pub fn audit_action_pk(action: &str) -> String {
    format!("AUDIT_ACTION#{action}")
}

/// The partition of one cell's statistics (its all-time counters and its days).
pub fn stats_pk(cell: Cell) -> String {
    format!("STATS#{cell}")
}

pub const STATS_TOTAL_SK: &str = "TOTAL";

pub fn stats_day_sk(day: time::Date) -> String {
    format!("DAY#{day}")
}

/// `gsi1` partition ranking the cells of one resolution by their all-time total.
pub fn busiest_pk(resolution: u8) -> String {
    format!("BUSIEST#{resolution}")
}

/// Sorts by total (zero-padded, so text order is number order), then by cell.
pub fn busiest_sk(total: i64, cell: Cell) -> String {
    format!("{:012}#{cell}", total.max(0))
}

/// The marker that an event was already counted.
pub fn stats_event_pk(event_id: u64) -> String {
    format!("STATS_EVENT#{event_id}")
}
