"""Parse a Prometheus exposition read from stdin with the real prometheus_client parser.

Usage: parse_prometheus.py text|openmetrics. Prints JSON: {family: {"type": T, "samples": [[name, labels, value]]}}.
A parse error exits non-zero with the parser's message.
"""
import json
import math
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families as text_families

fmt = sys.argv[1]
data = sys.stdin.read()
parse = om_families if fmt == "openmetrics" else text_families
out = {}
for fam in parse(data):
    samples = []
    for s in fam.samples:
        v = s.value
        samples.append([s.name, dict(s.labels), None if math.isnan(v) or math.isinf(v) else v])
    out[fam.name] = {"type": fam.type, "samples": samples}
print(json.dumps(out))
