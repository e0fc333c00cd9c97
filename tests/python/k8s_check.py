"""Validate examples/kubernetes/*.yaml against the Kubernetes schemas (kubernetes-validate, strict) and
check that the ConfigMap holds exactly examples/kubernetes/fluent.conf."""
import glob, os, sys

import kubernetes_validate
import yaml

root = sys.argv[1]
failures = 0
for path in sorted(glob.glob(os.path.join(root, '*.yaml'))):
    if os.path.basename(path) == 'values.yaml':  # Helm values, not a manifest
        continue
    for doc in yaml.safe_load_all(open(path)):
        if doc is None:
            continue
        try:
            kubernetes_validate.validate(doc, '1.37.0', strict=True)
        except Exception as e:  # the library raises several error types
            print(f'{path}: {doc.get("kind")}/{doc.get("metadata", {}).get("name")}: {e}')
            failures += 1
        if doc.get('kind') == 'ConfigMap':
            want = open(os.path.join(root, 'fluent.conf')).read()
            if doc['data'].get('fluent.conf') != want:
                print(f'{path}: ConfigMap fluent.conf differs from fluent.conf')
                failures += 1
print(f'{failures} failure(s)')
sys.exit(1 if failures else 0)
