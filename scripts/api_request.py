"""Requests to the clinic API for the scripts beside this one (standard library only)."""

import json
import urllib.error
import urllib.parse
import urllib.request


def encode(body=None, form=False):
    """(data, content type) of a request body: JSON, or with `form` the OAuth2 form encoding;
    (None, None) when there is no body."""
    if body is None:
        return None, None
    if form:
        return urllib.parse.urlencode(body).encode(), "application/x-www-form-urlencoded"
    return json.dumps(body).encode(), "application/json"


def headers_for(body=None, token=None, form=False):
    """(data, headers) of a request with an optional body and bearer token."""
    data, content_type = encode(body, form)
    headers = {"accept": "application/json"}
    if content_type:
        headers["content-type"] = content_type
    if token:
        headers["authorization"] = f"Bearer {token}"
    return data, headers


def call(base, method, path, body=None, token=None, form=False, timeout=60):
    """One request to `base + path`; returns (status, parsed JSON body, or None)."""
    data, headers = headers_for(body, token, form)
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None
