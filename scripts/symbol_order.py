#!/usr/bin/env python3
"""Write crates/sluice/symbol-order.txt: the functions an idle sluice runs, shape by shape.

crates/sluice/build.rs hands the file to lld (--symbol-ordering-file), which packs those functions at the
start of .text, so an idle process maps a few hundred KiB of code instead of a 64 KiB run around each
function (docs/BENCHMARKS.md, "Idle memory with kubernetes_metadata (issue 21)"). Write the file again
after a toolchain or dependency update (names carry crate hashes), and now and then as code changes (ThinLTO
gives a changed crate's local functions new `.llvm.N` suffixes): stale names are skipped, not errors.

Runs the release binary under valgrind's callgrind (apt-get install valgrind) for a few seconds in each
idle shape: bench case 8 (one tail on an empty file into null), the same with kubernetes_metadata
tag-only, with an API server that is down, and with the test API server (tests/python/kube_fake.py,
which needs the test venv's `kubernetes` and `cryptography`) answering over TLS.

usage: scripts/symbol_order.py [--bin target/release/sluice] [--python .venv/bin/python] [--seconds 12]
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'crates', 'sluice', 'symbol-order.txt')


def closed_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def configs(tmp, fake_port, fake_dir):
    src = (f'<source>\n  @type tail\n  path {tmp}/empty.log\n  pos_file {tmp}/empty.pos\n  tag idle\n'
           '  <parse>\n    @type none\n  </parse>\n</source>\n')
    out = '<match **>\n  @type null\n</match>\n'
    kube = '<filter kube.**>\n  @type kubernetes_metadata\n{}</filter>\n'
    shapes = [
        ('idle', src + out),
        ('kube-tag-only', src + kube.format('') + out),
        ('kube-api-down', src + kube.format(f'  kubernetes_url https://127.0.0.1:{closed_port()}\n') + out),
    ]
    if fake_port:
        shapes.append(('kube-api', src + kube.format(
            f'  kubernetes_url https://127.0.0.1:{fake_port}\n  ca_file {fake_dir}/ca.crt\n') + out))
    return shapes


def called(path):
    """Function names of a callgrind file (uncompressed names), in order of appearance."""
    names = []
    with open(path, errors='replace') as f:
        for line in f:
            if line.startswith(('fn=', 'cfn=')):
                name = re.sub(r'^\(\d+\) ?', '', line.split('=', 1)[1].strip())
                if name:
                    names.append(name)
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--bin', default=os.path.join(ROOT, 'target', 'release', 'sluice'))
    ap.add_argument('--python', default=os.environ.get('SLUICE_TEST_PYTHON', os.path.join(ROOT, '.venv/bin/python')))
    ap.add_argument('--seconds', type=float, default=12)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix='sluice-order-')
    open(os.path.join(tmp, 'empty.log'), 'w').close()
    fake, fake_port = None, None
    try:
        fake = subprocess.Popen([a.python, os.path.join(ROOT, 'tests/python/kube_fake.py'), tmp],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        fake_port = int(fake.stdout.readline().split()[1])
    except (OSError, ValueError, IndexError):
        print('kube_fake.py did not start: the kube-api shape is left out', file=sys.stderr)
    env = {k: v for k, v in os.environ.items() if not k.startswith('KUBERNETES_')}
    in_binary = set(subprocess.run(['nm', '--defined-only', a.bin], capture_output=True, text=True,
                                   check=True).stdout.split())
    order, seen = [], set()
    for name, text in configs(tmp, fake_port, tmp):
        conf = os.path.join(tmp, name + '.conf')
        with open(conf, 'w') as f:
            f.write(text)
        cg = os.path.join(tmp, name + '.callgrind')
        p = subprocess.Popen(['valgrind', '--tool=callgrind', '--demangle=no', '--dump-instr=no',
                              '--compress-strings=no', '--compress-pos=no', f'--callgrind-out-file={cg}',
                              a.bin, '-q', '-c', conf], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(a.seconds)
        p.terminate()
        p.wait()
        names = [n for n in called(cg) if n in in_binary]
        # Sorted within a shape: the order inside the packed run hardly matters, stable diffs do.
        new = sorted(n for n in set(names) if n not in seen)
        seen.update(new)
        order.extend(new)
        print(f'{name}: {len(set(names))} functions, {len(new)} new', file=sys.stderr)
    if fake:
        fake.kill()
    with open(OUT, 'w') as f:
        f.write('# Written by scripts/symbol_order.py: functions an idle sluice runs (see crates/sluice/build.rs).\n')
        f.write(f'# rustc: {subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()}\n')
        f.write(''.join(n + '\n' for n in order))
    print(f'{OUT}: {len(order)} symbols', file=sys.stderr)


if __name__ == '__main__':
    main()
