#!/usr/bin/env python3
"""A local fake Slack for sluice-slack's tests.

Serves an incoming webhook (POST /services/...) and the Web API's chat.postMessage
(POST /api/chat.postMessage). Every payload is validated with slack_sdk's Block Kit models:
Block.parse(b) + validate_json(), and Block.parse(b).to_dict() == b (slack_sdk silently drops
unknown keys, so the round trip catches them). Valid messages are recorded; invalid ones are
answered like Slack does (400 invalid_blocks / ok:false) and recorded separately so a test can
assert none ever arrived.

Control (for the test):
  POST /_script   JSON list of commands used by the next requests, one each, in order:
                  {"status": 429, "retry_after": 1} | {"status": 500} | {"hang": 3}
  GET  /_state    {"received": [...], "invalid": [...], "requests": [...]}
  POST /_reset

Prints "READY <port>" on stdout once listening (use --port 0 for a free port).
"""
import argparse
import json
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_sdk.models.blocks import Block

TOP_LEVEL_KEYS = {
    "channel", "username", "icon_emoji", "icon_url", "link_names", "parse", "mrkdwn",
    "text", "blocks", "attachments", "as_user",
}
ATTACHMENT_KEYS = {"color", "fallback", "blocks"}
MAX_TEXT = 40000
MAX_BLOCKS = 50

LOCK = threading.Lock()
STATE = {"received": [], "invalid": [], "requests": []}
SCRIPT = deque()


def validate_blocks(blocks, where):
    errors = []
    if not isinstance(blocks, list):
        return [f"{where}: blocks is not a list"]
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"{where}: {len(blocks)} blocks (max {MAX_BLOCKS})")
    for i, b in enumerate(blocks):
        try:
            parsed = Block.parse(b)
            if parsed is None:
                errors.append(f"{where}[{i}]: not a block")
                continue
            parsed.validate_json()
            if parsed.to_dict() != b:
                errors.append(f"{where}[{i}]: round trip differs: {parsed.to_dict()!r} != {b!r}")
        except Exception as e:  # SlackObjectFormationError and friends
            errors.append(f"{where}[{i}]: {type(e).__name__}: {e}")
    return errors


def validate(payload):
    if not isinstance(payload, dict):
        return ["payload is not an object"]
    errors = []
    unknown = set(payload) - TOP_LEVEL_KEYS
    if unknown:
        errors.append(f"unknown keys {sorted(unknown)}")
    if not any(k in payload for k in ("text", "blocks", "attachments")):
        errors.append("no text, blocks or attachments")
    text = payload.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT or not text.strip()):
        errors.append("text missing, empty or too long")
    if "blocks" in payload:
        errors += validate_blocks(payload["blocks"], "blocks")
    if "attachments" in payload:
        atts = payload["attachments"]
        if not isinstance(atts, list):
            errors.append("attachments is not a list")
        else:
            for j, a in enumerate(atts):
                if not isinstance(a, dict) or set(a) - ATTACHMENT_KEYS:
                    errors.append(f"attachments[{j}]: bad keys")
                    continue
                errors += validate_blocks(a.get("blocks", []), f"attachments[{j}].blocks")
    return errors


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    webhook_path = "/services/T000/B000/XXXX"
    token = "xoxb-test"

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    def _send(self, status, body, content_type="text/plain", headers=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status, obj, headers=None):
        self._send(status, json.dumps(obj), "application/json", headers)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        if self.path == "/_state":
            with LOCK:
                self._json(200, STATE)
        else:
            self._send(404, "not_found")

    def do_POST(self):
        raw = self._body()
        if self.path == "/_script":
            with LOCK:
                SCRIPT.extend(json.loads(raw or b"[]"))
            return self._json(200, {"ok": True})
        if self.path == "/_reset":
            with LOCK:
                SCRIPT.clear()
                for v in STATE.values():
                    v.clear()
            return self._json(200, {"ok": True})

        is_api = self.path == "/api/chat.postMessage"
        if not is_api and self.path != self.webhook_path:
            return self._send(404, "no_service")
        with LOCK:
            cmd = SCRIPT.popleft() if SCRIPT else None
            STATE["requests"].append({"t": time.time(), "cmd": cmd, "path": "api" if is_api else "webhook"})
        if cmd and "hang" in cmd:
            time.sleep(float(cmd["hang"]))
        if cmd and cmd.get("status") == 429:
            hdrs = {"Retry-After": str(cmd.get("retry_after", 1))}
            if is_api:
                return self._json(429, {"ok": False, "error": "ratelimited"}, hdrs)
            return self._send(429, "rate_limited", headers=hdrs)
        if cmd and cmd.get("status"):
            status = int(cmd["status"])
            if is_api and status < 500:
                return self._json(200, {"ok": False, "error": cmd.get("error", "invalid_arguments")})
            return self._send(status, cmd.get("error", "internal_error"))

        if is_api and self.headers.get("Authorization") != f"Bearer {self.token}":
            return self._json(200, {"ok": False, "error": "invalid_auth"})
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        errors = validate(payload)
        if is_api and isinstance(payload, dict) and not payload.get("channel"):
            errors.append("channel missing")
        if errors:
            with LOCK:
                STATE["invalid"].append({"errors": errors, "payload": payload})
            if is_api:
                return self._json(200, {"ok": False, "error": "invalid_blocks"})
            return self._send(400, "invalid_blocks")
        with LOCK:
            STATE["received"].append({"endpoint": "api" if is_api else "webhook", "body": payload, "t": time.time()})
        if is_api:
            return self._json(200, {"ok": True, "channel": payload.get("channel"), "ts": f"{time.time():.6f}"})
        return self._send(200, "ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--webhook-path", default=Handler.webhook_path)
    ap.add_argument("--token", default=Handler.token)
    args = ap.parse_args()
    Handler.webhook_path = args.webhook_path
    Handler.token = args.token
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    print(f"READY {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
