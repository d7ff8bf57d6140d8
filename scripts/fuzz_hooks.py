"""Schemathesis hooks and checks for `scripts/fuzz.py` (loaded through SCHEMATHESIS_HOOKS).

cargo-lambda's local HTTP front reads a body sent as text (`application/json`, `text/*`) into a
string before the function sees it, and answers a body that is not UTF-8 with a 500 of its own.
API Gateway hands such a body to the function base64-encoded instead, where it gets a 4xx (the
unit tests of `shared::http` cover that), so those cases test the local front, not the product,
and are not generated.
"""

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance


@schemathesis.hook
def filter_body(_ctx, body):
    """Keep every body but raw bytes that are not UTF-8."""
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def local_front_fault(case, response):
    """A GET that cargo-lambda's local HTTP front failed itself: a problem+json 500 whose type is
    https://httpstatuses.com/500. The functions never answer that way (their errors are
    `{"detail": ...}`, and a panic comes back as the runtime's `errorType` body) and API Gateway
    has no such fault; the e2e helpers repeat such a GET (tests/src/lib.rs, `send_get`)."""
    if response.status_code != 500 or case.method.upper() != "GET":
        return False
    try:
        return response.json().get("type") == "https://httpstatuses.com/500"
    except (ValueError, AttributeError):
        return False


def skipped(case, response):
    """Whether to leave a response unjudged: a local front fault, which is reported."""
    if not local_front_fault(case, response):
        return False
    print(f"fuzz: the local HTTP front failed {case.method} {case.formatted_path} itself; "
          "not judged", flush=True)
    return True


@schemathesis.check
def no_server_error(ctx, response, case):
    """No 5xx (schemathesis's not_a_server_error, minus the local front's own faults)."""
    return None if skipped(case, response) else not_a_server_error(ctx, response, case)


@schemathesis.check
def documented_status(ctx, response, case):
    """A documented status (status_code_conformance, minus the local front's own faults)."""
    return None if skipped(case, response) else status_code_conformance(ctx, response, case)
