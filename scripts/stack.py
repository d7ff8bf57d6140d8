"""Local stack for the clinic backend: emulator, tables, routes, dev server and test run.

Run with the project venv: `.venv/bin/python scripts/stack.py COMMAND` (the Makefile does).

  sync-tables   create the DynamoDB tables that template.yaml declares in the emulator, or bring
                saved ones in line (add missing indexes; recreate, with a warning, on a key change)
  sync-events   create the event buses and rules that template.yaml declares, each function
                target delivered through an API destination to cargo-lambda's Invoke API on
                API_PORT; bring saved ones in line (undeclared rules and targets removed)
  check-routes  fail when template.yaml's HttpApi routes and Cargo.toml's watch router differ
                (the router's OPTIONS entries, local CORS preflights, are checked apart)
  dev           ministack + `cargo lambda watch` in the foreground (`make dev`)
  test          a throwaway stack on free ports, then `cargo test --workspace` (`make test`)
  admin         create an Admin account against the running `make dev` stack (`make admin`)

Every server listens on 127.0.0.1 only, and every AWS call goes to the local emulator.
Settings come from the environment: API_PORT (9000), EMULATOR_PORT (4566), DATA_DIR (.data),
TABLE_NAME and EVENT_BUS_NAME (clinic), AWS_LAMBDA_LOG_LEVEL (INFO); the functions' own settings
(CORS_ALLOWED_ORIGINS, LOGIN_*, ...) pass through. `test` picks free ports unless TEST_API_PORT
and TEST_EMULATOR_PORT name them. Internal switches: SKIP_BUILD=1 skips the cargo build step;
READY_PATH (/openapi.json) is the route `test` waits for.
Uses only the standard library, boto3 and PyYAML.
"""

import argparse
import ctypes
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import yaml

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
TEMPLATE = REPO / "template.yaml"
MANIFEST = REPO / "Cargo.toml"
LOCALHOST = "127.0.0.1"
DEFAULT_TABLE_NAME = "clinic"
EMULATOR_WAIT_S = 60
API_WAIT_S = 300
WATCH_STOP_S = 15
DEV_CONCURRENCY = 4  # instances per function under `make dev` (`make test` runs 16)
# Instances per function under `make test`: enough that the race tests really race.
TEST_CONCURRENCY = 16
EMULATOR_STOP_S = 30
# What the functions of the `make test` stack are given besides the emulator's settings: a short
# sign-in window, so the throttle test can wait for its end; a per-address limit that the whole
# suite (every request comes from 127.0.0.1) never reaches; one allowed web origin for the CORS
# tests.
TEST_FUNCTION_SETTINGS = {
    "LOGIN_MAX_FAILURES": "5",
    "LOGIN_MAX_FAILURES_PER_ADDRESS": "1000000",
    "LOGIN_WINDOW_SECONDS": "5",
    "CORS_ALLOWED_ORIGINS": "http://localhost:5173",
}


class StackError(Exception):
    """A failure with a message meant for the user; the command prints it and exits 1."""


class Interrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived while no child was in the foreground."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message):
    """Print one progress line."""
    print(f"stack: {message}", flush=True)


def warn(message):
    """Print one warning line to stderr."""
    print(f"stack: WARNING: {message}", file=sys.stderr, flush=True)


# --- template.yaml -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CfnTag:
    """A CloudFormation short-form intrinsic such as `!Ref ClinicTable`, kept unevaluated."""

    name: str
    value: object


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that also accepts CloudFormation's `!Tag` short forms."""


def _construct_cfn_tag(loader, tag_suffix, node):
    """Build a CfnTag from `!Name value`, whatever the kind of YAML node."""
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return CfnTag(tag_suffix, value)


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path):
    """Parse a SAM/CloudFormation template."""
    with open(path, encoding="utf-8") as file:
        return yaml.load(file, Loader=CfnLoader)


def resources_of_type(template, resource_type):
    """Map logical id to resource for every resource of one type."""
    resources = template.get("Resources") or {}
    return {lid: res for lid, res in resources.items() if res.get("Type") == resource_type}


def global_env_var_for(template, logical_id):
    """The Globals function env var whose value is `!Ref logical_id`, or None."""
    function = (template.get("Globals") or {}).get("Function") or {}
    variables = (function.get("Environment") or {}).get("Variables") or {}
    for name, value in variables.items():
        if value in (CfnTag("Ref", logical_id), {"Ref": logical_id}):
            return name
    return None


def require_literal(value, where):
    """Fail when a template value that local set-up needs is an unevaluated intrinsic."""
    if isinstance(value, CfnTag):
        raise StackError(f"{where} uses !{value.name}; the local stack needs literal values "
                         "there")
    if isinstance(value, dict):
        for key, item in value.items():
            require_literal(item, f"{where}.{key}")
    if isinstance(value, list):
        for index, item in enumerate(value):
            require_literal(item, f"{where}[{index}]")
    return value


# --- desired tables ------------------------------------------------------------------------------


@dataclass
class TableSpec:
    """What one template table should look like locally."""

    logical_id: str
    create_args: dict  # CreateTable parameters
    ttl_attribute: str | None  # attribute name when TTL is enabled in the template


def local_table_name(template, logical_id, env):
    """The local table name: the value of the env var that the Globals `!Ref` this table with."""
    var = global_env_var_for(template, logical_id)
    if var is None:
        warn(f"no Globals env var is `!Ref {logical_id}`; naming the local table {logical_id}")
        return logical_id
    return env.get(var) or DEFAULT_TABLE_NAME


def index_args(index):
    """CreateTable parameters of one declared secondary index (throughput dropped)."""
    projection = {"ProjectionType": index["Projection"].get("ProjectionType", "ALL")}
    if index["Projection"].get("NonKeyAttributes"):
        projection["NonKeyAttributes"] = index["Projection"]["NonKeyAttributes"]
    return {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"],
            "Projection": projection}


def table_spec(template, logical_id, resource, env):
    """Build the local TableSpec of one AWS::DynamoDB::Table resource."""
    props = require_literal(resource.get("Properties") or {}, f"{logical_id}.Properties")
    args = {
        "TableName": local_table_name(template, logical_id, env),
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(kind):
            args[kind] = [index_args(index) for index in props[kind]]
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled") else None
    return TableSpec(logical_id, args, ttl_attribute)


def check_attributes(spec):
    """Fail early, before any table is touched, when key attributes and definitions disagree."""
    args = spec.create_args
    defined = {a["AttributeName"] for a in args["AttributeDefinitions"]}
    indexes = args.get("GlobalSecondaryIndexes", []) + args.get("LocalSecondaryIndexes", [])
    used = {k["AttributeName"] for schema in [args["KeySchema"]] + [i["KeySchema"] for i in indexes]
            for k in schema}
    if defined != used:
        raise StackError(f"{spec.logical_id}: AttributeDefinitions must list exactly the key "
                         f"attributes; undefined: {sorted(used - defined)}, "
                         f"unused: {sorted(defined - used)}")


def template_tables(template_path, env):
    """TableSpecs for every AWS::DynamoDB::Table in the template."""
    template = load_template(template_path)
    tables = resources_of_type(template, "AWS::DynamoDB::Table")
    specs = [table_spec(template, lid, res, env) for lid, res in tables.items()]
    for spec in specs:
        check_attributes(spec)
    return specs


# --- comparing with the emulator -----------------------------------------------------------------


def key_signature(key_schema, attribute_definitions):
    """A comparable, readable key schema: "pk S HASH, sk S RANGE"."""
    types = {a["AttributeName"]: a["AttributeType"] for a in attribute_definitions}
    parts = sorted((k["KeyType"], k["AttributeName"]) for k in key_schema)
    return ", ".join(f"{name} {types.get(name, '?')} {key_type}" for key_type, name in parts)


def projection_signature(projection):
    """A comparable, readable projection: "ALL", or "INCLUDE [a, b]"."""
    attributes = sorted(projection.get("NonKeyAttributes") or ())
    kind = projection.get("ProjectionType", "ALL")
    return f"{kind} [{', '.join(attributes)}]" if attributes else kind


def index_signatures(table, kind):
    """Map index name to "keys; projection" for one kind of index."""
    attrs = table["AttributeDefinitions"]
    return {i["IndexName"]: f"{key_signature(i['KeySchema'], attrs)}; "
                            f"{projection_signature(i['Projection'])}"
            for i in table.get(kind) or []}


def recreate_reasons(want, have):
    """Why the existing table cannot be brought in line without recreating it."""
    reasons = []
    want_key = key_signature(want["KeySchema"], want["AttributeDefinitions"])
    have_key = key_signature(have["KeySchema"], have["AttributeDefinitions"])
    if want_key != have_key:
        reasons.append(f"primary key is ({have_key}), template.yaml says ({want_key})")
    if index_signatures(want, "LocalSecondaryIndexes") != index_signatures(
            have, "LocalSecondaryIndexes"):
        reasons.append("local secondary indexes differ (they cannot be changed in place)")
    have_gsis = index_signatures(have, "GlobalSecondaryIndexes")
    for name, signature in index_signatures(want, "GlobalSecondaryIndexes").items():
        if name in have_gsis and have_gsis[name] != signature:
            reasons.append(f"index {name} is ({have_gsis[name]}), "
                           f"template.yaml says ({signature})")
    return reasons


# --- applying changes ----------------------------------------------------------------------------


def dynamodb_client(env):
    """A DynamoDB client for the endpoint, region and credentials that the functions use."""
    return aws_client("dynamodb", env)


def aws_client(service, env):
    """A client of one service at env's AWS_ENDPOINT_URL, with the functions' region and
    credentials (static test ones unless env sets others)."""
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env.get("AWS_REGION") or "us-east-1",
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or "test",
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or "test",
        config=botocore.config.Config(connect_timeout=5, read_timeout=30,
                                      retries={"max_attempts": 2}),
    )


def describe_table(client, name):
    """The table's description, or None when it does not exist."""
    try:
        return client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None


def wait_until(check, what, timeout_s=60):
    """Poll check() until it returns true; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


def table_is_active(client, name):
    """True when the table and all its global indexes are ACTIVE."""
    table = describe_table(client, name)
    if table is None or table["TableStatus"] != "ACTIVE":
        return False
    return all(i.get("IndexStatus", "ACTIVE") == "ACTIVE"
               for i in table.get("GlobalSecondaryIndexes") or [])


def create_table(client, spec):
    """Create the table as the template declares it."""
    name = spec.create_args["TableName"]
    client.create_table(**spec.create_args)
    wait_until(lambda: table_is_active(client, name), f"table {name} to become active")
    gsis = len(spec.create_args.get("GlobalSecondaryIndexes", []))
    say(f"table {name}: created ({gsis} global secondary indexes)")


def recreate_table(client, spec, reasons):
    """Delete and create the table again, after a loud warning."""
    name = spec.create_args["TableName"]
    for reason in reasons:
        warn(f"table {name}: {reason}")
    warn(f"table {name}: deleting and recreating it; its local items are lost")
    client.delete_table(TableName=name)
    wait_until(lambda: describe_table(client, name) is None, f"table {name} to be deleted")
    create_table(client, spec)


def add_missing_indexes(client, spec, have):
    """Create each declared global index that the table lacks (one per UpdateTable call)."""
    name = spec.create_args["TableName"]
    existing = {i["IndexName"] for i in have.get("GlobalSecondaryIndexes") or []}
    added = 0
    for index in spec.create_args.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in existing:
            continue
        client.update_table(TableName=name,
                            AttributeDefinitions=spec.create_args["AttributeDefinitions"],
                            GlobalSecondaryIndexUpdates=[{"Create": index}])
        wait_until(lambda: table_is_active(client, name), f"index {index['IndexName']}")
        say(f"table {name}: added global secondary index {index['IndexName']}")
        added += 1
    return added


def delete_extra_indexes(client, spec, have):
    """Delete global indexes that the template no longer declares."""
    name = spec.create_args["TableName"]
    wanted = {i["IndexName"] for i in spec.create_args.get("GlobalSecondaryIndexes", [])}
    removed = 0
    for index in have.get("GlobalSecondaryIndexes") or []:
        if index["IndexName"] in wanted:
            continue
        client.update_table(TableName=name, GlobalSecondaryIndexUpdates=[
            {"Delete": {"IndexName": index["IndexName"]}}])
        wait_until(lambda: table_is_active(client, name), f"removal of {index['IndexName']}")
        say(f"table {name}: removed global secondary index {index['IndexName']} "
            "(not in the template)")
        removed += 1
    return removed


def sync_ttl(client, spec):
    """Make the table's TTL setting match the template; True when something changed."""
    name = spec.create_args["TableName"]
    current = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    enabled = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    attribute = current.get("AttributeName") if enabled else None
    if attribute == spec.ttl_attribute:
        return False
    if attribute:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": attribute, "Enabled": False})
        say(f"table {name}: TTL on {attribute} disabled")
    if spec.ttl_attribute:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "AttributeName": spec.ttl_attribute, "Enabled": True})
        say(f"table {name}: TTL on {spec.ttl_attribute} enabled")
    return True


def sync_table(client, spec):
    """Create the table, or bring an existing one in line with the template."""
    name = spec.create_args["TableName"]
    have = describe_table(client, name)
    changed = 0
    if have is None:
        create_table(client, spec)
        changed = 1
    elif reasons := recreate_reasons(spec.create_args, have):
        recreate_table(client, spec, reasons)
        changed = 1
    else:
        changed += add_missing_indexes(client, spec, have)
        changed += delete_extra_indexes(client, spec, have)
    ttl_changed = sync_ttl(client, spec)
    if not (changed or ttl_changed):
        say(f"table {name}: up to date")


def sync_tables(template_path, env):
    """Create or update every template table at env's AWS_ENDPOINT_URL, named from env."""
    endpoint = env["AWS_ENDPOINT_URL"]
    client = dynamodb_client(env)
    specs = template_tables(template_path, env)
    if not specs:
        say(f"no AWS::DynamoDB::Table in {template_path}")
    try:
        for spec in specs:
            sync_table(client, spec)
    except botocore.exceptions.EndpointConnectionError as error:
        raise StackError(f"the emulator does not answer at {endpoint}: {error}") from error
    except botocore.exceptions.ClientError as error:
        raise StackError(f"the emulator refused a table change: {error}") from error


# --- events --------------------------------------------------------------------------------------
#
# The template says who consumes what: each AWS::Events::Rule on a template bus, with targets
# `!GetAtt <Function>.Arn`. Locally a function is served by `cargo lambda watch`, so each such
# target becomes an EventBridge API destination that POSTs the event to watch's Invoke API; the
# function then receives the same EventBridge envelope that Lambda would hand it.

DEFAULT_BUS_NAME = "clinic"
DEFAULT_API_PORT = 9000
# One shared connection for every local destination. AWS requires a connection with some
# authorization (ministack does not insist); the Invoke API ignores the header, so the key is a
# dummy.
CONNECTION_NAME = "local-cargo-lambda"
CONNECTION_AUTH = {"ApiKeyAuthParameters": {"ApiKeyName": "x-local-events",
                                            "ApiKeyValue": "local"}}
# Destinations are named after the function they invoke; sync-events owns every destination
# with this prefix and deletes the ones no declared target uses any more.
DESTINATION_PREFIX = "local-invoke-"
# AWS wants a role on an API-destination target; ministack neither requires nor assumes it.
LOCAL_TARGET_ROLE_ARN = "arn:aws:iam::000000000000:role/local-events-invoke"
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# Target fields that are copied as they are. RetryPolicy and DeadLetterConfig are left out on
# purpose: ministack stores them but never retries or dead-letters an API-destination delivery
# (it drops a failed one with a log line), and the dead-letter queue is not created locally, so
# copying them would only suggest a safety net that is not there.
TARGET_INPUT_FIELDS = ("Input", "InputPath", "InputTransformer")


@dataclass
class TargetSpec:
    """One rule target, pointed at a function's Invoke API."""

    target_id: str
    binary: str  # the function's cargo binary (Metadata.BuildProperties.Binary)
    fields: dict  # Input, InputPath or InputTransformer, when the template sets them


@dataclass
class RuleSpec:
    """What one template rule should look like locally."""

    logical_id: str
    put_args: dict  # PutRule parameters (Name is the logical id)
    targets: list


def local_bus_name(template, logical_id, env):
    """The local bus name: the value of the env var that the Globals `!Ref` this bus with."""
    var = global_env_var_for(template, logical_id)
    if var is None:
        warn(f"no Globals env var is `!Ref {logical_id}`; naming the local event bus {logical_id}")
        return logical_id
    return env.get(var) or DEFAULT_BUS_NAME


def ref_target(value):
    """The logical id that `!Ref X` (or `{"Ref": X}`) names, else None."""
    if isinstance(value, CfnTag) and value.name == "Ref":
        return value.value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return value["Ref"]
    return None


def getatt_target(value):
    """(logical id, attribute) of `!GetAtt X.Attr`, `!GetAtt [X, Attr]` or `Fn::GetAtt`."""
    if isinstance(value, CfnTag) and value.name == "GetAtt":
        value = value.value
    elif isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        value = value["Fn::GetAtt"]
    else:
        return None
    if isinstance(value, str) and "." in value:
        return tuple(value.split(".", 1))
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def function_binary(template, logical_id, where):
    """The cargo binary of a template function (Metadata.BuildProperties.Binary)."""
    function = (template.get("Resources") or {}).get(logical_id) or {}
    binary = ((function.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
    if not isinstance(binary, str) or not binary:
        raise StackError(f"{where}: {logical_id} has no Metadata.BuildProperties.Binary, so no "
                         "local function can be found for it")
    return binary


def rule_targets(template, logical_id, props):
    """TargetSpecs of one rule; targets that are not template functions are skipped, loudly."""
    functions = {lid for kind in FUNCTION_TYPES for lid in resources_of_type(template, kind)}
    specs = []
    for index, target in enumerate(props.get("Targets") or []):
        where = f"{logical_id}.Targets[{index}]"
        target_id = require_literal(target.get("Id"), f"{where}.Id")
        pointee = getatt_target(target.get("Arn"))
        if pointee is None or pointee[1] != "Arn" or pointee[0] not in functions:
            warn(f"rule {logical_id}: target {target_id} is not `!GetAtt <Function>.Arn` of a "
                 "template function; it gets no local delivery")
            continue
        fields = {name: require_literal(target[name], f"{where}.{name}")
                  for name in TARGET_INPUT_FIELDS if name in target}
        specs.append(TargetSpec(target_id, function_binary(template, pointee[0], where), fields))
    return specs


def event_pattern_json(pattern, where):
    """The rule's EventPattern as a JSON string (the template may give a mapping or a string)."""
    if isinstance(pattern, str):
        try:
            json.loads(pattern)
        except ValueError as error:
            raise StackError(f"{where} is not JSON: {error}") from error
        return pattern
    return json.dumps(require_literal(pattern, where), separators=(",", ":"), sort_keys=True)


def rule_spec(template, logical_id, resource, buses):
    """The local RuleSpec of one AWS::Events::Rule, or None when it is not on a template bus."""
    props = resource.get("Properties") or {}
    bus_ref = ref_target(props.get("EventBusName"))
    if bus_ref not in buses:
        warn(f"rule {logical_id}: EventBusName is not `!Ref` of a template event bus; "
             "not created locally")
        return None
    # State and Description are always sent: PutRule keeps a saved rule's value of an omitted
    # one, so a description removed from the template would otherwise stay.
    args = {"Name": logical_id, "EventBusName": buses[bus_ref],
            "State": require_literal(props.get("State", "ENABLED"), f"{logical_id}.State"),
            "Description": require_literal(props.get("Description", ""),
                                           f"{logical_id}.Description")}
    if "EventPattern" in props:
        args["EventPattern"] = event_pattern_json(props["EventPattern"],
                                                  f"{logical_id}.EventPattern")
    if "ScheduleExpression" in props:
        args["ScheduleExpression"] = require_literal(props["ScheduleExpression"],
                                                     f"{logical_id}.ScheduleExpression")
    return RuleSpec(logical_id, args, rule_targets(template, logical_id, props))


def template_events(template_path, env):
    """(local bus names, RuleSpecs) for the template's event buses and rules."""
    template = load_template(template_path)
    buses = {lid: local_bus_name(template, lid, env)
             for lid in resources_of_type(template, "AWS::Events::EventBus")}
    rules = [rule_spec(template, lid, res, buses)
             for lid, res in resources_of_type(template, "AWS::Events::Rule").items()]
    return sorted(set(buses.values())), [rule for rule in rules if rule is not None]


def invoke_url(api_port, binary):
    """cargo-lambda's Invoke API for one function."""
    return f"http://{LOCALHOST}:{api_port}/2015-03-31/functions/{binary}/invocations"


def workspace_binaries(manifest_path):
    """The binary names of the workspace, or None when cargo cannot tell."""
    command = ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline",
               "--manifest-path", str(manifest_path)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return {target["name"] for package in json.loads(result.stdout)["packages"]
            for target in package["targets"] if "bin" in target["kind"]}


def missing_function_warnings(rules, manifest_path):
    """Warn about targets whose function is not a binary of the workspace: watch cannot run
    it, so each event to it is answered with an error and dropped by the emulator."""
    binaries = workspace_binaries(manifest_path)
    if binaries is None:
        warn(f"cannot list the binaries of {manifest_path}; not checking the rule targets")
        return
    for rule in rules:
        for target in rule.targets:
            if target.binary not in binaries:
                warn(f"rule {rule.logical_id}: target {target.target_id}: {target.binary} is not "
                     f"a binary of the workspace yet; events to it are dropped")


def error_code(error):
    """The AWS error code of a ClientError."""
    return error.response.get("Error", {}).get("Code", "")


def describe_or_none(call, **args):
    """The answer of a Describe call, or None when the resource does not exist."""
    try:
        return call(**args)
    except botocore.exceptions.ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise


def sync_bus(client, name):
    """Create the event bus unless it exists."""
    if describe_or_none(client.describe_event_bus, Name=name) is None:
        client.create_event_bus(Name=name)
        say(f"event bus {name}: created")
    else:
        say(f"event bus {name}: up to date")


def sync_connection(client):
    """Create or re-authorize the one connection of the local destinations; return its ARN."""
    have = describe_or_none(client.describe_connection, Name=CONNECTION_NAME)
    args = {"Name": CONNECTION_NAME, "AuthorizationType": "API_KEY",
            "AuthParameters": CONNECTION_AUTH}
    if have is None:
        arn = client.create_connection(**args)["ConnectionArn"]
        say(f"connection {CONNECTION_NAME}: created")
        return arn
    key_name = ((have.get("AuthParameters") or {}).get("ApiKeyAuthParameters") or {}).get(
        "ApiKeyName")
    if (have.get("ConnectionState") != "AUTHORIZED" or have.get("AuthorizationType") != "API_KEY"
            or key_name != CONNECTION_AUTH["ApiKeyAuthParameters"]["ApiKeyName"]):
        client.update_connection(**args)
        say(f"connection {CONNECTION_NAME}: re-authorized (was {have.get('ConnectionState')})")
    return have["ConnectionArn"]


def sync_destination(client, binary, api_port, connection_arn):
    """Create the API destination that invokes one function, or point it at the current
    API port; return its ARN."""
    name = f"{DESTINATION_PREFIX}{binary}"
    args = {"Name": name, "ConnectionArn": connection_arn,
            "InvocationEndpoint": invoke_url(api_port, binary), "HttpMethod": "POST"}
    have = describe_or_none(client.describe_api_destination, Name=name)
    if have is None:
        arn = client.create_api_destination(**args)["ApiDestinationArn"]
        say(f"api destination {name}: created -> POST {args['InvocationEndpoint']}")
        return arn
    if any(have.get(key) != value for key, value in args.items()):
        client.update_api_destination(**args)
        say(f"api destination {name}: updated -> POST {args['InvocationEndpoint']} "
            f"(was {have.get('HttpMethod')} {have.get('InvocationEndpoint')})")
    return have["ApiDestinationArn"]


def pattern_differs(want, have):
    """True when two EventPattern JSON strings (or their absence) mean different things."""
    if not want or not have:
        return bool(want) != bool(have)
    return json.loads(want) != json.loads(have)


def sync_rule(client, rule, destination_arns):
    """Put the rule and its targets as the template declares them; remove undeclared
    targets."""
    args = rule.put_args
    name, bus = args["Name"], args["EventBusName"]
    have = describe_or_none(client.describe_rule, Name=name, EventBusName=bus)
    changed = []
    if have is None:
        changed.append("created")
    else:
        if pattern_differs(args.get("EventPattern"), have.get("EventPattern")):
            changed.append("pattern")
        changed += [key.lower() for key in ("ScheduleExpression", "State", "Description")
                    if (args.get(key) or "") != (have.get(key) or "")]
    if changed:
        client.put_rule(**args)
        say(f"rule {name} on bus {bus}: " + ("created" if have is None
                                             else f"updated ({', '.join(changed)})"))
    want = {t.target_id: {"Id": t.target_id, "Arn": destination_arns[t.binary],
                          "RoleArn": LOCAL_TARGET_ROLE_ARN, **t.fields}
            for t in rule.targets}
    have_targets = {t["Id"]: t for t in list_targets(client, name, bus)}
    extra = sorted(have_targets.keys() - want.keys())
    if extra:
        check_target_result(client.remove_targets(Rule=name, EventBusName=bus, Ids=extra), name)
        for target_id in extra:
            say(f"rule {name}: target {target_id} removed (not in the template)")
    stale = [target for target_id, target in want.items() if have_targets.get(target_id) != target]
    if stale:
        check_target_result(client.put_targets(Rule=name, EventBusName=bus, Targets=stale), name)
        for target in stale:
            say(f"rule {name}: target {target['Id']} -> {target['Arn'].rsplit(':', 1)[-1]}")
    if not (changed or extra or stale):
        say(f"rule {name} on bus {bus}: up to date")


def list_targets(client, rule, bus):
    """Every target of a rule."""
    targets, token = [], None
    while True:
        page = client.list_targets_by_rule(Rule=rule, EventBusName=bus,
                                           **({"NextToken": token} if token else {}))
        targets += page.get("Targets", [])
        token = page.get("NextToken")
        if not token:
            return targets


def list_rule_names(client, bus):
    """The names of every rule on a bus."""
    names, token = [], None
    while True:
        page = client.list_rules(EventBusName=bus, **({"NextToken": token} if token else {}))
        names += [rule["Name"] for rule in page.get("Rules", [])]
        token = page.get("NextToken")
        if not token:
            return names


def check_target_result(answer, rule):
    """PutTargets and RemoveTargets answer 200 with per-entry failures: fail on any."""
    if answer.get("FailedEntryCount"):
        raise StackError(f"rule {rule}: the emulator refused targets: {answer['FailedEntries']}")


def delete_undeclared_rules(client, bus, declared):
    """Delete the rules on a template bus that the template no longer declares (targets
    first, as EventBridge requires)."""
    for name in list_rule_names(client, bus):
        if name in declared:
            continue
        ids = [target["Id"] for target in list_targets(client, name, bus)]
        if ids:
            check_target_result(client.remove_targets(Rule=name, EventBusName=bus, Ids=ids), name)
        client.delete_rule(Name=name, EventBusName=bus)
        say(f"rule {name} on bus {bus}: deleted (not in the template)")


def delete_unused_destinations(client, used):
    """Delete this script's API destinations that no declared target uses any more."""
    names, token = [], None
    while True:
        page = client.list_api_destinations(NamePrefix=DESTINATION_PREFIX,
                                            **({"NextToken": token} if token else {}))
        names += [destination["Name"] for destination in page.get("ApiDestinations", [])]
        token = page.get("NextToken")
        if not token:
            break
    for name in names:
        if name not in used:
            client.delete_api_destination(Name=name)
            say(f"api destination {name}: deleted (no declared target uses it)")


def sync_events(template_path, env, api_port, manifest_path=None):
    """Create or update the template's event buses and rules at env's AWS_ENDPOINT_URL; each
    function target is delivered to cargo-lambda's Invoke API on api_port. Returns the cargo
    binaries of the consuming functions."""
    endpoint = env["AWS_ENDPOINT_URL"]
    buses, rules = template_events(template_path, env)
    if not buses:
        say(f"no AWS::Events::EventBus in {template_path}")
    if manifest_path is not None:
        missing_function_warnings(rules, manifest_path)
    client = aws_client("events", env)
    try:
        for bus in buses:
            sync_bus(client, bus)
        binaries = sorted({target.binary for rule in rules for target in rule.targets})
        destination_arns = {}
        if binaries:
            connection_arn = sync_connection(client)
            destination_arns = {binary: sync_destination(client, binary, api_port, connection_arn)
                                for binary in binaries}
        for rule in rules:
            sync_rule(client, rule, destination_arns)
        for bus in buses:
            delete_undeclared_rules(client, bus, {rule.logical_id for rule in rules
                                                  if rule.put_args["EventBusName"] == bus})
        delete_unused_destinations(client, {f"{DESTINATION_PREFIX}{b}" for b in binaries})
        return binaries
    except botocore.exceptions.EndpointConnectionError as error:
        raise StackError(f"the emulator does not answer at {endpoint}: {error}") from error
    except botocore.exceptions.ClientError as error:
        raise StackError(f"the emulator refused an EventBridge change: {error}") from error


# --- routes --------------------------------------------------------------------------------------


def router_path(path):
    """Write an API Gateway greedy parameter (`{proxy+}`) in matchit syntax (`{*proxy}`)."""
    return re.sub(r"\{([^{}]+)\+\}", r"{*\1}", path)


def http_api_routes(logical_id, function):
    """Yield ((METHOD, path), binary) for each HttpApi event of one function."""
    binary = ((function.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
    events = (function.get("Properties") or {}).get("Events") or {}
    for event in events.values():
        if event.get("Type") != "HttpApi":
            continue
        props = event.get("Properties") or {}
        method = str(props.get("Method", "ANY")).upper()
        path = router_path(props.get("Path", "$default"))
        yield (method, path), binary or f"<{logical_id} has no Metadata.BuildProperties.Binary>"


def template_routes(template_path):
    """Map (METHOD, path) to function binary for every HttpApi event in the template."""
    functions = resources_of_type(load_template(template_path), "AWS::Serverless::Function")
    return {route: binary
            for logical_id, function in functions.items()
            for route, binary in http_api_routes(logical_id, function)}


def router_entries(value):
    """Yield (METHOD, function) pairs of one router value (a name or list of tables)."""
    if isinstance(value, str):
        yield "ANY", value
        return
    for entry in value if isinstance(value, list) else [value]:
        methods = entry.get("method", "ANY")
        for method in methods if isinstance(methods, list) else [methods]:
            yield method.upper(), entry["function"]


def watch_routes(manifest_path):
    """Map (METHOD, path) to function for `[workspace.metadata.lambda.watch.router]`, OPTIONS
    entries included."""
    with open(manifest_path, "rb") as file:
        manifest = tomllib.load(file)
    metadata = manifest.get("workspace", {}).get("metadata", {})
    router = metadata.get("lambda", {}).get("watch", {}).get("router", {})
    return {(method, path): function
            for path, value in router.items()
            for method, function in router_entries(value)}


def split_preflights(router):
    """(routes without OPTIONS, {path: function} of the OPTIONS entries). In AWS the HTTP API
    answers CORS preflights itself, so the template has no OPTIONS routes; locally each path
    routes OPTIONS to one of its own functions, which answers it."""
    routes = {key: function for key, function in router.items() if key[0] != "OPTIONS"}
    preflights = {path: function for (method, path), function in router.items()
                  if method == "OPTIONS"}
    return routes, preflights


def preflight_problems(routes, preflights):
    """Readable lines for every path without an OPTIONS entry to one of its functions, and every
    OPTIONS entry for a path that has no other route."""
    functions_by_path = {}
    for (_, path), function in routes.items():
        functions_by_path.setdefault(path, set()).add(function)
    lines = []
    for path in sorted(functions_by_path.keys() | preflights.keys()):
        if path not in preflights:
            lines.append(f"  no OPTIONS entry (CORS preflight) in Cargo.toml:  {path}")
        elif path not in functions_by_path:
            lines.append(f"  OPTIONS entry for a path without routes:  {path}")
        elif preflights[path] not in functions_by_path[path]:
            lines.append(f"  OPTIONS {path} -> {preflights[path]}, which serves no other "
                         "method of that path")
    return lines


def route_differences(template, router):
    """Readable lines for every route that differs between the two maps."""
    lines = []
    for key in sorted(template.keys() | router.keys(), key=lambda k: (k[1], k[0])):
        method, path = key
        if key not in router:
            lines.append(f"  only in template.yaml:  {method} {path} -> {template[key]}")
        elif key not in template:
            lines.append(f"  only in Cargo.toml:     {method} {path} -> {router[key]}")
        elif template[key] != router[key]:
            lines.append(f"  different function:     {method} {path}: template.yaml -> "
                         f"{template[key]}, Cargo.toml -> {router[key]}")
    return lines


# --- processes -----------------------------------------------------------------------------------


class Foreground:
    """Routes SIGINT/SIGTERM/SIGHUP: to the foreground child's process group if there is one,
    otherwise as an Interrupted exception; once shielded (during clean-up) it only notes them.
    Children run in their own process groups, so a Ctrl-C reaches each of them once, through
    here, and never reaches the emulator directly."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.child = None
        self.stop_signal = None
        self.shielded = False
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum, _frame):
        self.stop_signal = signum
        if self.shielded:
            say("already stopping; waiting for the children to exit")
        elif self.child is not None and self.child.poll() is None:
            signal_group(self.child, signum)
        else:
            raise Interrupted(signum)

    def shield(self):
        """From now on, signals no longer interrupt: clean-up must finish."""
        self.shielded = True

    def run(self, child, name, stop_timeout_s=WATCH_STOP_S):
        """Wait for a started child; after a forwarded signal, kill it if it hangs."""
        self.child = child
        deadline = None
        while child.poll() is None:
            if self.stop_signal and deadline is None:
                deadline = time.monotonic() + stop_timeout_s
            if deadline and time.monotonic() > deadline:
                warn(f"{name} did not stop within {stop_timeout_s} s; killing it")
                signal_group(child, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.1)
        self.child = None
        return child.returncode


def signal_group(process, signum):
    """Send a signal to the process group led by process (it was started with its own group)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def free_ports(count):
    """Distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((LOCALHOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def require_free_port(port, setting):
    """Fail with a clear message when something already listens on the port."""
    with socket.socket() as sock:
        if sock.connect_ex((LOCALHOST, port)) == 0:
            raise StackError(f"127.0.0.1:{port} is already in use (another `make dev`?); "
                             f"stop it or choose another {setting}")


def http_status(url, timeout_s=5):
    """The HTTP status of GET url, or None when nothing answers. Never uses a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def wait_for_http(url, process, name, timeout_s, request_timeout_s=5):
    """Wait until GET url answers 200 while the process that serves it is alive."""
    deadline = time.monotonic() + timeout_s
    status = None
    while status != 200:
        if process.poll() is not None:
            raise StackError(f"{name} exited with status {process.returncode} before {url} "
                             "answered")
        if time.monotonic() > deadline:
            raise StackError(f"{url} did not answer 200 within {timeout_s} s "
                             f"(last answer: {status or 'none'})")
        status = http_status(url, request_timeout_s)
        if status != 200:
            time.sleep(0.5)


def emulator_url(port):
    """The emulator's endpoint URL."""
    return f"http://{LOCALHOST}:{port}"


def emulator_answers(port):
    """True when ministack answers its health check on the port."""
    return http_status(f"{emulator_url(port)}/_ministack/health") == 200


def bypass_proxies_for_localhost():
    """Make sure no HTTP proxy setting sends our local traffic (or the children's) elsewhere."""
    entries = [os.environ.get("NO_PROXY"), os.environ.get("no_proxy"), LOCALHOST, "localhost"]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(filter(None, entries))


def child_env(extra):
    """The process environment plus extra, with the venv's tools first on PATH."""
    env = {**os.environ, **extra}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def function_env(emulator_port):
    """The environment that local functions (and tests) run with. Inherited AWS_* variables
    are dropped, so no profile, endpoint override or real credential can send a call to AWS;
    so is SECRET_KEY_ARN, which names a secret in AWS, not in the emulator."""
    env = {k: v for k, v in child_env({}).items()
           if not k.startswith("AWS_") and k != "SECRET_KEY_ARN"}
    env.update({
        "APP_ENV": "local",
        "AWS_ENDPOINT_URL": emulator_url(emulator_port),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })
    # The functions read AWS_LAMBDA_LOG_LEVEL before RUST_LOG; cargo-lambda itself ignores it,
    # so its own output stays quiet.
    for name, default in (("TABLE_NAME", DEFAULT_TABLE_NAME), ("EVENT_BUS_NAME", DEFAULT_BUS_NAME),
                          ("AWS_LAMBDA_LOG_LEVEL", "INFO")):
        env[name] = os.environ.get(name) or default
    return env


def start_ministack(port, state_dir, log_path, persist):
    """Start ministack in its own session, so a terminal Ctrl-C cannot stop it unsaved."""
    env = child_env({
        "BIND_HOST": LOCALHOST,
        "GATEWAY_PORT": str(port),
        "PERSIST_STATE": "1" if persist else "0",
        "STATE_DIR": str(state_dir),
        # Both listeners bind 0.0.0.0 when enabled; the project uses neither.
        "IOT_MTLS_ENABLED": "0",
        "SFTP_ENABLED": "0",
    })
    say(f"starting ministack on {emulator_url(port)} (log: {log_path})")
    with open(log_path, "ab") as log:
        return subprocess.Popen([str(VENV_BIN / "ministack")], env=env, cwd=REPO,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=terminate_with_parent)


def wait_for_emulator(ministack, port, log_path):
    """Wait until ministack answers; on failure, show its log."""
    try:
        wait_for_http(f"{emulator_url(port)}/_ministack/health", ministack, "ministack",
                      EMULATOR_WAIT_S)
    except StackError:
        print_tail(log_path, "ministack log")
        raise


def stop_ministack(ministack):
    """SIGTERM ministack (it saves its state) and wait; SIGKILL only if it hangs."""
    if ministack.poll() is not None:
        return
    say("stopping ministack")
    ministack.terminate()
    try:
        ministack.wait(EMULATOR_STOP_S)
    except subprocess.TimeoutExpired:
        warn(f"ministack did not stop within {EMULATOR_STOP_S} s of SIGTERM; killing it "
             "(state since it started is lost)")
        ministack.kill()
        ministack.wait()


def stop_group(process, name):
    """SIGTERM a child's process group and wait; SIGKILL it if it hangs."""
    if process.poll() is not None:
        return
    say(f"stopping {name}")
    signal_group(process, signal.SIGTERM)
    try:
        process.wait(WATCH_STOP_S)
    except subprocess.TimeoutExpired:
        warn(f"{name} did not stop within {WATCH_STOP_S} s of SIGTERM; killing it")
        signal_group(process, signal.SIGKILL)
        process.wait()


def start_group(command, env, **popen_args):
    """Start a child in its own process group, with no terminal input."""
    return subprocess.Popen(command, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                            process_group=0, preexec_fn=terminate_with_parent, **popen_args)


def terminate_with_parent():
    """In a child before exec: ask Linux to send it SIGTERM when this script dies, even by
    SIGKILL, so no emulator or watcher is left running without its owner."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def run_step(foreground, command, env, name):
    """Run one command to completion as the foreground child; fail on a non-zero status."""
    say(" ".join(command))
    status = foreground.run(start_group(command, env), name)
    if foreground.stop_signal:
        raise Interrupted(foreground.stop_signal)
    if status != 0:
        raise StackError(f"{name} failed with status {status}")


def build(foreground, env, command):
    """Build the workspace first, so that no function compiles on its first request."""
    if os.environ.get("SKIP_BUILD") == "1":
        say("SKIP_BUILD=1: not building")
        return
    run_step(foreground, command, env, "cargo build")


def watch_command(api_port, *extra):
    """The `cargo lambda watch` command line, served on 127.0.0.1 only. Its own CORS layer
    (which grants every origin) is off: the functions apply CORS_ALLOWED_ORIGINS themselves."""
    return [str(VENV_BIN / "cargo-lambda"), "lambda", "watch", "--disable-cors",
            "--invoke-address", LOCALHOST, "--invoke-port", str(api_port), *extra]


# Lines of a function log worth showing wherever they are: a panic, an error, a failed request;
# not cargo-lambda's note, for each request to an unrouted path, listing the functions.
TROUBLE = re.compile(r"panicked at|\bERROR\b(?!.*available_functions)|request failed")


def print_tail(path, title, lines=60, context=3):
    """Print the lines of a log file that tell of trouble (with a little context), then its last
    lines: the tail alone often misses the panic that made a test fail minutes earlier."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return
    head = text[:-lines]
    marks = [i for i, line in enumerate(head) if TROUBLE.search(line)]
    if marks:
        shown = sorted({j for i in marks[:40] for j in range(i, min(i + context + 1, len(head)))})
        print(f"----- trouble in {title} ({path}) -----", file=sys.stderr)
        print("\n".join(head[j] for j in shown), file=sys.stderr)
    print(f"----- last {lines} lines of {title} ({path}) -----", file=sys.stderr)
    print("\n".join(text[-lines:]), file=sys.stderr)
    print("-----", file=sys.stderr, flush=True)


def env_port(name, default):
    """A port number from the environment."""
    value = os.environ.get(name, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{name}={value!r} is not a port number")
    return int(value)


# --- commands ------------------------------------------------------------------------------------


def cmd_sync_tables(args):
    """sync-tables: create or update the template's tables at AWS_ENDPOINT_URL."""
    env = dict(os.environ)
    if not env.get("AWS_ENDPOINT_URL"):
        env["AWS_ENDPOINT_URL"] = emulator_url(env_port("EMULATOR_PORT", 4566))
    sync_tables(args.template, env)
    return 0


def cmd_sync_events(args):
    """sync-events: create or update the template's event buses, rules and targets at
    AWS_ENDPOINT_URL, delivering to the functions served on API_PORT."""
    env = dict(os.environ)
    if not env.get("AWS_ENDPOINT_URL"):
        env["AWS_ENDPOINT_URL"] = emulator_url(env_port("EMULATOR_PORT", 4566))
    sync_events(args.template, env, env_port("API_PORT", DEFAULT_API_PORT), args.manifest)
    return 0


def cmd_check_routes(args):
    """check-routes: exit 1 with a diff when the template and the watch router disagree."""
    routes, preflights = split_preflights(watch_routes(args.manifest))
    differences = (route_differences(template_routes(args.template), routes)
                   + preflight_problems(routes, preflights))
    if not differences:
        say(f"routes agree between {args.template.name} and {args.manifest.name}")
        return 0
    print(f"routes differ between {args.template} and {args.manifest} "
          "[workspace.metadata.lambda.watch.router]:", file=sys.stderr)
    print("\n".join(differences), file=sys.stderr)
    return 1


def cmd_dev(args):
    """dev: persistent ministack + cargo lambda watch in the foreground until a signal."""
    api_port = env_port("API_PORT", DEFAULT_API_PORT)
    emulator_port = env_port("EMULATOR_PORT", 4566)
    data_dir = REPO / os.environ.get("DATA_DIR", ".data")
    require_free_port(emulator_port, "EMULATOR_PORT")
    require_free_port(api_port, "API_PORT")
    data_dir.mkdir(parents=True, exist_ok=True)
    env = function_env(emulator_port)
    foreground = Foreground()
    log_path = data_dir / "ministack.log"
    ministack = None
    try:
        ministack = start_ministack(emulator_port, data_dir / "ministack", log_path, True)
        wait_for_emulator(ministack, emulator_port, log_path)
        sync_tables(args.template, env)
        consumers = sync_events(args.template, env, api_port, args.manifest)
        build(foreground, env, ["cargo", "build", "--workspace", "--bins"])
        threading.Thread(target=warm_consumers, args=(api_port, consumers, DEV_CONCURRENCY),
                         daemon=True).start()
        return serve(foreground, api_port, env)
    finally:
        foreground.shield()
        if ministack is not None:
            stop_ministack(ministack)


def serve(foreground, api_port, env):
    """Run cargo lambda watch in the foreground; a signal to us is forwarded to it. Several
    instances per function, so that an event consumer is not queued behind a busy instance:
    ministack drops an API-destination delivery that takes more than 5 s."""
    command = watch_command(api_port, "--concurrency", str(DEV_CONCURRENCY))
    env = {**env, "CARGO_LAMBDA_IGNORE_FILES": str(REPO / "scripts" / "watch.ignore")}
    say(" ".join(command))
    say(f"API on http://{LOCALHOST}:{api_port}  (Ctrl-C stops everything and saves the data)")
    status = foreground.run(start_group(command, env), "cargo lambda watch")
    if foreground.stop_signal:
        return 0
    warn(f"cargo lambda watch exited by itself with status {status}")
    return status or 1


def cmd_test(args):
    """test: fresh ministack and watch on free ports, then cargo test; always cleans up."""
    foreground = Foreground()
    with tempfile.TemporaryDirectory(prefix="clinic-test-") as tmp:
        return run_tests(foreground, args.template, args.manifest, Path(tmp))


def run_tests(foreground, template, manifest, tmp):
    """Start the throwaway stack in tmp, run cargo test, stop everything."""
    emulator_port, api_port = test_ports()
    env = {**function_env(emulator_port), **TEST_FUNCTION_SETTINGS}
    ministack_log, watch_log = tmp / "ministack.log", tmp / "watch.log"
    ministack = watch = None
    try:
        ministack = start_ministack(emulator_port, tmp / "state", ministack_log, False)
        wait_for_emulator(ministack, emulator_port, ministack_log)
        sync_tables(template, env)
        consumers = sync_events(template, env, api_port, manifest)
        build(foreground, env, ["cargo", "build", "--workspace", "--bins", "--tests"])
        watch = start_watch_for_tests(api_port, env, watch_log)
        wait_for_api(watch, api_port, watch_log)
        # Every consumer instance is started before the tests: a burst of events must not wait
        # for instances that are still starting, or ministack drops the deliveries after 5 s.
        warm_consumers(api_port, consumers, TEST_CONCURRENCY)
        status = cargo_test(foreground, env, api_port, watch_log)
        for name, command in ([] if status else stack_checks()):
            status = run_check(foreground, env, api_port, watch_log, name, command)
            if status:
                break
        return status
    finally:
        foreground.shield()
        if watch is not None:
            stop_group(watch, "cargo lambda watch")
        if ministack is not None:
            stop_ministack(ministack)


def test_ports():
    """(emulator port, API port) for `make test`: TEST_EMULATOR_PORT and TEST_API_PORT when both
    are set (each must be free), else two free ports."""
    named = [name for name in ("TEST_EMULATOR_PORT", "TEST_API_PORT") if os.environ.get(name)]
    if len(named) == 1:
        raise StackError(f"only {named[0]} is set: set both TEST_EMULATOR_PORT and TEST_API_PORT, "
                         "or neither")
    if named:
        ports = env_port("TEST_EMULATOR_PORT", 0), env_port("TEST_API_PORT", 0)
        for port, setting in zip(ports, ("TEST_EMULATOR_PORT", "TEST_API_PORT")):
            require_free_port(port, setting)
        return ports
    return tuple(free_ports(2))


def warm_consumers(api_port, binaries, instances):
    """Start `instances` instances of each event consumer before any event comes: cargo-lambda
    starts an instance on its first invocation, which can take longer than the 5 s in which
    ministack must deliver an event (or it drops it). The consumers answer a `local.warmup`
    envelope without doing anything."""
    body = json.dumps({"source": "local.warmup", "detail-type": "Warmup", "detail": {}}).encode()

    def invoke(binary):
        url = f"http://{LOCALHOST}:{api_port}/2015-03-31/functions/{binary}/invocations"
        deadline = time.monotonic() + API_WAIT_S
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(url, data=body, method="POST")
                with urllib.request.urlopen(request, timeout=120) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        warn(f"could not warm up {binary}; its first events may be dropped")

    threads = [threading.Thread(target=invoke, args=(binary,), daemon=True)
               for binary in binaries for _ in range(instances)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if binaries:
        say(f"event consumers ready: {', '.join(binaries)} ({instances} instances each)")


def start_watch_for_tests(api_port, env, log_path):
    """cargo lambda watch with 16 instances per function (so races can race), logging to a file."""
    command = watch_command(api_port, "--concurrency", str(TEST_CONCURRENCY), "--ignore-changes")
    say(f"{' '.join(command)}  (log: {log_path})")
    with open(log_path, "ab") as log:
        return start_group(command, env, stdout=log, stderr=subprocess.STDOUT)


def wait_for_api(watch, api_port, log_path):
    """Wait until the ready route (READY_PATH, default /openapi.json) answers 200."""
    path = os.environ.get("READY_PATH", "/openapi.json")
    say(f"waiting for GET {path}")
    try:
        wait_for_http(f"http://{LOCALHOST}:{api_port}{path}", watch, "cargo lambda watch",
                      API_WAIT_S, request_timeout_s=60)
    except StackError:
        print_tail(log_path, "cargo lambda watch log")
        raise


def cargo_test(foreground, env, api_port, watch_log):
    """Run cargo test against the stack; show the watch log when tests fail."""
    env = {**env, "API_URL": f"http://{LOCALHOST}:{api_port}"}
    command = ["cargo", "test", "--workspace"]
    say(" ".join(command))
    status = foreground.run(start_group(command, env), "cargo test")
    if foreground.stop_signal:
        raise Interrupted(foreground.stop_signal)
    if status != 0:
        print_tail(watch_log, "cargo lambda watch log")
    return status


def stack_checks():
    """The checks that use the running stack after the Rust tests: schema fuzzing with
    schemathesis as each role, then Swagger UI in headless Chromium (`make test` installs the
    browser and its client first, with scripts/browser-deps.sh)."""
    return [
        ("schema fuzzing", [str(VENV_BIN / "python"), str(REPO / "scripts" / "fuzz.py")]),
        ("Swagger UI in Chromium", ["node", str(REPO / "tests" / "browser" / "docs.test.mjs")]),
    ]


def run_check(foreground, env, api_port, watch_log, name, command):
    """Run one check against the stack; show the watch log when it fails."""
    env = {**env, "API_URL": f"http://{LOCALHOST}:{api_port}"}
    say(f"{name}: {' '.join(command)}")
    status = foreground.run(start_group(command, env), name)
    if foreground.stop_signal:
        raise Interrupted(foreground.stop_signal)
    if status != 0:
        warn(f"{name} failed with status {status}")
        print_tail(watch_log, "cargo lambda watch log")
    return status


def cmd_admin(_args):
    """admin: run the create-admin binary against the running `make dev` emulator."""
    emulator_port = env_port("EMULATOR_PORT", 4566)
    if not emulator_answers(emulator_port):
        raise StackError(f"the emulator does not answer at {emulator_url(emulator_port)}: "
                         "start `make dev` first")
    env = function_env(emulator_port)
    if not env.get("ADMIN_EMAIL"):
        raise StackError("ADMIN_EMAIL is not set: make admin EMAIL=... PASSWORD=... "
                         "[USERNAME=...]")
    if not env.get("ADMIN_PASSWORD"):
        env["ADMIN_PASSWORD"] = prompt_password()
    for name in ("MAKEFLAGS", "MFLAGS", "PASSWORD"):  # make's copies of its command line
        env.pop(name, None)
    # Built with the whole workspace, as `make dev` builds, so its dependencies are the ones
    # already compiled (a build of the one package would resolve other features and rebuild).
    build = ["cargo", "build", "-q", "--workspace", "--bins"]
    if subprocess.run(build, cwd=REPO, check=False).returncode != 0:
        raise StackError("the build failed")
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    binary = target / "debug" / "create-admin"
    return subprocess.run([str(binary)], env=env, cwd=REPO, check=False).returncode


def prompt_password():
    """Ask for the admin password on the terminal, without echo."""
    if not sys.stdin.isatty():
        raise StackError("ADMIN_PASSWORD is not set: make admin EMAIL=... PASSWORD=...")
    password = getpass.getpass("Admin password: ")
    if not password:
        raise StackError("no password given")
    return password


def parse_args(argv):
    """The command line; --template and --manifest are accepted after the command."""
    paths = argparse.ArgumentParser(add_help=False)
    paths.add_argument("--template", type=Path, default=TEMPLATE, help="SAM template")
    paths.add_argument("--manifest", type=Path, default=MANIFEST, help="workspace Cargo.toml")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler in COMMANDS.items():
        commands.add_parser(name, parents=[paths],
                            help=handler.__doc__.split(":", 1)[1].strip())
    return parser.parse_args(argv)


COMMANDS = {
    "sync-tables": cmd_sync_tables,
    "sync-events": cmd_sync_events,
    "check-routes": cmd_check_routes,
    "dev": cmd_dev,
    "test": cmd_test,
    "admin": cmd_admin,
}


def main(argv=None):
    """Run one command and turn known failures into a message and an exit status."""
    args = parse_args(argv)
    bypass_proxies_for_localhost()
    try:
        return COMMANDS[args.command](args)
    except StackError as error:
        print(f"stack: error: {error}", file=sys.stderr)
        return 1
    except Interrupted as error:
        say(f"stopped by {error}")
        return 128 + error.signum
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
