"""Print what the demo did: records per destination, values masked, alerts sent and deduplicated, and
whether any personal value from the input logs reached an output unmasked."""
import glob, json, os, re, sys

logs, out = sys.argv[1], sys.argv[2]

def records(pattern):
    rows = []
    for path in sorted(glob.glob(os.path.join(out, pattern))):
        with open(path, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows

inputs = []
for path in sorted(glob.glob(os.path.join(logs, "*.log"))):
    with open(path, encoding="utf-8") as f:
        inputs += [json.loads(line) for line in f if line.strip()]

destinations = [
    ("Kinesis -> S3 (masked personal data)", "kinesis/*.log"),
    ("Cloud Logging (every error, masked)", "cloud_logging/*.log"),
    ("kept on the node (access logs)", "access/*.log"),
]
print(f"\nsluice demo: {len(inputs)} records read from {logs}")
for name, pattern in destinations:
    print(f"  {len(records(pattern)):4d} records  -> {name}: {os.path.join(out, os.path.dirname(pattern))}/")

slack = records("slack.jsonl")
repeats = 0
for m in slack:
    match = re.search(r"[x×](\d+) more", json.dumps(m, ensure_ascii=False))
    if match:
        repeats += int(match.group(1))
alerts = len(slack) - sum(1 for m in slack if re.search(r"[x×]\d+ more", json.dumps(m, ensure_ascii=False)))
print(f"  {len(slack):4d} Slack messages -> {os.path.join(out, 'slack.jsonl')}: "
      f"{alerts} alerts, {repeats} repeats folded into summaries")

# Every value the mask replaced shows as [REDACTED:KIND]; count them across every output.
text = "".join(open(p, encoding="utf-8").read() for p in glob.glob(os.path.join(out, "**", "*.*"), recursive=True)
               if not p.endswith(".pos") and "/buffer/" not in p)
masked = re.findall(r"\[REDACTED:([a-z_0-9]+)\]", text)
kinds = {}
for k in masked:
    kinds[k] = kinds.get(k, 0) + 1
print(f"  {len(masked):4d} values masked: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))

# The leak probe: personal values of the input must not appear in any output.
pii = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|01[016789]-?\d{3,4}-?\d{4}|\d{6}-[1-8]\d{6}|(?:\d{4}-){3}\d{4}")
found = sorted({v for r in inputs for v in pii.findall(json.dumps(r, ensure_ascii=False))})
leaked = [v for v in found if v in text]
if leaked:
    print(f"  LEAK: {len(leaked)} personal values reached an output unmasked: {leaked}")
    sys.exit(1)
print(f"  0 of the {len(found)} personal values in the input reached an output unmasked")
