"""A counting pass-through to the emulator, for `make bench`.

A function started with `AWS_ENDPOINT_URL` at this proxy reaches the emulator as before, and the
proxy counts its calls by operation (the `X-Amz-Target` header the SDK sends, such as
`DynamoDB_20120810.GetItem`). It is used only in a separate pass, never while times are taken.
Listens on 127.0.0.1 only; standard library only.
"""

import collections
import http.client
import http.server
import socket
import sys
import threading

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection", "content-length"}


class CountingProxy:
    def __init__(self, port, upstream_port):
        self.upstream_port = upstream_port
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"proxy": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self.server.handle_error = quiet_disconnects(self.server.handle_error)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def take_counts(self):
        """The calls counted since the last call, by operation; starts counting afresh."""
        with self.lock:
            counts, self.counts = self.counts, collections.Counter()
        return counts

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body leave in one write (see `setup`)
    proxy: CountingProxy

    def setup(self):
        # Without this, a body written after its headers can wait for the peer's delayed ACK
        # (Nagle's algorithm): tens of milliseconds added to a sub-millisecond exchange.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, *_args):
        pass

    def do_GET(self):
        self._forward()

    def do_POST(self):
        self._forward()

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target") or f"{self.command} {self.path}"
        with self.proxy.lock:
            self.proxy.counts[target.split(".")[-1] if "." in target else target] += 1
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.proxy.upstream_port, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            upstream.close()


def quiet_disconnects(handle_error):
    """The server's error hook, silent when a client went away (a stopped function process)."""
    def handle(request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        handle_error(request, client_address)
    return handle
