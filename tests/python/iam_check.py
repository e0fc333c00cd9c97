"""Check an IAM policy document with moto's IAM (which validates policy documents as AWS does) and
evaluate which (action, resource) pairs it allows, with IAM's wildcard rules.

usage: iam_check.py POLICY.json CASES.json
CASES.json: {"allow": [[action, resource], ...], "deny": [[action, resource], ...]}
Prints "ok" or the problems, exit 1 on a problem.
"""
import json
import re
import sys

import boto3
from moto import mock_aws


def matches(pattern, value):
    # IAM: `*` any run of characters, `?` one character; nothing else is special.
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value) is not None


def allowed(policy, action, resource):
    ok = False
    for st in policy["Statement"]:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if any(matches(a.lower(), action.lower()) for a in actions) and any(matches(r, resource) for r in resources):
            if st["Effect"] == "Deny":
                return False
            ok = True
    return ok


def main():
    policy_text = open(sys.argv[1]).read()
    cases = json.load(open(sys.argv[2]))
    policy = json.loads(policy_text)
    problems = []
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        try:
            arn = iam.create_policy(PolicyName="sluice", PolicyDocument=policy_text)["Policy"]["Arn"]
            version = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
            doc = version["Document"]
            if isinstance(doc, str):
                doc = json.loads(doc)
            if doc != policy:
                problems.append("moto returned a different document")
        except Exception as e:  # moto raises MalformedPolicyDocument for an invalid document
            problems.append(f"moto rejected the policy: {e}")
    for action, resource in cases.get("allow", []):
        if not allowed(policy, action, resource):
            problems.append(f"not allowed but needed: {action} on {resource}")
    for action, resource in cases.get("deny", []):
        if allowed(policy, action, resource):
            problems.append(f"allowed but not needed: {action} on {resource}")
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
