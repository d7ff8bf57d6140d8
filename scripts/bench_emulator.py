"""The emulator's own round trip, measured with raw HTTP (no SDK on either side), for
`make bench`: what a function waits for on each call, and how many booking transactions the
emulator takes per second at a given concurrency. Standard library only.
"""

import concurrent.futures
import http.client
import json
import statistics
import time
import uuid

TARGETS = {
    "GetItem": ("DynamoDB_20120810.GetItem", "dynamodb", "application/x-amz-json-1.0"),
    "TransactWriteItems":
        ("DynamoDB_20120810.TransactWriteItems", "dynamodb", "application/x-amz-json-1.0"),
    "PutEvents": ("AWSEvents.PutEvents", "events", "application/x-amz-json-1.1"),
}


class Emulator:
    """One keep-alive connection to the emulator."""

    def __init__(self, port, table, bus):
        self.port, self.table, self.bus = port, table, bus
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, operation, body):
        target, service, content_type = TARGETS[operation]
        headers = {
            "X-Amz-Target": target,
            "Content-Type": content_type,
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/"
                             f"{service}/aws4_request, SignedHeaders=host, Signature=0",
        }
        self.conn.request("POST", "/", body=json.dumps(body), headers=headers)
        answer = self.conn.getresponse()
        data = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{operation}: {answer.status} {data[:200]!r}")
        return json.loads(data or b"{}")

    def close(self):
        self.conn.close()

    # The calls: shaped like the product's (a point read, a two-item conditional booking
    # transaction, one event).

    def get_item(self, _i):
        return self.call("GetItem", {"TableName": self.table,
                                     "Key": {"pk": {"S": "BENCH#rtt"}, "sk": {"S": "ITEM"}}})

    def transact(self, _i):
        key = uuid.uuid4().hex
        put = [{"Put": {"TableName": self.table,
                        "Item": {"pk": {"S": f"BENCH#{key}"}, "sk": {"S": part},
                                 "note": {"S": "bench"}},
                        "ConditionExpression": "attribute_not_exists(pk)"}}
               for part in ("A", "B")]
        return self.call("TransactWriteItems", {"TransactItems": put})

    def put_events(self, _i):
        entry = {"Source": "bench", "DetailType": "BenchRoundTrip", "EventBusName": self.bus,
                 "Detail": json.dumps({"bench": True})}
        return self.call("PutEvents", {"Entries": [entry]})


def round_trips(port, table, bus, samples=200):
    """Median milliseconds of each operation, `samples` sequential calls each after 20 unmeasured
    ones."""
    emulator = Emulator(port, table, bus)
    try:
        results = {}
        for name, call in (("GetItem", emulator.get_item),
                           ("TransactWriteItems", emulator.transact),
                           ("PutEvents", emulator.put_events)):
            for i in range(20):
                call(i)
            times = []
            for i in range(samples):
                started = time.perf_counter()
                call(i)
                times.append((time.perf_counter() - started) * 1000)
            results[name] = statistics.median(times)
        return results
    finally:
        emulator.close()


def transaction_rate(port, table, bus, concurrency, total):
    """Two-item transactions per second with `concurrency` clients in parallel."""
    def worker(count):
        emulator = Emulator(port, table, bus)
        try:
            for i in range(count):
                emulator.transact(i)
        finally:
            emulator.close()

    shares = [total // concurrency] * concurrency
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker, share) for share in shares]:
            future.result()
    return sum(shares) / (time.perf_counter() - started)
