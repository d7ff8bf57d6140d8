"""Schemathesis hooks for `scripts/fuzz.py` (loaded through SCHEMATHESIS_HOOKS).

cargo-lambda's local HTTP front reads a body sent as text (`application/json`, `text/*`) into a
string before the function sees it, and answers a body that is not UTF-8 with a 500 of its own.
API Gateway hands such a body to the function base64-encoded instead, where it gets a 4xx (the
unit tests of `shared::http` cover that), so those cases test the local front, not the product,
and are not generated.
"""

import schemathesis


@schemathesis.hook
def filter_body(_ctx, body):
    """Keep every body but raw bytes that are not UTF-8."""
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
