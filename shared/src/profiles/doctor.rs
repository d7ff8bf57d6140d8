//! Doctors' practices: `POST /doctors/profile` makes a doctor bookable; `GET /doctors` finds
//! them by specialization or near a point.

use std::future::Future;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};
use crate::events::{Action, Delivery, DomainEvent, EntityType, EventBus, OutboxStore, Trace};
use crate::geo::{Cell, GeoPoint};
use crate::ids::IdGen;
use crate::pagination::{Page, Position};
use crate::session::SignedIn;
use crate::users::{Role, UserId};

/// The largest `k` (rings around the point) a nearby search accepts: 91 cells of about 5 km²,
/// roughly 25 km across.
pub const MAX_NEARBY_RINGS: u32 = 5;
const MAX_SPECIALIZATION_CHARS: usize = 100;

/// A doctor's stored profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorProfile {
    pub user_id: UserId,
    pub username: String,
    pub specialization: String,
    pub cell: Cell,
    pub updated_at: OffsetDateTime,
}

/// A doctor as lists show them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DoctorSummary {
    #[schema(value_type = u64)]
    pub id: UserId,
    pub username: String,
    #[schema(example = "Cardiology")]
    pub specialization: String,
    #[schema(value_type = String, example = "872a1072cffffff")]
    pub h3_index: Cell,
    /// For nearby searches: how many H3 rings from the searched point (0 = the same cell).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ring: Option<u32>,
}

impl From<&DoctorProfile> for DoctorSummary {
    fn from(profile: &DoctorProfile) -> Self {
        Self {
            id: profile.user_id,
            username: profile.username.clone(),
            specialization: profile.specialization.clone(),
            h3_index: profile.cell,
            ring: None,
        }
    }
}

/// The body of `POST /doctors/profile`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DoctorProfileRequest {
    #[schema(example = "Cardiology")]
    pub specialization: String,
    #[schema(example = 40.7128)]
    pub latitude: Option<f64>,
    #[schema(example = -74.006)]
    pub longitude: Option<f64>,
}

/// A checked profile request.
#[derive(Debug)]
pub struct NewDoctorProfile {
    pub specialization: String,
    pub point: GeoPoint,
}

impl TryFrom<DoctorProfileRequest> for NewDoctorProfile {
    type Error = ApiError;

    fn try_from(request: DoctorProfileRequest) -> Result<Self, ApiError> {
        let specialization = parse_specialization(&request.specialization);
        let point = GeoPoint::parse(request.latitude, request.longitude, ("latitude", "longitude"));
        match (specialization, point) {
            (Ok(specialization), Ok(point)) => Ok(Self { specialization, point }),
            (specialization, point) => {
                let mut errors: Vec<FieldError> = specialization.err().into_iter().collect();
                errors.extend(point.err().unwrap_or_default());
                Err(ApiError::invalid_fields(errors))
            }
        }
    }
}

/// A specialization, trimmed; 1 to 100 characters.
pub fn parse_specialization(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 || chars > MAX_SPECIALIZATION_CHARS || trimmed.chars().any(char::is_control) {
        let message = format!("must be 1 to {MAX_SPECIALIZATION_CHARS} printable characters");
        return Err(FieldError::new("specialization", message));
    }
    Ok(trimmed.to_owned())
}

/// Which doctors to list.
#[derive(Debug, Clone)]
pub struct DoctorFilter {
    pub specialization: Option<String>,
    pub near: Option<(Cell, u32)>,
}

/// Stores and finds doctor profiles.
pub trait DoctorStore: Send + Sync {
    /// Creates or replaces the profile and moves its locator, with `event` in the outbox, in
    /// one transaction; answers whether one existed before.
    fn put_doctor(
        &self,
        profile: &DoctorProfile,
        event: &DomainEvent,
    ) -> impl Future<Output = anyhow::Result<bool>> + Send;

    fn doctor(
        &self,
        id: UserId,
    ) -> impl Future<Output = anyhow::Result<Option<DoctorProfile>>> + Send;

    /// Doctors ordered by name, optionally of one specialization (case-insensitive).
    fn doctors(
        &self,
        specialization: Option<&str>,
        limit: u32,
        after: Option<Position>,
    ) -> impl Future<Output = anyhow::Result<Page<DoctorProfile>>> + Send;

    /// Every doctor whose practice lies in one of `cells`.
    fn doctors_in(
        &self,
        cells: &[Cell],
    ) -> impl Future<Output = anyhow::Result<Vec<DoctorProfile>>> + Send;
}

/// Creates or moves the caller's practice.
pub async fn set_doctor_profile<S, B>(
    store: &S,
    ids: &impl IdGen,
    trace: &Trace,
    delivery: &Delivery<'_, B, S>,
    signed_in: &SignedIn,
    request: NewDoctorProfile,
) -> Result<(DoctorSummary, bool), ApiError>
where
    S: DoctorStore + OutboxStore,
    B: EventBus,
{
    let (caller, user) = (signed_in.caller, signed_in.account.clone());
    caller.require(&[Role::Doctor], "Only doctors can set up a doctor profile.")?;

    let profile = DoctorProfile {
        user_id: user.id,
        username: user.username,
        specialization: request.specialization,
        cell: request.point.cell(),
        updated_at: trace.now,
    };
    let event = DomainEvent::by(
        ids,
        trace,
        caller,
        Action::SetupDoctor,
        EntityType::DoctorProfile,
        caller.id,
    )
    .with_cell(profile.cell);
    let existed = store.put_doctor(&profile, &event).await?;
    delivery.after_commit(event).await;

    tracing::info!(user_id = %caller.id, moved = existed, "doctor profile set");
    Ok((DoctorSummary::from(&profile), !existed))
}

/// One page of doctors. Nearby searches are ordered nearest ring first, then by name; they read
/// the few coarse partitions around the point and page through the result in memory.
pub async fn list_doctors(
    store: &impl DoctorStore,
    filter: &DoctorFilter,
    limit: u32,
    after: Option<Position>,
) -> Result<Page<DoctorSummary>, ApiError> {
    let Some((origin, k)) = filter.near else {
        let page = store.doctors(filter.specialization.as_deref(), limit, after).await?;
        let items = page.items.iter().map(DoctorSummary::from).collect();
        return Ok(Page { items, next: page.next });
    };

    let disk = origin.disk(k);
    let cells: Vec<Cell> = disk.iter().map(|(cell, _)| *cell).collect();
    let wanted = filter.specialization.as_deref().map(str::to_lowercase);
    let mut found: Vec<DoctorSummary> = store
        .doctors_in(&cells)
        .await?
        .iter()
        .filter(|d| wanted.as_ref().is_none_or(|w| d.specialization.to_lowercase() == *w))
        .filter_map(|d| {
            let ring = disk.iter().find(|(cell, _)| *cell == d.cell)?.1;
            Some(DoctorSummary { ring: Some(ring), ..DoctorSummary::from(d) })
        })
        .collect();
    found.sort_by(|a, b| {
        (a.ring, a.username.to_lowercase(), a.id).cmp(&(b.ring, b.username.to_lowercase(), b.id))
    });

    let offset: usize =
        after.and_then(|p| p.get("offset").and_then(|o| o.parse().ok())).unwrap_or(0);
    let end = offset.saturating_add(limit as usize).min(found.len());
    let items = found.get(offset..end).map(<[_]>::to_vec).unwrap_or_default();
    let next = (end < found.len()).then(|| Position::from([("offset".into(), end.to_string())]));
    Ok(Page { items, next })
}
