"""Measures how long an action takes to appear in the audit trail, against a running stack.

Usage (with `make dev` running and an Admin made by `make admin`):

    ADMIN_EMAIL=... ADMIN_PASSWORD=... .venv/bin/python scripts/audit_latency.py [--rounds 30]

Each round logs a fresh patient in, then polls `GET /audit-logs` every 10 ms until the login's
record is listed; it prints the median and the spread. Uses only the standard library and
talks only to API_URL (default http://127.0.0.1:9000).
"""

import argparse
import functools
import os
import statistics
import time
import urllib.parse
import uuid

import api_request

API = os.environ.get("API_URL", "http://127.0.0.1:9000").rstrip("/")
PASSWORD = "audit latency probe"
POLL_S = 0.01
GIVE_UP_S = 15.0


# One request to the API: (status, parsed JSON body or None).
call = functools.partial(api_request.call, API)


def login(email, password):
    status, body = call("POST", "/login", {"username": email, "password": password}, form=True)
    if status != 200:
        raise SystemExit(f"login failed for {email}: {status} {body}")
    return body["access_token"]


def new_patient():
    """Registers a patient; returns its email and id."""
    tag = uuid.uuid4().hex[:12]
    email = f"latency-{tag}@example.com"
    status, body = call("POST", "/register",
                        {"username": f"latency-{tag}", "email": email, "password": PASSWORD})
    if status != 201:
        raise SystemExit(f"register failed: {status} {body}")
    return email, body["id"]


def seconds_until_listed(admin, user_id):
    """Logs the patient in and waits until its login record is listed."""
    query = urllib.parse.urlencode({"user_id": user_id, "action": "LOGIN_SUCCESS"})
    started = time.monotonic()
    while time.monotonic() - started < GIVE_UP_S:
        status, records = call("GET", f"/audit-logs?{query}", token=admin)
        if status == 200 and records:
            return time.monotonic() - started
        time.sleep(POLL_S)
    raise SystemExit(f"no record for user {user_id} after {GIVE_UP_S} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds
    admin = login(os.environ["ADMIN_EMAIL"], os.environ["ADMIN_PASSWORD"])
    samples = []
    for _ in range(rounds):
        email, user_id = new_patient()
        login(email, PASSWORD)
        samples.append(seconds_until_listed(admin, user_id) * 1000)
    samples.sort()
    print(f"{rounds} logins: median {statistics.median(samples):.0f} ms from the login's "
          f"answer to its audit record being listed (min {samples[0]:.0f} ms, "
          f"max {samples[-1]:.0f} ms; polled every {POLL_S * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
