#!/usr/bin/env python3
"""Schema fuzzing: schemathesis against the running API's /openapi.json, once per role.

`make test` runs this after the Rust tests, on the throwaway stack it started. Each pass signs
in as one role (anonymous, Patient, Doctor, Admin), so that generated requests get past the
role checks and reach the handlers, and checks every response: no 5xx, a status code the
description documents, its content type, and a body that matches the documented schema.

Environment:
  API_URL          the API's base URL (required), e.g. http://127.0.0.1:9000
  CREATE_ADMIN     the create-admin binary (default: the debug build in CARGO_TARGET_DIR or
                   target/); it reaches the emulator through the same variables as the
                   functions (AWS_ENDPOINT_URL, TABLE_NAME, EVENT_BUS_NAME, APP_ENV=local)
  FUZZ_EXAMPLES    test cases per operation and phase (default 50)
  FUZZ_SEED        the random seed (default: a new one, printed so a failure can be replayed)
  FUZZ_REPORT_DIR  where the JUnit reports go (default: a temporary folder, printed)
"""

import datetime
import os
import random
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from api_request import call

REPO = Path(__file__).resolve().parent.parent
SCHEMATHESIS = REPO / ".venv" / "bin" / "schemathesis"
PASSWORD = "fuzzing-Pass-2026"
# Checks every response must pass. Schemathesis's other checks judge API design choices (for
# instance, that any body the schema does not describe is refused) rather than conformance. The
# first two are schemathesis's own not_a_server_error and status_code_conformance, except for a
# GET that cargo-lambda's local HTTP front failed itself (scripts/fuzz_hooks.py).
CHECKS = ",".join([
    "no_server_error",
    "documented_status",
    "content_type_conformance",
    "response_schema_conformance",
])


class FuzzError(Exception):
    """A setup step failed; the message says which."""


def expect(reply, statuses, what):
    """The body of a reply that must have one of the given statuses."""
    got, body = reply
    if got not in statuses:
        raise FuzzError(f"{what}: expected {statuses}, got {got}: {body}")
    return body


def person(tag, role):
    """A fresh account's registration body."""
    name = f"fuzz{role.lower()}{tag}"
    return {"username": name, "email": f"{name}@example.com", "password": PASSWORD, "role": role}


def login(base, email):
    """A bearer token for the account."""
    reply = call(base, "POST", "/login", {"username": email, "password": PASSWORD}, form=True)
    return expect(reply, (200,), f"login {email}")["access_token"]


def create_admin(base, tag):
    """An Admin made with the create-admin binary, as an operator would; returns its token."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    binary = os.environ.get("CREATE_ADMIN") or str(target / "debug" / "create-admin")
    admin = person(tag, "Admin")
    env = {**os.environ, "ADMIN_EMAIL": admin["email"], "ADMIN_PASSWORD": PASSWORD,
           "ADMIN_USERNAME": admin["username"]}
    done = subprocess.run([binary], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FuzzError(f"create-admin failed: {done.stderr.strip()}")
    return login(base, admin["email"])


def accounts(base):
    """A token per role, with profiles and one appointment, so that handlers have data."""
    tag = secrets.token_hex(4)
    admin = create_admin(base, tag)
    patient, doctor = person(tag, "Patient"), person(tag, "Doctor")
    expect(call(base, "POST", "/register", patient), (201,), "register the patient")
    doctor_id = expect(call(base, "POST", "/register", doctor, admin), (201,), "register a doctor")
    patient_token, doctor_token = login(base, patient["email"]), login(base, doctor["email"])

    place = {"latitude": 48.8566, "longitude": 2.3522}
    reply = call(base, "POST", "/setup-patient", place, patient_token)
    expect(reply, (200, 201), "the patient's profile")
    reply = call(base, "POST", "/doctors/profile", {"specialization": "Cardiology", **place},
                 doctor_token)
    expect(reply, (200, 201), "the doctor's profile")
    day = datetime.date.today() + datetime.timedelta(days=30)
    booking = {"doctor_id": doctor_id["id"], "datetime": f"{day.isoformat()}T09:00:00Z"}
    expect(call(base, "POST", "/appointments", booking, patient_token), (201,), "a booking")
    return {"anonymous": None, "Patient": patient_token, "Doctor": doctor_token, "Admin": admin}


def fuzz(base, role, token, seed, report_dir):
    """One schemathesis run signed in as `role`; returns its exit status."""
    command = [
        str(SCHEMATHESIS), "run", f"{base}/openapi.json",
        "--checks", CHECKS,
        "--max-examples", os.environ.get("FUZZ_EXAMPLES", "50"),
        "--seed", str(seed),
        # One worker: on CPython 3.11, Hypothesis describing its strategies from two threads at
        # once can fail inside `ast` ("AST constructor recursion depth mismatch").
        "--workers", "1",
        "--request-timeout", "60",
        "--wait-for-schema", "60",
        "--suppress-health-check", "too_slow,filter_too_much",
        "--report", "junit",
        "--report-junit-path", str(report_dir / f"{role.lower()}.xml"),
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    print(f"fuzz: as {role}", flush=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "scripts"),
                                                       os.environ.get("PYTHONPATH")]))}
    # Run in the report folder: schemathesis keeps its cache in the working directory.
    return subprocess.run(command, env=env, cwd=report_dir, check=False).returncode


def main():
    base = os.environ.get("API_URL", "").rstrip("/")
    if not base:
        print("fuzz: API_URL is not set", file=sys.stderr)
        return 2
    seed = int(os.environ.get("FUZZ_SEED") or random.randrange(2**31))
    report_dir = Path(os.environ.get("FUZZ_REPORT_DIR") or tempfile.mkdtemp(prefix="fuzz-"))
    report_dir.mkdir(parents=True, exist_ok=True)
    print(f"fuzz: seed {seed} (FUZZ_SEED={seed} replays it); reports in {report_dir}", flush=True)
    try:
        tokens = accounts(base)
    except FuzzError as error:
        print(f"fuzz: setup failed: {error}", file=sys.stderr)
        return 1
    failed = [role for role, token in tokens.items()
              if fuzz(base, role, token, seed, report_dir) != 0]
    if failed:
        print(f"fuzz: failures as {', '.join(failed)} (FUZZ_SEED={seed})", file=sys.stderr)
        return 1
    print("fuzz: every role passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
