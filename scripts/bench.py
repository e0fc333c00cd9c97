#!/usr/bin/env python3
"""sluice benchmark harness: runs each bench/*.conf case on the standard workloads and reports
median wall seconds, events/s, MiB/s, CPU seconds (user+sys) per million events and peak RSS.

  python3 scripts/bench.py [--lines N] [--runs 3] [--data DIR] [--cases 1,2,...] [--json FILE]

Builds the release binary, generates the workloads with ../shared/bench/gen_logs.py into DIR if they are
missing, warms the page cache before each run, and writes a table to stdout and JSON to --json
(default bench/results/latest.json). Run on demand, not in CI.
"""
import argparse, json, os, resource, shutil, signal, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, '..', 'shared', 'bench', 'gen_logs.py')
BIN = os.path.join(ROOT, 'target', 'release', 'sluice')

# case number -> (config, workload file, events per line-count function)
CASES = {
    1: ('1_w1_json_null.conf', 'w1.jsonl'),
    2: ('2_w2_cri_json_null.conf', 'w2.cri.log'),
    3: ('3_w3_apache2_null.conf', 'w3.access.log'),
    4: ('4_w1_grep_null.conf', 'w1.jsonl'),
    5: ('5_w1_rewrite_transform_null.conf', 'w1.jsonl'),
    6: ('6_w1_mask_null.conf', 'w1.jsonl'),
    7: ('7_w1_file_output.conf', 'w1.jsonl'),
    8: ('8_idle.conf', None),
}


def ensure_workloads(data, lines):
    files = ['w1.jsonl', 'w2.cri.log', 'w3.access.log']
    marker = os.path.join(data, '.lines')
    have = open(marker).read().strip() if os.path.exists(marker) else ''
    if all(os.path.exists(os.path.join(data, f)) for f in files) and have == str(lines):
        return
    os.makedirs(data, exist_ok=True)
    print(f'generating workloads ({lines} lines) into {data} ...', file=sys.stderr)
    subprocess.run([sys.executable, GEN, data, str(lines)], check=True)
    open(marker, 'w').write(str(lines))


def warm(path):
    with open(path, 'rb') as f:
        while f.read(1 << 22):
            pass


def run_once(conf, env):
    """Run sluice to completion; return (wall s, user+sys s, peak RSS KiB, exit code)."""
    start = time.monotonic()
    p = subprocess.Popen([BIN, '-q', '-c', conf], env=env, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, code


def run_idle(conf, env):
    p = subprocess.Popen([BIN, '-q', '-c', conf], env=env, stdout=subprocess.DEVNULL)
    time.sleep(5)
    rss = 0
    with open(f'/proc/{p.pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                rss = int(line.split()[1])
    p.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(p.pid, 0)
    return rss, ru.ru_utime + ru.ru_stime, os.waitstatus_to_exitcode(status)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--lines', type=int, default=1_000_000)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--data', default=os.path.join(ROOT, '.bench-data'))
    ap.add_argument('--cases', default=','.join(str(c) for c in CASES))
    ap.add_argument('--json', default=os.path.join(ROOT, 'bench', 'results', 'latest.json'))
    ap.add_argument('--no-build', action='store_true')
    a = ap.parse_args()

    if not a.no_build:
        subprocess.run(['cargo', 'build', '--release', '-p', 'sluice', '--quiet'], cwd=ROOT, check=True)
    ensure_workloads(a.data, a.lines)
    rows = []
    for case in [int(c) for c in a.cases.split(',')]:
        conf_name, workload = CASES[case]
        conf = os.path.join(ROOT, 'bench', conf_name)
        if case == 8:
            tmp = tempfile.mkdtemp(prefix='sluice-bench-')
            open(os.path.join(tmp, 'empty.log'), 'w').close()
            env = dict(os.environ, BENCH_DATA=a.data, BENCH_TMP=tmp)
            rss, cpu, code = run_idle(conf, env)
            shutil.rmtree(tmp, ignore_errors=True)
            rows.append({'case': case, 'name': conf_name[:-5], 'idle_rss_mib': rss / 1024, 'exit': code})
            continue
        path = os.path.join(a.data, workload)
        size = os.path.getsize(path)
        events = a.lines
        walls, cpus, rsss, codes = [], [], [], []
        for _ in range(a.runs):
            tmp = tempfile.mkdtemp(prefix='sluice-bench-')
            env = dict(os.environ, BENCH_DATA=a.data, BENCH_TMP=tmp)
            warm(path)
            wall, cpu, rss, code = run_once(conf, env)
            shutil.rmtree(tmp, ignore_errors=True)
            walls.append(wall); cpus.append(cpu); rsss.append(rss); codes.append(code)
        wall = statistics.median(walls)
        cpu = statistics.median(cpus)
        rows.append({
            'case': case, 'name': conf_name[:-5], 'events': events, 'bytes': size,
            'wall_s': round(wall, 3), 'events_per_s': round(events / wall), 'mib_per_s': round(size / wall / 2**20, 1),
            'cpu_s_per_million': round(cpu / (events / 1e6), 3), 'peak_rss_mib': round(max(rsss) / 1024, 1),
            'exit_codes': codes,
        })
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, 'w') as f:
        json.dump({'lines': a.lines, 'runs': a.runs, 'results': rows}, f, indent=2)
    print(f'| case | wall s (median) | events/s | MiB/s | CPU-s per 1M events | peak RSS MiB |')
    print(f'|---|---|---|---|---|---|')
    for r in rows:
        if r['case'] == 8:
            print(f"| {r['name']} | | | | | {r['idle_rss_mib']:.1f} (after 5 s) |")
        else:
            bad = '' if all(c == 0 for c in r['exit_codes']) else f" (exit {r['exit_codes']})"
            print(f"| {r['name']}{bad} | {r['wall_s']} | {r['events_per_s']:,} | {r['mib_per_s']} | {r['cpu_s_per_million']} | {r['peak_rss_mib']} |")


if __name__ == '__main__':
    main()
