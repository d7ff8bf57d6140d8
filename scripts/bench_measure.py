"""Function processes and what `make bench` measures on them: cold starts, warm invocations,
calls to the emulator, and booking throughput. See scripts/bench.py for the whole run.

A function is its release `bootstrap`, started the way Lambda starts it: a fresh process with the
Lambda environment, pointed at a runtime API that this benchmark serves (scripts/runtime_api.py).
"""

import json
import math
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass

from bench_cases import succeeded

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 30


class MeasureError(Exception):
    """A function did not start or did not answer with success."""


def lambda_env(base, function, runtime_address):
    """The environment Lambda gives a function (128 MB, JSON logs), plus `base`: the
    emulator's endpoint, static credentials, the table, the bus and the signing key."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "AWS_LAMBDA_RUNTIME_API": runtime_address,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        "_HANDLER": "bootstrap",
        **base,
    }


class Instance:
    """One running function process; its output goes to a log file."""

    def __init__(self, binary, env, log_path, cwd):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.started = time.perf_counter()
            self.process = subprocess.Popen([str(binary)], env=env, cwd=cwd,
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.process.pid

    def cpu_seconds(self):
        """User plus system CPU time of the process (all its threads) so far."""
        return process_cpu_seconds(self.pid)

    def peak_rss_kib(self):
        """The resident set's high-water mark (VmHWM) since the process started."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise MeasureError("no VmHWM in /proc status")

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        """End the process at once, as Lambda ends an instance."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""


def process_cpu_seconds(pid):
    """utime + stime of a process from /proc/<pid>/stat."""
    return sum(process_cpu_split(pid))


def process_cpu_split(pid):
    """(user, system) CPU seconds of a process, all its threads, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def tree_cpu_seconds(pid):
    """CPU time of a process and all its descendants that are still running."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += process_cpu_seconds(current)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as kids:
                    pending += [int(kid) for kid in kids.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@dataclass
class Setup:
    """Where and how functions run: binaries, environment, logs."""

    binaries: dict  # function name -> path of its release bootstrap
    base_env: dict
    log_dir: object
    cwd: object

    def start(self, function, api, extra_env=None):
        """Start a function; a None in `extra_env` removes that variable."""
        merged = {**self.base_env, **(extra_env or {})}
        env = lambda_env({k: v for k, v in merged.items() if v is not None}, function,
                         api.address)
        return Instance(self.binaries[function], env, self.log_dir / f"{function}.log", self.cwd)


def check(case, world, invocation, instance=None):
    """Stop unless the invocation succeeded; hand its answer to the case's `after`."""
    ok, answer = succeeded(case, invocation)
    if not ok:
        tail = instance.log_tail() if instance else ""
        raise MeasureError(f"{case.function} did not succeed: {answer}\n{tail}")
    if case.after is not None:
        case.after(world, invocation.json())
    return invocation


def invoke_next(api, case, world, counter, instance):
    """Invoke the case's next event; stop unless it succeeded."""
    try:
        invocation = api.invoke(case.event(world, next(counter)))
    except TimeoutError as error:
        raise MeasureError(f"{case.function}: {error} (alive: {instance.alive()})\n"
                           f"{instance.log_tail()}") from None
    return check(case, world, invocation, instance)


def wait_first_poll(api, instance, function):
    """Seconds from starting the process to its first `next` request."""
    if not api.polled.wait(START_TIMEOUT_S) or api.first_poll is None:
        raise MeasureError(f"{function} did not ask for an event within {START_TIMEOUT_S} s "
                           f"(alive: {instance.alive()})\n{instance.log_tail()}")
    if api.init_errors:
        raise MeasureError(f"{function} reported an init error: {api.init_errors[-1]!r}")
    if api.first_poll < instance.started:
        raise MeasureError(f"{function}: a poll from before the process started was counted")
    return api.first_poll - instance.started


def cold_starts(setup, api, case, world, counter, starts, extra_env=None):
    """`starts` fresh processes; each one's init time and first invocation, in milliseconds."""
    inits, firsts = [], []
    for _ in range(starts):
        api.reset_first_poll()
        instance = setup.start(case.function, api, extra_env)
        try:
            inits.append(wait_first_poll(api, instance, case.function) * 1000)
            invocation = invoke_next(api, case, world, counter, instance)
            firsts.append(invocation.duration_ms)
        finally:
            instance.stop()
            api.forget_polls()
    return {"init": inits, "first": firsts}


def warm_run(setup, api, case, world, counter, warm_up=20, perf_data=None):
    """One process, `warm_up` unmeasured invocations, then `case.warm` measured ones in a row.
    Answers their durations (ms), the process's CPU time per invocation (ms; also its user part
    alone), the CPU time each invocation logged, and its peak resident memory (KiB). With
    `perf_data` (a path), the measured invocations are recorded by `perf record` into it."""
    instance = setup.start(case.function, api)
    perf = None
    try:
        for _ in range(warm_up):
            invoke_next(api, case, world, counter, instance)
        if perf_data is not None:
            perf = start_perf(instance.pid, perf_data)
        user_before, system_before = process_cpu_split(instance.pid)
        log_offset = os.path.getsize(instance.log_path)
        durations = []
        for _ in range(case.warm):
            invocation = invoke_next(api, case, world, counter, instance)
            durations.append(invocation.duration_ms)
        user, system = process_cpu_split(instance.pid)
        if perf is not None:
            stop_perf(perf)
            perf = None
        user_ms = (user - user_before) * 1000 / case.warm
        system_ms = (system - system_before) * 1000 / case.warm
        handler_cpu = logged_cpu_ms(instance.log_path, log_offset) if case.logs_cost else []
        if case.logs_cost and len(handler_cpu) != case.warm:
            raise MeasureError(f"{case.function}: {len(handler_cpu)} logged CPU times for "
                               f"{case.warm} invocations\n{instance.log_tail()}")
        return {"durations": durations, "cpu_ms": user_ms + system_ms, "user_ms": user_ms,
                "handler_cpu": handler_cpu, "peak_kib": instance.peak_rss_kib()}
    finally:
        if perf is not None:
            stop_perf(perf)
        instance.stop()
        api.forget_polls()


def start_perf(pid, data_path):
    """`perf record` of one process, with call graphs from DWARF (release builds keep no frame
    pointers), until `stop_perf`."""
    perf = subprocess.Popen(["perf", "record", "--quiet", "-F", "1999", "--call-graph",
                             "dwarf,16384", "-p", str(pid), "-o", str(data_path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # perf attaches before the first measured invocation
    if perf.poll() is not None:
        raise MeasureError(f"perf record ended at once ({perf.returncode})")
    return perf


def stop_perf(perf):
    perf.send_signal(signal.SIGINT)
    try:
        perf.wait(timeout=60)
    except subprocess.TimeoutExpired:
        perf.kill()
        perf.wait()


def logged_cpu_ms(log_path, offset):
    """The CPU time each invocation logged (`cpu_ms` of its one line per request or event, see
    shared::telemetry::Meter), in the log from byte `offset` on."""
    with open(log_path, "rb") as log:
        log.seek(offset)
        lines = log.read().decode("utf-8", errors="replace").splitlines()
    figures = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        fields = record.get("fields", record) if isinstance(record, dict) else {}
        if isinstance(fields, dict) and isinstance(fields.get("cpu_ms"), (int, float)):
            figures.append(float(fields["cpu_ms"]))
    return figures


def count_calls(setup, api, case, world, counter, proxy, invocations=5):
    """The emulator calls of one warm invocation, by operation (a separate process whose AWS
    endpoint is the counting proxy; its first invocation is left out)."""
    instance = setup.start(case.function, api, {"AWS_ENDPOINT_URL": proxy.url})
    try:
        invoke_next(api, case, world, counter, instance)
        proxy.take_counts()
        for _ in range(invocations):
            invoke_next(api, case, world, counter, instance)
        counts = proxy.take_counts()
    finally:
        instance.stop()
        api.forget_polls()
    return {operation: count / invocations for operation, count in counts.items()}


def throughput(setup, api, case, world, instances, bookings, pairs, emulator_pid):
    """`bookings` bookings queued at once and served by `instances` processes (so at most that
    many in flight), spread over the world's pairs. Answers the rate, the errors and the CPU
    seconds the emulator, the functions and this benchmark used meanwhile."""
    from bench_cases import http_event

    started = [setup.start(case.function, api) for _ in range(instances)]
    try:
        for instance in started:  # every instance initialised and warm before the clock starts
            check(case, world, api.invoke(warm_booking(world, http_event, 0)), instance)
        events = [warm_booking(world, http_event, i % pairs) for i in range(bookings)]
        cpu = cpu_snapshot(emulator_pid, started)
        wall = time.perf_counter()
        pending = [api.submit(event) for event in events]
        errors = []
        for invocation in pending:
            if not invocation.done.wait(120):
                errors.append("no answer within 120 s")
                continue
            ok, answer = succeeded(case, invocation)
            if not ok:
                errors.append(answer)
        wall = time.perf_counter() - wall
        used = {key: value - cpu[key] for key, value in cpu_snapshot(emulator_pid, started).items()}
        return {"bookings": bookings, "instances": instances, "wall_s": wall,
                "rate": bookings / wall, "errors": errors, "cpu": used,
                "peak_kib": max(instance.peak_rss_kib() for instance in started)}
    finally:
        for instance in started:
            instance.stop()
        api.forget_polls()


def warm_booking(world, http_event, pair):
    return http_event("POST /appointments", "/appointments", token=world.pairs[pair][1].token,
                      body=world.booking(pair))


def cpu_snapshot(emulator_pid, instances):
    times = os.times()
    return {"emulator": tree_cpu_seconds(emulator_pid),
            "functions": sum(instance.cpu_seconds() for instance in instances),
            "bench": times.user + times.system}


def percentile(values, share):
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(values):
    return {"median": statistics.median(values), "p99": percentile(values, 0.99),
            "min": min(values), "max": max(values), "n": len(values)}
