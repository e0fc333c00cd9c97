"""Fault-injecting HTTP proxy in front of moto_server for sluice's AWS output tests.

Usage: python aws_fault_proxy.py UPSTREAM_URL [--tls-cert CERT.pem --tls-key KEY.pem]
       (prints "PORT <n>" once listening on 127.0.0.1; with --tls-cert/--tls-key it speaks HTTPS, control
       endpoints included)

Control (JSON bodies):
  POST /__fault  {"mode": "pass"}
                 {"mode": "partial", "fail_every": 3, "times": 2, "code": "ProvisionedThroughputExceededException"}
                     PutRecords / PutRecordBatch: records at positions i % fail_every == 0 fail for the next `times`
                     requests; only the others are forwarded to moto, and the answer lists per-record errors.
                 {"mode": "partial_match", "substring": "...", "code": "InternalFailure"}
                     every record whose base64 Data contains the substring fails, forever.
                 {"mode": "status", "status": 500, "times": 10, "type": "InternalFailure"}
                     answer the next `times` requests with that status and an AWS JSON error body.
                 {"mode": "hang", "seconds": 3, "times": 2}
                     hold the next `times` requests that long, then answer 500 without forwarding (a timeout
                     that cannot have stored anything).
                 {"mode": "reset", "seconds": 6}
                     close every connection without an answer (TCP reset) for that many seconds.
  GET  /__stats  counters: requests, forwarded records, injected record failures, injected statuses, resets.
"""
import base64
import http.client
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = urllib.parse.urlparse(sys.argv[1])
TLS = dict(zip(sys.argv[2::2], sys.argv[3::2]))
LOCK = threading.Lock()
STATE = {"mode": "pass"}
STATS = {"requests": 0, "forwarded_records": 0, "injected_record_failures": 0, "injected_status": 0, "resets": 0, "hangs": 0}

TARGETS = {
    "Kinesis_20131202.PutRecords": ("Records", "Records", "FailedRecordCount"),
    "Firehose_20150804.PutRecordBatch": ("Records", "RequestResponses", "FailedPutCount"),
}


def bump(key, n=1):
    with LOCK:
        STATS[key] = STATS.get(key, 0) + n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self):
        bump("resets")
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _upstream(self, method, body, headers):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=30)
        hdrs = {k: v for k, v in headers.items() if k.lower() not in ("connection", "content-length", "transfer-encoding")}
        hdrs["Content-Length"] = str(len(body))
        conn.request(method, self.path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in ("connection", "content-length", "transfer-encoding", "server", "date")}
        conn.close()
        return resp.status, data, out_headers

    def _handle(self, method):
        if self.path == "/__stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            return self._send(200, body, {"Content-Type": "application/json"})
        body = self._body()
        if self.path == "/__fault":
            conf = json.loads(body or b"{}")
            with LOCK:
                STATE.clear()
                STATE.update(conf)
                if conf.get("mode") == "reset":
                    STATE["until"] = time.time() + float(conf.get("seconds", 5))
            return self._send(200, b"{}", {"Content-Type": "application/json"})
        bump("requests")
        with LOCK:
            state = dict(STATE)
            mode = state.get("mode", "pass")
            if mode in ("status", "partial", "hang") and state.get("times", 0) <= 0:
                mode = "pass"
            elif mode in ("status", "partial", "hang"):
                target = self.headers.get("X-Amz-Target", "")
                if mode in ("status", "hang") or target in TARGETS:
                    STATE["times"] = state.get("times", 0) - 1
        if mode == "reset":
            if time.time() < state.get("until", 0):
                return self._reset()
            mode = "pass"
        if mode == "hang":
            bump("hangs")
            time.sleep(float(state.get("seconds", 3)))
            mode, state = "status", {"status": 500, "type": "InternalFailure"}
        if mode == "status":
            bump("injected_status")
            err = {"__type": state.get("type", "InternalFailure"), "message": "injected by aws_fault_proxy"}
            return self._send(int(state.get("status", 500)), json.dumps(err).encode(),
                              {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": err["__type"]})
        target = self.headers.get("X-Amz-Target", "")
        if mode in ("partial", "partial_match") and target in TARGETS:
            return self._partial(method, body, target, state)
        status, data, headers = self._upstream(method, body, dict(self.headers))
        if target in TARGETS and status == 200:
            bump("forwarded_records", len(json.loads(body).get(TARGETS[target][0], [])))
        return self._send(status, data, headers)

    def _partial(self, method, body, target, state):
        req_key, resp_key, count_key = TARGETS[target]
        req = json.loads(body)
        records = req.get(req_key, [])
        code = state.get("code", "ProvisionedThroughputExceededException")
        if state.get("mode") == "partial_match":
            sub = state.get("substring", "")
            failing = [sub in base64.b64decode(r.get("Data", "")).decode("utf-8", "replace") for r in records]
        else:
            every = max(1, int(state.get("fail_every", 2)))
            failing = [i % every == 0 for i in range(len(records))]
        keep = [r for r, f in zip(records, failing) if not f]
        answers = []
        if keep:
            req[req_key] = keep
            fwd = json.dumps(req).encode()
            status, data, headers = self._upstream(method, fwd, dict(self.headers))
            if status != 200:
                return self._send(status, data, headers)
            answers = json.loads(data).get(resp_key, [])
            bump("forwarded_records", len(keep))
        bump("injected_record_failures", sum(failing))
        out, it = [], iter(answers)
        for f in failing:
            if f:
                out.append({"ErrorCode": code, "ErrorMessage": "injected by aws_fault_proxy"})
            else:
                out.append(next(it))
        resp = {count_key: sum(failing), resp_key: out}
        if count_key == "FailedPutCount":
            resp["Encrypted"] = False
        return self._send(200, json.dumps(resp).encode(), {"Content-Type": "application/x-amz-json-1.1"})

    def do_POST(self):
        self._handle("POST")

    def do_GET(self):
        self._handle("GET")

    def do_PUT(self):
        self._handle("PUT")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_DELETE(self):
        self._handle("DELETE")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if "--tls-cert" in TLS:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(TLS["--tls-cert"], TLS["--tls-key"])
        # The handshake runs in each request's thread: a client refusing the certificate only ends its own.
        server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
