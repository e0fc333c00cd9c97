# An exception raised while handling another: Python prints both tracebacks.
import sys

print("INFO parsing", file=sys.stderr)
try:
    int("12x")
except ValueError as e:
    raise RuntimeError("bad order id") from e
