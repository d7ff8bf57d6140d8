//! The product's H3 cells against the reference library, Uber's H3 C library (through the `h3`
//! PyPI package), for the cities, polar, antimeridian, pentagon and vertex points of
//! `tests/data/h3_reference.csv`. That file is made by `scripts/make_h3_reference.py`
//! (`make h3-reference`); `tests/data/README.md` says how and with which versions.
//!
//! Every point must get exactly the reference cell, with one exception: a `vertex` point, a
//! vertex of the grid as the reference computes it, lies on the boundary of the cells that meet
//! there, and which of them a library returns depends on the last bits of its floating-point
//! arithmetic, which differ between h3o (n-vectors, fused multiply-adds) and the C library. For
//! those points a neighbour of the reference cell is accepted when the point is a vertex of both
//! cells to within [`TIE_M`].

use std::collections::{BTreeMap, BTreeSet};

use h3o::{CellIndex, LatLng, Resolution};
use shared::geo::{Cell, GeoPoint};

const DATA: &str = include_str!("data/h3_reference.csv");
const FIELDS: (&str, &str) = ("latitude", "longitude");
const FINEST: u8 = 7;
/// How near, in metres, a `vertex` point must be to a vertex of two cells to lie on both.
const TIE_M: f64 = 1e-6;

/// One point of the reference data.
struct Row {
    line: usize,
    kind: String,
    continent: String,
    latitude: f64,
    longitude: f64,
    /// `h3.latlng_to_cell` at resolutions 0..=7.
    cells: Vec<Cell>,
    /// `h3.cell_to_parent` of the resolution-7 cell at resolutions 0..7.
    parents: Vec<Cell>,
}

impl Row {
    fn describe(&self) -> String {
        format!("line {} ({}) {}, {}", self.line, self.kind, self.latitude, self.longitude)
    }

    fn latlng(&self) -> LatLng {
        LatLng::new(self.latitude, self.longitude).expect("a valid coordinate")
    }

    /// Whether `got` is as right as `expected`: this is a grid vertex, and both cells meet at it.
    fn is_tie(&self, expected: CellIndex, got: CellIndex) -> bool {
        let point = self.latlng();
        let meets = |cell: CellIndex| cell.boundary().iter().any(|v| v.distance_m(point) < TIE_M);
        self.kind == "vertex"
            && expected.is_neighbor_with(got).unwrap_or(false)
            && meets(expected)
            && meets(got)
    }
}

fn resolution(n: u8) -> Resolution {
    Resolution::try_from(n).expect("a resolution from 0 to 15")
}

fn rows() -> Vec<Row> {
    let mut lines =
        DATA.lines().enumerate().filter(|(_, line)| !line.starts_with('#') && !line.is_empty());
    let (_, header) = lines.next().expect("a header line");
    let header: Vec<&str> = header.split(',').collect();
    let column = |name: &str| {
        header.iter().position(|&h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    };
    let (kind, continent) = (column("kind"), column("continent"));
    let (latitude, longitude) = (column("latitude"), column("longitude"));
    let res: Vec<usize> = (0..=FINEST).map(|n| column(&format!("res{n}"))).collect();
    let parent: Vec<usize> = (0..FINEST).map(|n| column(&format!("parent{n}"))).collect();

    lines
        .map(|(index, line)| {
            let line_no = index + 1;
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), header.len(), "line {line_no} has the wrong field count");
            let number = |i: usize| -> f64 {
                fields[i].parse().unwrap_or_else(|e| panic!("line {line_no}: {e}"))
            };
            let cell = |i: usize| -> Cell {
                fields[i].parse().unwrap_or_else(|e| panic!("line {line_no}: {e}"))
            };
            let cells: Vec<Cell> = res.iter().map(|&i| cell(i)).collect();
            // An empty parent column means the parent is the point's own cell there.
            let parents = parent
                .iter()
                .zip(&cells)
                .map(|(&i, &own)| if fields[i].is_empty() { own } else { cell(i) })
                .collect();
            Row {
                line: line_no,
                kind: fields[kind].to_owned(),
                continent: fields[continent].to_owned(),
                latitude: number(latitude),
                longitude: number(longitude),
                cells,
                parents,
            }
        })
        .collect()
}

fn assert_none(mismatches: &[String], what: &str, checked: usize) {
    assert!(
        mismatches.is_empty(),
        "{} of {checked} {what} differ from the H3 reference (expected, got):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_reference_point_gets_the_reference_cell() {
    let rows = rows();
    let mut mismatches = Vec::new();
    for row in &rows {
        let expected = row.cells[usize::from(FINEST)];
        match GeoPoint::parse(Some(row.latitude), Some(row.longitude), FIELDS) {
            Ok(point) if point.cell() == expected => {}
            Ok(point) if row.is_tie(expected.index(), point.cell().index()) => {}
            Ok(point) => {
                mismatches.push(format!("{}: {expected}, {}", row.describe(), point.cell()))
            }
            Err(errors) => mismatches.push(format!("{}: {expected}, {errors:?}", row.describe())),
        }
    }

    assert_none(&mismatches, "points", rows.len());
}

#[test]
fn every_reference_cell_has_the_reference_parent_at_every_resolution() {
    let rows = rows();
    let mut mismatches = Vec::new();
    for row in &rows {
        let cell = row.cells[usize::from(FINEST)];
        for (n, &expected) in (0..FINEST).zip(&row.parents) {
            let got = cell.parent(resolution(n));
            if got != expected {
                mismatches.push(format!("{} res {n}: {expected}, {got}", row.describe()));
            }
        }
    }

    assert_none(&mismatches, "points' parents", rows.len());
}

#[test]
fn every_reference_point_gets_the_reference_cell_at_every_resolution() {
    // The product stores resolution 7 only; h3o, which it builds on, must agree at every
    // coarser resolution too, where a point's cell need not be its resolution-7 cell's parent.
    let rows = rows();
    let mut mismatches = Vec::new();
    for row in &rows {
        let latlng = row.latlng();
        for (n, &expected) in (0..=FINEST).zip(&row.cells) {
            let got = latlng.to_cell(resolution(n));
            if got != expected.index() && !row.is_tie(expected.index(), got) {
                mismatches.push(format!("{} res {n}: {expected}, {got}", row.describe()));
            }
        }
    }

    assert_none(&mismatches, "points", rows.len());
}

#[test]
fn the_reference_data_has_thousands_of_cities_on_every_continent() {
    let rows = rows();
    let cities: Vec<&Row> = rows.iter().filter(|row| row.kind == "city").collect();
    let continents: BTreeSet<&str> = cities.iter().map(|row| row.continent.as_str()).collect();

    assert!(rows.len() >= 2000, "only {} points", rows.len());
    assert!(cities.len() >= 2000, "only {} cities", cities.len());
    assert_eq!(continents, BTreeSet::from(["AF", "AN", "AS", "EU", "NA", "OC", "SA"]));
}

#[test]
fn the_reference_data_includes_the_poles_the_antimeridian_and_the_pentagons() {
    let rows = rows();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &rows {
        *kinds.entry(row.kind.as_str()).or_default() += 1;
    }
    let has = |test: &dyn Fn(&Row) -> bool| rows.iter().any(test);
    let pentagons: BTreeSet<Cell> = rows
        .iter()
        .filter(|row| row.kind == "pentagon")
        .map(|row| row.cells[usize::from(FINEST)])
        .collect();

    for kind in ["pole", "antimeridian", "pentagon", "vertex"] {
        assert!(kinds.get(kind).is_some_and(|&n| n > 0), "no {kind} points: {kinds:?}");
    }
    assert!(has(&|row| row.latitude == 90.0) && has(&|row| row.latitude == -90.0));
    assert!(has(&|row| row.longitude == 180.0) && has(&|row| row.longitude == -180.0));
    assert_eq!(pentagons.len(), 12, "the 12 resolution-7 pentagons");
    assert!(pentagons.iter().all(|cell| cell.index().is_pentagon()));
}
