//! `POST /appointments`: a patient books a doctor for one slot.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use time::format_description::well_known::Iso8601;
use time::{OffsetDateTime, PrimitiveDateTime};
use utoipa::ToSchema;

use super::{
    Appointment, AppointmentId, AppointmentStore, AppointmentView, BookingConflict, Status,
};
use crate::auth::AuthedUser;
use crate::error::ApiError;
use crate::events::{
    Action, AppointmentFacts, Delivery, DomainEvent, EntityType, EventBus, OutboxStore, Trace,
};
use crate::ids::IdGen;
use crate::profiles::doctor::DoctorProfile;
use crate::profiles::patient::PatientProfile;
use crate::users::{Role, User, UserId};

/// How far ahead a booking may be made.
pub const MAX_DAYS_AHEAD: i64 = 366;
const WRITE_ATTEMPTS: u32 = 4;

/// The predecessor's body: `{"doctor_id": 1, "datetime": "2025-06-01T10:00:00"}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BookingRequest {
    #[schema(example = 1)]
    pub doctor_id: u64,
    /// ISO 8601 / RFC 3339. Without an offset it is read as UTC.
    #[schema(example = "2030-06-01T10:00:00Z")]
    pub datetime: String,
}

/// A checked slot start: in UTC, on the appointment grid, in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotStart(OffsetDateTime);

impl SlotStart {
    /// Reads a date-time (an offset is optional; none means UTC) and checks that it starts a
    /// slot of `minutes` from midnight UTC, with seconds zero, after `now` and at most
    /// [`MAX_DAYS_AHEAD`] days ahead.
    pub fn parse(raw: &str, minutes: u32, now: OffsetDateTime) -> Result<Self, ApiError> {
        let field = |message: String| ApiError::invalid_field("datetime", message);
        let start = parse_datetime(raw).ok_or_else(|| {
            field("must be an ISO 8601 date-time such as 2030-06-01T10:00:00Z".into())
        })?;
        // A date-time at the very end of year 9999 with a negative offset has no UTC form.
        let start = start
            .checked_to_offset(time::UtcOffset::UTC)
            .ok_or_else(|| field(format!("must be at most {MAX_DAYS_AHEAD} days ahead")))?;

        let minute_of_day = u32::from(start.hour()) * 60 + u32::from(start.minute());
        if start.second() != 0 || start.nanosecond() != 0 || minute_of_day % minutes != 0 {
            return Err(field(format!(
                "must start on the {minutes}-minute grid from midnight UTC with seconds zero \
                 (for example 10:00 or 10:{minutes:02} UTC)"
            )));
        }
        if start <= now {
            return Err(field("must be in the future".into()));
        }
        if start > now + time::Duration::days(MAX_DAYS_AHEAD) {
            return Err(field(format!("must be at most {MAX_DAYS_AHEAD} days ahead")));
        }
        Ok(Self(start))
    }

    pub fn get(self) -> OffsetDateTime {
        self.0
    }
}

fn parse_datetime(raw: &str) -> Option<OffsetDateTime> {
    // RFC 3339 allows a lower-case `t` and `z`; the parser wants upper case.
    let raw = raw.trim().to_ascii_uppercase();
    let raw = raw.as_str();
    OffsetDateTime::parse(raw, &Iso8601::DEFAULT)
        .ok()
        .or_else(|| PrimitiveDateTime::parse(raw, &Iso8601::DEFAULT).ok().map(|t| t.assume_utc()))
}

/// What a booking reads before it writes: the caller's patient profile (for its cell) and the
/// doctor's profile.
#[derive(Debug, Default)]
pub struct Parties {
    pub patient: Option<PatientProfile>,
    pub doctor: Option<DoctorProfile>,
}

/// Reads what a booking needs, the caller's account included.
pub trait BookingReader: Send + Sync {
    /// The caller's account and patient profile, and the profile of `doctor` when the request
    /// names one, read consistently (in DynamoDB, in one batch).
    fn account_and_parties(
        &self,
        caller: UserId,
        doctor: Option<UserId>,
    ) -> impl Future<Output = anyhow::Result<(Option<User>, Parties)>> + Send;
}

/// Books the caller with a doctor, with the `parties` read for the request (see
/// [`BookingReader`]). The patient's profile gives the cell; the doctor must have a profile.
/// DynamoDB refuses a second appointment in the same slot for either of them.
#[allow(clippy::too_many_arguments, reason = "each is a distinct input of the booking")]
pub async fn book<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    caller: AuthedUser,
    parties: Parties,
    request: BookingRequest,
    duration_minutes: u32,
) -> Result<AppointmentView, ApiError>
where
    S: AppointmentStore + OutboxStore,
    B: EventBus,
{
    caller.require(&[Role::Patient], "Only patients can book appointments.")?;
    let start = SlotStart::parse(&request.datetime, duration_minutes, trace.now)?;
    let doctor_id = UserId::new(request.doctor_id);

    let patient = parties.patient.filter(|p| p.user_id == caller.id).ok_or_else(|| {
        ApiError::invalid_field(
            "profile",
            "set up your patient profile (POST /setup-patient) before booking",
        )
    })?;
    let doctor = parties.doctor.filter(|d| d.user_id == doctor_id).ok_or_else(doctor_not_found)?;

    let mut appointment = Appointment {
        id: AppointmentId::new(ids.next_id()),
        doctor_id,
        patient_id: caller.id,
        doctor_name: doctor.username,
        patient_name: patient.username,
        start: start.get(),
        duration_minutes,
        status: Status::Scheduled,
        cell: patient.cell,
        created_at: trace.now,
    };
    for attempt in 1..=WRITE_ATTEMPTS {
        let event = appointment_event(ids, trace, caller, Action::CreateAppointment, &appointment);
        match store.book(&appointment, &event).await {
            Ok(()) => {
                tracing::info!(appointment_id = %appointment.id, "appointment booked");
                delivery.after_commit(event).await;
                return Ok(appointment.into());
            }
            Err(BookingConflict::DoctorBusy) => {
                return Err(ApiError::Conflict(
                    "The doctor already has an appointment in that slot.".into(),
                ));
            }
            Err(BookingConflict::PatientBusy) => {
                return Err(ApiError::Conflict(
                    "You already have an appointment in that slot.".into(),
                ));
            }
            Err(BookingConflict::DoctorGone) => return Err(doctor_not_found()),
            Err(BookingConflict::IdTaken) => appointment.id = AppointmentId::new(ids.next_id()),
            Err(BookingConflict::Contended) => {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
            }
            Err(BookingConflict::Unexpected(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::Busy)
}

/// The event of a change to an appointment, with what analytics needs to count it.
pub(super) fn appointment_event(
    ids: &impl IdGen,
    trace: &Trace,
    caller: AuthedUser,
    action: Action,
    a: &Appointment,
) -> DomainEvent {
    let facts = AppointmentFacts {
        doctor_id: a.doctor_id,
        patient_id: a.patient_id,
        h3_index: a.cell,
        appointment_time: a.start,
        status: a.status,
    };
    DomainEvent::by(ids, trace, caller, action, EntityType::Appointment, a.id)
        .with_appointment(facts)
}

fn doctor_not_found() -> ApiError {
    ApiError::NotFound("No bookable doctor has that id.".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2030-01-01 08:00 UTC);

    fn parse(raw: &str) -> Result<OffsetDateTime, String> {
        SlotStart::parse(raw, 30, NOW).map(SlotStart::get).map_err(|e| match e {
            ApiError::Validation { errors, .. } => errors[0].message.clone(),
            other => other.to_string(),
        })
    }

    #[test]
    fn a_time_without_offset_is_utc_and_one_with_offset_is_converted() {
        assert_eq!(parse("2030-01-02T10:00:00"), Ok(datetime!(2030-01-02 10:00 UTC)));
        assert_eq!(parse("2030-01-02T10:30:00Z"), Ok(datetime!(2030-01-02 10:30 UTC)));
        assert_eq!(parse("2030-01-02T12:00:00+02:00"), Ok(datetime!(2030-01-02 10:00 UTC)));
        assert_eq!(parse("2030-01-02t10:00:00z"), Ok(datetime!(2030-01-02 10:00 UTC)));
    }

    #[test]
    fn off_grid_starts_are_refused_saying_which_starts_are_allowed() {
        for raw in ["2030-01-02T10:15:00", "2030-01-02T10:00:30", "2030-01-02T10:00:00.5Z"] {
            let message = parse(raw).expect_err(raw);
            assert!(message.contains("30-minute grid"), "{raw}: {message}");
        }
    }

    #[test]
    fn past_and_far_future_starts_are_refused() {
        assert_eq!(parse("2029-12-31T10:00:00").unwrap_err(), "must be in the future");
        assert_eq!(parse("2030-01-01T08:00:00").unwrap_err(), "must be in the future");
        assert!(parse("2031-06-01T10:00:00").unwrap_err().contains("366 days"));
    }

    #[test]
    fn a_time_with_no_utc_form_is_refused_not_a_panic() {
        assert!(parse("9999-12-31T23:30:00-01:00").unwrap_err().contains("366 days"));
    }

    #[test]
    fn malformed_date_times_are_refused() {
        for raw in ["", "tomorrow", "2030-13-01T10:00:00", "2030-01-02 10:00"] {
            assert!(parse(raw).unwrap_err().contains("ISO 8601"), "{raw}");
        }
    }
}
