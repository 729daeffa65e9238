#!/usr/bin/env python3
"""docs/openapi.yaml documents every route control-plane/control_api.cpp serves, and nothing else.

Routes are read from the source (`is("METHOD", "/path")` and `named("/pattern")` next to their method
checks), so a new route without documentation fails this test."""
import re
import sys

import yaml

source_dir = sys.argv[1]
spec = yaml.safe_load(open(f"{source_dir}/docs/openapi.yaml"))
assert spec["openapi"].startswith("3."), "not an OpenAPI 3 document"
documented = {(method.upper(), path) for path, item in spec["paths"].items()
              for method in item if method in ("get", "post", "patch", "delete", "put")}

code = open(f"{source_dir}/control-plane/control_api.cpp").read()
served = set()
for method, path in re.findall(r'is\("(GET|POST|PATCH|DELETE)", "([^"]+)"\)', code):
    served.add((method, path))
# fleet routes: named("/v1/...") inside a block whose condition names the method(s)
for block in re.findall(r'if \(([^{;]*?)\) \{\s*named\("([^"]+)"', code, re.S):
    condition, pattern = block
    methods = re.findall(r'r\.method == "(GET|POST|PATCH|DELETE)"', condition)
    if pattern.endswith("/"):  # "/v1/nodes/{id}/" + parts[3]: drain and undrain, added below
        continue
    for m in methods:
        served.add((m, pattern))
# drain / undrain share one block
served |= {("POST", "/v1/nodes/{id}/drain"), ("POST", "/v1/nodes/{id}/undrain")}

missing = served - documented
extra = documented - served
if missing or extra:
    print("undocumented routes:", sorted(missing))
    print("documented but not served:", sorted(extra))
    sys.exit(1)
print(f"{len(served)} routes, all documented")
