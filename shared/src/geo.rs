//! Places as H3 cells. Coordinates are range-checked here (h3o itself accepts a latitude of 91)
//! and turned into a resolution-7 cell, about 5 km² — the finest place the clinic stores.

use std::fmt;
use std::str::FromStr;

use h3o::{CellIndex, LatLng, Resolution};
use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// The resolution of every stored place.
pub const RESOLUTION: Resolution = Resolution::Seven;
/// The coarser resolution that partitions doctors for nearby searches.
pub const NEARBY_PARTITION: Resolution = Resolution::Five;

/// A checked point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    latitude_deg: f64,
    longitude_deg: f64,
}

impl GeoPoint {
    /// Checks both coordinates, reporting every bad one under the given field names.
    ///
    /// # Errors
    /// A missing, non-finite or out-of-range coordinate.
    ///
    /// # Example
    /// ```
    /// use shared::geo::GeoPoint;
    /// let nyc = GeoPoint::parse(Some(40.7128), Some(-74.0060), ("latitude", "longitude"))?;
    /// assert_eq!(nyc.cell().to_string(), "872a1072cffffff");
    /// assert!(GeoPoint::parse(Some(91.0), Some(0.0), ("latitude", "longitude")).is_err());
    /// # Ok::<(), Vec<shared::error::FieldError>>(())
    /// ```
    pub fn parse(
        latitude: Option<f64>,
        longitude: Option<f64>,
        (lat_field, lng_field): (&str, &str),
    ) -> Result<Self, Vec<FieldError>> {
        let lat = check(latitude, lat_field, 90.0);
        let lng = check(longitude, lng_field, 180.0);
        match (lat, lng) {
            (Ok(latitude_deg), Ok(longitude_deg)) => Ok(Self { latitude_deg, longitude_deg }),
            (lat, lng) => Err([lat.err(), lng.err()].into_iter().flatten().collect()),
        }
    }

    /// The resolution-7 cell holding this point.
    pub fn cell(self) -> Cell {
        // The coordinates were checked to be finite and in range, which is all LatLng refuses.
        let latlng = LatLng::new(self.latitude_deg, self.longitude_deg)
            .unwrap_or_else(|_| unreachable!("checked coordinates"));
        Cell(latlng.to_cell(RESOLUTION))
    }
}

fn check(value: Option<f64>, field: &str, limit_deg: f64) -> Result<f64, FieldError> {
    match value {
        None => Err(FieldError::new(field, "is required")),
        Some(v) if !v.is_finite() => Err(FieldError::new(field, "must be a finite number")),
        Some(v) if !(-limit_deg..=limit_deg).contains(&v) => Err(FieldError::new(
            field,
            format!("must be between -{limit_deg} and {limit_deg} degrees"),
        )),
        Some(v) => Ok(v),
    }
}

/// An H3 cell, shown in its canonical form: 15 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell(CellIndex);

impl Cell {
    pub fn index(self) -> CellIndex {
        self.0
    }

    /// The cell's parent at `resolution` (itself at its own resolution).
    pub fn parent(self, resolution: Resolution) -> Cell {
        Cell(self.0.parent(resolution).unwrap_or(self.0))
    }

    pub fn resolution(self) -> u8 {
        u8::from(self.0.resolution())
    }

    /// The cell's children one resolution finer, down to [`RESOLUTION`] (none below it: the
    /// clinic stores nothing finer).
    pub fn children(self) -> Vec<Cell> {
        match self.0.resolution().succ() {
            Some(finer) if finer <= RESOLUTION => self.0.children(finer).map(Cell).collect(),
            _ => Vec::new(),
        }
    }

    /// The cell's outline as `[longitude, latitude]` rings, closed, for GeoJSON: one ring, or two
    /// when the cell crosses the antimeridian (split along it, so each ring is a valid polygon).
    pub fn outline(self) -> Vec<Vec<[f64; 2]>> {
        let vertices: Vec<[f64; 2]> =
            self.0.boundary().iter().map(|v| [v.lng(), v.lat()]).collect();
        if let Some(north) = self.pole() {
            return vec![close(around_pole(vertices, north))];
        }
        let crosses = vertices.iter().any(|a| vertices.iter().any(|b| (a[0] - b[0]).abs() > 180.0));
        if !crosses {
            return vec![close(vertices)];
        }
        // Unwrap to continuous longitudes east of the antimeridian, then cut at 180°.
        let unwrapped: Vec<[f64; 2]> = vertices
            .iter()
            .map(|&[lng, lat]| [if lng < 0.0 { lng + 360.0 } else { lng }, lat])
            .collect();
        let west = clip(&unwrapped, |lng| lng <= 180.0);
        let east: Vec<[f64; 2]> = clip(&unwrapped, |lng| lng >= 180.0)
            .into_iter()
            .map(|[lng, lat]| [lng - 360.0, lat])
            .collect();
        [west, east].into_iter().filter(|ring| ring.len() >= 3).map(close).collect()
    }
}

impl Cell {
    /// `Some(true)` for the cell holding the North Pole, `Some(false)` for the South Pole's.
    fn pole(self) -> Option<bool> {
        let resolution = self.0.resolution();
        let holds = |lat: f64| LatLng::new(lat, 0.0).is_ok_and(|p| p.to_cell(resolution) == self.0);
        if holds(90.0) {
            Some(true)
        } else if holds(-90.0) {
            Some(false)
        } else {
            None
        }
    }
}

/// The ring of a cell around a pole, drawn on the longitude/latitude plane: its corners by
/// longitude, the points where its edge meets the antimeridian, and the pole's edge of the map.
/// Counter-clockwise, as GeoJSON asks.
fn around_pole(mut vertices: Vec<[f64; 2]>, north: bool) -> Vec<[f64; 2]> {
    vertices.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (Some(&west), Some(&east)) = (vertices.first(), vertices.last()) else {
        return vertices;
    };
    // Where the edge from the easternmost corner to the westernmost (across 180°) meets it.
    let span = west[0] + 360.0 - east[0];
    let t = if span > 0.0 { (180.0 - east[0]) / span } else { 0.0 };
    let meet = east[1] + t * (west[1] - east[1]);
    let pole = if north { 90.0 } else { -90.0 };
    let mut ring = vec![[-180.0, meet]];
    ring.extend(vertices);
    ring.extend([[180.0, meet], [180.0, pole], [-180.0, pole]]);
    if !north {
        ring.reverse();
    }
    ring
}

/// Closes a ring: GeoJSON repeats the first position at the end.
fn close(mut ring: Vec<[f64; 2]>) -> Vec<[f64; 2]> {
    if let Some(&first) = ring.first() {
        ring.push(first);
    }
    ring
}

/// The part of a polygon on one side of the meridian 180° (Sutherland–Hodgman, one edge).
fn clip(ring: &[[f64; 2]], inside: impl Fn(f64) -> bool) -> Vec<[f64; 2]> {
    let mut out = Vec::new();
    for (i, &current) in ring.iter().enumerate() {
        let previous = ring[(i + ring.len() - 1) % ring.len()];
        let crossing = || {
            let t = (180.0 - previous[0]) / (current[0] - previous[0]);
            [180.0, previous[1] + t * (current[1] - previous[1])]
        };
        match (inside(previous[0]), inside(current[0])) {
            (true, true) => out.push(current),
            (true, false) => out.push(crossing()),
            (false, true) => {
                out.push(crossing());
                out.push(current);
            }
            (false, false) => {}
        }
    }
    out
}

impl Cell {
    /// Cells within `k` rings of this one, each with its ring number, nearest first.
    pub fn disk(self, k: u32) -> Vec<(Cell, u32)> {
        let mut cells: Vec<(Cell, u32)> = self
            .0
            .grid_disk_distances::<Vec<_>>(k)
            .into_iter()
            .map(|(cell, ring)| (Cell(cell), ring))
            .collect();
        cells.sort_by_key(|&(cell, ring)| (ring, cell));
        cells
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:015x}", u64::from(self.0))
    }
}

impl FromStr for Cell {
    type Err = h3o::error::InvalidCellIndex;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CellIndex::from_str(s.trim()).map(Cell)
    }
}

impl Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: (&str, &str) = ("latitude", "longitude");

    #[test]
    fn new_york_is_the_predecessors_cell() {
        let point = GeoPoint::parse(Some(40.7128), Some(-74.0060), FIELDS).expect("valid");

        assert_eq!(point.cell().to_string(), "872a1072cffffff");
    }

    #[test]
    fn coordinates_out_of_range_or_missing_name_their_field() {
        let cases = [
            (Some(91.0), Some(0.0), vec!["latitude"]),
            (Some(1000.0), Some(0.0), vec!["latitude"]),
            (Some(0.0), Some(-180.5), vec!["longitude"]),
            (Some(f64::NAN), Some(f64::INFINITY), vec!["latitude", "longitude"]),
            (None, Some(0.0), vec!["latitude"]),
            (None, None, vec!["latitude", "longitude"]),
        ];
        for (lat, lng, fields) in cases {
            let errors = GeoPoint::parse(lat, lng, FIELDS).expect_err("refused");
            let named: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(named, fields, "{lat:?} {lng:?}");
        }
    }

    #[test]
    fn the_edges_of_the_ranges_are_valid() {
        for (lat, lng) in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)] {
            assert!(GeoPoint::parse(Some(lat), Some(lng), FIELDS).is_ok());
        }
    }

    #[test]
    fn cells_parse_in_any_case_and_print_canonically() {
        let cell: Cell = "872A1072CFFFFFF".parse().expect("valid");

        assert_eq!(cell.to_string(), "872a1072cffffff");
        assert!("garbage".parse::<Cell>().is_err());
    }

    #[test]
    fn a_cell_on_the_antimeridian_is_split_into_two_valid_rings() {
        let cell = GeoPoint::parse(Some(0.0), Some(180.0), ("lat", "lng")).unwrap().cell();

        let rings = cell.outline();

        assert_eq!(rings.len(), 2, "{rings:?}");
        for ring in &rings {
            assert_eq!(ring.first(), ring.last());
            assert!(ring.iter().all(|[lng, lat]| lng.abs() <= 180.0 && lat.abs() <= 90.0));
            let (min, max) =
                ring.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
            assert!(max - min < 180.0, "{ring:?}");
        }
    }

    #[test]
    fn a_cell_holding_a_pole_reaches_the_pole_in_one_counter_clockwise_ring() {
        for lat in [90.0, -90.0] {
            let cell = GeoPoint::parse(Some(lat), Some(0.0), ("lat", "lng")).unwrap().cell();

            let rings = cell.outline();

            assert_eq!(rings.len(), 1, "{lat}");
            let ring = &rings[0];
            assert_eq!(ring.first(), ring.last());
            assert!(ring.iter().any(|p| p[1] == lat), "reaches the pole: {ring:?}");
            assert!(ring.iter().all(|[lng, lat]| lng.abs() <= 180.0 && lat.abs() <= 90.0));
            let doubled_area: f64 =
                ring.windows(2).map(|w| w[0][0] * w[1][1] - w[1][0] * w[0][1]).sum();
            assert!(doubled_area > 0.0, "counter-clockwise at {lat}: {ring:?}");
        }
    }

    #[test]
    fn an_ordinary_cell_has_one_closed_ring_of_six_corners() {
        let cell: Cell = "872a1072cffffff".parse().unwrap();

        let rings = cell.outline();

        assert_eq!(rings.len(), 1);
        assert_eq!(rings[0].len(), 7);
        assert_eq!(cell.children().len(), 0);
        assert_eq!(cell.parent(Resolution::Five).children().len(), 7);
    }

    #[test]
    fn a_disk_lists_rings_nearest_first() {
        let centre: Cell = "872a1072cffffff".parse().expect("valid");

        let disk = centre.disk(2);

        assert_eq!(disk.len(), 19);
        assert_eq!(disk[0], (centre, 0));
        assert!(disk.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(disk.iter().filter(|(_, ring)| *ring == 1).count(), 6);
    }
}
