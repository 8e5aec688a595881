#!/usr/bin/python3
"""The server's route table (orch-api-testd --routes) and api/openapi.yaml list the same
(method, path) pairs: a route cannot be added to one and forgotten in the other."""
import subprocess
import sys

import yaml

binary, document = sys.argv[1], sys.argv[2]
served = set()
for line in subprocess.run([binary, "--routes"], check=True, capture_output=True,
                           text=True).stdout.splitlines():
    method, path = line.split()
    served.add((method, path))
with open(document) as f:
    doc = yaml.safe_load(f)
documented = set()
for path, item in doc["paths"].items():
    for method in ("get", "put", "post", "delete", "patch", "head", "options"):
        if method in item:
            documented.add((method.upper(), path))
missing = sorted(served - documented)
extra = sorted(documented - served)
for m, p in missing:
    print(f"served but not in openapi.yaml: {m} {p}")
for m, p in extra:
    print(f"in openapi.yaml but not served: {m} {p}")
if missing or extra:
    sys.exit(1)
print(f"{len(served)} routes: the server and openapi.yaml agree")
