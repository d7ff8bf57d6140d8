"""A counting pass-through to the emulator, for `make bench`.

A function started with `AWS_ENDPOINT_URL` at this proxy reaches the emulator as before, and the
proxy counts its calls by operation (the `X-Amz-Target` header the SDK sends, such as
`DynamoDB_20120810.GetItem`). It is used only in a separate pass, never while times are taken.
Listens on 127.0.0.1 only; standard library only.
"""

import collections
import http.client
import threading

from runtime_api import QuickHandler, serve_in_background

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-connection", "content-length"}


class CountingProxy:
    def __init__(self, port, upstream_port):
        self.upstream_port = upstream_port
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.server = serve_in_background(port, type("Handler", (_Handler,), {"proxy": self}))

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


class _Handler(QuickHandler):
    proxy: CountingProxy

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

