//! Domain events: what happened, who did it, to what. Every state change publishes one to
//! EventBridge, and so does every read of health data by a Doctor or an Admin. `EVENTS.md`
//! documents the schema; `events/` at the repository root holds a sample of each.
//!
//! Events are small: ids and short fields, never request bodies or passwords. A booking or a
//! cancellation carries the appointment's cell, time and status, so consumers never read the
//! table back.

mod bus;
mod delivery;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use bus::{EventBridgeBus, EventBus, RecordingBus};
pub use delivery::{Delivery, OutboxStore, RedriveReport, clear_outbox_item};

use crate::auth::AuthedUser;
use crate::geo::Cell;
use crate::ids::IdGen;
use crate::users::{Role, UserId};

/// The `source` of every event the clinic publishes.
pub const SOURCE: &str = "clinic";
/// The `source` with which the local stack starts consumer instances before events come (see
/// `scripts/stack.py`); consumers answer it without doing anything. Never published to a bus.
pub const LOCAL_WARMUP_SOURCE: &str = "local.warmup";
/// The version of [`EventDetail`]'s shape; a consumer refuses versions it does not know.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened. The `detail-type` is the variant's name; the audit action is its
/// upper-case form, in the predecessor's style (`CREATE_APPOINTMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    RegisterUser,
    LoginSuccess,
    LoginFailure,
    SetupPatient,
    SetupDoctor,
    CreateAppointment,
    CancelAppointment,
    ReadHealthData,
    ChangeUserRole,
    ChangeUserStatus,
    ChangePassword,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Self::RegisterUser,
        Self::LoginSuccess,
        Self::LoginFailure,
        Self::SetupPatient,
        Self::SetupDoctor,
        Self::CreateAppointment,
        Self::CancelAppointment,
        Self::ReadHealthData,
        Self::ChangeUserRole,
        Self::ChangeUserStatus,
        Self::ChangePassword,
    ];

    /// The EventBridge `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::RegisterUser => "UserRegistered",
            Self::LoginSuccess => "LoginSucceeded",
            Self::LoginFailure => "LoginFailed",
            Self::SetupPatient => "PatientProfileSet",
            Self::SetupDoctor => "DoctorProfileSet",
            Self::CreateAppointment => "AppointmentBooked",
            Self::CancelAppointment => "AppointmentCancelled",
            Self::ReadHealthData => "HealthDataRead",
            Self::ChangeUserRole => "UserRoleChanged",
            Self::ChangeUserStatus => "UserStatusChanged",
            Self::ChangePassword => "PasswordChanged",
        }
    }

    /// The audit action name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegisterUser => "REGISTER_USER",
            Self::LoginSuccess => "LOGIN_SUCCESS",
            Self::LoginFailure => "LOGIN_FAILURE",
            Self::SetupPatient => "SETUP_PATIENT",
            Self::SetupDoctor => "SETUP_DOCTOR",
            Self::CreateAppointment => "CREATE_APPOINTMENT",
            Self::CancelAppointment => "CANCEL_APPOINTMENT",
            Self::ReadHealthData => "READ_HEALTH_DATA",
            Self::ChangeUserRole => "CHANGE_USER_ROLE",
            Self::ChangeUserStatus => "CHANGE_USER_STATUS",
            Self::ChangePassword => "CHANGE_PASSWORD",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether a successful action changes stored data, so that its event is written to the
    /// outbox with the change ([`super::Delivery::after_commit`]); sign-ins and reads publish
    /// without one ([`super::Delivery::standalone`]).
    pub fn changes_data(self) -> bool {
        match self {
            Self::RegisterUser
            | Self::SetupPatient
            | Self::SetupDoctor
            | Self::CreateAppointment
            | Self::CancelAppointment
            | Self::ChangeUserRole
            | Self::ChangeUserStatus
            | Self::ChangePassword => true,
            Self::LoginSuccess | Self::LoginFailure | Self::ReadHealthData => false,
        }
    }
}

/// The kind of thing an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    User,
    PatientProfile,
    DoctorProfile,
    Appointment,
    AuditLog,
    Analytics,
}

impl EntityType {
    pub const ALL: [EntityType; 6] = [
        Self::User,
        Self::PatientProfile,
        Self::DoctorProfile,
        Self::Appointment,
        Self::AuditLog,
        Self::Analytics,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::PatientProfile => "patient_profile",
            Self::DoctorProfile => "doctor_profile",
            Self::Appointment => "appointment",
            Self::AuditLog => "audit_log",
            Self::Analytics => "analytics",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: UserId,
    pub role: Role,
}

impl From<AuthedUser> for Actor {
    fn from(user: AuthedUser) -> Self {
        Self { user_id: user.id, role: user.role }
    }
}

/// What consumers of booking events need, so they never read the table back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentFacts {
    pub doctor_id: UserId,
    pub patient_id: UserId,
    pub h3_index: Cell,
    #[serde(with = "time::serde::rfc3339")]
    pub appointment_time: OffsetDateTime,
    pub status: crate::appointments::Status,
}

/// The `detail` of every clinic event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    pub version: u32,
    /// Unique per event, a positive integer below 2^53: the consumers' idempotency key.
    pub event_id: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The API request that caused it, to trace an event back to its logs.
    pub request_id: Option<String>,
    pub actor: Option<Actor>,
    pub action: Action,
    pub entity_type: EntityType,
    pub entity_id: Option<String>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub h3_index: Option<Cell>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment: Option<AppointmentFacts>,
}

impl EventDetail {
    /// Whether the event was written to the outbox with its change, and so has an outbox item
    /// until the audit recorder has recorded it and clears it. A failed action changes nothing.
    pub fn kept_with_change(&self) -> bool {
        self.outcome == Outcome::Success && self.action.changes_data()
    }
}

/// One event, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub detail: EventDetail,
}

impl DomainEvent {
    /// A successful action by `actor` on an entity.
    pub fn new(
        ids: &impl IdGen,
        trace: &Trace,
        actor: Option<Actor>,
        action: Action,
        entity_type: EntityType,
        entity_id: Option<String>,
    ) -> Self {
        Self {
            detail: EventDetail {
                version: SCHEMA_VERSION,
                event_id: ids.next_id(),
                occurred_at: trace.now,
                request_id: trace.request_id.clone(),
                actor,
                action,
                entity_type,
                entity_id,
                outcome: Outcome::Success,
                h3_index: None,
                appointment: None,
            },
        }
    }

    /// A successful action by a signed-in user on one entity.
    pub fn by(
        ids: &impl IdGen,
        trace: &Trace,
        user: AuthedUser,
        action: Action,
        entity_type: EntityType,
        entity_id: impl ToString,
    ) -> Self {
        Self::new(ids, trace, Some(user.into()), action, entity_type, Some(entity_id.to_string()))
    }

    pub fn failed(mut self) -> Self {
        self.detail.outcome = Outcome::Failure;
        self
    }

    pub fn with_cell(mut self, cell: Cell) -> Self {
        self.detail.h3_index = Some(cell);
        self
    }

    pub fn with_appointment(mut self, facts: AppointmentFacts) -> Self {
        self.detail.h3_index = Some(facts.h3_index);
        self.detail.appointment = Some(facts);
        self
    }

    pub fn detail_type(&self) -> &'static str {
        self.detail.action.detail_type()
    }

    pub fn id(&self) -> u64 {
        self.detail.event_id
    }
}

/// The event of a Doctor or an Admin reading health data.
pub fn health_data_read(
    ids: &impl IdGen,
    trace: &Trace,
    reader: AuthedUser,
    entity_type: EntityType,
    entity_id: Option<String>,
) -> DomainEvent {
    DomainEvent::new(
        ids,
        trace,
        Some(reader.into()),
        Action::ReadHealthData,
        entity_type,
        entity_id,
    )
}

/// Where and when a request happens: given to every operation that publishes an event.
#[derive(Debug, Clone)]
pub struct Trace {
    pub request_id: Option<String>,
    pub now: OffsetDateTime,
}

impl Trace {
    pub fn new(request_id: Option<String>, now: OffsetDateTime) -> Self {
        Self { request_id, now }
    }
}

/// The envelope EventBridge delivers to a consumer.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    /// EventBridge's own id (a retry of the same put gets a new one; use `detail.event_id`).
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: serde_json::Value,
}

/// An event for tests that need one but do not look at it.
#[cfg(test)]
pub(crate) fn any_event() -> DomainEvent {
    let trace = Trace::new(None, OffsetDateTime::now_utc());
    DomainEvent::new(
        &crate::ids::RandomIds,
        &trace,
        None,
        Action::LoginFailure,
        EntityType::User,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_of(action: Action) -> DomainEvent {
        let trace = Trace::new(None, OffsetDateTime::now_utc());
        DomainEvent::new(&crate::ids::RandomIds, &trace, None, action, EntityType::User, None)
    }

    #[test]
    fn only_successful_changes_leave_an_outbox_item_for_the_audit_recorder() {
        let kept: Vec<_> =
            Action::ALL.into_iter().filter(|a| event_of(*a).detail.kept_with_change()).collect();

        assert_eq!(kept.len(), Action::ALL.len() - 3, "{kept:?}");
        for standalone in [Action::LoginSuccess, Action::LoginFailure, Action::ReadHealthData] {
            assert!(!kept.contains(&standalone), "{standalone:?}");
        }
        // A failed password change is published without a stored change.
        assert!(!event_of(Action::ChangePassword).failed().detail.kept_with_change());
    }
}
