#!/usr/bin/env python3
"""A local fake of the Kubernetes API server for sluice's kubernetes_metadata tests.

An HTTPS server on 127.0.0.1 (a self-signed certificate made here with `cryptography`) answers the core/v1
calls the filter makes, with objects built by the official `kubernetes` Python client's models and
serialized by its ApiClient, so every shape is the published OpenAPI schema's:

  GET /api/v1/pods[?fieldSelector=spec.nodeName=N][&watch=1&resourceVersion=RV]   PodList or watch stream
  GET /api/v1/namespaces/NS/pods/NAME                                              Pod or Status 404
  GET /api/v1/namespaces[?watch=1&resourceVersion=RV]                              NamespaceList or stream
  GET /api/v1/namespaces/NS                                                        Namespace or Status 404

A request without the expected bearer token gets Status 401. Watch streams are newline-delimited
WatchEvents; the connection stays open until the test disconnects it.

Control: one JSON command per line on stdin, one JSON answer per line on stdout:
  {"op": "pod", "pod": {...}, "event": "ADDED"|"MODIFIED"|"DELETED"|null}  create/replace a pod (and send
                                        the watch event); "store": false sends the event only (a GET is 404)
  {"op": "namespace", "ns": {...}, "event": ...}                         the same for a namespace
  {"op": "disconnect"}                  close every open watch stream (a dropped connection)
  {"op": "gone"}                        send an ERROR WatchEvent with Status 410 on every pod watch and close it
  {"op": "watch_gone_once"}             answer the next pod watch request with HTTP 410 (Status)
  {"op": "config", "token": T, "delay": S}  expected token; seconds to sleep before answering a GET
  {"op": "requests"}                    every request so far: [{"path", "auth", "client"}] (client: the
                                        common name of the client certificate presented, or null)
  {"op": "watchers"}                    how many pod and namespace watch streams are open
A client certificate is asked for but optional; DIR/client.crt and DIR/client.key are one the CA signed.
Usage: kube_fake.py DIR   writes DIR/ca.crt and prints "PORT <n>" when ready
"""
import datetime
import ipaddress
import json
import os
import queue
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client as k

API = k.ApiClient()
LOCK = threading.Lock()
STATE = {
    "rv": 100,
    "pods": {},        # (ns, name) -> V1Pod dict
    "namespaces": {},  # name -> V1Namespace dict
    "token": None,
    "delay": 0.0,
    "requests": [],
    "watch_gone_once": False,
}
WATCHERS = {"pods": [], "namespaces": []}  # lists of queue.Queue; None in a queue closes the stream


def ser(obj):
    return API.sanitize_for_serialization(obj)


def next_rv():
    STATE["rv"] += 1
    return str(STATE["rv"])


def make_pod(p, rv):
    statuses = [
        k.V1ContainerStatus(name=c["name"], image=c["image"], image_id=c["image_id"],
                            container_id=c.get("id"), ready=True, restart_count=0)
        for c in p.get("containers", [])
    ]
    pod = k.V1Pod(
        api_version="v1", kind="Pod",
        metadata=k.V1ObjectMeta(
            name=p["name"], namespace=p["namespace"], uid=p["uid"], resource_version=rv,
            labels=p.get("labels"), annotations=p.get("annotations"),
            creation_timestamp=datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)),
        spec=k.V1PodSpec(node_name=p.get("node"),
                         containers=[k.V1Container(name=c["name"], image=c["image"])
                                     for c in p.get("containers", [])]),
        status=k.V1PodStatus(phase="Running", pod_ip=p.get("ip"), container_statuses=statuses or None),
    )
    return ser(pod)


def make_ns(n, rv):
    ns = k.V1Namespace(
        api_version="v1", kind="Namespace",
        metadata=k.V1ObjectMeta(
            name=n["name"], uid=n["uid"], resource_version=rv, labels=n.get("labels"),
            annotations=n.get("annotations"),
            creation_timestamp=datetime.datetime.fromisoformat(n.get("created", "2020-01-01T00:00:00+00:00"))),
        status=k.V1NamespaceStatus(phase="Active"),
    )
    return ser(ns)


def status(code, reason, message):
    return ser(k.V1Status(api_version="v1", kind="Status", status="Failure", code=code, reason=reason,
                          message=message, metadata=k.V1ListMeta()))


def broadcast(kind, event):
    for q in WATCHERS[kind]:
        q.put(event)


def command(c):
    op = c.get("op")
    with LOCK:
        if op == "pod":
            rv = next_rv()
            obj = make_pod(c["pod"], rv)
            STATE["pods"][(c["pod"]["namespace"], c["pod"]["name"])] = obj
            if c.get("event") == "DELETED" or c.get("store") is False:
                del STATE["pods"][(c["pod"]["namespace"], c["pod"]["name"])]
            if c.get("event"):
                broadcast("pods", ser(k.V1WatchEvent(type=c["event"], object=obj)))
            return {"ok": True, "rv": rv}
        if op == "namespace":
            rv = next_rv()
            obj = make_ns(c["ns"], rv)
            STATE["namespaces"][c["ns"]["name"]] = obj
            if c.get("event"):
                broadcast("namespaces", ser(k.V1WatchEvent(type=c["event"], object=obj)))
            return {"ok": True, "rv": rv}
        if op == "disconnect":
            for kind in WATCHERS:
                broadcast(kind, None)
            return {"ok": True}
        if op == "gone":
            gone = status(410, "Expired", "too old resource version: 1 (%d)" % STATE["rv"])
            broadcast("pods", ser(k.V1WatchEvent(type="ERROR", object=gone)))
            broadcast("pods", None)
            return {"ok": True}
        if op == "watch_gone_once":
            STATE["watch_gone_once"] = True
            return {"ok": True}
        if op == "config":
            if "token" in c:
                STATE["token"] = c["token"]
            if "delay" in c:
                STATE["delay"] = float(c["delay"])
            return {"ok": True}
        if op == "requests":
            return {"requests": list(STATE["requests"])}
        if op == "watchers":
            return {"pods": len(WATCHERS["pods"]), "namespaces": len(WATCHERS["namespaces"])}
    return {"error": "unknown op %r" % op}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        auth = self.headers.get("Authorization")
        with LOCK:
            STATE["requests"].append({"path": self.path, "auth": auth, "client": client_name(self.connection)})
            token, delay = STATE["token"], STATE["delay"]
        if token is not None and auth != "Bearer " + token:
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        parts = [p for p in url.path.split("/") if p]
        watch = q.get("watch") in ("1", "true")
        if parts[:2] != ["api", "v1"]:
            return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
        rest = parts[2:]
        if not watch and delay:
            time.sleep(delay)
        if rest == ["pods"]:
            node = None
            sel = q.get("fieldSelector", "")
            if sel.startswith("spec.nodeName="):
                node = sel.split("=", 1)[1]
            if watch:
                return self.stream("pods", node)
            with LOCK:
                items = [p for p in STATE["pods"].values() if node is None or p["spec"].get("nodeName") == node]
                rv = str(STATE["rv"])
            return self.send_json(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv},
                                        "items": items})
        if rest == ["namespaces"]:
            if watch:
                return self.stream("namespaces", None)
            with LOCK:
                items = list(STATE["namespaces"].values())
                rv = str(STATE["rv"])
            return self.send_json(200, {"apiVersion": "v1", "kind": "NamespaceList",
                                        "metadata": {"resourceVersion": rv}, "items": items})
        if len(rest) == 2 and rest[0] == "namespaces":
            with LOCK:
                obj = STATE["namespaces"].get(rest[1])
            if obj is None:
                return self.send_json(404, status(404, "NotFound", 'namespaces "%s" not found' % rest[1]))
            return self.send_json(200, obj)
        if len(rest) == 4 and rest[0] == "namespaces" and rest[2] == "pods":
            with LOCK:
                obj = STATE["pods"].get((rest[1], rest[3]))
            if obj is None:
                return self.send_json(404, status(404, "NotFound", 'pods "%s" not found' % rest[3]))
            return self.send_json(200, obj)
        return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))

    def stream(self, kind, node):
        with LOCK:
            if kind == "pods" and STATE["watch_gone_once"]:
                STATE["watch_gone_once"] = False
                gone = status(410, "Expired", "too old resource version")
                return self.send_json(410, gone)
            q = queue.Queue()
            WATCHERS[kind].append(q)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.flush()
            while True:
                try:
                    ev = q.get(timeout=60)
                except queue.Empty:
                    break
                if ev is None:
                    break
                if node is not None and ev["type"] != "ERROR" and ev["object"]["spec"].get("nodeName") != node:
                    continue
                self.wfile.write(json.dumps(ev).encode() + b"\n")
                self.wfile.flush()
        except OSError:
            pass
        finally:
            with LOCK:
                WATCHERS[kind].remove(q)
        self.close_connection = True


def client_name(conn):
    """The common name of the verified client certificate, None without one."""
    for rdn in (conn.getpeercert() or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def signed(ca_key, ca_name, cn, sans, usage, now):
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def write_pair(directory, name, cert, key):
    with open(os.path.join(directory, name + ".crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(directory, name + ".key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")


def make_cert(directory):
    """A cluster CA (written as DIR/ca.crt, as the service account's) and a server certificate it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-fake-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert, key = signed(ca_key, ca_name, "kube-apiserver",
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
                       x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, now)
    with open(os.path.join(directory, "ca.crt"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    client, client_key = signed(ca_key, ca_name, "sluice-node", None, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH, now)
    write_pair(directory, "client", client, client_key)
    return write_pair(directory, "server", cert, key)


def main():
    directory = sys.argv[1]
    crt, keyfile = make_cert(directory)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, keyfile)
    ctx.load_verify_locations(os.path.join(directory, "ca.crt"))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("PORT %d" % server.server_address[1], flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            answer = command(json.loads(line))
        except Exception as e:  # a broken command is the test's bug: say so
            answer = {"error": repr(e)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
