"""Benchmark of `GET /analytics/{h3_index}` with 10 000 and with 100 000 appointments stored.

Run it with `make bench-analytics` (it installs the `h3` package, pinned, into .venv first). It is
a measurement, not a test: it is not part of `make test`, and only a failed sample check (or a
broken stack) makes it exit non-zero; the ratio of the medians is printed and written down.

What it does, in order:

 1. Starts its own throwaway stack exactly as `scripts/stack.py test` does: ministack without
    persistence on a free port, the table and the event rules synced from template.yaml, the
    workspace built with `cargo build --workspace --bins` (the debug build of `make dev`, so
    nothing extra compiles), `cargo lambda watch --concurrency 4 --ignore-changes` on another
    free port, and (where stack.py offers it) the event consumers warmed up as `test` does.
    Everything listens on 127.0.0.1 and is stopped at the end, also on failure or Ctrl-C.
 2. Creates an Admin with the `create-admin` binary and logs in through the API.
 3. Books one appointment through the API (a doctor and a patient in Wellington, far from the
    loaded cities), waits until the analytics consumer has counted it, and reads back the items
    the product wrote: the appointment item and the statistics items (TOTAL and DAY) of its cell
    at every resolution. The loader's own items for the same facts must be identical, so the
    loaded data has exactly the product's shape.
 4. Phase A: writes 10 000 appointments directly into the emulator with BatchWriteItem (25
    items a call, 4 writers), then the statistics the consumer would have left for them (per
    cell at resolutions 0 to 7, the TOTAL item and one DAY item per day), aggregated here.
    Checks a sample of regions through the API (exact totals, per-day counts and busiest
    children), then measures. Phase B: adds 90 000 appointments (100 000 in all), rewrites the
    statistics items that changed, checks and measures again.
 5. A measurement: 20 warm-up requests, then 200 sequential `GET /analytics/{cell}` requests
    with the Admin's token, cycling through a fixed list of regions (resolutions 0 to 7, `k=1`
    on some; the same in both phases), each timed on the client (wall clock, one keep-alive
    connection). Beside it, the emulator's own GetItem round trip through boto3 (median of 100).
 6. Writes bench/ANALYTICS.md.

The data are generated from a fixed seed around today's date (UTC): appointments over 8 cities,
61 resolution-7 cells each (the city centre's cell and 4 rings around it, busier near the
centre), on days within 30 days either side of today, on the appointment grid during local
office hours, with about 8% cancelled. Doctors and patients are synthetic ids with usernames,
not accounts; no slot or pointer items are written (the analytics never read them), so these
appointments cannot be cancelled or read by id through the API.

Its emulator and API listen on two free ports, or on BENCH_EMULATOR_PORT and BENCH_API_PORT when
both are set (`make bench`, which reruns this benchmark, sets them).

Uses the standard library, boto3, PyYAML (through stack.py) and h3.
"""

import concurrent.futures
import datetime as dt
import http.client
import importlib.metadata
import json
import math
import os
import platform
import random
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import botocore.exceptions

from api_request import headers_for

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stack  # noqa: E402  (the local stack's own code: same start-up as `stack.py test`)

try:
    import h3
except ImportError:  # pragma: no cover - the Makefile installs it
    sys.exit("bench: the h3 package is missing; run `make bench-analytics` (it installs "
             "h3==4.5.0 into .venv)")

REPO = stack.REPO
REPORT = REPO / "bench" / "ANALYTICS.md"
LOCALHOST = stack.LOCALHOST

PHASES = (("A", 10_000), ("B", 100_000))  # name, appointments stored after the phase's load
MEASURED = 200
WARM_UP = 20
GET_ITEM_SAMPLES = 100
RATIO_LIMIT = 1.2
BUSY_SHARE = 0.15  # CPU share of other processes above which the report calls a run noisy
WATCH_CONCURRENCY = 4  # as `make dev`
BATCH = 25  # BatchWriteItem's limit
WRITERS = 4
SEED = 20_250_101
CITY_RINGS = 4  # 61 resolution-7 cells per city
DAYS_EACH_SIDE = 30
CANCELLED_SHARE = 0.08
DOCTORS_PER_CITY = 40
PATIENTS = 40_000
RESOLUTIONS = range(0, 8)
STATS_WAIT_S = 30
REQUEST_TIMEOUT_S = 120  # a function's first request starts its process
DEADLINE_S = 20 * 60  # a safety net: the whole run takes a few minutes

# name, latitude, longitude, UTC offset of its office hours, relative demand
CITIES = (
    ("London", 51.5074, -0.1278, 0, 1.4),
    ("Paris", 48.8566, 2.3522, 1, 1.2),
    ("Berlin", 52.5200, 13.4050, 1, 1.0),
    ("Madrid", 40.4168, -3.7038, 1, 0.9),
    ("Rome", 41.9028, 12.4964, 1, 0.8),
    ("New York", 40.7128, -74.0060, -5, 1.5),
    ("Chicago", 41.8781, -87.6298, -6, 0.9),
    ("Toronto", 43.6532, -79.3832, -5, 0.8),
)
# The appointment booked through the API, far from every loaded city.
REFERENCE_PLACE = ("Wellington", -41.2865, 174.7762)


class BenchError(Exception):
    """A failure with a message meant for the user; the benchmark exits 1."""


def say(message):
    """Print one progress line."""
    print(f"bench: {message}", flush=True)


# --- the product's item shapes -------------------------------------------------------------------
# Written here from shared/src/store/keys.rs, appointments.rs and analytics.rs, and checked against
# items the running product wrote (see `check_shapes`).


def key_time(t):
    """keys.rs `key_time`: UTC to the second, fixed width."""
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(t, nanos=0):
    """The `time` crate's RFC 3339 form of a UTC time: a fraction only when it is not zero,
    without trailing zeros."""
    text = t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


RFC3339_UTC = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def parse_rfc3339(text):
    """(datetime to the second, nanoseconds) of an RFC 3339 UTC time."""
    match = RFC3339_UTC.match(text)
    if not match:
        raise BenchError(f"not an RFC 3339 UTC time: {text!r}")
    seconds = dt.datetime.strptime(match[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return seconds, int((match[2] or "0").ljust(9, "0"))


def s(value):
    return {"S": value}


def n(value):
    return {"N": str(value)}


def appointment_item(a):
    """`AppointmentItem` as serde_dynamo writes it."""
    start, appt_id = a["start"], a["id"]
    party_sk = f"{key_time(start)}#{appt_id}"
    return {
        "pk": s(f"CELL#{a['cell']}"),
        "sk": s(f"APPT#{key_time(start)}#{appt_id}"),
        "gsi1pk": s(f"PATIENT#{a['patient_id']}"),
        "gsi1sk": s(party_sk),
        "gsi2pk": s(f"DOCTOR#{a['doctor_id']}"),
        "gsi2sk": s(party_sk),
        "id": n(appt_id),
        "doctor_id": n(a["doctor_id"]),
        "patient_id": n(a["patient_id"]),
        "doctor_name": s(a["doctor_name"]),
        "patient_name": s(a["patient_name"]),
        "start": s(rfc3339(start)),
        "duration_minutes": n(a["duration_minutes"]),
        "status": s(a["status"]),
        "cell": s(a["cell"]),
        "created_at": s(rfc3339(a["created_at"], a["created_nanos"])),
    }


def total_item(cell, scheduled, cancelled):
    """The consumer's `TotalItem` after `scheduled + 2 * cancelled` counted events (a cancelled
    appointment was counted twice: booked, then cancelled; each bumps the version)."""
    resolution = h3.get_resolution(cell)
    total = scheduled + cancelled
    return {
        "pk": s(f"STATS#{cell}"),
        "sk": s("TOTAL"),
        "gsi1pk": s(f"BUSIEST#{resolution}"),
        "gsi1sk": s(f"{total:012d}#{cell}"),
        "cell": s(cell),
        "resolution": n(resolution),
        "scheduled": n(scheduled),
        "cancelled": n(cancelled),
        "total": n(total),
        "version": n(total + cancelled),
    }


def day_item(cell, day, scheduled, cancelled):
    """A day's counters, as the consumer's `ADD scheduled :s, cancelled :c` leaves them."""
    return {"pk": s(f"STATS#{cell}"), "sk": s(f"DAY#{day.isoformat()}"),
            "scheduled": n(scheduled), "cancelled": n(cancelled)}


# --- synthetic data ------------------------------------------------------------------------------


class Dataset:
    """Appointments from a fixed seed, and their statistics at every resolution."""

    def __init__(self, count, today, now, duration_minutes):
        self.rng = random.Random(SEED)
        self.today, self.now, self.duration = today, now, duration_minutes
        self.cities = []  # (name, tz, doctors, centre cell)
        self.cells = {}  # resolution-7 cell -> (city index, ring)
        self.parents = {}  # resolution-7 cell -> its cells at resolutions 0..7
        self.taken = set()  # (party id, start): nobody holds two appointments in one slot
        ids = set()
        self._make_places(ids)
        self._make_people(ids)
        self.appointments = [self._appointment(ids) for _ in range(count)]

    def _new_id(self, ids):
        while True:
            value = self.rng.randrange(1, 2**53)
            if value not in ids:
                ids.add(value)
                return value

    def _make_places(self, ids):
        for index, (name, lat, lng, tz, _) in enumerate(CITIES):
            centre = h3.latlng_to_cell(lat, lng, 7)
            slug = name.lower().replace(" ", "-")
            doctors = [(self._new_id(ids), f"dr-{slug}-{d:02d}") for d in range(DOCTORS_PER_CITY)]
            self.cities.append((slug, tz, doctors, centre))
            for ring, ring_cells in enumerate(h3.grid_ring(centre, k) for k in
                                              range(CITY_RINGS + 1)):
                for cell in ring_cells:
                    self.cells[cell] = (index, ring)
        for cell in self.cells:
            self.parents[cell] = [h3.cell_to_parent(cell, r) for r in RESOLUTIONS]

    def _make_people(self, ids):
        """Patients live in one cell each; busier cells (near a centre, in a busy city) have
        more of them."""
        weights = {cell: CITIES[city][4] / (1 + ring) for cell, (city, ring) in self.cells.items()}
        scale = PATIENTS / sum(weights.values())
        self.patients = []  # (id, username, cell)
        for cell, weight in weights.items():
            city = self.cities[self.cells[cell][0]][0]
            for _ in range(max(3, round(weight * scale))):
                self.patients.append((self._new_id(ids), f"patient-{city}-{len(self.patients):05d}",
                                      cell))

    def _appointment(self, ids):
        rng = self.rng
        slots_per_day = 10 * 60 // self.duration  # 08:00 to 18:00 local time
        while True:
            patient_id, patient_name, cell = rng.choice(self.patients)
            slug, tz, doctors, _ = self.cities[self.cells[cell][0]]
            doctor_id, doctor_name = rng.choice(doctors)
            day = self.today + dt.timedelta(days=rng.randint(-DAYS_EACH_SIDE, DAYS_EACH_SIDE))
            local = dt.datetime.combine(day, dt.time(8), dt.timezone.utc) + dt.timedelta(
                minutes=self.duration * rng.randrange(slots_per_day))
            start = local - dt.timedelta(hours=tz)
            if (doctor_id, start) in self.taken or (patient_id, start) in self.taken:
                continue
            self.taken.update(((doctor_id, start), (patient_id, start)))
            booked = start - dt.timedelta(seconds=rng.randrange(3600, 30 * 86400))
            booked = min(booked, self.now - dt.timedelta(seconds=rng.randrange(60, 3600)))
            return {
                "id": self._new_id(ids), "doctor_id": doctor_id, "patient_id": patient_id,
                "doctor_name": doctor_name, "patient_name": patient_name, "start": start,
                "duration_minutes": self.duration,
                "status": "cancelled" if rng.random() < CANCELLED_SHARE else "scheduled",
                "cell": cell, "created_at": booked, "created_nanos": rng.randrange(1, 10**9),
            }

    def stats(self, count):
        """(totals, days) of the first `count` appointments: cell -> [scheduled, cancelled],
        (cell, day) -> [scheduled, cancelled], for every resolution."""
        totals, days = {}, {}
        for a in self.appointments[:count]:
            status = 1 if a["status"] == "cancelled" else 0
            day = a["start"].date()
            for cell in self.parents[a["cell"]]:
                totals.setdefault(cell, [0, 0])[status] += 1
                days.setdefault((cell, day), [0, 0])[status] += 1
        return totals, days


def stats_items(totals, days, before=None):
    """The statistics items of (totals, days), leaving out those equal in `before`."""
    old_totals, old_days = before or ({}, {})
    items = [total_item(cell, *c) for cell, c in totals.items() if old_totals.get(cell) != c]
    items += [day_item(cell, day, *c) for (cell, day), c in days.items()
              if old_days.get((cell, day)) != c]
    return items


# --- writing -------------------------------------------------------------------------------------


def batch_write(client, table, items):
    """Write items 25 a call with a few writers in parallel; retry unprocessed items. Answers
    the number of calls."""
    stop = threading.Event()  # set when one writer fails or the run is interrupted
    chunks = [items[i:i + BATCH] for i in range(0, len(items), BATCH)]

    def write(chunk):
        pending = [{"PutRequest": {"Item": item}} for item in chunk]
        for attempt in range(20):
            if stop.is_set():
                return
            answer = client.batch_write_item(RequestItems={table: pending})
            pending = answer.get("UnprocessedItems", {}).get(table)
            if not pending:
                return
            time.sleep(0.05 * (attempt + 1))
        raise BenchError(f"{len(pending)} items stayed unprocessed after 20 tries")

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        futures = [pool.submit(write, chunk) for chunk in chunks]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
    return len(chunks)


# --- the API -------------------------------------------------------------------------------------


class Api:
    """One keep-alive HTTP connection to the local API."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def call(self, method, path, body=None, token=None, form=False, timeout=REQUEST_TIMEOUT_S):
        """(status, parsed JSON body) of one request."""
        data, headers = headers_for(body, token, form)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(LOCALHOST, self.port, timeout=timeout)
            self.conn.timeout = timeout
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed a kept-alive connection: open a fresh one, once.
                self.close()
                if attempt == 2:
                    raise
        try:
            return response.status, json.loads(raw or b"null")
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def expect(self, status, method, path, **kwargs):
        got, body = self.call(method, path, **kwargs)
        if got != status:
            raise BenchError(f"{method} {path}: expected {status}, got {got}: {body}")
        return body

    def login(self, email, password):
        body = self.expect(200, "POST", "/login", body={"username": email, "password": password},
                           form=True)
        return body["access_token"]


def create_admin(env, email, password):
    """Run the workspace's create-admin binary against the throwaway emulator."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    binary = target / "debug" / "create-admin"
    env = {**env, "ADMIN_EMAIL": email, "ADMIN_PASSWORD": password,
           "ADMIN_USERNAME": "bench-admin"}
    result = subprocess.run([str(binary)], env=env, cwd=REPO, capture_output=True, text=True,
                            check=False, timeout=120)
    if result.returncode != 0:
        raise BenchError(f"create-admin failed ({result.returncode}): {result.stderr.strip()}")
    say(result.stdout.strip())


def book_reference(api, admin):
    """A doctor and a patient in REFERENCE_PLACE; one appointment two days ahead at 10:00 UTC.
    Answers the booking's view."""
    tag = secrets.token_hex(4)
    password = "bench " + secrets.token_hex(12)
    _, lat, lng = REFERENCE_PLACE
    doctor_email = f"bench-doctor-{tag}@example.com"
    doctor = api.expect(201, "POST", "/register", token=admin, body={
        "username": f"bench-doctor-{tag}", "email": doctor_email, "password": password,
        "role": "Doctor"})
    doctor_token = api.login(doctor_email, password)
    api.expect(201, "POST", "/doctors/profile", token=doctor_token, body={
        "specialization": "General practice", "latitude": lat, "longitude": lng})
    patient_email = f"bench-patient-{tag}@example.com"
    api.expect(201, "POST", "/register", body={
        "username": f"bench-patient-{tag}", "email": patient_email, "password": password})
    patient_token = api.login(patient_email, password)
    api.expect(201, "POST", f"/setup-patient?latitude={lat}&longitude={lng}",
               token=patient_token)
    day = dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=2)
    return api.expect(201, "POST", "/appointments", token=patient_token, body={
        "doctor_id": doctor["id"], "datetime": f"{day.isoformat()}T10:00:00Z"})


def wait_counted(api, admin, cell, total):
    """Poll the region until the consumer has counted `total` appointments."""
    deadline = time.monotonic() + STATS_WAIT_S
    while True:
        body = api.expect(200, "GET", f"/analytics/{cell}", token=admin)
        if body.get("total") == total:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the analytics consumer did not count the reference booking within "
                             f"{STATS_WAIT_S} s (region {cell} says {body.get('total')}); "
                             "ministack drops a delivery that takes over 5 s, e.g. a slow first "
                             "start of analytics-updater")
        time.sleep(0.2)


def differences(want, have, what):
    """Readable lines for every attribute that differs between two items."""
    lines = []
    for name in sorted(want.keys() | have.keys()):
        if want.get(name) != have.get(name):
            lines.append(f"  {what}.{name}: loader writes {want.get(name)}, "
                         f"product wrote {have.get(name)}")
    return lines


def check_shapes(client, table, booked):
    """The loader's items for the reference booking's facts must equal what the product wrote:
    the appointment item and, at every resolution, the TOTAL and DAY statistics items."""
    start, _ = parse_rfc3339(booked["appointment_time"])
    cell = booked["h3_index"]
    key = {"pk": s(f"CELL#{cell}"), "sk": s(f"APPT#{key_time(start)}#{booked['id']}")}
    written = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if written is None:
        raise BenchError(f"the booked appointment is not at {key}: the key helpers differ")
    created_at, created_nanos = parse_rfc3339(written.get("created_at", {}).get("S", ""))
    mine = appointment_item({
        "id": booked["id"], "doctor_id": booked["doctor_id"], "patient_id": booked["patient_id"],
        "doctor_name": booked["doctor_name"], "patient_name": booked["patient_name"],
        "start": start, "duration_minutes": booked["duration_minutes"],
        "status": booked["status"], "cell": cell, "created_at": created_at,
        "created_nanos": created_nanos})
    lines = differences(mine, written, "appointment")
    compared = 1
    for resolution in RESOLUTIONS:
        parent = h3.cell_to_parent(cell, resolution)
        for want in (total_item(parent, 1, 0), day_item(parent, start.date(), 1, 0)):
            have = client.get_item(TableName=table, Key={"pk": want["pk"], "sk": want["sk"]},
                                   ConsistentRead=True).get("Item") or {}
            lines += differences(want, have, f"{want['pk']['S']}/{want['sk']['S']}")
            compared += 1
    if lines:
        raise BenchError("the loader's items differ from the product's:\n" + "\n".join(lines))
    return compared, written


# --- the sample check ----------------------------------------------------------------------------


def expected_region(cell, totals, days, first, last):
    """What `GET /analytics/{cell}` must answer for the loaded data, within first..last."""
    scheduled, cancelled = totals.get(cell, [0, 0])
    by_day = []
    day = first
    while day <= last:
        c = days.get((cell, day))
        if c and (c[0] or c[1]):
            by_day.append({"day": day.isoformat(), "scheduled": c[0], "cancelled": c[1]})
        day += dt.timedelta(days=1)
    resolution = h3.get_resolution(cell)
    children = []
    if resolution < 7:
        for child in h3.cell_to_children(cell, resolution + 1):
            total = sum(totals.get(child, [0, 0]))
            if total > 0:
                children.append({"h3_index": child, "resolution": resolution + 1,
                                 "total": total})
        children.sort(key=lambda c: (-c["total"], c["h3_index"]))
    return {"total": scheduled + cancelled,
            "by_status": {"scheduled": scheduled, "cancelled": cancelled},
            "appointments": [{"h3_index": cell, "count": scheduled + cancelled}],
            "by_day": by_day, "children": children[:5]}


def sample_cells(data):
    """Five regions: two resolution-7 cells (a centre and an outer one), two at 5, one at 3."""
    centres = [city[3] for city in data.cities]
    outer = sorted(h3.grid_ring(centres[1], 3))[0]
    return [centres[0], outer, h3.cell_to_parent(centres[2], 5),
            h3.cell_to_parent(centres[5], 5), h3.cell_to_parent(centres[6], 3)]


def sample_check(api, admin, cells, totals, days):
    """Every sample region must answer exactly the loader's figures. Answers readable lines."""
    lines, failures = [], []
    for cell in cells:
        body = api.expect(200, "GET", f"/analytics/{cell}", token=admin)
        first = dt.date.fromisoformat(body["from"])
        last = dt.date.fromisoformat(body["to"])
        want = expected_region(cell, totals, days, first, last)
        wrong = [name for name, value in want.items() if body.get(name) != value]
        line = (f"`{cell}` (res {h3.get_resolution(cell)}): total {body.get('total')}, "
                f"days {len(body.get('by_day') or [])}, children "
                f"{len(body.get('children') or [])}")
        if wrong:
            failures.append(cell)
            line += " -- MISMATCH in " + ", ".join(wrong)
            for name in wrong:
                say(f"  {cell} {name}: expected {json.dumps(want[name])[:400]}")
                say(f"  {cell} {name}: API said {json.dumps(body.get(name))[:400]}")
        else:
            line += ": exact"
        lines.append(line)
        say(line)
    if failures:
        raise BenchError(f"the API's figures differ from the loaded ones for {failures}")
    return lines


# --- measuring -----------------------------------------------------------------------------------


def measured_regions(data):
    """The fixed request list: resolutions 0 to 7 over several cities, `k=1` on some."""
    centres = [city[3] for city in data.cities]
    plan = [(0, 7, False), (0, 7, True), (1, 6, False), (2, 5, True), (3, 4, False),
            (4, 3, True), (5, 2, False), (6, 1, True), (7, 0, False), (5, 0, True)]
    return [(f"/analytics/{h3.cell_to_parent(centres[city], res)}" + ("?k=1" if k else ""),
             h3.cell_to_parent(centres[city], res)) for city, res, k in plan]


def percentile(values, share):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(api, admin, regions, totals):
    """Warm up, then time MEASURED sequential requests; every answer must be 200 with the
    region's loaded total. Answers the latencies in milliseconds."""
    for i in range(WARM_UP):
        api.expect(200, "GET", regions[i % len(regions)][0], token=admin)
    latencies = []
    for i in range(MEASURED):
        path, cell = regions[i % len(regions)]
        started = time.perf_counter()
        status, body = api.call("GET", path, token=admin, timeout=60)
        latencies.append((time.perf_counter() - started) * 1000)
        if (status != 200 or not isinstance(body, dict)
                or body.get("total") != sum(totals.get(cell, [0, 0]))):
            raise BenchError(f"GET {path}: {status} {str(body)[:300]}")
    return latencies


def machine_jiffies():
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def own_jiffies():
    """CPU time used so far by this process and its descendants (the emulator, the watcher
    and the functions it runs)."""
    parents, used = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    ours, frontier = {os.getpid()}, [os.getpid()]
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in ours:
                ours.add(child)
                frontier.append(child)
    return sum(used.get(pid, 0) for pid in ours)


class CpuWatch:
    """How much of the machine other processes used between start and stop."""

    def __init__(self):
        self.machine = machine_jiffies()
        self.own = own_jiffies()

    def others_share(self):
        busy, total = machine_jiffies()
        own = own_jiffies()
        if total == self.machine[1]:
            return 0.0
        others = (busy - self.machine[0]) - (own - self.own)
        return max(0.0, others / (total - self.machine[1]))


def get_item_round_trip(client, table, cell):
    """Median boto3 GetItem round trip to the emulator, in milliseconds."""
    key = {"pk": s(f"STATS#{cell}"), "sk": s("TOTAL")}
    for _ in range(5):
        client.get_item(TableName=table, Key=key)
    samples = []
    for _ in range(GET_ITEM_SAMPLES):
        started = time.perf_counter()
        client.get_item(TableName=table, Key=key)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


# --- the report ----------------------------------------------------------------------------------


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version_of(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def git_state():
    """(HEAD's short hash, paths of the build's sources that differ from HEAD)."""
    def git(*args):
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                check=False)
        return result.stdout.strip()
    sources = ["shared", "functions", "Cargo.toml", "Cargo.lock", "template.yaml"]
    changed = [line for line in git("status", "--porcelain", "--", *sources).splitlines() if line]
    return git("rev-parse", "--short", "HEAD") or "?", len(changed)


def busy_note(run):
    """A warning when other work on the machine may have moved the figures, else ''."""
    a, b = run["phases"]
    busy = [p["name"] for p in run["phases"] if p["others"] > BUSY_SHARE]
    spread = max(a["get_item"], b["get_item"]) / min(a["get_item"], b["get_item"])
    if not busy and spread < 2:
        return ""
    why = []
    if busy:
        why.append(f"other processes used more than {BUSY_SHARE:.0%} of the CPUs while phase "
                   f"{' and '.join(busy)} was measured")
    if spread >= 2:
        why.append(f"the emulator's GetItem round trip differed {spread:.1f}-fold between the "
                   "phases")
    return ("\n> **Noisy run:** " + "; ".join(why) + ". Other processes were competing for the "
            "CPUs, so the ratio says more about them than about the data size; rerun on a quiet "
            "machine to compare.\n")


def write_report(run):
    """bench/ANALYTICS.md from the collected figures."""
    a, b = run["phases"]
    ratio = b["median"] / a["median"]
    commit, dirty = git_state()
    load_lines = "\n".join(
        f"| {p['name']} | {p['appointments_written']:,} | {p['stats_written']:,} "
        f"({p['totals_written']:,} TOTAL, {p['days_written']:,} DAY) | {p['calls']:,} | "
        f"{p['load_s']:.1f} s |" for p in run["phases"])
    figure_lines = "\n".join(
        f"| {p['stored']:,} | {p['median']:.1f} ms | {p['p90']:.1f} ms | {p['min']:.1f} ms | "
        f"{p['max']:.1f} ms | {p['get_item']:.2f} ms | {p['others']:.0%} |" for p in run["phases"])
    checks = "\n".join(f"- phase {p['name']} ({p['stored']:,} stored): " + "; ".join(p["check"])
                       for p in run["phases"])
    regions = ", ".join(f"`{path.removeprefix('/analytics/')}`" for path, _ in run["regions"])
    text = f"""# Analytics latency with 10 000 and 100 000 appointments

Generated by `make bench-analytics` ([`scripts/bench_analytics.py`](../scripts/bench_analytics.py));
a measurement, not a timed test. Rerunning it overwrites this file.

## Result

| appointments stored | median | p90 | min | max | emulator GetItem (boto3, median of {GET_ITEM_SAMPLES}) | CPU used by other processes meanwhile |
|---:|---:|---:|---:|---:|---:|---|
{figure_lines}

**Ratio of the medians, median(100 000) / median(10 000): {ratio:.3f}** — \
{"at or below" if ratio <= RATIO_LIMIT else "ABOVE"} the limit of {RATIO_LIMIT}.
{busy_note(run)}
Each figure: {MEASURED} sequential `GET /analytics/{{h3_index}}` requests with an Admin's token
after {WARM_UP} warm-up requests, timed on the client (wall clock from sending the request to
reading the whole answer, one keep-alive connection), cycling through the same
{len(run["regions"])} regions in both phases: {regions}
(resolutions 0 to 7 over several cities; `k=1` adds the 7 cells of the first ring to the batch
read). Every answer was checked to be 200 with the region's loaded total. The GetItem column is
the emulator's own round trip for one TOTAL item through boto3, for context: a region read is
one BatchGetItem (the region, its children, its rings) and one Query of its days, plus the
audit event's PutEvents, each a round trip to the same emulator.

## Machine and build

- date: {run["date"]}
- machine: {run["nproc"]} CPUs, {run["cpu"]}; {platform.system()} {platform.release()};
  Python {platform.python_version()}
- build: **debug**: `cargo build --workspace --bins`, the same build as `make dev`, so nothing
  extra compiles (not `--release`); served by
  `cargo lambda watch --concurrency {WATCH_CONCURRENCY} --ignore-changes`
  (cargo-lambda {version_of("cargo-lambda")}); ministack {version_of("ministack")} without
  persistence; boto3 {version_of("boto3")}; h3 {version_of("h3")}
- source: commit {commit}; {dirty or "no"} path(s) of the build's sources (`shared`, `functions`,
  `Cargo.*`, `template.yaml`) differed from it
- the stack was started from scratch on {ports_used()} on 127.0.0.1, as `make test` does, and
  stopped at the end; the last column of the table is the share of the machine's CPU time
  that processes other than the benchmark and its stack used while the requests were timed
- total run time: {run["total_s"]:.0f} s, of which stack start-up and build
  {run["startup_s"]:.0f} s and loading {sum(p["load_s"] for p in run["phases"]):.0f} s

## How the data was loaded

Appointments and their statistics were written **directly into the emulator** with boto3
`BatchWriteItem` ({BATCH} items a call, {WRITERS} writers in parallel), not booked through the API
(100 000 bookings through the API would take far longer than the benchmark should).

- appointments: `AppointmentItem`s exactly as the product writes them (pk `CELL#<cell>`, sk
  `APPT#<start>#<id>`, `gsi1`/`gsi2` patient and doctor keys, the same attribute names and
  types), generated from a fixed seed:
  - {len(CITIES)} cities: {", ".join(c[0] for c in CITIES)}
  - {run["cells"]} resolution-7 cells: each city centre's cell and {CITY_RINGS} rings around it,
    busier towards the centre
  - {run["patients"]:,} synthetic patients living in those cells, {DOCTORS_PER_CITY} synthetic
    doctors per city (ids and usernames only, no accounts)
  - {run["days"]} days, {run["first_day"]} to {run["last_day"]} (today ± {DAYS_EACH_SIDE}),
    {run["duration"]}-minute slots in local office hours, nobody in two appointments at once
  - {CANCELLED_SHARE:.0%} cancelled
  - no pointer or slot items (the analytics never read them)
- statistics: what the analytics consumer leaves, aggregated in Python: for every cell at every
  resolution 0 to 7 that has appointments, the `TOTAL` item (pk `STATS#<cell>`, gsi1
  `BUSIEST#<res>` / zero-padded total `#` cell, `version` = events counted) and one
  `DAY#<yyyy-mm-dd>` item per day with appointments. Phase B rewrote only the items whose
  counts changed. No per-event markers (`STATS_EVENT#…`, kept 30 days) were written: reads never
  touch them.
- shape check: before loading, one appointment was booked through the API (in
  {REFERENCE_PLACE[0]}, far from the loaded cities), the `analytics-updater` counted it, and
  {run["shape_items"]} items the product wrote (the appointment and, at each resolution, its
  TOTAL and DAY items) were read back: the loader's items for the same facts were identical.
  The table also holds that appointment, the accounts and the audit trail of the run.

| phase | appointments written | statistics items written | BatchWriteItem calls | load time |
|---|---:|---:|---:|---:|
{load_lines}

## Sample check through the API

After each load, `GET /analytics/{{cell}}` for five regions (resolution 7, 7, 5, 5 and 3) had to
answer exactly the loader's total, counts by status, per-day counts within the default range
and busiest children:

{checks}
"""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    return ratio


# --- the run -------------------------------------------------------------------------------------


def run_phases(run, api, admin, client, table, data):
    """Load, check and measure each phase."""
    regions = measured_regions(data)
    run["regions"] = regions
    before, stored = None, 0
    for name, count in PHASES:
        check_deadline(run)
        say(f"phase {name}: writing appointments {stored + 1:,} to {count:,}")
        started = time.monotonic()
        appointments = [appointment_item(a) for a in data.appointments[stored:count]]
        calls = batch_write(client, table, appointments)
        totals, days = data.stats(count)
        items = stats_items(totals, days, before)
        n_totals = sum(1 for item in items if item["sk"]["S"] == "TOTAL")
        say(f"phase {name}: writing {len(items):,} statistics items")
        calls += batch_write(client, table, items)
        load_s = time.monotonic() - started
        say(f"phase {name}: loaded in {load_s:.1f} s ({calls:,} BatchWriteItem calls)")
        check_deadline(run)
        check = sample_check(api, admin, sample_cells(data), totals, days)
        say(f"phase {name}: measuring {MEASURED} requests")
        cpu = CpuWatch()
        latencies = measure(api, admin, regions, totals)
        others = cpu.others_share()
        get_item = get_item_round_trip(client, table, data.cities[0][3])
        phase = {"name": name, "stored": count, "appointments_written": len(appointments),
                 "stats_written": len(items), "totals_written": n_totals,
                 "days_written": len(items) - n_totals, "calls": calls, "load_s": load_s,
                 "check": check, "median": statistics.median(latencies),
                 "p90": percentile(latencies, 0.9), "min": min(latencies),
                 "max": max(latencies), "get_item": get_item, "others": others}
        say(f"phase {name}: median {phase['median']:.1f} ms, p90 {phase['p90']:.1f} ms "
            f"(emulator GetItem {get_item:.2f} ms; other processes used {others:.0%} of the "
            "CPUs meanwhile)")
        run["phases"].append(phase)
        before, stored = (totals, days), count


def ports_used():
    """How the ports of the run were chosen, for the report."""
    if os.environ.get("BENCH_EMULATOR_PORT") and os.environ.get("BENCH_API_PORT"):
        return "the ports set by BENCH_EMULATOR_PORT and BENCH_API_PORT"
    return "free ports"


def chosen_ports():
    """BENCH_EMULATOR_PORT and BENCH_API_PORT when both are set (`make bench` sets them), else
    two free ports."""
    if os.environ.get("BENCH_EMULATOR_PORT") and os.environ.get("BENCH_API_PORT"):
        ports = [stack.env_port(name, 0) for name in ("BENCH_EMULATOR_PORT", "BENCH_API_PORT")]
        for port, name in zip(ports, ("BENCH_EMULATOR_PORT", "BENCH_API_PORT")):
            stack.require_free_port(port, name)
        return ports
    return stack.free_ports(2)


def check_deadline(run):
    if time.monotonic() - run["started"] > DEADLINE_S:
        raise BenchError(f"the run took longer than {DEADLINE_S} s; stopping")


def bench(foreground, tmp):
    """Start the throwaway stack, run the benchmark, stop the stack."""
    run = {"started": time.monotonic(), "phases": [],
           "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "nproc": len(os.sched_getaffinity(0)), "cpu": cpu_model()}
    emulator_port, api_port = chosen_ports()
    env = stack.function_env(emulator_port)
    table = env["TABLE_NAME"]
    ministack_log, watch_log = tmp / "ministack.log", tmp / "watch.log"
    ministack = watch = None
    try:
        ministack = stack.start_ministack(emulator_port, tmp / "state", ministack_log, False)
        stack.wait_for_emulator(ministack, emulator_port, ministack_log)
        stack.sync_tables(stack.TEMPLATE, env)
        consumers = stack.sync_events(stack.TEMPLATE, env, api_port, stack.MANIFEST)
        stack.build(foreground, env, ["cargo", "build", "--workspace", "--bins"])
        command = stack.watch_command(api_port, "--concurrency", str(WATCH_CONCURRENCY),
                                      "--ignore-changes")
        say(f"{' '.join(command)}  (log: {watch_log})")
        with open(watch_log, "ab") as log:
            watch = stack.start_group(command, env, stdout=log, stderr=subprocess.STDOUT)
        stack.wait_for_api(watch, api_port, watch_log)
        # As `stack.py test` does where the stack can warm the event consumers up (a consumer's
        # first start may outlast ministack's 5 s delivery timeout, and its event be dropped).
        warm_consumers = getattr(stack, "warm_consumers", None)
        if warm_consumers is not None and consumers:
            warm_consumers(api_port, consumers, WATCH_CONCURRENCY)
        run["startup_s"] = time.monotonic() - run["started"]
        try:
            return measure_stack(run, env, api_port, table)
        except (BenchError, OSError, botocore.exceptions.BotoCoreError,
                botocore.exceptions.ClientError):
            stack.print_tail(watch_log, "cargo lambda watch log", 30)
            raise
    finally:
        foreground.shield()
        if watch is not None:
            stack.stop_group(watch, "cargo lambda watch")
        if ministack is not None:
            stack.stop_ministack(ministack)


def measure_stack(run, env, api_port, table):
    """Everything after start-up; answers the exit status."""
    api = Api(api_port)
    client = stack.dynamodb_client(env)
    admin_email, admin_password = "bench-admin@example.com", "bench " + secrets.token_hex(16)
    create_admin(env, admin_email, admin_password)
    admin = api.login(admin_email, admin_password)

    say("booking a reference appointment through the API")
    booked = book_reference(api, admin)
    wait_counted(api, admin, booked["h3_index"], 1)
    run["shape_items"], written = check_shapes(client, table, booked)
    say(f"the loader's items equal the product's ({run['shape_items']} items compared)")

    today = dt.datetime.now(dt.timezone.utc).date()
    say("generating the appointments")
    data = Dataset(PHASES[-1][1], today, dt.datetime.now(dt.timezone.utc),
                   int(written["duration_minutes"]["N"]))
    reference_cells = {h3.cell_to_parent(booked["h3_index"], r) for r in RESOLUTIONS}
    loaded_cells = {cell for parents in data.parents.values() for cell in parents}
    if reference_cells & loaded_cells:
        raise BenchError(f"the reference booking shares cells with the loaded data: "
                         f"{sorted(reference_cells & loaded_cells)}")
    days = sorted({a["start"].date() for a in data.appointments})
    run.update(cells=len(data.cells), patients=len(data.patients), days=len(days),
               first_day=days[0], last_day=days[-1], duration=data.duration)

    run_phases(run, api, admin, client, table, data)
    api.close()
    run["total_s"] = time.monotonic() - run["started"]
    ratio = write_report(run)
    a, b = run["phases"]
    say(f"median {a['median']:.1f} ms with {a['stored']:,}, {b['median']:.1f} ms with "
        f"{b['stored']:,}: ratio {ratio:.3f} ({'<=' if ratio <= RATIO_LIMIT else '>'} "
        f"{RATIO_LIMIT}); report: {REPORT.relative_to(REPO)}; run took {run['total_s']:.0f} s")
    return 0


def main():
    stack.bypass_proxies_for_localhost()
    foreground = stack.Foreground()
    try:
        with tempfile.TemporaryDirectory(prefix="clinic-bench-") as tmp:
            return bench(foreground, Path(tmp))
    except (BenchError, stack.StackError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    except stack.Interrupted as error:
        say(f"stopped by {error}")
        return 128 + error.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
