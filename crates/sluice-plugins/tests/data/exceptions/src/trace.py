# An uncaught exception three calls deep.
import sys


def load(path):
    with open(path) as f:
        return f.read()


def handler(req):
    return load("/nonexistent/" + req)


print("INFO handling request", file=sys.stderr)
handler("config.yaml")
