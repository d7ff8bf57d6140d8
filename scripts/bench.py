"""Performance benchmark of the functions: what a Lambda user pays for. Run it with `make bench`,
which first builds the release binaries (`cargo lambda build --release`, as `make build`, plus
the reference function `bare`, `password-timing` and `create-admin`); writes bench/REPORT.md.
A measurement, not a test: it is not part of `make test`.

What it does, in order (everything on 127.0.0.1, stopped at the end, also on failure or Ctrl-C):

 1. Starts its own ministack (no persistence), creates the table from template.yaml, the event
    bus (no rules: the consumers are measured on their own) and a secret holding the signing key.
 2. Creates an Admin with `create-admin`, then, through the functions themselves, doctors with
    profiles and patients with profiles (`PAIRS` of each).
 3. For each function of scripts/bench_cases.py, against a runtime API served here
    (scripts/runtime_api.py): `STARTS` cold starts (init = from starting the process to its first
    request for an event; then the first invocation), a warm run in one process (p50/p99 of the
    time from handing an event out to receiving the answer, the process's CPU time per
    invocation, its peak resident memory), and a pass through a counting proxy that tells which
    emulator calls one invocation makes. The reference function `bare` is measured the same way.
 4. The init of one function that reads its signing key from Secrets Manager at start.
 5. The emulator's own round trips (raw HTTP), and its rate of two-item transactions.
 6. Booking throughput: `BOOKINGS` bookings served by `INSTANCES` processes of
    book-appointment, with the CPU time the emulator, the functions and the benchmark used.
 7. Binary and zip sizes, password hash and verify times (`password-timing`), and the analytics
    latency (scripts/bench_analytics.py, unless BENCH_ANALYTICS=0).

Settings (environment): BENCH_STARTS (10), BENCH_BOOKINGS (2000), BENCH_INSTANCES (8),
BENCH_ONLY (comma-separated functions, for a quick look; the report then covers only those),
BENCH_ANALYTICS (1; 0 reuses the figures in bench/ANALYTICS.md), BENCH_REPORT (bench/REPORT.md).
Ports: 4750 and 9400-9459 (BENCH_EMULATOR_PORT, BENCH_PORT_BASE); the analytics run uses 4751
and 9491. Uses the standard library, boto3 and PyYAML (through stack.py).
"""

import datetime as dt
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cases  # noqa: E402
import bench_emulator  # noqa: E402
import bench_measure as measure  # noqa: E402
import bench_report  # noqa: E402
import stack  # noqa: E402
from bench_cases import Account, World  # noqa: E402
from emulator_proxy import CountingProxy  # noqa: E402
from runtime_api import RuntimeApi  # noqa: E402

REPO = stack.REPO
LAMBDA_DIR = REPO / "target" / "lambda"
PAIRS = 8
SECRET_NAME = "clinic-bench-signing-key"
SECRET_FETCH_FUNCTION = "users-me"
# What create_world runs.
WORLD_BINARIES = ("create-admin", "login", "register", "doctors-profile", "setup-patient")


def setting(name, default):
    value = os.environ.get(name, str(default))
    if not value.isdigit():
        raise stack.StackError(f"{name}={value!r} is not a whole number")
    return int(value)


def say(message):
    print(f"bench: {message}", flush=True)


class Ports:
    """Runtime API endpoints, one per function, from BENCH_PORT_BASE up."""

    def __init__(self, base):
        self.next = base
        self.apis = []

    def api(self, function):
        api = RuntimeApi(self.next, function)
        self.next += 1
        self.apis.append(api)
        return api

    def close(self):
        for api in self.apis:
            api.close()


class Helpers:
    """One warm instance per function, for setting the world up."""

    def __init__(self, setup, ports):
        self.setup, self.ports, self.running = setup, ports, {}

    def call(self, function, event, expect=None):
        if function not in self.running:
            api = self.ports.api(function)
            self.running[function] = (api, self.setup.start(function, api))
        api, instance = self.running[function]
        answer = api.invoke(event).json()
        status = answer.get("statusCode")
        if expect is not None and status != expect or status is None or status >= 300:
            raise stack.StackError(f"setting up: {function} answered {status}: "
                                   f"{answer.get('body')}\n{instance.log_tail()}")
        return json.loads(answer.get("body") or "null")

    def stop(self):
        for api, instance in self.running.values():
            instance.stop()
            api.forget_polls()
        self.running.clear()


def create_world(setup, ports, base_env, run_id):
    """An Admin, and PAIRS doctors and patients with profiles, made through the functions."""
    world = World(run_id=run_id, event_base=int(time.time()) * 1000)
    password = f"bench password {run_id}"
    world.admin = Account(f"bench-admin-{run_id}@example.com", password)
    env = {**base_env, "ADMIN_EMAIL": world.admin.email, "ADMIN_PASSWORD": password,
           "ADMIN_USERNAME": f"bench-admin-{run_id}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(setup.binaries["create-admin"])], env=env,
                            cwd=setup.cwd, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise stack.StackError(f"create-admin failed: {result.stderr.strip()}")
    helpers = Helpers(setup, ports)
    try:
        login = lambda account: helpers.call("login", bench_cases.http_event(  # noqa: E731
            "POST /login", "/login", form=True,
            body={"username": account.email, "password": account.password}))["access_token"]
        world.admin.token = login(world.admin)
        lat, lng = bench_cases.PLACE
        for k in range(PAIRS):
            pair = []
            for role in ("Doctor", "Patient"):
                account = Account(f"bench-{role.lower()}-{k}-{run_id}@example.com", password)
                user = helpers.call("register", bench_cases.http_event(
                    "POST /register", "/register", token=world.admin.token, body={
                        "username": f"bench-{role.lower()}-{k}-{run_id}",
                        "email": account.email, "password": password, "role": role}), 201)
                account.id, account.token = user["id"], login(account)
                pair.append(account)
            doctor, patient = pair
            helpers.call("doctors-profile", bench_cases.http_event(
                "POST /doctors/profile", "/doctors/profile", token=doctor.token,
                body={"specialization": "General practice", "latitude": lat, "longitude": lng}))
            helpers.call("setup-patient", bench_cases.http_event(
                "POST /setup-patient", "/setup-patient", token=patient.token,
                query=f"latitude={lat}&longitude={lng}"))
            world.pairs.append((doctor, patient))
        # Accounts of their own for the account changes, so that no other token is revoked.
        for name in ("managed", "changer"):
            account = Account(f"bench-{name}-{run_id}@example.com", password)
            user = helpers.call("register", bench_cases.http_event(
                "POST /register", "/register", token=world.admin.token, body={
                    "username": f"bench-{name}-{run_id}", "email": account.email,
                    "password": password, "role": "Patient"}), 201)
            account.id, account.token = user["id"], login(account)
            setattr(world, name, account)
    finally:
        helpers.stop()
    say(f"world: an Admin, {PAIRS} doctors and {PAIRS} patients with profiles")
    return world


def measure_function(setup, ports, case, world, starts, proxy):
    api = ports.api(case.function)
    counter = itertools.count()
    if case.prepare is not None:
        case.prepare(world)
    say(f"{case.function}: {starts} cold starts")
    cold = measure.cold_starts(setup, api, case, world, counter, starts)
    say(f"{case.function}: {case.warm} warm invocations")
    warm = measure.warm_run(setup, api, case, world, counter)
    calls = measure.count_calls(setup, api, case, world, counter, proxy) if proxy else {}
    handler_cpu = warm["handler_cpu"]
    result = {"case": case, "init": measure.summary(cold["init"]),
              "first": measure.summary(cold["first"]),
              "warm": measure.summary(warm["durations"]), "cpu_ms": warm["cpu_ms"],
              "user_ms": warm["user_ms"],
              "handler_cpu": measure.summary(handler_cpu) if handler_cpu else None,
              "peak_kib": warm["peak_kib"], "calls": calls}
    handler_text = f"handler CPU p50 {result['handler_cpu']['median']:.2f} ms, " \
        if handler_cpu else ""
    say(f"{case.function}: init {result['init']['median']:.1f} ms, first "
        f"{result['first']['median']:.1f} ms, warm p50 {result['warm']['median']:.2f} ms, "
        f"{handler_text}process CPU {warm['cpu_ms']:.2f} ms/invocation, peak "
        f"{warm['peak_kib'] / 1024:.1f} MiB")
    return result


def profile(setup, ports, cases, world, perf_dir):
    """BENCH_PERF: each function's warm run, once as measured and once under `perf record`
    (which slows the process); writes the recording, <function>.data, and the figures of the
    first run with a summary by symbol of the second, <function>.txt, into `perf_dir`. No
    report."""
    perf_dir.mkdir(parents=True, exist_ok=True)
    for case in cases:
        data = perf_dir / f"{case.function}.data"
        say(f"{case.function}: {case.warm} warm invocations, then as many under perf record")
        warm = measure.warm_run(setup, ports.api(case.function), case, world, itertools.count())
        handler = measure.summary(warm["handler_cpu"])
        summary = "(not recorded: BENCH_PERF_RECORD=0)"
        if setting("BENCH_PERF_RECORD", 1):
            measure.warm_run(setup, ports.api(case.function), case, world, itertools.count(),
                             perf_data=data)
            summary = subprocess.run(
                ["perf", "report", "--stdio", "--quiet", "--no-children", "--percent-limit",
                 "0.3", "--sort", "dso,symbol", "-g", "none", "-i", str(data)],
                capture_output=True, text=True, check=False, timeout=600).stdout
        text = perf_dir / f"{case.function}.txt"
        text.write_text(f"without perf: handler CPU p50 {handler['median']:.3f} ms, p99 "
                        f"{handler['p99']:.3f} ms; process CPU {warm['cpu_ms']:.3f} ms per "
                        f"invocation (user {warm['user_ms']:.3f})\n\n{summary}",
                        encoding="utf-8")
        say(f"{case.function}: handler CPU p50 {handler['median']:.2f} ms, process CPU "
            f"{warm['cpu_ms']:.2f} ms per invocation; profile {data}, summary {text}")
    return 0


def binary_paths(names):
    """Where each binary is: `cargo lambda build`'s bootstraps, or with BENCH_BINARIES a cargo
    profile's folder (`make profile` uses target/profiling)."""
    folder = os.environ.get("BENCH_BINARIES")
    if folder:
        return {name: (REPO / folder / name) for name in names}
    return {name: LAMBDA_DIR / name / "bootstrap" for name in names}


def secret_fetch(setup, ports, world, starts, secret_arn):
    """Init of one function with the signing key fetched from Secrets Manager at start."""
    case = next(c for c in bench_cases.CASES if c.function == SECRET_FETCH_FUNCTION)
    api = ports.api(case.function)
    cold = measure.cold_starts(setup, api, case, world, itertools.count(), starts,
                               {"SECRET_KEY": None, "SECRET_KEY_ARN": secret_arn})
    return {"function": case.function, "init": measure.summary(cold["init"])}


def clear_outbox(client, table, shards=4):
    """Deletes every outbox item (partitions `OUTBOX#0` to `OUTBOX#<shards - 1>`)."""
    cleared = 0
    for shard in range(shards):
        pages = client.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"OUTBOX#{shard}"}},
            ProjectionExpression="pk, sk")
        for page in pages:
            for item in page["Items"]:
                client.delete_item(TableName=table, Key=item)
                cleared += 1
    say(f"outbox: {cleared} items cleared, as the audit recorder would have")


def count_items(client, table):
    pages = client.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    return sum(page["Count"] for page in pages)


def sizes(functions):
    """Bytes of each stripped release bootstrap and of its zip."""
    import zipfile
    import io

    result = {}
    for function in functions:
        binary = LAMBDA_DIR / function / "bootstrap"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, binary.read_bytes())
        kind = subprocess.run(["file", "-b", str(binary)], capture_output=True, text=True,
                              check=False).stdout
        result[function] = {"binary": binary.stat().st_size, "zip": len(buffer.getvalue()),
                            "stripped": ", stripped" in kind, "file": kind.strip()}
    return result


def password_times():
    output = subprocess.run([str(LAMBDA_DIR / "password-timing" / "bootstrap"), "20"],
                            capture_output=True, text=True, check=True, timeout=300).stdout
    return json.loads(output)


def analytics(run):
    """Rerun scripts/bench_analytics.py on its own ports unless BENCH_ANALYTICS=0."""
    if os.environ.get("BENCH_ANALYTICS", "1") == "0":
        say("BENCH_ANALYTICS=0: reusing the figures in bench/ANALYTICS.md")
        return False
    say("analytics: running scripts/bench_analytics.py")
    env = {**os.environ, "BENCH_EMULATOR_PORT": "4751", "BENCH_API_PORT": "9491"}
    status = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_analytics.py")],
                            env=env, cwd=REPO, check=False).returncode
    if status != 0:
        run["analytics_failed"] = status
        say(f"analytics: scripts/bench_analytics.py failed ({status}); quoting its last figures")
        return False
    return True


def bench(tmp, foreground):
    starts = setting("BENCH_STARTS", 10)
    only = {f for f in os.environ.get("BENCH_ONLY", "").split(",") if f}
    cases = [c for c in bench_cases.CASES if not only or c.function in only]
    run = {"started": time.monotonic(), "date": dt.datetime.now(dt.timezone.utc),
           "starts": starts, "only": sorted(only), "cpu": bench_report.CpuShare()}
    emulator_port = setting("BENCH_EMULATOR_PORT", 4750)
    ports = Ports(setting("BENCH_PORT_BASE", 9400))
    stack.require_free_port(emulator_port, "BENCH_EMULATOR_PORT")
    env = stack.function_env(emulator_port)
    table, bus = env["TABLE_NAME"], env["EVENT_BUS_NAME"]
    key = secrets.token_urlsafe(36)
    base_env = {name: env[name] for name in (
        "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "TABLE_NAME", "EVENT_BUS_NAME")}
    base_env.update({"APP_ENV": "aws", "SECRET_KEY": key, "ALGORITHM": "HS256",
                     "ACCESS_TOKEN_EXPIRE_MINUTES": "60", "AWS_DEFAULT_REGION": "us-east-1"})
    perf_dir = os.environ.get("BENCH_PERF")
    measured = cases if perf_dir else [bench_cases.BARE, *cases]
    binaries = binary_paths({*WORLD_BINARIES, *(c.function for c in measured)})
    missing = [str(path) for path in binaries.values() if not path.exists()]
    if missing:
        raise stack.StackError(f"not built: {', '.join(missing)}; run `make bench`")
    (tmp / "logs").mkdir()
    setup = measure.Setup(binaries, base_env, tmp / "logs", tmp)
    ministack = proxy = None
    try:
        ministack = stack.start_ministack(emulator_port, tmp / "state", tmp / "ministack.log",
                                          False)
        stack.wait_for_emulator(ministack, emulator_port, tmp / "ministack.log")
        stack.sync_tables(stack.TEMPLATE, env)
        stack.sync_bus(stack.aws_client("events", env), bus)
        secret_arn = stack.aws_client("secretsmanager", env).create_secret(
            Name=SECRET_NAME, SecretString=key)["ARN"]
        proxy = CountingProxy(ports.next + 59, emulator_port)

        world = create_world(setup, ports, base_env, secrets.token_hex(3))
        world.clear_outbox = lambda: clear_outbox(stack.dynamodb_client(env), table)
        if perf_dir:
            return profile(setup, ports, cases, world, Path(perf_dir))
        run["bare"] = measure_function(setup, ports, bench_cases.BARE, world, starts, None)
        run["functions"] = [measure_function(setup, ports, case, world, starts, proxy)
                            for case in cases]
        if not only or SECRET_FETCH_FUNCTION in only:
            say(f"{SECRET_FETCH_FUNCTION}: {starts} cold starts reading the key from Secrets "
                "Manager")
            run["secret"] = secret_fetch(setup, ports, world, starts, secret_arn)
        say("emulator round trips")
        run["emulator"] = bench_emulator.round_trips(emulator_port, table, bus)
        instances, bookings = setting("BENCH_INSTANCES", 8), setting("BENCH_BOOKINGS", 2000)
        if not only or "book-appointment" in only:
            say(f"throughput: {bookings} bookings, {instances} instances of book-appointment")
            book = next(c for c in bench_cases.CASES if c.function == "book-appointment")
            run["throughput"] = measure.throughput(
                setup, ports.api("book-appointment"), book, world, instances, bookings, PAIRS,
                ministack.pid)
            run["throughput"]["raw_rate"] = bench_emulator.transaction_rate(
                emulator_port, table, bus, instances, bookings)
            say(f"throughput: {run['throughput']['rate']:.0f} bookings/s, "
                f"{len(run['throughput']['errors'])} errors; raw transactions "
                f"{run['throughput']['raw_rate']:.0f}/s")
        run["pairs"], run["booked"] = world.pairs, len(world.booked)
        run["items"] = count_items(stack.dynamodb_client(env), table)
        run["cpu_share"] = run["cpu"].others(ministack.pid)
    finally:
        foreground.shield()
        if proxy is not None:
            proxy.close()
        ports.close()
        if ministack is not None:
            stack.stop_ministack(ministack)
    run["sizes"] = sizes([bench_cases.BARE.function, *(c.function for c in cases)])
    say("password hashing")
    run["password"] = password_times()
    run["analytics_rerun"] = analytics(run) if not only else False
    run["total_s"] = time.monotonic() - run["started"]
    path = bench_report.write(run, Path(os.environ.get("BENCH_REPORT") or
                                        REPO / "bench" / "REPORT.md"))
    say(f"report: {path}; run took {run['total_s']:.0f} s")
    return 0


def main():
    stack.bypass_proxies_for_localhost()
    foreground = stack.Foreground()
    try:
        with tempfile.TemporaryDirectory(prefix=".data-bench-", dir=REPO) as tmp:
            return bench(Path(tmp), foreground)
    except (stack.StackError, measure.MeasureError, subprocess.CalledProcessError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    except stack.Interrupted as error:
        say(f"stopped by {error}")
        return 128 + error.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
