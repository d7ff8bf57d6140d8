"""Writes bench/REPORT.md from the figures of scripts/bench.py, each beside its goal."""

import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import textwrap
import tomllib

import stack
from bench_measure import percentile, tree_cpu_seconds

MIB = 1024 * 1024
INIT_RATIO = 1.5  # init at most this many times the bare function's
FIRST_RATIO = 3.0  # first invocation at most this many times a warm one
OWN_MS = 1.0  # the function's own time per request, except where a password is hashed
PEAK_MIB, PEAK_HASHING_MIB = 20, 40
ZIP_MIB = 6
EMULATOR_BUSY = 0.8  # share of one core above which the emulator is the limit


class CpuShare:
    """The share of the machine's CPU time that other processes used during the run."""

    def __init__(self):
        self.started_busy, self.started_total = system_times()
        self.started_ours = own_cpu_seconds()

    def others(self, *running_children):
        busy, total = system_times()
        ours = own_cpu_seconds() + sum(tree_cpu_seconds(pid) for pid in running_children)
        tick = os.sysconf("SC_CLK_TCK")
        others = (busy - self.started_busy) / tick - (ours - self.started_ours)
        return max(0.0, others / ((total - self.started_total) / tick))


def system_times():
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def own_cpu_seconds():
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def row(*cells):
    """One Markdown table row."""
    return "| " + " | ".join(cells) + " |"


def met(ok):
    return "met" if ok else "**missed**"


def ms(value):
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def mib(value):
    return f"{value / MIB:.2f} MiB"


def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=stack.REPO).stdout.strip()
    except OSError:
        return "unknown"


def conditions(run):
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    profile = tomllib.loads((stack.REPO / "Cargo.toml").read_text())["profile"]["release"]
    profile_text = ", ".join(f"`{k} = {json.dumps(v)}`" for k, v in profile.items()
                             if k != "package")
    commit = command_output(["git", "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "status", "--porcelain", "--", "shared", "functions",
                            "bench/bare", "bench/password-timing", "Cargo.toml", "Cargo.lock"])
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}"
                         for name in ("cargo-lambda", "ministack", "boto3"))
    return f"""- date: {run["date"]:%Y-%m-%d %H:%M} UTC; the run took {run["total_s"]:.0f} s
- machine: {len(os.sched_getaffinity(0))} CPUs, {cpu}; Linux {platform.release()}; other
  processes used {run.get("cpu_share", 0):.0%} of the CPU time while it ran
- build: `cargo lambda build --release --x86-64` ({command_output(["rustc", "-V"])}) with the
  release profile of Cargo.toml: {profile_text}
- architecture: x86_64 only; arm64 cannot be built on this machine (its standard library is
  not installed), so no arm64 figure is given
- source: commit {commit}{"; with uncommitted changes to the build's sources" if dirty else ""}
- tools: {versions}; Python {platform.python_version()}
- data: the table held {run.get("items", 0):,} items at the end (the accounts, their profiles,
  {run.get("booked", 0):,} appointments, the audit trail and the outbox of the run); the
  analytics section has its own data
- every function ran as its release `bootstrap` in a fresh process with Lambda's environment
  (128 MB, JSON logs at INFO), against a runtime API served by the benchmark and the emulator
  (ministack, no persistence) on 127.0.0.1"""


def cold_table(run):
    bare = run["bare"]["init"]["median"]
    lines = ["| function | init, median (min–max) | × bare | first invocation, median | "
             "× warm p50 | goal: init ≤ 1.5 × bare | goal: first ≤ 3 × warm |",
             "|---|---:|---:|---:|---:|---|---|"]
    for result in [run["bare"], *run["functions"]]:
        init, first, warm = result["init"], result["first"], result["warm"]["median"]
        ratio, first_ratio = init["median"] / bare, first["median"] / warm
        reference = result["case"].function == "bare"
        name = result["case"].function + (" (reference)" if reference else "")
        lines.append(row(
            name, f"{ms(init['median'])} ({init['min']:.1f}–{init['max']:.1f})",
            f"{ratio:.2f}", ms(first["median"]), f"{first_ratio:.1f}",
            "—" if reference else met(ratio <= INIT_RATIO), met(first_ratio <= FIRST_RATIO)))
    return "\n".join(lines)


def emulator_estimate(calls, rtt):
    """Milliseconds one invocation waits for the emulator: each call at its operation's round
    trip (a read's for the operations not measured on their own)."""
    return sum(count * rtt.get(op, rtt["GetItem"]) for op, count in calls.items())


def calls_text(calls):
    if not calls:
        return "none"
    return ", ".join(f"{op} × {count:g}" for op, count in sorted(calls.items()))


def warm_table(run):
    rtt = run["emulator"]
    lines = ["| endpoint (function) | n | p50 | p99 | emulator calls per invocation | their "
             "round trips | wall p50 − round trips |", "|---|---:|---:|---:|---|---:|---:|"]
    for result in run["functions"]:
        case, warm = result["case"], result["warm"]
        waited = emulator_estimate(result["calls"], rtt)
        lines.append(f"| {endpoint_name(case)} | {warm['n']} | "
                     f"{ms(warm['median'])} | {ms(warm['p99'])} | {calls_text(result['calls'])} "
                     f"| {ms(waited)} | {ms(max(0.0, warm['median'] - waited))} |")
    return "\n".join(lines)


def own_time_table(run):
    lines = ["| endpoint (function) | handler CPU p50 | p99 | process CPU per invocation (of "
             "it, user) | goal: handler CPU p50 < 1 ms |", "|---|---:|---:|---:|---|"]
    for result in run["functions"]:
        case, handler = result["case"], result["handler_cpu"]
        goal = "— (hashes a password)" if case.hashes else met(handler["median"] < OWN_MS)
        lines.append(f"| {endpoint_name(case)} | {ms(handler['median'])} | "
                     f"{ms(handler['p99'])} | {ms(result['cpu_ms'])} ({ms(result['user_ms'])}) "
                     f"| {goal} |")
    return "\n".join(lines)


def endpoint_name(case):
    return f"{case.endpoint or '(event)'} ({case.function})"


def memory_table(run):
    lines = ["| function | peak resident memory (VmHWM) | goal |", "|---|---:|---|"]
    for result in [run["bare"], *run["functions"]]:
        limit = PEAK_HASHING_MIB if result["case"].hashes else PEAK_MIB
        peak = result["peak_kib"] * 1024
        goal = "reference" if result["case"].function == "bare" else \
            f"< {limit} MiB: {met(peak < limit * MIB)}"
        lines.append(f"| {result['case'].function} | {mib(peak)} | {goal} |")
    return "\n".join(lines)


def size_table(run):
    lines = ["| function | bootstrap (stripped) | zip (deflate) | goal: zip ≤ 6 MiB |",
             "|---|---:|---:|---|"]
    for function, size in run["sizes"].items():
        goal = "reference" if function == "bare" else met(size["zip"] <= ZIP_MIB * MIB)
        stripped = "" if size["stripped"] else " (not stripped!)"
        lines.append(f"| {function} | {mib(size['binary'])}{stripped} | {mib(size['zip'])} | "
                     f"{goal} |")
    return "\n".join(lines)


def throughput_section(run):
    t = run.get("throughput")
    if not t:
        return "Not measured in this run (BENCH_ONLY left book-appointment out)."
    cores = {key: value / t["wall_s"] for key, value in t["cpu"].items()}
    limited = cores["emulator"] >= EMULATOR_BUSY and cores["functions"] < cores["emulator"] / 2
    errors = len(t["errors"])
    sample = f" First: {t['errors'][0]}" if t["errors"] else ""
    n = t["instances"]
    book = next((r for r in run["functions"] if r["case"].function == "book-appointment"), None)
    calls_line = ""
    if book and book["calls"]:
        per_booking = sum(book["calls"].values())
        calls_line = (f"A booking makes {per_booking:g} emulator calls, so the load asked "
                      f"{t['rate'] * per_booking:.0f} calls/s of the emulator. ")
    table = "\n".join([
        row("bookings", "in flight", "wall time", "bookings/s", "errors", "emulator CPU",
            f"functions' CPU (all {n})", "benchmark's CPU",
            f"raw emulator transactions/s, {n} clients", "goal: errors = 0",
            "goal: limited by the emulator"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        row(f"{t['bookings']:,}", str(n), f"{t['wall_s']:.1f} s", f"{t['rate']:.0f}",
            str(errors), *(f"{cores[k]:.0%} of a core" for k in ("emulator", "functions", "bench")),
            f"{t['raw_rate']:.0f}", met(errors == 0), met(limited))])
    return f"""{t["bookings"]:,} bookings (`POST /appointments`, each a distinct free slot of one of
{len(run["pairs"])} doctor–patient pairs) queued at once and served by {t["instances"]} warm
processes of book-appointment polling one runtime API, so at most {t["instances"]} were in
flight: a bounded load that stops by itself.

{table}
{sample}
ministack serves every request on one Python interpreter, so one core is its ceiling. The goal
counts as met when the emulator was busy at least {EMULATOR_BUSY:.0%} of a core while all the
function processes together used less than half of what it used. The raw figure is two-item
`TransactWriteItems` calls sent straight to the emulator by {t["instances"]} clients of this
benchmark, the same width as the load (a booking makes more calls than that one; see the warm
table). {calls_line}Peak memory of a booking process under this load:
{mib(t["peak_kib"] * 1024)}."""


def password_section(run):
    p = run["password"]
    rows = "\n".join(
        row(name, ms(statistics.median(times)), ms(percentile(times, 0.9)), ms(min(times)),
            ms(max(times)))
        for name, times in (("hash", p["hash_ms"]), ("verify", p["verify_ms"])))
    return f"""argon2id at the product's parameters (`shared::password::PARAMS`):
{p["memory_kib"]:,} KiB
({p["memory_kib"] // 1024} MiB) of memory, {p["passes"]} passes, {p["lanes"]} lane; timed by
`bench/password-timing` (release), {len(p["hash_ms"])} rounds through the same async functions the
handlers call.

| operation | median | p90 | min | max |
|---|---:|---:|---:|---:|
{rows}"""


def analytics_section(run):
    text = (stack.REPO / "bench" / "ANALYTICS.md").read_text(encoding="utf-8")
    table = re.search(r"## Result\n\n(.*?)\n\n", text, re.S)
    date = re.search(r"- date: (.*)", text)
    build = re.search(r"- build: \*\*(\w+)\*\*", text)
    how = ("rerun as part of this benchmark" if run["analytics_rerun"]
           else "not rerun (BENCH_ANALYTICS=0 or BENCH_ONLY); the figures of its last run")
    if run.get("analytics_failed"):
        how = (f"**its rerun failed** (exit status {run['analytics_failed']}, see the output of "
               "`make bench`); the figures of its last run")
    return f"""`GET /analytics/{{h3_index}}` with 10 000 and with 100 000 appointments stored, by
`scripts/bench_analytics.py` ([ANALYTICS.md](ANALYTICS.md) has the method and the data); {how},
dated {date.group(1) if date else "unknown"}, {build.group(1) if build else "unknown"} build
through `cargo lambda watch`, timed on the client.

{table.group(1) if table else "(no figures found in bench/ANALYTICS.md)"}"""


def secret_line(run):
    secret = run.get("secret")
    if not secret:
        return ""
    plain = next(r for r in run["functions"] if r["case"].function == secret["function"])
    return (f"\nSigning key fetched at start: {secret['function']} started with only "
            f"`SECRET_KEY_ARN` (the key read from the emulator's Secrets Manager during init, as "
            f"deployed) took {ms(secret['init']['median'])} (median of {secret['init']['n']}; "
            f"{secret['init']['min']:.1f}–{secret['init']['max']:.1f}) against "
            f"{ms(plain['init']['median'])} with `SECRET_KEY` set: the fetch costs "
            f"{ms(secret['init']['median'] - plain['init']['median'])}, one emulator round trip "
            "and the Secrets Manager client. The table above uses `SECRET_KEY` for every "
            "function.\n")


def write(run, path):
    only = ""
    if run["only"]:
        only = f"\n**Partial run**: only {', '.join(run['only'])} (BENCH_ONLY).\n"
    rtt = run["emulator"]
    text = f"""# Performance: what a Lambda user pays for

Generated by `make bench` ([`scripts/bench.py`](../scripts/bench.py)); a measurement, not a
timed test. Rerunning it overwrites this file; commit it with each change that moves a figure.
Each figure sits beside its goal (from the performance issue); [NOTES.md](NOTES.md) tells what
was profiled and changed where a goal was missed.
{only}
## Conditions

{conditions(run)}

## Cold start

Init is the time from starting the process until it asks the runtime API for its first event;
the first invocation is from handing that event out to receiving the answer. Median of
{run["starts"]} fresh processes per function, each stopped after its first answer. `bare`
(`bench/bare`) only builds the same SDK clients (aws-config, DynamoDB, EventBridge) and answers
`{{}}`: the calibration, measured in the same run. Published for comparison: about 14 ms init
for a Rust function without the SDK and 112 ms with it, at 128 MB on Lambda (where the CPU is
throttled to a fraction of a core; here the process has a whole core).

{cold_table(run)}
{secret_line(run)}
## Warm handler time

One process per function, 20 unmeasured invocations, then n in a row; each timed at the runtime
API from handing the event out to receiving the answer (so it includes the runtime client's two
HTTP exchanges with this benchmark and the function's calls to the emulator). The emulator's
own round trips, measured with raw HTTP (median of 200 each): GetItem {ms(rtt["GetItem"])},
two-item TransactWriteItems {ms(rtt["TransactWriteItems"])}, PutEvents {ms(rtt["PutEvents"])}.
The calls per invocation were counted in a separate pass through a counting proxy; "their round
trips" prices them at those medians (other operations at GetItem's).

{warm_table(run)}

### The function's own time

**Handler CPU** is what each invocation logs as `cpu_ms` (`shared::telemetry::Meter`): the
process's CPU clock (user + system, every thread) read when the handler starts and when its
answer is ready. It is the function's own work (parsing, checking the token, serialising, the
SDK's request building, signing and response parsing, logging) and leaves out what it waits for
and the runtime client's exchanges with Lambda; p50 and p99 are over the same n invocations.
**Process CPU per invocation** is the process's user + system time from `/proc` over those n
invocations divided by n: everything the process did, the runtime client's two HTTP exchanges
per invocation included. Over loopback TCP the system part of both also holds kernel work for
the far end of each connection (the emulator's and the benchmark's). The goal is judged on the
handler CPU's median.

{own_time_table(run)}

## Throughput of booking

{throughput_section(run)}

## Peak memory

The process's resident high-water mark (VmHWM) after its warm run (init included); the limit is
{PEAK_HASHING_MIB} MiB for the functions that hash or verify a password (argon2 takes
19 MiB), {PEAK_MIB} MiB for the others.

{memory_table(run)}

## Binary size

`target/lambda/<function>/bootstrap` as built (stripped by the release profile) and the zip
Lambda would receive (one file, deflate, as Python's zipfile writes it).

{size_table(run)}

## Password hashing

{password_section(run)}

## Analytics latency

{analytics_section(run)}
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(wrap_prose(text), encoding="utf-8")
    return path


def wrap_prose(text, width=100):
    """Wraps the long lines of prose at `width` columns; table rows stay whole."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= width or line.startswith("|"):
            lines.append(line)
            continue
        indent = "  " if line.startswith("- ") else ""
        lines += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                               break_on_hyphens=False)
    return "\n".join(lines)
