"""What `make bench` invokes: one entry per function, with the event of its i-th invocation.

Adding a function to the benchmark takes one `Case` in `CASES` (in an order where what it needs
already exists: an appointment to cancel is booked by `book-appointment` before). An event
must get a success answer (2xx; for an event consumer, no error), or the benchmark stops.

The events are API Gateway HTTP API (payload 2.0) requests shaped like those in events/, or
EventBridge envelopes shaped like those in events/eventbridge/. `World` holds the accounts and
appointments the events refer to; scripts/bench.py creates them through the functions.
"""

import copy
import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

EVENTS = Path(__file__).resolve().parent.parent / "events"
WARM = 1000  # measured warm invocations of most functions
WARM_HASHING = 100  # of those that hash or verify a password (each takes tens of ms)
PLACE = (40.7128, -74.0060)  # New York: where the bench's doctors and patients are


@dataclass
class Account:
    email: str
    password: str
    id: int = 0
    token: str = ""


@dataclass
class World:
    """The accounts and appointments the events refer to. `pairs[k]` is a doctor and a patient
    who book only each other, each pair walking its own grid of slots, so no two bookings of the
    benchmark ever compete for a doctor or a patient."""

    run_id: str
    admin: Account | None = None
    managed: Account | None = None  # a Patient whose status `update-user` switches
    changer: Account | None = None  # a Patient who changes their password again and again
    managed_disabled: bool = False  # the state `update-user` last asked for
    changed: bool = False  # whether the changer's password is the changed one
    pairs: list = field(default_factory=list)  # (doctor Account, patient Account)
    booked: list = field(default_factory=list)  # appointment views, in booking order
    next_slot: dict = field(default_factory=dict)  # pair index -> slots used
    appointment_minutes: int = 30
    first_slot: dt.datetime = field(default_factory=lambda: (
        dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(
            hour=0, minute=0, second=0, microsecond=0, tzinfo=None))
    event_base: int = 0
    # Deletes every outbox item (set by bench.py): what the audit recorder does for recorded
    # events, which the benchmark's bus delivers to nobody.
    clear_outbox: Callable | None = None

    @property
    def patient(self):
        return self.pairs[0][1]

    @property
    def doctor(self):
        return self.pairs[0][0]

    def booking(self, pair=0):
        """The body of a booking in the pair's next free slot."""
        used = self.next_slot.get(pair, 0)
        self.next_slot[pair] = used + 1
        start = self.first_slot + dt.timedelta(minutes=self.appointment_minutes * used)
        return {"doctor_id": self.pairs[pair][0].id, "datetime": start.isoformat()}

    def take_booked(self):
        """An appointment booked earlier and not yet taken (for cancelling)."""
        if not self.booked:
            raise LookupError("no booked appointment is left to cancel; book more first")
        return self.booked.pop()


def http_event(route_key, path, token=None, body=None, query="", path_parameters=None,
               form=False):
    """An API Gateway HTTP API v2 request, as events/*.json."""
    method = route_key.split(" ", 1)[0]
    event = json.loads((EVENTS / "users-me.json").read_text(encoding="utf-8"))
    event = copy.deepcopy(event)
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = query
    headers = {k: v for k, v in event["headers"].items() if k != "authorization"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if query:
        event["queryStringParameters"] = dict(urllib.parse.parse_qsl(query))
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body is not None:
        if form:
            headers["content-type"] = "application/x-www-form-urlencoded"
            event["body"] = urllib.parse.urlencode(body)
        else:
            headers["content-type"] = "application/json"
            event["body"] = json.dumps(body)
    event["headers"] = headers
    return event


def bus_event(sample, event_id):
    """An EventBridge envelope from events/eventbridge/, with its own event id."""
    event = json.loads((EVENTS / "eventbridge" / sample).read_text(encoding="utf-8"))
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    event["id"] = f"bench-{event_id}"
    event["time"] = event["detail"]["occurred_at"] = now
    event["detail"]["event_id"] = event_id
    return event


# --- the events of each function -----------------------------------------------------------------


def register(world, i):
    return http_event("POST /register", "/register", body={
        "username": f"bench-{world.run_id}-{i}", "email": f"bench-{world.run_id}-{i}@example.com",
        "password": f"bench password {world.run_id}", "role": "Patient"})


def login(world, _i):
    patient = world.patient
    return http_event("POST /login", "/login", form=True, body={
        "username": patient.email, "password": patient.password, "grant_type": "password"})


def users_me(world, _i):
    return http_event("GET /users/me", "/users/me", token=world.patient.token)


def openapi(_world, _i):
    return http_event("GET /openapi.json", "/openapi.json")


def docs(_world, _i):
    return http_event("GET /docs", "/docs")


def setup_patient(world, _i):
    lat, lng = PLACE
    return http_event("POST /setup-patient", "/setup-patient", token=world.patient.token,
                      query=f"latitude={lat}&longitude={lng}")


def doctors_profile(world, _i):
    lat, lng = PLACE
    return http_event("POST /doctors/profile", "/doctors/profile", token=world.doctor.token,
                      body={"specialization": "General practice", "latitude": lat,
                            "longitude": lng})


def list_doctors(world, _i):
    lat, lng = PLACE
    return http_event("GET /doctors", "/doctors", token=world.patient.token,
                      query=f"near_lat={lat}&near_lng={lng}&k=2")


def book(world, _i):
    return http_event("POST /appointments", "/appointments", token=world.patient.token,
                      body=world.booking())


def keep_booking(world, answer):
    world.booked.append(json.loads(answer["body"]))


def my_appointments(world, _i):
    return http_event("GET /appointments/my", "/appointments/my", token=world.patient.token,
                      query="when=upcoming&limit=20")


def get_appointment(world, i):
    appointment = world.booked[i % len(world.booked)]
    return http_event("GET /appointments/{id}", f"/appointments/{appointment['id']}",
                      token=world.patient.token, path_parameters={"id": str(appointment["id"])})


def cancel(world, _i):
    appointment = world.take_booked()
    return http_event("POST /appointments/{id}/cancel",
                      f"/appointments/{appointment['id']}/cancel", token=world.patient.token,
                      path_parameters={"id": str(appointment["id"])})


def audit_logs(world, _i):
    return http_event("GET /audit-logs", "/audit-logs", token=world.admin.token,
                      query="limit=20")


def busiest_regions(world, _i):
    return http_event("GET /analytics", "/analytics", token=world.admin.token,
                      query="resolution=7&limit=10")


def region_analytics(world, i):
    cell = world.booked[i % len(world.booked)]["h3_index"]
    return http_event("GET /analytics/{h3_index}", f"/analytics/{cell}",
                      token=world.admin.token, path_parameters={"h3_index": cell})


def analytics_updater(world, i):
    return bus_event("appointment-booked.json", world.event_base + i)


def audit_recorder(world, i):
    return bus_event("login-succeeded.json", world.event_base + 1_000_000 + i)


def list_users(world, _i):
    return http_event("GET /users", "/users", token=world.admin.token,
                      query="role=Patient&limit=20")


def update_user(world, _i):
    managed = world.managed
    world.managed_disabled = not world.managed_disabled
    status = "disabled" if world.managed_disabled else "active"
    return http_event("PATCH /users/{id}", f"/users/{managed.id}", token=world.admin.token,
                      body={"status": status}, path_parameters={"id": str(managed.id)})


def change_password(world, _i):
    """From the account's password to another one and back: each change answers a new token,
    which the next invocation uses (`keep_token`)."""
    changer = world.changer
    other = f"{changer.password} changed"
    current, new = (other, changer.password) if world.changed else (changer.password, other)
    return http_event("POST /users/me/password", "/users/me/password", token=changer.token,
                      body={"current_password": current, "new_password": new})


def keep_token(world, answer):
    world.changer.token = json.loads(answer["body"])["access_token"]
    world.changed = not world.changed


def health(_world, _i):
    return http_event("GET /health", "/health")


def redrive_outbox(_world, _i):
    return {"version": "0", "id": "bench-schedule", "detail-type": "Scheduled Event",
            "source": "aws.events", "detail": {}}


@dataclass(frozen=True)
class Case:
    """One function of the benchmark."""

    function: str
    event: Callable  # (World, i) -> event
    endpoint: str = ""  # the route, for HTTP functions; empty for event consumers
    warm: int = WARM
    hashes: bool = False  # hashes or verifies a password: its own goals apply
    after: Callable | None = None  # (World, answer) -> None, after each successful invocation
    # logs each invocation's CPU time (`cpu_ms`); every clinic function does, the reference not
    logs_cost: bool = True
    prepare: Callable | None = None  # (World) -> None, once before the function is measured

    @property
    def http(self):
        return bool(self.endpoint)


CASES = (
    Case("register", register, "POST /register", WARM_HASHING, hashes=True),
    Case("login", login, "POST /login", WARM_HASHING, hashes=True),
    Case("users-me", users_me, "GET /users/me"),
    Case("openapi", openapi, "GET /openapi.json"),
    Case("docs", docs, "GET /docs"),
    Case("setup-patient", setup_patient, "POST /setup-patient"),
    Case("doctors-profile", doctors_profile, "POST /doctors/profile"),
    Case("list-doctors", list_doctors, "GET /doctors"),
    Case("book-appointment", book, "POST /appointments", after=keep_booking),
    Case("my-appointments", my_appointments, "GET /appointments/my"),
    Case("get-appointment", get_appointment, "GET /appointments/{id}"),
    Case("cancel-appointment", cancel, "POST /appointments/{id}/cancel", warm=500),
    # The consumers before the readers, so the audit trail and the statistics hold records
    # (the benchmark's bus has no rules: nothing reaches them otherwise).
    Case("analytics-updater", analytics_updater),
    Case("audit-recorder", audit_recorder),
    Case("audit-logs", audit_logs, "GET /audit-logs"),
    Case("busiest-regions", busiest_regions, "GET /analytics"),
    Case("region-analytics", region_analytics, "GET /analytics/{h3_index}"),
    Case("list-users", list_users, "GET /users"),
    Case("update-user", update_user, "PATCH /users/{id}"),
    Case("change-password", change_password, "POST /users/me/password", WARM_HASHING,
         hashes=True, after=keep_token),
    Case("health", health, "GET /health"),
    # Measured as it runs every minute in AWS: with the recorded events' items cleared by the
    # audit recorder, so nothing is due.
    Case("redrive-outbox", redrive_outbox, prepare=lambda world: world.clear_outbox()),
)

# The reference: it answers any event with `{}`.
BARE = Case("bare", lambda _world, _i: {"bench": "bare"}, logs_cost=False)


def succeeded(case, invocation):
    """(ok, what the answer was) of one invocation."""
    if invocation.outcome != "response":
        return False, f"error: {invocation.body[:300]!r}"
    if not case.http:
        return True, "ok"
    answer = invocation.json()
    status = answer.get("statusCode", 0)
    return 200 <= status < 300, f"{status} {str(answer.get('body'))[:300]}"
