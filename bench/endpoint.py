#!/usr/bin/env python3
"""A fast local stand-in for the cloud APIs of the output-path benchmark cases (scripts/bench.py).

  endpoint.py --lines N --state DIR [--tls]

Serves on 127.0.0.1 (a free port, written to DIR/port once it listens) and answers like the real APIs:
  Kinesis Data Streams  PutRecords      (JSON 1.1, X-Amz-Target Kinesis_20131202.PutRecords)
  Firehose              PutRecordBatch  (JSON 1.1, X-Amz-Target Firehose_20150804.PutRecordBatch)
  S3                    HeadBucket, HeadObject, PutObject (path style; gzip bodies; aws-chunked decoded)
  Cloud Logging         POST /v2/entries:write, and POST /token for a service-account token
every request succeeding. It counts every record by the `id=N` at the end of its W1 `msg`, so the harness can
check that each of the N records arrived exactly once. With --tls it makes a CA and a server certificate for
127.0.0.1 with openssl (DIR/ca.pem is the CA to trust). Counts go to DIR/counts.json on SIGTERM.
It checks no signature: it stands in for the service's speed, not its security.
"""
import argparse, base64, gzip, json, os, re, signal, socket, ssl, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ID = re.compile(rb' id=(\d+)')
DATA = re.compile(rb'"Data":"([^"]*)"')


class Counts:
    def __init__(self, n):
        self.seen = bytearray(n)
        self.lock = threading.Lock()
        self.records = 0
        self.duplicates = 0
        self.unknown = 0
        self.requests = 0
        self.bytes = 0

    def add_ids(self, ids, body_len):
        with self.lock:
            self.requests += 1
            self.bytes += body_len
            for i in ids:
                self.records += 1
                if i is None or i >= len(self.seen):
                    self.unknown += 1
                elif self.seen[i]:
                    self.duplicates += 1
                else:
                    self.seen[i] = 1

    def summary(self):
        with self.lock:
            distinct = sum(self.seen)
            return {'records': self.records, 'distinct': distinct, 'missing': len(self.seen) - distinct,
                    'duplicates': self.duplicates, 'unknown': self.unknown, 'requests': self.requests,
                    'bytes': self.bytes}


def id_of(data):
    m = ID.search(data)
    return int(m.group(1)) if m else None


def aws_chunked(body):
    """The payload of an `aws-chunked` body: hex-size[;ext]\\r\\n data \\r\\n ... 0 \\r\\n trailers."""
    out, pos = [], 0
    while True:
        end = body.index(b'\r\n', pos)
        size = int(body[pos:end].split(b';', 1)[0], 16)
        pos = end + 2
        if size == 0:
            return b''.join(out)
        out.append(body[pos:pos + size])
        pos += size + 2


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    counts = None
    objects = set()

    def setup(self):
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm and the client's delayed
        # ACK hold every response for 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a):
        pass

    def body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            parts = []
            while True:
                size = int(self.rfile.readline().split(b';', 1)[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b''.join(parts)
        else:
            raw = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        if 'aws-chunked' in self.headers.get('Content-Encoding', ''):
            raw = aws_chunked(raw)
        return raw

    def reply(self, code, body=b'', ctype='application/x-amz-json-1.1', extra=()):
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != 'HEAD':
            self.wfile.write(body)

    def do_POST(self):
        raw = self.body()
        target = self.headers.get('X-Amz-Target', '')
        if target.endswith('.PutRecords') or target.endswith('.PutRecordBatch'):
            datas = DATA.findall(raw)
            self.counts.add_ids([id_of(base64.b64decode(d)) for d in datas], len(raw))
            if target.endswith('.PutRecords'):
                one = b'{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898",' \
                      b'"ShardId":"shardId-000000000000"}'
                body = b'{"FailedRecordCount":0,"Records":[' + b','.join([one] * len(datas)) + b']}'
            else:
                one = b'{"RecordId":"49543463076548007577105092703039560359975228518395019266"}'
                body = b'{"Encrypted":false,"FailedPutCount":0,"RequestResponses":[' + \
                       b','.join([one] * len(datas)) + b']}'
            return self.reply(200, body)
        if self.path.startswith('/token'):
            return self.reply(200, b'{"access_token":"bench-token","expires_in":3600,"token_type":"Bearer"}',
                              'application/json')
        if self.path.startswith('/v2/entries:write'):
            req = json.loads(raw)
            ids = [id_of(json.dumps(e.get('jsonPayload', e.get('textPayload', ''))).encode())
                   for e in req.get('entries', [])]
            self.counts.add_ids(ids, len(raw))
            return self.reply(200, b'{}', 'application/json')
        self.reply(400, b'{"__type":"UnknownOperationException"}')

    def do_HEAD(self):
        parts = self.path.split('?', 1)[0].strip('/').split('/', 1)
        if len(parts) == 1 or parts[1] in self.objects:
            return self.reply(200, b'', 'application/xml')
        self.reply(404, b'', 'application/xml')

    def do_PUT(self):
        raw = self.body()
        key = self.path.split('?', 1)[0].strip('/')
        parts = key.split('/', 1)
        if len(parts) == 2:
            self.objects.add(parts[1])
            data = gzip.decompress(raw) if raw[:2] == b'\x1f\x8b' else raw
            self.counts.add_ids([id_of(line) for line in data.split(b'\n') if line], len(raw))
        self.reply(200, b'', 'application/xml', [('ETag', '"bench"')])

    def do_GET(self):
        self.reply(200, json.dumps(self.counts.summary()).encode(), 'application/json')


def make_certs(d):
    ca_key, ca, key, csr, crt = (os.path.join(d, n) for n in ('ca.key', 'ca.pem', 'srv.key', 'srv.csr', 'srv.pem'))
    ext = os.path.join(d, 'srv.ext')
    with open(ext, 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n'
                'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n')
    run = lambda *a: subprocess.run(['openssl', *a], check=True, capture_output=True)
    run('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', ca_key,
        '-out', ca, '-days', '2', '-subj', '/CN=sluice bench CA')
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr,
        '-subj', '/CN=127.0.0.1')
    run('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca_key, '-CAcreateserial', '-out', crt, '-days', '2',
        '-extfile', ext)
    return crt, key


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lines', type=int, required=True)
    ap.add_argument('--state', required=True)
    ap.add_argument('--tls', action='store_true')
    a = ap.parse_args()
    Handler.counts = Counts(a.lines)
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    if a.tls:
        crt, key = make_certs(a.state)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)

    def stop(*_):
        with open(os.path.join(a.state, 'counts.json'), 'w') as f:
            json.dump(Handler.counts.summary(), f)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    with open(os.path.join(a.state, 'port.tmp'), 'w') as f:
        f.write(str(srv.server_address[1]))
    os.replace(os.path.join(a.state, 'port.tmp'), os.path.join(a.state, 'port'))
    srv.serve_forever()


if __name__ == '__main__':
    sys.exit(main())
