//! Appointments: booked by a patient with a doctor for one slot, stored in the partition of the
//! patient's resolution-7 cell, and guarded by one slot item per doctor and per patient.

pub mod book;
pub mod cancel;
pub mod read;

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::events::DomainEvent;
use crate::geo::Cell;
use crate::pagination::{Page, Position};
use crate::users::{User, UserId};

/// An appointment's id: a positive integer below 2^53, like user ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppointmentId(u64);

impl AppointmentId {
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AppointmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AppointmentId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Scheduled,
    Cancelled,
}

/// A stored appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: AppointmentId,
    pub doctor_id: UserId,
    pub patient_id: UserId,
    pub doctor_name: String,
    pub patient_name: String,
    pub start: OffsetDateTime,
    pub duration_minutes: u32,
    pub status: Status,
    /// The patient's resolution-7 cell when they booked.
    pub cell: Cell,
    pub created_at: OffsetDateTime,
}

/// An appointment as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentView {
    #[schema(value_type = u64)]
    pub id: AppointmentId,
    #[schema(value_type = u64)]
    pub doctor_id: UserId,
    #[schema(value_type = u64)]
    pub patient_id: UserId,
    pub doctor_name: String,
    pub patient_name: String,
    /// The start, always with its offset (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2030-06-01T10:00:00Z")]
    pub appointment_time: OffsetDateTime,
    pub duration_minutes: u32,
    pub status: Status,
    #[schema(value_type = String, example = "872a1072cffffff")]
    pub h3_index: Cell,
}

impl From<Appointment> for AppointmentView {
    fn from(a: Appointment) -> Self {
        Self {
            id: a.id,
            doctor_id: a.doctor_id,
            patient_id: a.patient_id,
            doctor_name: a.doctor_name,
            patient_name: a.patient_name,
            appointment_time: a.start,
            duration_minutes: a.duration_minutes,
            status: a.status,
            h3_index: a.cell,
        }
    }
}

/// Why a booking could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum BookingConflict {
    #[error("the doctor already has an appointment in that slot")]
    DoctorBusy,
    #[error("the patient already has an appointment in that slot")]
    PatientBusy,
    #[error("the doctor has no profile")]
    DoctorGone,
    #[error("the id is taken")]
    IdTaken,
    #[error("the write conflicted or was throttled")]
    Contended,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a cancellation could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CancelConflict {
    #[error("the appointment is not scheduled any more")]
    NotScheduled,
    #[error("the write conflicted or was throttled")]
    Contended,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Whose appointments to list, and which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Patient(UserId),
    Doctor(UserId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum When {
    Upcoming,
    Past,
    All,
}

impl When {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upcoming => "upcoming",
            Self::Past => "past",
            Self::All => "all",
        }
    }
}

/// Stores appointments.
pub trait AppointmentStore: Send + Sync {
    /// Books in one transaction: the appointment, its id pointer, and the doctor's and the
    /// patient's slot items, provided the doctor still has a profile.
    fn book(
        &self,
        appointment: &Appointment,
        event: &DomainEvent,
    ) -> impl Future<Output = Result<(), BookingConflict>> + Send;

    /// The caller's account and, when the request names one, the appointment `id`, read
    /// consistently (in DynamoDB, the account and the appointment's id pointer in one batch).
    fn account_and_appointment(
        &self,
        caller: UserId,
        id: Option<AppointmentId>,
    ) -> impl Future<Output = anyhow::Result<(Option<User>, Option<Appointment>)>> + Send;

    /// Marks it cancelled and frees both slots in one transaction, if it is still scheduled.
    fn cancel(
        &self,
        appointment: &Appointment,
        by: UserId,
        at: OffsetDateTime,
        event: &DomainEvent,
    ) -> impl Future<Output = Result<(), CancelConflict>> + Send;

    /// A party's appointments by start time: ascending, or descending for `Past`.
    fn appointments_of(
        &self,
        party: Party,
        when: When,
        now: OffsetDateTime,
        limit: u32,
        after: Option<Position>,
    ) -> impl Future<Output = anyhow::Result<Page<Appointment>>> + Send;
}
