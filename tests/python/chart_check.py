"""Checks for the Helm chart (deploy/helm/sluice), called by crates/sluice/tests/helm_chart.rs.

  chart_check.py schemas CHART_DIR               Chart.yaml and values.yaml against their schemas
  chart_check.py bad-values CHART_DIR            values.schema.json rejects wrong values
  chart_check.py manifests RENDERED SLUICE_BIN   rendered manifests: Kubernetes schemas, probes, fluent.conf
  chart_check.py same-as-example RENDERED DIR    the chart rendered with DIR/values.yaml equals DIR's manifests
"""
import copy, json, os, subprocess, sys, tempfile

import jsonschema
import kubernetes_validate
import yaml

# Chart.yaml (apiVersion v2), after Helm's documentation of the file's fields.
CHART_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "name", "version"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "v2"},
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"},
        "kubeVersion": {"type": "string"},
        "description": {"type": "string"},
        "type": {"enum": ["application", "library"]},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "home": {"type": "string"},
        "sources": {"type": "array", "items": {"type": "string"}},
        "dependencies": {"type": "array"},
        "maintainers": {"type": "array", "items": {"type": "object", "required": ["name"]}},
        "icon": {"type": "string"},
        "appVersion": {"type": "string"},
        "deprecated": {"type": "boolean"},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

failures = []


def fail(msg):
    failures.append(msg)
    print(msg)


def load_values(chart):
    with open(os.path.join(chart, "values.yaml")) as f:
        values = yaml.safe_load(f)
    with open(os.path.join(chart, "values.schema.json")) as f:
        schema = json.load(f)
    return values, schema


def schemas(chart):
    with open(os.path.join(chart, "Chart.yaml")) as f:
        jsonschema.validate(yaml.safe_load(f), CHART_SCHEMA)
    values, schema = load_values(chart)
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values, schema)


def bad_values(chart):
    values, schema = load_values(chart)
    edits = [
        ("image.pullPolicy", lambda v: v["image"].update(pullPolicy="Sometimes")),
        ("relative hostPath", lambda v: v["hostPath"].update(state="var/lib/sluice")),
        ("port out of range", lambda v: v["metrics"].update(port=70000)),
        ("unknown top-level key", lambda v: v.update(fluentdConf="x")),
        ("secretEnv without key", lambda v: v.update(secretEnv=[{"name": "A", "secretName": "s"}])),
    ]
    for what, edit in edits:
        v = copy.deepcopy(values)
        edit(v)
        try:
            jsonschema.validate(v, schema)
            fail(f"values.schema.json accepted {what}")
        except jsonschema.ValidationError:
            pass


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def manifests(rendered, sluice):
    objs = docs(rendered)
    kinds = {d["kind"] for d in objs}
    for want in ("DaemonSet", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"):
        if want not in kinds:
            fail(f"{rendered}: no {want} rendered")
    services = [d for d in objs if d["kind"] == "Service"]
    for d in objs:
        name = f'{d["kind"]}/{d["metadata"]["name"]}'
        if d["apiVersion"].startswith("monitoring.coreos.com/"):
            # A CRD: not in the Kubernetes schemas. It must select the Service's metrics port.
            ports = {p["name"] for s in services for p in s["spec"]["ports"]}
            for ep in d["spec"]["endpoints"]:
                if ep["port"] not in ports:
                    fail(f"{name}: endpoint port {ep['port']} is not a port of the Service")
            continue
        try:
            kubernetes_validate.validate(d, "1.37.0", strict=True)
        except Exception as e:  # the library raises several error types
            fail(f"{name}: {e}")
        if d["kind"] == "DaemonSet":
            c = d["spec"]["template"]["spec"]["containers"][0]
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe"):
                p = c.get(probe)
                if not p:
                    continue
                if "exec" in p and any("sh" in a.split("/")[-1] for a in p["exec"]["command"][:1]):
                    fail(f"{name}: {probe} needs a shell, which the image does not have")
                if "httpGet" in p and p["httpGet"]["port"] not in ports:
                    fail(f"{name}: {probe} uses port {p['httpGet']['port']}, not a port of the container")
        if d["kind"] == "ConfigMap":
            with tempfile.TemporaryDirectory() as tmp:
                conf = os.path.join(tmp, "fluent.conf")
                with open(conf, "w") as f:
                    f.write(d["data"]["fluent.conf"])
                r = subprocess.run([sluice, "-c", conf, "--dry-run"], capture_output=True, text=True)
                if r.returncode != 0:
                    fail(f"{name}: fluent.conf fails --dry-run: {r.stderr}")


def by_kind(objs):
    return {(d["kind"], d["metadata"]["name"]): d for d in objs}


def same_as_example(rendered, example_dir):
    chart = by_kind(docs(rendered))
    plain = {}
    for fn in sorted(os.listdir(example_dir)):
        if fn.endswith(".yaml") and fn != "values.yaml":
            plain.update(by_kind(docs(os.path.join(example_dir, fn))))
    ds_c = next(d for (k, _), d in chart.items() if k == "DaemonSet")
    ds_p = next(d for (k, _), d in plain.items() if k == "DaemonSet")
    pc, pp = ds_c["spec"]["template"]["spec"], ds_p["spec"]["template"]["spec"]
    for key in ("serviceAccountName", "terminationGracePeriodSeconds", "tolerations", "volumes", "securityContext"):
        if pc.get(key) != pp.get(key):
            fail(f"DaemonSet spec.template.spec.{key}: chart {pc.get(key)!r} != example {pp.get(key)!r}")
    cc, cp = pc["containers"][0], pp["containers"][0]
    for key in ("image", "args", "env", "envFrom", "ports", "resources", "securityContext", "volumeMounts",
                "livenessProbe", "readinessProbe"):
        if cc.get(key) != cp.get(key):
            fail(f"DaemonSet container {key}: chart {cc.get(key)!r} != example {cp.get(key)!r}")
    cr_c = next(d for (k, _), d in chart.items() if k == "ClusterRole")
    cr_p = next(d for (k, _), d in plain.items() if k == "ClusterRole")
    if cr_c["rules"] != cr_p["rules"]:
        fail(f"ClusterRole rules differ: {cr_c['rules']} != {cr_p['rules']}")
    cm_c = next(d for (k, _), d in chart.items() if k == "ConfigMap")
    with open(os.path.join(example_dir, "fluent.conf")) as f:
        if cm_c["data"]["fluent.conf"] != f.read():
            fail("the chart's ConfigMap with examples/kubernetes/values.yaml differs from examples/kubernetes/fluent.conf")
    sa_c = next(d for (k, _), d in chart.items() if k == "ServiceAccount")
    sa_p = next(d for (k, _), d in plain.items() if k == "ServiceAccount")
    if sa_c["metadata"].get("annotations") != sa_p["metadata"].get("annotations"):
        fail("ServiceAccount annotations differ between the chart and the example")


mode, *args = sys.argv[1:]
{"schemas": schemas, "bad-values": bad_values, "manifests": manifests, "same-as-example": same_as_example}[mode](*args)
print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
