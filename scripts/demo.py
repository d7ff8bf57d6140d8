"""Fills the running local stack with a clinic world at real places, then shows where demand is.

Run `make demo` while `make dev` runs (or `.venv/bin/python scripts/demo.py`). It:

  1. logs in the demo Admin, creating it first the way `make admin` does when it is missing;
  2. has that Admin create doctors, several in each big city, with real specializations, each
     practice a few kilometres from the city centre;
  3. registers patients around the same cities and has each one find the doctors near them
     (`GET /doctors?near_lat=&near_lng=&k=`);
  4. books appointments over the coming weeks, on the slot grid, in office hours on weekdays
     (local time estimated from the longitude), and cancels a few of them;
  5. waits until the analytics consumer has counted the bookings, prints the busiest regions at
     two resolutions and one region's summary, and writes the busiest regions as GeoJSON.

The cities are the GeoNames cities of shared/tests/data/h3_reference.csv (GeoNames,
www.geonames.org, CC BY 4.0; see shared/tests/data/README.md). That file keeps no population,
but it lists each country's cities from the most to the least populous, so a city's rank in its
country stands in for its size: by the rank-size rule a city of rank r weighs 1/r. Patients are
spread over the cities by that weight, and big cities get more doctors.

Running it again adds another batch of bookings to the same world: accounts have fixed emails
(`demo-...@clinic-demo.example`) and a fixed password, are created when missing and logged in
otherwise, and live at the same places; only the bookings are new each run. These accounts are
for a local stack only. A booking that hits a taken slot (409) is expected and tried again at
another time; any other failure is counted and listed at the end, and the exit status is then 1.

Settings (environment variables, with defaults):
  API_PORT                  9000   the port of `make dev`'s API (always on 127.0.0.1)
  EMULATOR_PORT             4566   `make dev`'s emulator; used only to create the demo Admin
  DEMO_APPOINTMENTS         2000   bookings to make
  DEMO_PATIENTS             150    patients (each logs in once and books many times)
  DEMO_COUNTRIES            US,BR,GB,DE,NG,IN,JP,AU   ISO country codes of the cities
  DEMO_CITIES_PER_COUNTRY   4      each country's most populous cities taken
  DEMO_WEEKS                6      bookings fall in the coming weeks (from the day after next)
  DEMO_CANCEL_PERCENT       3      share of bookings cancelled afterwards
  DEMO_CONCURRENCY          6      requests in flight at once
  DEMO_SEED                 random the seed of this run's bookings (the world itself is fixed)
  DEMO_GEOJSON              demo-regions.geojson   output file, relative to the repository
  DEMO_WAIT_S               60     how long to wait for the analytics to count the bookings
  APPOINTMENT_MINUTES       30     the slot length: give it the API's value if you changed it

Standard library only; the Admin is created by scripts/stack.py, run with the project's .venv.
"""

import csv
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, time as day_time, timedelta, timezone
from pathlib import Path

from api_request import headers_for

REPO = Path(__file__).resolve().parent.parent
CITIES_CSV = REPO / "shared" / "tests" / "data" / "h3_reference.csv"
EMAIL_DOMAIN = "clinic-demo.example"
PASSWORD = "demo clinic passphrase"  # a local demo's well-known password
ADMIN_EMAIL = f"demo-admin@{EMAIL_DOMAIN}"
WORLD_SEED = "clinic-demo-world-1"  # fixed: the same accounts live at the same places every run

GENERAL_PRACTICE = "General Practice"
SPECIALIZATIONS = [
    "Cardiology", "Dermatology", "Pediatrics", "Orthopedics", "Obstetrics and Gynecology",
    "Psychiatry", "Ophthalmology", "Neurology", "Otolaryngology", "Endocrinology",
    "Gastroenterology", "Pulmonology",
]
FIRST_NAMES = [
    "Amara", "Ben", "Chen", "Daniela", "Emeka", "Fatima", "Giulia", "Hiro", "Ines", "Jonas",
    "Kavya", "Lucas", "Maya", "Noah", "Olu", "Priya", "Rafael", "Sofia", "Tariq", "Yuki",
]
LAST_NAMES = [
    "Adeyemi", "Becker", "Costa", "Dubois", "Evans", "Fujita", "Gupta", "Hughes", "Ibrahim",
    "Jensen", "Kowalski", "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Rossi", "Silva",
    "Tanaka", "Walker",
]
# Average hexagon area per H3 resolution, in km², for the printed headings.
HEX_AREA_KM2 = [4_357_449, 609_788, 86_802, 12_393, 1_770, 253, 36, 5.2]
COARSE_RESOLUTION, FINE_RESOLUTION = 3, 6
DOCTOR_SPREAD_KM, PATIENT_SPREAD_KM, NEAR_RINGS = 3.0, 6.0, 5
OFFICE_HOURS = (8, 18)  # local time
RETRY_STATUSES = {429, 502, 503, 504}
RETRY_DELAYS_S = [0.2, 0.5, 1, 2, 4]
SLOT_TRIES = 4  # times to try another slot after a 409 before giving that booking up


# --- settings ------------------------------------------------------------------------------------


def env_int(name, default, low, high):
    """A whole number from the environment, within [low, high]."""
    raw = os.environ.get(name, str(default)).strip()
    if not raw.isdigit() or not low <= int(raw) <= high:
        sys.exit(f"demo: {name}={raw!r} must be a whole number from {low} to {high}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    """Everything the environment can change."""

    api: str
    appointments: int
    patients: int
    countries: list
    cities_per_country: int
    weeks: int
    cancel_percent: int
    concurrency: int
    seed: int
    geojson: Path
    wait_s: int
    slot_minutes: int


def read_settings():
    """The settings from the environment, checked."""
    raw_countries = os.environ.get("DEMO_COUNTRIES", "US,BR,GB,DE,NG,IN,JP,AU")
    countries = [code.strip().upper() for code in raw_countries.split(",") if code.strip()]
    slot_minutes = env_int("APPOINTMENT_MINUTES", 30, 5, 120)
    if 1440 % slot_minutes:
        sys.exit(f"demo: APPOINTMENT_MINUTES={slot_minutes} does not divide a day")
    return Settings(
        api=f"http://127.0.0.1:{env_int('API_PORT', 9000, 1, 65535)}",
        appointments=env_int("DEMO_APPOINTMENTS", 2000, 0, 100_000),
        patients=env_int("DEMO_PATIENTS", 150, 1, 10_000),
        countries=countries,
        cities_per_country=env_int("DEMO_CITIES_PER_COUNTRY", 4, 1, 15),
        weeks=env_int("DEMO_WEEKS", 6, 1, 50),
        cancel_percent=env_int("DEMO_CANCEL_PERCENT", 3, 0, 100),
        concurrency=env_int("DEMO_CONCURRENCY", 6, 1, 64),
        seed=env_int("DEMO_SEED", random.SystemRandom().randrange(10**9), 0, 10**18),
        geojson=REPO / os.environ.get("DEMO_GEOJSON", "demo-regions.geojson"),
        wait_s=env_int("DEMO_WAIT_S", 60, 0, 3600),
        slot_minutes=slot_minutes,
    )


def say(message):
    """Print one progress line."""
    print(f"demo: {message}", flush=True)


# --- the world -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    """A GeoNames city; `rank` is its place among its country's cities by population."""

    country: str
    rank: int
    geonameid: str
    lat: float
    lng: float

    @property
    def weight(self):
        """Its share of demand by the rank-size rule."""
        return 1 / self.rank

    @property
    def label(self):
        """A short name: the CSV keeps ids, not names."""
        return f"{self.country} #{self.rank} (geonames.org/{self.geonameid})"


@dataclass
class Account:
    """A demo user: where they are and, once logged in, their token."""

    email: str
    username: str
    city: City
    lat: float
    lng: float
    specialization: str = ""
    token: str = ""
    doctors: list = field(default_factory=list)  # for patients: the doctors near them
    activity: float = 1.0  # for patients: how often they book, relative to others


def load_cities(countries, per_country):
    """Each listed country's most populous cities from the CSV (kept in population order)."""
    ranks = Counter()
    cities = []
    with open(CITIES_CSV, encoding="utf-8") as file:
        rows = csv.DictReader(line for line in file if not line.startswith("#"))
        for row in rows:
            if row["kind"] != "city" or row["country"] not in countries:
                continue
            ranks[row["country"]] += 1
            if ranks[row["country"]] <= per_country:
                cities.append(City(row["country"], ranks[row["country"]], row["geonameid"],
                                   float(row["latitude"]), float(row["longitude"])))
    missing = [c for c in countries if not ranks[c]]
    if missing:
        sys.exit(f"demo: no cities for {', '.join(missing)} in {CITIES_CSV.name}")
    return cities


def near(city, rng, spread_km):
    """A point within spread_km of the city centre, evenly spread over that disc."""
    distance = spread_km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    lat = city.lat + distance * math.cos(bearing) / 111.2
    lng = city.lng + distance * math.sin(bearing) / (111.2 * math.cos(math.radians(city.lat)))
    lat = max(-89.9, min(89.9, lat))
    return round(lat, 5), round((lng + 180) % 360 - 180, 5)


def plan_doctors(cities):
    """Doctors per city by size (4 in a country's biggest, down to 1): a general practitioner
    first, then specialists."""
    doctors = []
    for city in cities:
        rng = random.Random(f"{WORLD_SEED}-doctors-{city.geonameid}")
        specialists = rng.sample(SPECIALIZATIONS, len(SPECIALIZATIONS))
        for n in range(max(1, round(4 / city.rank))):
            lat, lng = near(city, rng, DOCTOR_SPREAD_KM)
            last = rng.choice(LAST_NAMES)
            doctors.append(Account(
                email=f"demo-dr-{city.geonameid}-{n}@{EMAIL_DOMAIN}",
                username=f"dr-{last.lower()}-{city.geonameid}-{n}",
                city=city, lat=lat, lng=lng,
                specialization=GENERAL_PRACTICE if n == 0 else specialists[n - 1]))
    return doctors


def plan_patients(cities, count):
    """Patients placed in cities by weight, each a few kilometres from the centre; some book
    far more often than others."""
    weights = [city.weight for city in cities]
    patients = []
    for i in range(count):
        rng = random.Random(f"{WORLD_SEED}-patient-{i}")
        city = rng.choices(cities, weights)[0]
        lat, lng = near(city, rng, PATIENT_SPREAD_KM)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        patients.append(Account(
            email=f"demo-patient-{i:04d}@{EMAIL_DOMAIN}",
            username=f"{first.lower()}-{last.lower()}-{i:04d}", city=city, lat=lat, lng=lng,
            activity=rng.lognormvariate(0, 0.7)))
    return patients


# --- HTTP ----------------------------------------------------------------------------------------

# Only 127.0.0.1 is ever called: no proxy from the environment may come in between.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    """A finished request: status and decoded JSON body (None when not JSON)."""

    status: int
    body: object


class Tally:
    """Counts outcomes across threads and keeps the unexpected failures for the report."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.failures = Counter()
        self.examples = {}

    def count(self, what, n=1):
        """Add n to one outcome."""
        with self.lock:
            self.counts[what] += n

    def fail(self, what, reply):
        """Record an unexpected answer to one kind of request."""
        key = f"{what}: {reply.status}"
        with self.lock:
            self.failures[key] += 1
            self.examples.setdefault(key, reply.body)


def request(settings, method, path, token=None, body=None, form=None):
    """One request to the API, retried with backoff on 429, 502-504 and lost connections."""
    if form is not None:
        data, headers = headers_for(form, token, form=True)
    else:
        data, headers = headers_for(body, token)
    for delay in RETRY_DELAYS_S + [None]:
        reply = send(urllib.request.Request(settings.api + path, data, headers, method=method))
        if reply.status not in RETRY_STATUSES or delay is None:
            return reply
        time.sleep(delay * random.uniform(0.8, 1.2))
    raise AssertionError("unreachable")


def send(req):
    """Send once; a refused or dropped connection is a 503 (retried by the caller)."""
    try:
        with OPENER.open(req, timeout=60) as response:
            return Reply(response.status, decode(response.read()))
    except urllib.error.HTTPError as error:
        return Reply(error.code, decode(error.read()))
    except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
        return Reply(503, {"detail": f"no answer: {error}"})


def decode(raw):
    """JSON, or None."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def in_parallel(settings, items, work, what):
    """Run work(item) for every item with bounded concurrency; print progress now and then."""
    done, step = 0, max(1, len(items) // 4)
    with ThreadPoolExecutor(settings.concurrency) as pool:
        futures = [pool.submit(work, item) for item in items]
        for future in as_completed(futures):
            future.result()
            done += 1
            if done % step == 0 and done < len(items):
                say(f"  {what}: {done}/{len(items)}")


# --- accounts ------------------------------------------------------------------------------------


def api_is_up(settings):
    """Whether `make dev`'s API answers."""
    return send(urllib.request.Request(settings.api + "/openapi.json")).status == 200


def login(settings, tally, account):
    """Log an account in; keep its token. False when the password is refused."""
    reply = request(settings, "POST", "/login",
                    form={"username": account.email, "password": PASSWORD})
    if reply.status == 200:
        account.token = reply.body["access_token"]
        return True
    if reply.status != 401:
        tally.fail("POST /login", reply)
    return False


def ensure_admin(settings, tally):
    """The demo Admin, logged in; created with scripts/stack.py (as `make admin`) if missing."""
    admin = Account(ADMIN_EMAIL, "demo-admin", None, 0, 0)
    if login(settings, tally, admin):
        say(f"admin {ADMIN_EMAIL} logged in")
        return admin
    say(f"creating the admin {ADMIN_EMAIL} (as `make admin` does)")
    env = {**os.environ, "ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": PASSWORD,
           "ADMIN_USERNAME": admin.username}
    python = REPO / ".venv" / "bin" / "python"
    stack = [str(python if python.exists() else sys.executable),
             str(REPO / "scripts" / "stack.py"), "admin"]
    if subprocess.run(stack, env=env, cwd=REPO, check=False).returncode != 0:
        sys.exit("demo: could not create the admin (see above)")
    if not login(settings, tally, admin):
        sys.exit(f"demo: {ADMIN_EMAIL} exists but refuses the demo password")
    return admin


def register(settings, tally, account, admin_token=None):
    """Create the account (a Doctor when admin_token is given) unless it exists; log it in."""
    body = {"username": account.username, "email": account.email, "password": PASSWORD}
    if admin_token:
        body["role"] = "Doctor"
    reply = request(settings, "POST", "/register", token=admin_token, body=body)
    if reply.status == 201:
        tally.count("accounts created")
    elif reply.status == 409:
        tally.count("accounts from an earlier run")
    else:
        tally.fail("POST /register", reply)
        return False
    if not login(settings, tally, account):
        tally.fail("POST /login", Reply(401, f"{account.email} refuses the demo password"))
        return False
    return True


def set_up_doctor(settings, tally, admin, doctor):
    """Register and log in a doctor, then open their practice."""
    if not register(settings, tally, doctor, admin.token):
        return
    body = {"specialization": doctor.specialization, "latitude": doctor.lat,
            "longitude": doctor.lng}
    reply = request(settings, "POST", "/doctors/profile", doctor.token, body=body)
    if reply.status not in (200, 201):
        tally.fail("POST /doctors/profile", reply)


def set_up_patient(settings, tally, patient):
    """Register and log in a patient, say where they live, and find the doctors near them."""
    if not register(settings, tally, patient):
        return
    where = urllib.parse.urlencode({"latitude": patient.lat, "longitude": patient.lng})
    reply = request(settings, "POST", f"/setup-patient?{where}", patient.token)
    if reply.status not in (200, 201):
        tally.fail("POST /setup-patient", reply)
        return
    query = urllib.parse.urlencode({"near_lat": patient.lat, "near_lng": patient.lng,
                                    "k": NEAR_RINGS, "limit": 100})
    reply = request(settings, "GET", f"/doctors?{query}", patient.token)
    if reply.status != 200:
        tally.fail("GET /doctors", reply)
        return
    patient.doctors = reply.body
    if not patient.doctors:
        tally.count("patients without a doctor nearby")


# --- bookings ------------------------------------------------------------------------------------


def slot_start(settings, rng, patient, today):
    """A random slot start in local office hours on a weekday of the coming weeks, in UTC and on
    the API's grid (counted from midnight UTC). Local time is estimated from the longitude."""
    offset = timedelta(hours=round(patient.lng / 15))
    while True:
        day = today + timedelta(days=rng.randrange(2, 2 + 7 * settings.weeks))
        if day.weekday() < 5:
            break
    minute = rng.randrange(OFFICE_HOURS[0] * 60, OFFICE_HOURS[1] * 60 - settings.slot_minutes)
    local = datetime.combine(day, day_time(), timezone.utc) + timedelta(minutes=minute)
    start = local - offset
    past_midnight = start.hour * 60 + start.minute
    step = -past_midnight % settings.slot_minutes
    return (start + timedelta(minutes=step)).strftime("%Y-%m-%dT%H:%M:00Z")


def pick_doctor(rng, patient):
    """A doctor near the patient: nearer rings and general practice are chosen more often."""
    weights = [(2 if d["specialization"] == GENERAL_PRACTICE else 1) / (1 + d.get("ring", 0))
               for d in patient.doctors]
    return rng.choices(patient.doctors, weights)[0]


def book(settings, tally, booked, patient, rng, today):
    """One booking for the patient; another time is tried after a slot clash (409)."""
    doctor = pick_doctor(rng, patient)
    for _ in range(SLOT_TRIES):
        body = {"doctor_id": doctor["id"], "datetime": slot_start(settings, rng, patient, today)}
        reply = request(settings, "POST", "/appointments", patient.token, body=body)
        if reply.status == 201:
            tally.count("booked")
            with tally.lock:
                booked.append((patient, reply.body["id"]))
            return
        if reply.status != 409:
            tally.fail("POST /appointments", reply)
            return
        tally.count("slot clashes (409, expected)")
    tally.count("bookings given up after clashes")


def book_all(settings, tally, patients):
    """Share the appointments out among the patients who have doctors near them, by how active
    each is, and book them. Answers the (patient, appointment id) of each booking."""
    able = [p for p in patients if p.doctors]
    if not able:
        return []
    today = datetime.now(timezone.utc).date()
    rng = random.Random(settings.seed)
    who = rng.choices(able, [p.activity for p in able], k=settings.appointments)
    jobs = [(patient, random.Random(rng.random())) for patient in who]
    booked = []
    in_parallel(settings, jobs,
                lambda job: book(settings, tally, booked, job[0], job[1], today), "bookings")
    return booked


def cancel_some(settings, tally, booked):
    """Patients cancel a share of their bookings, as some always do."""
    rng = random.Random(settings.seed + 1)
    chosen = rng.sample(booked, len(booked) * settings.cancel_percent // 100)

    def cancel(item):
        patient, appointment_id = item
        reply = request(settings, "POST", f"/appointments/{appointment_id}/cancel", patient.token)
        if reply.status == 200:
            tally.count("cancelled")
        else:
            tally.fail("POST /appointments/{id}/cancel", reply)

    in_parallel(settings, chosen, cancel, "cancellations")


# --- analytics -----------------------------------------------------------------------------------


def counted_total(settings, tally, admin):
    """Every booking the analytics have counted: the sum over the resolution-0 cells."""
    reply = request(settings, "GET", "/analytics?resolution=0&limit=100", admin.token)
    if reply.status != 200:
        tally.fail("GET /analytics", reply)
        return None
    return sum(region["total"] for region in reply.body)


def wait_for_counts(settings, tally, admin, target):
    """Wait (at most DEMO_WAIT_S) until the analytics have counted `target` bookings in all."""
    started = time.monotonic()
    while True:
        total = counted_total(settings, tally, admin)
        waited = time.monotonic() - started
        if total is None or total >= target:
            say(f"analytics caught up after {waited:.1f} s")
            return
        if waited >= settings.wait_s:
            say(f"WARNING: after {waited:.0f} s the analytics count {total} of {target} "
                "bookings; the local emulator drops an event it cannot deliver within 5 s "
                "(see EVENTS.md)")
            tally.count("bookings the analytics missed", target - total)
            return
        time.sleep(1)


def centre_of(feature):
    """(lat, lng) of a GeoJSON hexagon: the mean of its first ring's corners."""
    geometry = feature["geometry"]
    ring = geometry["coordinates"][0]
    if geometry["type"] == "MultiPolygon":
        ring = ring[0]
    corners = ring[:-1]
    return (sum(p[1] for p in corners) / len(corners), sum(p[0] for p in corners) / len(corners))


def km_between(a, b):
    """Great-circle distance in km between two (lat, lng) points."""
    (lat1, lng1), (lat2, lng2) = [(math.radians(x), math.radians(y)) for x, y in (a, b)]
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lng2 - lng1) / 2) ** 2)
    return 2 * 6371 * math.asin(math.sqrt(h))


def nearest_city(cities, point):
    """The demo city nearest to a point, and how far it is."""
    city = min(cities, key=lambda c: km_between(point, (c.lat, c.lng)))
    return city, km_between(point, (city.lat, city.lng))


def busiest(settings, tally, admin, resolution, limit):
    """GET /analytics: the busiest regions, as GeoJSON features (which carry the hexagons)."""
    path = f"/analytics?resolution={resolution}&limit={limit}&format=geojson"
    reply = request(settings, "GET", path, admin.token)
    if reply.status != 200:
        tally.fail("GET /analytics?format=geojson", reply)
        return None
    return reply.body


def print_busiest(cities, collection, resolution, shown):
    """A table of the busiest regions, each with the demo city nearest to its centre."""
    print(f"\nBusiest regions at resolution {resolution} "
          f"(hexagons of about {HEX_AREA_KM2[resolution]:,} km²):")
    print(f"  {'h3_index':<16} {'total':>6}  nearest demo city")
    for feature in collection["features"][:shown]:
        props = feature["properties"]
        city, km = nearest_city(cities, centre_of(feature))
        print(f"  {props['h3_index']:<16} {props['total']:>6}  {city.label}, {km:.0f} km")


def print_region(settings, tally, admin, cities, feature):
    """GET /analytics/{h3_index}: one region's summary over the booking weeks, with the cells
    around it."""
    today = datetime.now(timezone.utc).date()
    last_day = today + timedelta(days=2 + 7 * settings.weeks)
    query = urllib.parse.urlencode({"from": today.isoformat(), "to": last_day.isoformat(),
                                    "k": 1})
    cell = feature["properties"]["h3_index"]
    reply = request(settings, "GET", f"/analytics/{cell}?{query}", admin.token)
    if reply.status != 200:
        tally.fail("GET /analytics/{h3_index}", reply)
        return
    stats = reply.body
    city, _ = nearest_city(cities, centre_of(feature))
    by_status = ", ".join(f"{n} {status}" for status, n in stats["by_status"].items())
    print(f"\nGET /analytics/{cell}?k=1 (resolution {stats['resolution']}, {city.label}): "
          f"{stats['total']} appointments ({by_status})")
    days = sorted(stats["by_day"], key=lambda d: (-d["scheduled"], d["day"]))[:3]
    print("  busiest days: " + ", ".join(f"{d['day']} ({d['scheduled']})" for d in days))
    print("  busiest cells inside it: " + ", ".join(
        f"{c['h3_index']} ({c['total']})" for c in stats["children"]))
    ring = [c for c in stats.get("nearby") or [] if c["ring"] == 1]
    print(f"  its {len(ring)} neighbours: {sum(c['total'] for c in ring)} appointments")


def write_geojson(settings, collection):
    """Write the GeoJSON FeatureCollection and say where it is."""
    settings.geojson.parent.mkdir(parents=True, exist_ok=True)
    settings.geojson.write_text(json.dumps(collection, indent=1) + "\n", encoding="utf-8")
    print(f"\nGeoJSON of the {len(collection['features'])} busiest resolution-{FINE_RESOLUTION} "
          f"regions: {settings.geojson}\n  (open it in geojson.io, kepler.gl or QGIS; "
          "`total` is each hexagon's count)")


# --- main ----------------------------------------------------------------------------------------


def report(tally, started):
    """Print the counts and the unexpected failures; answer the exit status."""
    print(f"\nDone in {time.monotonic() - started:.0f} s: " + ", ".join(
        f"{what} {n}" for what, n in sorted(tally.counts.items())))
    if not tally.failures:
        return 0
    print(f"{sum(tally.failures.values())} unexpected answers:", file=sys.stderr)
    for key, n in tally.failures.most_common():
        print(f"  {n} x {key} {json.dumps(tally.examples[key])[:200]}", file=sys.stderr)
    return 1


def main():
    """Build the world, book, wait for the analytics, print and write the busiest regions."""
    settings = read_settings()
    started, tally = time.monotonic(), Tally()
    if not api_is_up(settings):
        sys.exit(f"demo: no API at {settings.api}: start `make dev` first (same API_PORT)")
    cities = load_cities(settings.countries, settings.cities_per_country)
    doctors, patients = plan_doctors(cities), plan_patients(cities, settings.patients)
    say(f"{len(cities)} cities in {len(settings.countries)} countries, {len(doctors)} doctors, "
        f"{len(patients)} patients, {settings.appointments} appointments (seed {settings.seed})")

    admin = ensure_admin(settings, tally)
    in_parallel(settings, doctors, lambda d: set_up_doctor(settings, tally, admin, d), "doctors")
    say(f"doctors ready ({time.monotonic() - started:.0f} s)")
    in_parallel(settings, patients, lambda p: set_up_patient(settings, tally, p), "patients")
    say(f"patients ready ({time.monotonic() - started:.0f} s)")

    before = counted_total(settings, tally, admin) or 0
    booked = book_all(settings, tally, patients)
    say(f"{len(booked)} booked ({time.monotonic() - started:.0f} s)")
    cancel_some(settings, tally, booked)
    wait_for_counts(settings, tally, admin, before + len(booked))

    coarse = busiest(settings, tally, admin, COARSE_RESOLUTION, 10)
    fine = busiest(settings, tally, admin, FINE_RESOLUTION, 100)
    if coarse and fine:
        print_busiest(cities, coarse, COARSE_RESOLUTION, 10)
        print_busiest(cities, fine, FINE_RESOLUTION, 10)
        if fine["features"]:
            print_region(settings, tally, admin, cities, fine["features"][0])
        write_geojson(settings, fine)
    return report(tally, started)


if __name__ == "__main__":
    sys.exit(main())
