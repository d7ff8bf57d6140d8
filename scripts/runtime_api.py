"""A minimal AWS Lambda runtime API for `make bench` (see scripts/bench.py).

It serves the four routes a Lambda runtime client uses: `GET /2018-06-01/runtime/invocation/next`
(waits for an event and hands it out with the usual headers), `POST .../invocation/{id}/response`,
`POST .../invocation/{id}/error` and `POST /2018-06-01/runtime/init/error`. Several function
processes may poll one endpoint; each event goes to the first that asks.

Every time is taken with `time.perf_counter()` in this process, so the benchmark can compare it
with the moment it started a function process. Listens on 127.0.0.1 only; standard library only.
"""

import http.server
import socket
import sys
import json
import queue
import select
import threading
import time
import uuid
from dataclasses import dataclass, field

PREFIX = "/2018-06-01/runtime"
DEADLINE_MS = 30_000
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


@dataclass
class Invocation:
    """One event on its way through a function, with the times it was handed out and answered."""

    payload: bytes
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    handed_out: float | None = None
    answered: float | None = None
    outcome: str | None = None  # "response" or "error"
    body: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def duration_ms(self):
        """Milliseconds from handing the event out to receiving the function's answer."""
        return (self.answered - self.handed_out) * 1000

    def json(self):
        return json.loads(self.body or b"null")


class RuntimeApi:
    """The endpoint, served by a background thread until `close()`."""

    def __init__(self, port, function_name="bench"):
        self.function_name = function_name
        self.pending = queue.Queue()
        self.in_flight = {}
        self.lock = threading.Lock()
        self.first_poll = None  # when the first `next` request arrived since `reset_first_poll`
        self.generation = 0  # raised when processes are stopped: their pending polls give up
        self.polled = threading.Event()
        self.init_errors = []
        self.server = serve_in_background(port, type("Handler", (_Handler,), {"api": self}))

    @property
    def address(self):
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def reset_first_poll(self):
        """Forget the last first poll: call it just before starting a process."""
        with self.lock:
            self.first_poll = None
            self.polled.clear()

    def forget_polls(self):
        """Make every `next` request waiting now give up (call it after stopping a process, so
        that its orphaned poll cannot take the next event)."""
        with self.lock:
            self.generation += 1

    def _next(self, generation, connection):
        """The next event for a poll of this generation from a process still connected, or
        None once the generation is over or the process is gone (a poll that was still in
        flight when its process was stopped must not take an event)."""
        while True:
            try:
                invocation = self.pending.get(timeout=0.05)
            except queue.Empty:
                if self.generation != generation or peer_gone(connection):
                    return None
                continue
            if self.generation != generation or peer_gone(connection):
                self.pending.put(invocation)
                return None
            return invocation

    def submit(self, payload):
        """Queue an event (a dict or bytes); answers its Invocation."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        invocation = Invocation(data)
        with self.lock:
            self.in_flight[invocation.request_id] = invocation
        self.pending.put(invocation)
        return invocation

    def invoke(self, payload, timeout_s=60):
        """Queue an event and wait for its answer."""
        invocation = self.submit(payload)
        if not invocation.done.wait(timeout_s):
            raise TimeoutError(f"no answer within {timeout_s} s")
        return invocation

    def _note_poll(self):
        now = time.perf_counter()
        with self.lock:
            if self.first_poll is None:
                self.first_poll = now
                self.polled.set()

    def _finish(self, request_id, outcome, body):
        now = time.perf_counter()
        with self.lock:
            invocation = self.in_flight.pop(request_id, None)
        if invocation is None:
            return False
        invocation.answered, invocation.outcome, invocation.body = now, outcome, body
        invocation.done.set()
        return True


class QuickHandler(http.server.BaseHTTPRequestHandler):
    """A keep-alive handler that sends each answer at once and logs nothing (the benchmark's
    servers: this runtime API and the counting proxy to the emulator)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the runtime client and the SDK expect
    wbufsize = 64 * 1024  # headers and body leave in one write (see `setup`)

    def setup(self):
        # Without this, a body written after its headers can wait for the peer's delayed ACK
        # (Nagle's algorithm): tens of milliseconds added to a sub-millisecond exchange.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, *_args):
        pass


def serve_in_background(port, handler):
    """A threading server on 127.0.0.1:`port` (0 for any free port), served by a daemon thread
    until its `shutdown()`; a client that went away is not reported as an error."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.handle_error = quiet_disconnects(server.handle_error)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _Handler(QuickHandler):
    api: RuntimeApi

    def do_GET(self):
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        if peer_gone(self.connection):  # sent by a process stopped since: not a first poll
            self.close_connection = True
            return
        self.api._note_poll()
        invocation = self.api._next(self.api.generation, self.connection)
        if invocation is None:  # the process this poll came from was stopped
            self.close_connection = True
            return
        deadline = int(time.time() * 1000) + DEADLINE_MS
        headers = {
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline),
            "Lambda-Runtime-Invoked-Function-Arn":
                FUNCTION_ARN.format(name=self.api.function_name),
            "Lambda-Runtime-Trace-Id":
                f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        invocation.handed_out = time.perf_counter()
        self._reply(200, invocation.payload, headers)

    def do_POST(self):
        body = self._read_body()
        parts = self.path.removeprefix(PREFIX).strip("/").split("/")
        if parts == ["init", "error"]:
            self.api.init_errors.append(body)
            self._reply(202, b'{"status":"OK"}')
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            known = self.api._finish(parts[1], parts[2], body)
            self._reply(202 if known else 400, b'{"status":"OK"}')
        else:
            self._reply(404, b'{"errorMessage":"not found"}')

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


def peer_gone(connection):
    """True when the other end has closed the connection (a stopped process): the socket reads
    as ended. A live runtime client sends nothing while it waits for its event."""
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def quiet_disconnects(handle_error):
    """The server's error hook, silent when a client went away (a stopped function process)."""
    def handle(request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        handle_error(request, client_address)
    return handle
