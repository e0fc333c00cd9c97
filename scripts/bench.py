#!/usr/bin/env python3
"""sluice benchmark harness: runs each bench/*.conf case on the standard workloads and reports
median wall seconds, events/s, MiB/s, CPU seconds (user+sys) per million events and peak RSS.

  python3 scripts/bench.py [--lines N] [--runs 3] [--data DIR] [--cases 1,2,...] [--json FILE] [--no-build]

Builds the release binary, generates the workloads with ../shared/bench/gen_logs.py into DIR if they are
missing, warms the page cache before each run, and writes a table to stdout and JSON to --json
(default bench/results/latest.json). Run on demand, not in CI.

Each case is a plain timed command: `sluice -q -c bench/N_*.conf` with `exit_on_eof true`, so sluice reads
the workload to its end, flushes every buffer and exits 0. CPU time (user+sys) and peak RSS come from wait4's
rusage of that one process. Case 8 (idle) reads VmRSS after 5 s and then stops sluice with SIGTERM.
On a shared machine, compare CPU-seconds per million events: wall time depends on what else is running.

--monitoring adds Prometheus monitoring to every case (the `prometheus` endpoint on a free port with
`prometheus_monitor`, `prometheus_output_monitor` and `prometheus_tail_monitor`) and scrapes /metrics every
0.25 s during each run (a Prometheus server scrapes every 15-60 s): compare with a run without it to see what
metrics cost.

Cases 9-13 end in a cloud output (kinesis_streams, mask + kinesis_streams, kinesis_firehose, s3 gzip,
google_cloud). For each run the harness starts bench/endpoint.py, a local HTTPS stand-in for the service with
a certificate authority made for the run (passed to sluice as SSL_CERT_FILE, so certificates are verified as in
production); it answers like the real API and counts every record by its id, and the case fails unless each
of the --lines records arrived exactly once. CPU time and RSS are sluice's alone; the endpoint's CPU time is
reported beside them (it is Python, and may be what limits the wall time).
"""
import argparse, datetime, json, os, platform, resource, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, '..', 'shared', 'bench', 'gen_logs.py')
BIN = os.path.join(os.environ.get('CARGO_TARGET_DIR') or os.path.join(ROOT, 'target'), 'release', 'sluice')

# case number -> (config, workload file). Every workload holds --lines records (W2 has more lines: every 50th
# record is split into a P and an F line, which the cri parser joins back into one event).
CASES = {
    1: ('1_w1_json_null.conf', 'w1.jsonl'),
    2: ('2_w2_cri_json_null.conf', 'w2.cri.log'),
    3: ('3_w3_apache2_null.conf', 'w3.access.log'),
    4: ('4_w1_grep_null.conf', 'w1.jsonl'),
    5: ('5_w1_rewrite_transform_null.conf', 'w1.jsonl'),
    6: ('6_w1_mask_null.conf', 'w1.jsonl'),
    7: ('7_w1_file_output.conf', 'w1.jsonl'),
    8: ('8_idle.conf', None),
    # Output-path cases (issue 19): each against bench/endpoint.py, a local HTTPS stand-in for the service.
    9: ('9_w1_kinesis_streams.conf', 'w1.jsonl'),
    10: ('10_w1_mask_kinesis_streams.conf', 'w1.jsonl'),
    11: ('11_w1_kinesis_firehose.conf', 'w1.jsonl'),
    12: ('12_w1_s3_gzip.conf', 'w1.jsonl'),
    13: ('13_w1_google_cloud.conf', 'w1.jsonl'),
}
ENDPOINT_CASES = {9, 10, 11, 12, 13}
ENDPOINT = os.path.join(ROOT, 'bench', 'endpoint.py')

# Targets from issue 5: (max CPU-s per 1M events, max peak RSS in MB); case 8: max idle RSS in MB.
TARGETS = {
    1: (0.8, 30), 2: (1.3, None), 3: (1.35, None), 4: (0.95, None), 5: (1.5, None), 6: (3.0, None),
    7: (1.8, None), 8: (None, 10),
    # Issue 19: CPU-s per 1M records, and peak RSS <= 64 MB with no buffer tuning.
    9: (2.0, 64), 10: (2.6, 64), 11: (2.5, 64), 12: (2.5, 64), 13: (2.5, 64),
}

MONITORING = '''
<source>
  @type prometheus
  bind 127.0.0.1
  port {port}
</source>
<source>
  @type prometheus_monitor
</source>
<source>
  @type prometheus_output_monitor
</source>
<source>
  @type prometheus_tail_monitor
</source>
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def with_monitoring(conf, tmp):
    """A copy of `conf` with Prometheus monitoring, and the metrics URL."""
    port = free_port()
    out = os.path.join(tmp, 'monitored.conf')
    with open(conf) as f, open(out, 'w') as o:
        o.write(f.read() + MONITORING.format(port=port))
    return out, f'http://127.0.0.1:{port}/metrics'


class Scraper:
    """GET the metrics URL every 0.25 s until stopped (far more often than Prometheus would); counts the
    scrapes that answered."""

    def __init__(self, url):
        self.url, self.ok, self.stop = url, 0, threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop.wait(0.25):
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    r.read()
                    self.ok += 1
            except OSError:
                pass

    def finish(self):
        self.stop.set()
        self.t.join()
        return self.ok


RUN_TIMEOUT = 600  # seconds: a case that does not finish by then is killed and reported as failed


def ensure_workloads(data, lines):
    files = ['w1.jsonl', 'w2.cri.log', 'w3.access.log']
    marker = os.path.join(data, '.lines')
    have = open(marker).read().strip() if os.path.exists(marker) else ''
    if all(os.path.exists(os.path.join(data, f)) for f in files) and have == str(lines):
        return
    os.makedirs(data, exist_ok=True)
    print(f'generating workloads ({lines} lines) into {data} ...', file=sys.stderr)
    subprocess.run([sys.executable, GEN, data, str(lines)], check=True)
    with open(marker, 'w') as f:
        f.write(str(lines))


def warm(path):
    with open(path, 'rb') as f:
        while f.read(1 << 22):
            pass


def tail_file(path, n=5):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-n:]).rstrip()
    except OSError:
        return ''


def vm_hwm(pid):
    """The process's own peak RSS in KiB so far (VmHWM), 0 once it has exited."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_once(conf, env, log):
    """Run sluice to completion; return (wall s, user+sys s, peak RSS KiB, exit code).

    wait4's ru_maxrss is not enough on its own: Python starts the child with vfork, and Linux carries the
    parent's RSS high-water mark across exec, so a child smaller than this script reports the script's RSS.
    The child's own VmHWM is polled instead whenever ru_maxrss is not above the script's own peak."""
    start = time.monotonic()
    with open(log, 'w') as err:
        p = subprocess.Popen([BIN, '-q', '-c', conf], env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = start + RUN_TIMEOUT
    hwm = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        hwm = max(hwm, vm_hwm(p.pid))
        if time.monotonic() > deadline:
            p.kill()
            _, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.005)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss = ru.ru_maxrss if ru.ru_maxrss > own else max(hwm, 1)
    return wall, ru.ru_utime + ru.ru_stime, rss, code


class Endpoint:
    """bench/endpoint.py in the background: HTTPS on 127.0.0.1 with a CA made for the run, counting records."""

    def __init__(self, lines):
        self.state = tempfile.mkdtemp(prefix='sluice-bench-endpoint-')
        self.p = subprocess.Popen([sys.executable, ENDPOINT, '--lines', str(lines), '--state', self.state, '--tls'],
                                  stdout=subprocess.DEVNULL)
        port = os.path.join(self.state, 'port')
        deadline = time.monotonic() + 30
        while not os.path.exists(port):
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise SystemExit('bench/endpoint.py did not start')
            time.sleep(0.02)
        self.url = 'https://127.0.0.1:' + open(port).read().strip()
        # The SDK's TLS client reads trusted roots from SSL_CERT_FILE, so certificates stay verified.
        self.env = {'BENCH_ENDPOINT': self.url, 'SSL_CERT_FILE': os.path.join(self.state, 'ca.pem'),
                    'BENCH_GCP_KEY': self.gcp_key()}

    def gcp_key(self):
        """A service-account key file (a fresh RSA key) whose token_uri is the endpoint, for google_cloud."""
        pem = subprocess.run(['openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
                             check=True, capture_output=True, text=True).stdout
        path = os.path.join(self.state, 'gcp-key.json')
        with open(path, 'w') as f:
            json.dump({'type': 'service_account', 'project_id': 'bench', 'private_key_id': 'bench',
                       'private_key': pem, 'client_email': 'bench@bench.iam.gserviceaccount.com',
                       'client_id': '1', 'token_uri': self.url + '/token'}, f)
        return path

    def finish(self):
        """Stop it; return (counts, its CPU seconds)."""
        self.p.send_signal(signal.SIGTERM)
        _, _, ru = os.wait4(self.p.pid, 0)
        try:
            with open(os.path.join(self.state, 'counts.json')) as f:
                counts = json.load(f)
        except (OSError, ValueError):
            counts = {}
        shutil.rmtree(self.state, ignore_errors=True)
        return counts, ru.ru_utime + ru.ru_stime


def run_idle(conf, env, log):
    with open(log, 'w') as err:
        p = subprocess.Popen([BIN, '-q', '-c', conf], env=env, stdout=subprocess.DEVNULL, stderr=err)
    time.sleep(5)
    rss = {}
    try:
        with open(f'/proc/{p.pid}/status') as f:
            for line in f:
                key = line.split(':', 1)[0]
                if key in ('VmRSS', 'RssAnon', 'RssFile'):
                    rss[key] = int(line.split()[1])
    except OSError:
        pass
    p.send_signal(signal.SIGTERM)
    try:
        code = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        code = p.wait()
    return rss, code


def count_output_lines(tmp):
    """Lines written by case 7's file output (a check that every event arrived)."""
    n = 0
    out = os.path.join(tmp, 'out')
    for dirpath, _, names in os.walk(out):
        for name in names:
            with open(os.path.join(dirpath, name), 'rb') as f:
                while True:
                    b = f.read(1 << 22)
                    if not b:
                        break
                    n += b.count(b'\n')
    return n


def expected_events(case, path, lines):
    """How many events reach the output: all of them, except for case 4's grep (ERROR and FATAL only)."""
    if case != 4:
        return lines
    n = 0
    with open(path, 'rb') as f:
        for line in f:
            if b'"level":"ERROR"' in line or b'"level":"FATAL"' in line:
                n += 1
    return n


def verify(case, conf, path, data, lines, log):
    """Run a case once with its null output swapped for stdout and count the events that come out."""
    tmp = tempfile.mkdtemp(prefix='sluice-bench-')
    try:
        vconf = os.path.join(tmp, 'verify.conf')
        with open(conf) as src, open(vconf, 'w') as dst:
            dst.write(src.read().replace('@type null', '@type stdout'))
        env = dict(os.environ, BENCH_DATA=data, BENCH_TMP=tmp)
        with open(log, 'w') as err:
            p = subprocess.Popen([BIN, '-q', '-c', vconf], env=env, stdout=subprocess.PIPE, stderr=err)
            n = sum(1 for _ in p.stdout)
            code = p.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return n, expected_events(case, path, lines), code


def git(*args):
    try:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ''


def machine():
    cpu = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return {'cpus': os.cpu_count(), 'cpu_model': cpu, 'kernel': platform.release(),
            'load_avg_at_start': [round(x, 2) for x in os.getloadavg()]}


def verdict(case, row):
    cpu_t, rss_t = TARGETS.get(case, (None, None))
    if row.get('failed'):
        return 'FAILED'
    parts = []
    if case == 8:
        rss = row['idle_rss_mib'] * 2**20 / 1e6
        return ('met' if rss <= rss_t else 'missed') + f' (≤ {rss_t} MB)'
    if cpu_t is not None:
        parts.append(('met' if row['cpu_s_per_million'] <= cpu_t else 'missed') + f' (≤ {cpu_t} CPU-s)')
    if rss_t is not None:
        rss = row['peak_rss_mib'] * 2**20 / 1e6
        parts.append(('RSS met' if rss <= rss_t else 'RSS missed') + f' (≤ {rss_t} MB)')
    return ', '.join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lines', type=int, default=1_000_000)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--data', default=os.path.join(ROOT, '.bench-data'))
    ap.add_argument('--cases', default=','.join(str(c) for c in CASES))
    ap.add_argument('--json', default=os.path.join(ROOT, 'bench', 'results', 'latest.json'))
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--monitoring', action='store_true',
                    help='add Prometheus monitoring to each case and scrape it every 0.25 s')
    ap.add_argument('--verify', action='store_true',
                    help='also run each null-output case once with stdout and check the number of events out')
    a = ap.parse_args()

    if not a.no_build:
        subprocess.run(['cargo', 'build', '--release', '-p', 'sluice', '--quiet'], cwd=ROOT, check=True)
    if not os.path.exists(BIN):
        sys.exit(f'{BIN} is missing: build it with cargo build --release -p sluice')
    ensure_workloads(a.data, a.lines)
    meta = {
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'commit': git('rev-parse', '--short', 'HEAD'),
        'uncommitted_changes': bool(git('status', '--porcelain', '--untracked-files=no')),
        'command': ' '.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        'machine': machine(),
        'lines': a.lines, 'runs': a.runs, 'monitoring': a.monitoring,
    }
    logdir = tempfile.mkdtemp(prefix='sluice-bench-logs-')
    rows = []
    for case in [int(c) for c in a.cases.split(',')]:
        conf_name, workload = CASES[case]
        conf = os.path.join(ROOT, 'bench', conf_name)
        name = conf_name[:-5]
        log = os.path.join(logdir, f'{name}.stderr')
        print(f'case {name} ...', file=sys.stderr)
        if case == 8:
            tmp = tempfile.mkdtemp(prefix='sluice-bench-')
            open(os.path.join(tmp, 'empty.log'), 'w').close()
            env = dict(os.environ, BENCH_DATA=a.data, BENCH_TMP=tmp)
            rss, code = run_idle(conf, env, log)
            shutil.rmtree(tmp, ignore_errors=True)
            # RssFile is the executable's and libraries' pages (shared, reclaimable); RssAnon is sluice's heap.
            row = {'case': case, 'name': name, 'idle_rss_mib': round(rss.get('VmRSS', 0) / 1024, 1),
                   'idle_rss_anon_mib': round(rss.get('RssAnon', 0) / 1024, 1),
                   'idle_rss_file_mib': round(rss.get('RssFile', 0) / 1024, 1),
                   'exit_codes': [code], 'failed': not rss.get('VmRSS') or code != 0}
            if row['failed']:
                row['stderr_tail'] = tail_file(log)
            row['target'] = verdict(case, row)
            rows.append(row)
            continue
        path = os.path.join(a.data, workload)
        size = os.path.getsize(path)
        events = a.lines
        walls, cpus, rsss, codes, outs, arrived, ep_cpus, scrapes = [], [], [], [], [], [], [], []
        for _ in range(a.runs):
            tmp = tempfile.mkdtemp(prefix='sluice-bench-')
            env = dict(os.environ, BENCH_DATA=a.data, BENCH_TMP=tmp)
            ep = Endpoint(a.lines) if case in ENDPOINT_CASES else None
            if ep:
                env.update(ep.env)
            warm(path)
            scraper = None
            run_conf = conf
            if a.monitoring:
                run_conf, url = with_monitoring(conf, tmp)
                scraper = Scraper(url)
            wall, cpu, rss, code = run_once(run_conf, env, log)
            if scraper:
                scrapes.append(scraper.finish())
            if ep:
                counts, ep_cpu = ep.finish()
                arrived.append(counts)
                ep_cpus.append(ep_cpu)
            if case == 7 and code == 0:
                outs.append(count_output_lines(tmp))
            shutil.rmtree(tmp, ignore_errors=True)
            walls.append(wall); cpus.append(cpu); rsss.append(rss); codes.append(code)
            if code != 0:
                break  # a failing case is not worth two more runs
        wall = statistics.median(walls)
        cpu = statistics.median(cpus)
        row = {
            'case': case, 'name': name, 'events': events, 'bytes': size,
            'wall_s': round(wall, 3), 'events_per_s': round(events / wall), 'mib_per_s': round(size / wall / 2**20, 1),
            'cpu_s_per_million': round(cpu / (events / 1e6), 3),
            'cpu_s_per_million_all_runs': [round(c / (events / 1e6), 3) for c in cpus],
            'peak_rss_mib': round(max(rsss) / 1024, 1),
            'exit_codes': codes, 'failed': any(c != 0 for c in codes),
        }
        if scrapes:
            row['scrapes'] = scrapes
        if a.verify and case != 7 and not row['failed']:
            got, want, vcode = verify(case, conf, path, a.data, events, log)
            row['verified_events_out'] = got
            if got != want or vcode != 0:
                row['failed'] = True
                row['note'] = f'verify run emitted {got} events (exit {vcode}), expected {want}'
        if arrived:
            # Every record exactly once: as many as were read, each id once, none unknown.
            row['endpoint_counts'] = arrived
            row['endpoint_cpu_s'] = [round(c, 2) for c in ep_cpus]
            bad = [c for c in arrived if (c.get('records'), c.get('distinct'), c.get('duplicates'), c.get('unknown'))
                   != (events, events, 0, 0)]
            if bad and not row['failed']:
                row['failed'] = True
                row['note'] = f'endpoint counted {bad[0]}, expected {events} distinct records exactly once'
        if outs:
            row['output_lines'] = outs
            if any(o != events for o in outs):
                row['failed'] = True
                row['note'] = f'file output holds {outs} lines, expected {events}'
        if row['failed']:
            row['stderr_tail'] = tail_file(log)
        row['target'] = verdict(case, row)
        rows.append(row)
    shutil.rmtree(logdir, ignore_errors=True)
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, 'w') as f:
        json.dump(dict(meta, results=rows), f, indent=2, ensure_ascii=False)
        f.write('\n')

    dirty = ' + uncommitted changes' if meta['uncommitted_changes'] else ''
    print(f"sluice {meta['commit']}{dirty}, {meta['date']}, {meta['machine']['cpus']} CPUs "
          f"({meta['machine']['cpu_model']}), {a.lines:,} lines, median of {a.runs} runs")
    print('| case | wall s (median) | events/s | MiB/s | CPU-s per 1M events | peak RSS MiB | target |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        if r['case'] == 8:
            bad = '' if not r['failed'] else f" (FAILED: exit {r['exit_codes']})"
            print(f"| {r['name']}{bad} | | | | | {r['idle_rss_mib']:.1f} after 5 s ({r['idle_rss_anon_mib']} anon + "
                  f"{r['idle_rss_file_mib']} file) | {r['target']} |")
        else:
            bad = '' if not r['failed'] else f" (FAILED: exit {r['exit_codes']}{'; ' + r['note'] if r.get('note') else ''})"
            print(f"| {r['name']}{bad} | {r['wall_s']} | {r['events_per_s']:,} | {r['mib_per_s']} | "
                  f"{r['cpu_s_per_million']} | {r['peak_rss_mib']} | {r['target']} |")
    for r in rows:
        if r.get('endpoint_counts'):
            c = r['endpoint_counts'][-1]
            print(f"{r['name']}: endpoint received {c.get('records')} records ({c.get('distinct')} distinct, "
                  f"{c.get('duplicates')} duplicates) in {c.get('requests')} requests; endpoint CPU-s per run "
                  f"{r['endpoint_cpu_s']}")
        if r.get('scrapes'):
            print(f"{r['name']}: /metrics answered {r['scrapes']} scrapes (per run)")
    for r in rows:
        if r.get('stderr_tail'):
            print(f"\n{r['name']} stderr (last lines):\n{r['stderr_tail']}")
    print(f'\nJSON: {os.path.relpath(a.json, ROOT)}')


if __name__ == '__main__':
    main()
