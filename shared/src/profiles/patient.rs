//! `POST /setup-patient`: a patient says where they are; bookings inherit that cell.

use std::future::Future;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::events::{Action, Delivery, DomainEvent, EntityType, EventBus, OutboxStore, Trace};
use crate::geo::{Cell, GeoPoint};
use crate::ids::IdGen;
use crate::session::SignedIn;
use crate::users::{Role, UserId};

/// A patient's stored place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientProfile {
    pub user_id: UserId,
    pub username: String,
    pub cell: Cell,
    pub updated_at: OffsetDateTime,
}

/// Stores and reads patient profiles.
pub trait PatientStore: Send + Sync {
    /// Creates or replaces the profile, with `event` in the outbox, in one transaction;
    /// answers whether one existed before.
    fn put_patient(
        &self,
        profile: &PatientProfile,
        event: &DomainEvent,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    fn patient(
        &self,
        id: UserId,
    ) -> impl Future<Output = anyhow::Result<Option<PatientProfile>>> + Send;
}

/// The answer to `POST /setup-patient`, as the predecessor gave it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientSetup {
    #[schema(example = "Patient profile created")]
    pub message: &'static str,
    #[schema(value_type = String, example = "872a1072cffffff")]
    pub h3_index: Cell,
    /// `false` when an earlier profile was moved.
    #[serde(skip)]
    pub created: bool,
}

/// Creates or moves the caller's patient profile. Appointments already booked keep the cell
/// they were booked from: they record where demand came from at the time.
pub async fn setup_patient<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    signed_in: &SignedIn,
    point: GeoPoint,
) -> Result<PatientSetup, ApiError>
where
    S: PatientStore + OutboxStore,
    B: EventBus,
{
    let (caller, user) = (signed_in.caller, signed_in.account.clone());
    caller.require(&[Role::Patient], "Only patients can set up a patient profile.")?;

    let profile = PatientProfile {
        user_id: user.id,
        username: user.username,
        cell: point.cell(),
        updated_at: trace.now,
    };
    let event = DomainEvent::by(
        ids,
        trace,
        caller,
        Action::SetupPatient,
        EntityType::PatientProfile,
        caller.id,
    )
    .with_cell(profile.cell);
    let existed = store.put_patient(&profile, &event).await?;
    delivery.after_commit(event).await;

    tracing::info!(user_id = %caller.id, moved = existed, "patient profile set");
    Ok(PatientSetup {
        message: if existed { "Patient profile updated" } else { "Patient profile created" },
        h3_index: profile.cell,
        created: !existed,
    })
}
