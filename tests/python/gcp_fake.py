#!/usr/bin/env python3
"""A local fake of Google Cloud Logging for sluice's google_cloud output tests.

One HTTP server on 127.0.0.1 plays three parts:
  * the Logging API, POST /v2/entries:write: every body is validated against the WriteLogEntriesRequest /
    LogEntry schema of the logging v2 discovery document shipped in google-api-python-client (unknown
    fields, wrong types, enum values, timestamp and duration formats, resource shapes) and the bearer
    token is checked;
  * an OAuth token endpoint, POST /token: JWT bearer grants are verified with google-auth against the
    public half of the service-account key it generated (RS256 signature, issuer, audience, expiry,
    scope) and answered with short-lived tokens; refresh_token grants for gcloud user credentials;
  * a GCE metadata server, GET /computeMetadata/v1/... (needs `Metadata-Flavor: Google`).

Control (for the tests): GET /_control/state, POST /_control/queue (JSON list of scripted answers for the
next entries:write calls, e.g. {"status": 429, "retry_after": "1"}), POST /_control/config
({"token_lifetime": 5, "reject_payload_key": "bad"}), POST /_control/reset.

Usage:
  gcp_fake.py serve --genkey KEY.json [--project P]   prints "PORT <n>" when ready
  gcp_fake.py genkey OUT.json --token-uri URL          an untrusted key (for the bad-signature test)
"""
import argparse
import ssl
import base64
import datetime
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
import google.auth.jwt as gjwt
import googleapiclient

LOGGING_SCOPE = "https://www.googleapis.com/auth/logging.write"
PARTIAL_TYPE = "type.googleapis.com/google.logging.v2.WriteLogEntriesPartialErrors"
USER_CLIENT = {"client_id": "fake-client-id", "client_secret": "fake-secret", "refresh_token": "fake-refresh"}
METADATA = {
    "project/project-id": "meta-project",
    "project/numeric-project-id": "123456",
    "instance/zone": "projects/123456/zones/europe-west1-b",
    "instance/id": "4242424242",
    "instance/name": "node-1",
    "instance/attributes/cluster-name": "prod-cluster",
    "instance/attributes/cluster-location": "europe-west1",
}
RESOURCE_LABELS = {
    "k8s_container": ({"project_id", "location", "cluster_name", "namespace_name", "pod_name",
                       "container_name"}, set()),
    "gce_instance": ({"instance_id", "zone"}, {"project_id"}),
    "global": (set(), {"project_id"}),
}

DISCOVERY = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents",
                         "logging.v2.json")
with open(DISCOVERY) as f:
    SCHEMAS = json.load(f)["schemas"]

RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
INT64 = re.compile(r"^-?\d+$")
LOG_NAME = re.compile(r"^projects/([^/]+)/logs/([A-Za-z0-9%_.\-]+)$")
SEVERITY_NUMBERS = {0, 100, 200, 300, 400, 500, 600, 700, 800}


def parse_time(s):
    m = RFC3339.match(s)
    if not m:
        return None
    base = s[:19]
    try:
        t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return t


def validate(value, schema, path, errors):
    """Strict check of `value` against a discovery-document schema."""
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"]]
    typ = schema.get("type")
    if typ == "any":
        return
    if typ == "object":
        if not isinstance(value, dict):
            errors.append(f"{path}: want an object, got {type(value).__name__}")
            return
        props = schema.get("properties")
        if props is not None:
            for k, v in value.items():
                if k not in props:
                    errors.append(f"{path}.{k}: unknown field")
                    continue
                if props[k].get("readOnly"):
                    errors.append(f"{path}.{k}: read-only (output only) field")
                validate(v, props[k], f"{path}.{k}", errors)
        elif "additionalProperties" in schema:
            for k, v in value.items():
                validate(v, schema["additionalProperties"], f"{path}[{k!r}]", errors)
        return
    if typ == "array":
        if not isinstance(value, list):
            errors.append(f"{path}: want an array, got {type(value).__name__}")
            return
        for i, v in enumerate(value):
            validate(v, schema.get("items", {"type": "any"}), f"{path}[{i}]", errors)
        return
    if typ == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: want a boolean, got {value!r}")
        return
    if typ == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: want an integer, got {value!r}")
        elif schema.get("format") == "int32" and not (-2**31 <= value < 2**31):
            errors.append(f"{path}: out of int32 range")
        return
    if typ == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: want a number, got {value!r}")
        return
    if typ == "string":
        fmt = schema.get("format")
        if fmt in ("int64", "uint64"):
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and INT64.match(value))):
                errors.append(f"{path}: want an int64 (decimal string), got {value!r}")
            return
        if "enum" in schema and path.endswith(".severity") and isinstance(value, int) and not isinstance(value, bool):
            if value not in SEVERITY_NUMBERS:
                errors.append(f"{path}: {value} is not a LogSeverity number")
            return
        if not isinstance(value, str):
            errors.append(f"{path}: want a string, got {value!r}")
            return
        if "enum" in schema and value not in schema["enum"]:
            errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
        if fmt == "google-datetime" and parse_time(value) is None:
            errors.append(f"{path}: {value!r} is not an RFC 3339 timestamp")
        if fmt == "google-duration" and not DURATION.match(value):
            errors.append(f"{path}: {value!r} is not a duration like '1.5s'")
        if fmt == "byte":
            try:
                base64.b64decode(value, validate=True)
            except Exception:
                errors.append(f"{path}: not base64")
        return
    errors.append(f"{path}: schema type {typ!r} not handled by the fake")


def check_resource(res, path, errors):
    if not isinstance(res, dict) or not isinstance(res.get("type"), str):
        errors.append(f"{path}: resource without a type")
        return
    kind = res["type"]
    if kind not in RESOURCE_LABELS:
        errors.append(f"{path}.type: unexpected resource type {kind!r}")
        return
    need, optional = RESOURCE_LABELS[kind]
    have = set((res.get("labels") or {}).keys())
    if not need <= have:
        errors.append(f"{path}.labels: {kind} needs {sorted(need - have)}")
    if have - need - optional:
        errors.append(f"{path}.labels: {kind} has no labels {sorted(have - need - optional)}")


def check_request(body):
    """Schema plus the API's own rules. Returns a list of problems."""
    errors = []
    validate(body, {"$ref": "WriteLogEntriesRequest"}, "request", errors)
    if errors:
        return errors
    entries = body.get("entries") or []
    if not entries:
        errors.append("request.entries: empty")
    if "resource" in body:
        check_resource(body["resource"], "request.resource", errors)
    now = datetime.datetime.now(datetime.timezone.utc)
    for i, e in enumerate(entries):
        p = f"request.entries[{i}]"
        log_name = e.get("logName", body.get("logName"))
        if not log_name:
            errors.append(f"{p}.logName: missing (and no request logName)")
        else:
            m = LOG_NAME.match(log_name)
            if not m:
                errors.append(f"{p}.logName: {log_name!r} is not projects/P/logs/ID (URL-encoded)")
            else:
                log_id = urllib.parse.unquote(m.group(2))
                if len(m.group(2)) > 512 or not re.match(r"^[A-Za-z0-9/_.\-~ %@:]+$", log_id):
                    errors.append(f"{p}.logName: bad log id")
        res = e.get("resource", body.get("resource"))
        if res is None:
            errors.append(f"{p}.resource: missing (and no request resource)")
        elif "resource" in e:
            check_resource(res, f"{p}.resource", errors)
        payloads = [k for k in ("textPayload", "jsonPayload", "protoPayload") if k in e]
        if len(payloads) > 1:
            errors.append(f"{p}: more than one payload {payloads}")
        if len(e.get("labels") or {}) > 64:
            errors.append(f"{p}.labels: more than 64 labels")
        if "timestamp" in e:
            t = parse_time(e["timestamp"])
            if t is not None and t > now + datetime.timedelta(days=1):
                errors.append(f"{p}.timestamp: more than a day in the future")
    return errors


class State:
    def __init__(self, key, port, project):
        self.lock = threading.Lock()
        self.key = key
        self.port = port
        self.scheme = "http"
        self.project = project
        self.token_lifetime = 3600
        self.reject_payload_key = None
        self.reset()

    def reset(self):
        self.tokens = {}
        self.token_requests = []
        self.attempts = []
        self.entries = []
        self.schema_errors = []
        self.auth_failures = []
        self.metadata_requests = []
        self.queue = []

    def snapshot(self):
        return {
            "entries": self.entries,
            "attempts": self.attempts,
            "token_requests": self.token_requests,
            "schema_errors": self.schema_errors,
            "auth_failures": self.auth_failures,
            "metadata_requests": self.metadata_requests,
            "queue_left": len(self.queue),
        }

    def issue(self, kind):
        tok = f"ya29.fake-{kind}-{uuid.uuid4().hex}"
        self.tokens[tok] = time.time() + self.token_lifetime
        return {"access_token": tok, "expires_in": self.token_lifetime, "token_type": "Bearer"}


STATE = None


def token_uri():
    return f"{STATE.scheme}://127.0.0.1:{STATE.port}/token"


def verify_jwt(assertion, audiences):
    pub = STATE.key["public_pem"]
    claims = gjwt.decode(assertion, certs=pub, verify=True, audience=audiences)
    if claims.get("iss") != STATE.key["client_email"]:
        raise ValueError(f"issuer {claims.get('iss')!r} is not the key's client_email")
    if "exp" not in claims or claims["exp"] < time.time():
        raise ValueError("expired")
    return claims


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj=None, headers=None, text=None):
        data = text.encode() if text is not None else json.dumps(obj if obj is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/_control/state":
            with STATE.lock:
                return self.reply(200, STATE.snapshot())
        if path.startswith("/computeMetadata/v1/"):
            sub = path[len("/computeMetadata/v1/"):]
            with STATE.lock:
                STATE.metadata_requests.append(sub)
                if self.headers.get("Metadata-Flavor") != "Google":
                    return self.reply(403, text="Missing Metadata-Flavor:Google header.")
                if sub == "instance/service-accounts/default/token":
                    tok = STATE.issue("metadata")
                    STATE.token_requests.append({"grant": "metadata", "ok": True})
                    return self.reply(200, tok)
                if sub in METADATA:
                    return self.reply(200, text=METADATA[sub])
            return self.reply(404, text="not found")
        return self.reply(404, {"error": "no such path"})

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        raw = self.body()
        if path == "/_control/reset":
            with STATE.lock:
                STATE.reset()
            return self.reply(200, {})
        if path == "/_control/queue":
            with STATE.lock:
                STATE.queue.extend(json.loads(raw))
            return self.reply(200, {})
        if path == "/_control/config":
            cfg = json.loads(raw)
            with STATE.lock:
                if "token_lifetime" in cfg:
                    STATE.token_lifetime = int(cfg["token_lifetime"])
                if "reject_payload_key" in cfg:
                    STATE.reject_payload_key = cfg["reject_payload_key"]
            return self.reply(200, {})
        if path == "/token":
            return self.token(raw)
        if path == "/v2/entries:write":
            return self.write(raw)
        return self.reply(404, {"error": {"code": 404, "message": "no such path", "status": "NOT_FOUND"}})

    def token(self, raw):
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        grant = form.get("grant_type", "")
        with STATE.lock:
            rec = {"grant": grant, "ok": False}
            STATE.token_requests.append(rec)
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                try:
                    claims = verify_jwt(form.get("assertion", ""),
                                        [token_uri(), "https://oauth2.googleapis.com/token"])
                    if LOGGING_SCOPE not in str(claims.get("scope", "")).split():
                        raise ValueError(f"scope {claims.get('scope')!r} lacks logging.write")
                except Exception as e:  # noqa: BLE001 - any verification failure is a 400
                    rec["error"] = str(e)
                    return self.reply(400, {"error": "invalid_grant", "error_description": str(e)})
                rec["ok"] = True
                return self.reply(200, STATE.issue("sa"))
            if grant == "refresh_token":
                if all(form.get(k) == v for k, v in USER_CLIENT.items()):
                    rec["ok"] = True
                    return self.reply(200, STATE.issue("user"))
                rec["error"] = "bad client or refresh token"
                return self.reply(400, {"error": "invalid_grant"})
            rec["error"] = "unsupported grant"
            return self.reply(400, {"error": "unsupported_grant_type"})

    def auth_kind(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Bearer "):
            return None, "no bearer token"
        tok = h[len("Bearer "):].strip()
        exp = STATE.tokens.get(tok)
        if exp is not None:
            if exp < time.time():
                return None, "expired access token"
            return "token", None
        if tok.count(".") == 2:
            try:
                verify_jwt(tok, ["https://logging.googleapis.com/", "https://logging.googleapis.com"])
                return "self-signed-jwt", None
            except Exception as e:  # noqa: BLE001
                return None, f"bad self-signed JWT: {e}"
        return None, "unknown access token"

    def write(self, raw):
        with STATE.lock:
            kind, why = self.auth_kind()
            if kind is None:
                STATE.auth_failures.append(why)
                STATE.attempts.append({"status": 401, "entries": 0, "error": why})
                return self.reply(401, {"error": {"code": 401, "message": why, "status": "UNAUTHENTICATED"}})
            try:
                body = json.loads(raw)
            except ValueError as e:
                STATE.schema_errors.append(f"body is not JSON: {e}")
                return self.reply(400, {"error": {"code": 400, "message": "bad JSON", "status": "INVALID_ARGUMENT"}})
            if len(raw) > 10 * 1000 * 1000:
                STATE.schema_errors.append(f"request of {len(raw)} bytes is over 10 MB")
            problems = check_request(body)
            entries = body.get("entries") or [] if isinstance(body, dict) else []
            for i, e in enumerate(entries):
                if len(json.dumps(e)) > 256 * 1024:
                    problems.append(f"request.entries[{i}]: over 256 KB")
            attempt = {"entries": len(entries), "auth": kind, "bytes": len(raw),
                       "partialSuccess": body.get("partialSuccess") if isinstance(body, dict) else None}
            STATE.attempts.append(attempt)
            if problems:
                STATE.schema_errors.extend(problems)
                attempt["status"] = 400
                return self.reply(400, {"error": {"code": 400, "message": "; ".join(problems)[:2000],
                                                  "status": "INVALID_ARGUMENT"}})
            s = STATE.queue.pop(0) if STATE.queue else None
            if s is not None and not s.get("pass"):
                attempt["status"] = s.get("status", 200)
                headers = {}
                if "retry_after" in s:
                    headers["Retry-After"] = str(s["retry_after"])
                word = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED",
                        500: "INTERNAL", 503: "UNAVAILABLE"}.get(attempt["status"], "UNKNOWN")
                return self.reply(attempt["status"], {"error": {"code": attempt["status"],
                                                               "message": s.get("message", "scripted failure"),
                                                               "status": word}}, headers)
            bad = {}
            key = STATE.reject_payload_key
            if key:
                for i, e in enumerate(entries):
                    if key in (e.get("jsonPayload") or {}):
                        bad[str(i)] = {"code": 3, "message": f"Log entry field '{key}' is not allowed"}
            if bad:
                attempt["status"] = 400
                if body.get("partialSuccess"):
                    for i, e in enumerate(entries):
                        if str(i) not in bad:
                            STATE.entries.append(merged(body, e))
                return self.reply(400, {"error": {
                    "code": 400, "message": "Log entry with invalid field", "status": "INVALID_ARGUMENT",
                    "details": [{"@type": PARTIAL_TYPE, "logEntryErrors": bad}]}})
            attempt["status"] = 200
            for e in entries:
                STATE.entries.append(merged(body, e))
            return self.reply(200, {})


def merged(body, e):
    out = dict(e)
    for k in ("logName", "resource"):
        if k not in out and k in body:
            out[k] = body[k]
    if body.get("labels"):
        out["labels"] = {**body["labels"], **out.get("labels", {})}
    return out


def make_key(path, token_uri_value, project, email):
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    pub = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri_value,
    }
    with open(path, "w") as f:
        json.dump(key, f)
    return {"public_pem": pub, "client_email": email}


def main():
    global STATE
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--genkey", required=True)
    s.add_argument("--project", default="key-project")
    s.add_argument("--email", default="sluice-test@key-project.iam.gserviceaccount.com")
    s.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS with this certificate")
    g = sub.add_parser("genkey")
    g.add_argument("out")
    g.add_argument("--token-uri", required=True)
    g.add_argument("--project", default="key-project")
    g.add_argument("--email", default="sluice-test@key-project.iam.gserviceaccount.com")
    a = ap.parse_args()
    if a.cmd == "genkey":
        make_key(a.out, a.token_uri, a.project, a.email)
        return
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    scheme = "http"
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    key = make_key(a.genkey, f"{scheme}://127.0.0.1:{port}/token", a.project, a.email)
    STATE = State(key, port, a.project)
    STATE.scheme = scheme
    print(f"PORT {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
