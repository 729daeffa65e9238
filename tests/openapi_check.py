#!/usr/bin/env python3
"""docs/openapi.yaml documents every route control-plane/control_api.cpp serves, and nothing else.

Routes are read from the control plane's route table (kRoutes in control_api.cpp), so a new route without
documentation fails this test."""
import re
import sys

import yaml

source_dir = sys.argv[1]
spec = yaml.safe_load(open(f"{source_dir}/docs/openapi.yaml"))
assert spec["openapi"].startswith("3."), "not an OpenAPI 3 document"
documented = {(method.upper(), path) for path, item in spec["paths"].items()
              for method in item if method in ("get", "post", "patch", "delete", "put")}

code = open(f"{source_dir}/control-plane/control_api.cpp").read()
# The route table (ControlApi::Impl::kRoutes): {"METHOD", "/pattern", Access::..., &Impl::handler}.
table = re.search(r"kRoutes\[\] = \{(.*?)\n  \};", code, re.S)
assert table, "the route table kRoutes was not found in control_api.cpp"
served = set(re.findall(r'\{"(GET|POST|PATCH|DELETE|PUT)", "([^"]+)", Access::', table.group(1)))
assert served, "the route table is empty"

missing = served - documented
extra = documented - served
if missing or extra:
    print("undocumented routes:", sorted(missing))
    print("documented but not served:", sorted(extra))
    sys.exit(1)
print(f"{len(served)} routes, all documented")
