//! Regional statistics: appointments per H3 cell at every resolution from 0 to 7, by status and
//! by appointment day, kept up to date from booking events. Reads never touch appointments:
//! their cost does not grow with the number stored.

use std::future::Future;

use serde::Serialize;
use time::Date;
use utoipa::ToSchema;

use crate::appointments::Status;
use crate::error::ApiError;
use crate::events::{Action, EventDetail};
use crate::geo::Cell;

/// The coarsest and finest resolutions with statistics.
pub const RESOLUTIONS: std::ops::RangeInclusive<u8> = 0..=7;
/// How many of the busiest child cells a region shows.
pub const TOP_CHILDREN: usize = 5;
/// The largest `k` for the rings around a region.
pub const MAX_RINGS: u32 = 5;
/// The widest `from`/`to` range, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// The most regions `GET /analytics` lists.
pub const MAX_BUSIEST: u32 = 100;

/// How one event moves the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub scheduled: i64,
    pub cancelled: i64,
}

impl Delta {
    /// Appointments ever booked move with `scheduled + cancelled`.
    pub fn total(self) -> i64 {
        self.scheduled + self.cancelled
    }
}

/// One booking or cancellation, as the counters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsChange {
    pub event_id: u64,
    /// The appointment's resolution-7 cell.
    pub cell: Cell,
    /// The appointment's day (UTC).
    pub day: Date,
    pub delta: Delta,
}

impl StatsChange {
    /// The change an event makes, if it is one that counts.
    pub fn from_event(detail: &EventDetail) -> Option<Self> {
        let facts = detail.appointment.as_ref()?;
        let delta = match (detail.action, facts.status) {
            (Action::CreateAppointment, Status::Scheduled) => Delta { scheduled: 1, cancelled: 0 },
            (Action::CancelAppointment, Status::Cancelled) => Delta { scheduled: -1, cancelled: 1 },
            _ => return None,
        };
        let day = facts.appointment_time.to_offset(time::UtcOffset::UTC).date();
        Some(Self { event_id: detail.event_id, cell: facts.h3_index, day, delta })
    }
}

/// A cell's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ToSchema)]
pub struct Counts {
    pub scheduled: i64,
    pub cancelled: i64,
}

impl Counts {
    pub fn total(self) -> i64 {
        self.scheduled + self.cancelled
    }
}

/// Writes a date as ISO 8601 (`2026-12-04`).
fn iso_date<S: serde::Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(date)
}

/// A day's counters in one cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayCounts {
    #[serde(serialize_with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub day: Date,
    pub scheduled: i64,
    pub cancelled: i64,
}

/// Stores and reads the counters.
pub trait StatsStore: Send + Sync {
    /// Applies a change to the counters of its cell at every resolution, once: answers `false`
    /// when this event was already counted.
    fn apply(&self, change: &StatsChange) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// The all-time counters of each cell (zero for cells without appointments), in order.
    fn counts(&self, cells: &[Cell]) -> impl Future<Output = anyhow::Result<Vec<Counts>>> + Send;

    /// A cell's counters per day within `from..=to`.
    fn days(
        &self,
        cell: Cell,
        from: Date,
        to: Date,
    ) -> impl Future<Output = anyhow::Result<Vec<DayCounts>>> + Send;

    /// The busiest cells of a resolution, all time.
    fn busiest(
        &self,
        resolution: u8,
        limit: u32,
    ) -> impl Future<Output = anyhow::Result<Vec<(Cell, Counts)>>> + Send;
}

/// A region's figure in a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CellTotal {
    #[schema(value_type = String, example = "872a1072cffffff")]
    pub h3_index: Cell,
    pub resolution: u8,
    pub total: i64,
}

/// A cell near the region, with its distance in rings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RingTotal {
    #[schema(value_type = String)]
    pub h3_index: Cell,
    pub ring: u32,
    pub total: i64,
}

/// The predecessor's count entry.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CellCount {
    #[schema(value_type = String)]
    pub h3_index: Cell,
    pub count: i64,
}

/// `GET /analytics/{h3_index}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionStats {
    /// The region's canonical (lower-case) index.
    #[schema(value_type = String, example = "852a1073fffffff")]
    pub region: Cell,
    pub resolution: u8,
    /// Appointments ever booked in the region (scheduled and cancelled).
    pub total: i64,
    /// As the predecessor answered: the region and its count.
    pub appointments: Vec<CellCount>,
    pub by_status: Counts,
    #[serde(serialize_with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    #[serde(serialize_with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub to: Date,
    /// Days within `from..=to` that have appointments, by appointment day.
    pub by_day: Vec<DayCounts>,
    /// The busiest child cells (one resolution finer), at most five; empty at resolution 7.
    pub children: Vec<CellTotal>,
    /// With `k`: every cell within `k` rings, nearest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearby: Option<Vec<RingTotal>>,
}

/// Reads a region's statistics: one batch read of counters (the region, its children and its
/// rings) and one Query of its days.
pub async fn region_stats(
    store: &impl StatsStore,
    region: Cell,
    from: Date,
    to: Date,
    k: Option<u32>,
) -> Result<RegionStats, ApiError> {
    let children = region.children();
    let rings = k.map(|k| region.disk(k)).unwrap_or_default();
    let mut cells = vec![region];
    cells.extend(&children);
    cells.extend(rings.iter().map(|(cell, _)| *cell));

    let (counts, by_day) = tokio::try_join!(store.counts(&cells), store.days(region, from, to))?;
    let (own, rest) = counts.split_first().ok_or_else(|| anyhow::anyhow!("no counts read"))?;
    let (child_counts, ring_counts) = rest.split_at(children.len());

    let mut busiest: Vec<CellTotal> = children
        .iter()
        .zip(child_counts)
        .filter(|(_, c)| c.total() > 0)
        .map(|(cell, c)| CellTotal {
            h3_index: *cell,
            resolution: cell.resolution(),
            total: c.total(),
        })
        .collect();
    busiest.sort_by(|a, b| b.total.cmp(&a.total).then(a.h3_index.cmp(&b.h3_index)));
    busiest.truncate(TOP_CHILDREN);
    let nearby = k.map(|_| {
        rings
            .iter()
            .zip(ring_counts)
            .map(|((cell, ring), c)| RingTotal { h3_index: *cell, ring: *ring, total: c.total() })
            .collect()
    });
    Ok(RegionStats {
        region,
        resolution: region.resolution(),
        total: own.total(),
        appointments: vec![CellCount { h3_index: region, count: own.total() }],
        by_status: *own,
        from,
        to,
        by_day,
        children: busiest,
        nearby,
    })
}

/// Reads a region index: a canonical cell of resolution 0 to 7, in any letter case.
pub fn parse_region(raw: &str) -> Result<Cell, ApiError> {
    let cell: Cell = raw.trim().parse().map_err(|_| {
        ApiError::invalid_field("h3_index", "must be an H3 cell index, e.g. 872a1072cffffff")
    })?;
    if !RESOLUTIONS.contains(&cell.resolution()) {
        return Err(ApiError::invalid_field(
            "h3_index",
            format!(
                "has resolution {}; statistics exist for resolutions 0 to 7",
                cell.resolution()
            ),
        ));
    }
    Ok(cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_in_any_case_and_refuse_garbage_and_fine_cells() {
        assert_eq!(parse_region("872A1072CFFFFFF").unwrap().to_string(), "872a1072cffffff");
        assert!(parse_region("garbage").is_err());
        let fine = "882a1072cdfffff";
        let message = match parse_region(fine) {
            Err(ApiError::Validation { errors, .. }) => errors[0].message.clone(),
            other => panic!("{other:?}"),
        };
        assert!(message.contains("resolution 8"), "{message}");
    }

    #[test]
    fn days_are_written_as_iso_dates() {
        let day =
            DayCounts { day: time::macros::date!(2026 - 12 - 06), scheduled: 1, cancelled: 0 };

        assert_eq!(serde_json::to_value(day).unwrap()["day"], "2026-12-06");
    }

    #[test]
    fn a_cancellation_moves_one_from_scheduled_to_cancelled() {
        let delta = Delta { scheduled: -1, cancelled: 1 };

        assert_eq!(delta.total(), 0);
        assert_eq!(Delta { scheduled: 1, cancelled: 0 }.total(), 1);
    }
}
