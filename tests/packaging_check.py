#!/usr/bin/env python3
"""Docker cannot run here, so the packaging is checked against the real `kairo` binary instead:
every compose file, Kubernetes manifest, Dockerfile stage and the Grafana dashboard must name subcommands,
flags and KAIRO_ environment variables that `kairo` accepts, ports that agree with the listen addresses,
images that the Dockerfile builds, and metrics that Kairo exports.
Usage: packaging_check.py SOURCE_DIR KAIRO_BINARY"""
import glob
import json
import re
import subprocess
import sys

import yaml

source, kairo = sys.argv[1], sys.argv[2]
errors = []


def fail(where, what):
    errors.append(f"{where}: {what}")


help_cache = {}


def accepted(subcommand):
    """(flags, env names) the subcommand accepts, read from its --help."""
    if subcommand not in help_cache:
        out = subprocess.run([kairo, subcommand, "--help"], capture_output=True, text=True)
        if out.returncode != 0:
            help_cache[subcommand] = None
        else:
            flags = set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))
            envs = set(re.findall(r"Env:(KAIRO_[A-Z0-9_]+)", out.stdout))
            help_cache[subcommand] = (flags, envs)
    return help_cache[subcommand]


def check_command(where, args):
    if not args:
        fail(where, "no kairo subcommand")
        return None
    sub = args[0]
    spec = accepted(sub)
    if spec is None:
        fail(where, f"`kairo {sub}` is not a subcommand")
        return None
    for a in args[1:]:
        if a.startswith("--") and a.split("=")[0] not in spec[0]:
            fail(where, f"`kairo {sub}` has no flag {a}")
    return sub


def check_env(where, sub, env):
    if sub is None:
        return
    for name in env:
        if name.startswith("KAIRO_") and name not in accepted(sub)[1]:
            fail(where, f"`kairo {sub}` reads no {name}")


def port_of(address):
    return int(str(address).rsplit(":", 1)[1])


# Dockerfile: stages, non-root user, entrypoint, default command and environment.
dockerfile = open(f"{source}/docker/Dockerfile").read()
stages = set(re.findall(r"^FROM \S+ AS (\S+)", dockerfile, re.M))
for target in ("control", "node"):
    if target not in stages:
        fail("docker/Dockerfile", f"no `{target}` stage")
    block = dockerfile.split(f"AS {target}\n", 1)[1].split("\nFROM ", 1)[0] if target in stages else ""
    cmd = re.search(r'^CMD \["([a-z-]+)"\]', block, re.M)
    sub = check_command(f"Dockerfile {target} CMD", [cmd.group(1)] if cmd else [])
    check_env(f"Dockerfile {target} ENV", sub, re.findall(r"(KAIRO_[A-Z_]+)=", block))
if not re.search(r"^USER 10001", dockerfile, re.M) or re.search(r"^USER root\s*\Z", dockerfile, re.M):
    fail("docker/Dockerfile", "the runtime must run as a non-root user")
if 'ENTRYPOINT ["/usr/local/bin/kairo"]' not in dockerfile:
    fail("docker/Dockerfile", "the entrypoint is not kairo")

# Compose.
compose = yaml.safe_load(open(f"{source}/docker/compose.yaml"))
images = {}
for name, svc in compose["services"].items():
    if "build" not in svc:
        continue
    where = f"compose {name}"
    if svc["build"].get("target") not in stages:
        fail(where, f"build target {svc['build'].get('target')} is not a Dockerfile stage")
    images[svc["image"]] = svc["build"]["target"]
    sub = check_command(where, svc.get("command", []))
    env = svc.get("environment", {})
    check_env(where, sub, env)
    published = {int(str(p).split(":")[-1].split("/")[0]) for p in svc.get("ports", [])}
    for var in ("KAIRO_LISTEN", "KAIRO_LISTEN_UDP"):
        if var in env and port_of(env[var]) not in published:
            fail(where, f"{var} port {port_of(env[var])} is not published")
    if sub == "control" and "KAIRO_DB" not in env:
        fail(where, "the control plane needs KAIRO_DB")
    if sub == "node" and not {"KAIRO_CONTROL", "KAIRO_NODE_TOKEN"} <= set(env):
        fail(where, "the node needs KAIRO_CONTROL and KAIRO_NODE_TOKEN")
    if sub == "node" and "KAIRO_CONTROL" in env:
        host_port = env["KAIRO_CONTROL"].split("//")[1]
        host, port = host_port.split(":")
        control_env = compose["services"].get(host, {}).get("environment", {})
        if host not in compose["services"] or port_of(control_env.get("KAIRO_LISTEN", ":0")) != int(port):
            fail(where, f"KAIRO_CONTROL {env['KAIRO_CONTROL']} is not the control service's listen address")

# Prometheus scrapes what the services listen on.
prometheus = yaml.safe_load(open(f"{source}/docker/prometheus.yml"))
for job in prometheus["scrape_configs"]:
    for target in job["static_configs"][0]["targets"]:
        host, port = target.split(":")
        env = compose["services"].get(host, {}).get("environment", {})
        listens = {port_of(env[v]) for v in ("KAIRO_LISTEN", "KAIRO_METRICS") if v in env}
        if int(port) not in listens:
            fail("docker/prometheus.yml", f"{target} is not a listen address of service {host}")

# Kubernetes manifests.
for path in sorted(glob.glob(f"{source}/k8s/*.yaml")):
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc["kind"] not in ("Deployment", "DaemonSet"):
            continue
        spec = doc["spec"]["template"]["spec"]
        for c in spec["containers"]:
            where = f"{path.split('/')[-1]} {doc['metadata']['name']}/{c['name']}"
            if not c["image"].startswith("kairo-"):
                continue  # third-party (pause)
            if c["image"].split(":")[0] not in images:
                fail(where, f"image {c['image']} is not built by docker/compose.yaml")
            sub = check_command(where, c.get("args", []))
            env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
            check_env(where, sub, env)
            ports = {p["containerPort"] for p in c.get("ports", [])}
            for var in ("KAIRO_LISTEN", "KAIRO_LISTEN_UDP", "KAIRO_METRICS"):
                if var in env and port_of(env[var]) not in ports:
                    fail(where, f"{var} port {port_of(env[var])} is not a containerPort")
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in c and c[probe]["httpGet"]["port"] not in ports:
                    fail(where, f"{probe} port is not a containerPort")
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if pre_stop:
                if pre_stop[0] != "/usr/local/bin/kairo":
                    fail(where, "preStop does not run kairo")
                check_command(where + " preStop", pre_stop[1:])
                node = pre_stop[pre_stop.index("--node") + 1] if "--node" in pre_stop else "127.0.0.1:9100"
                if port_of(node) != port_of(env.get("KAIRO_METRICS", ":0")):
                    fail(where, "preStop --node is not the node's metrics listener")
            if sub == "node":
                if "nvidia.com/gpu" not in c.get("resources", {}).get("limits", {}):
                    fail(where, "a GPU node must request nvidia.com/gpu")
                if not any("nvidia_icd.json" in m["mountPath"] for m in c.get("volumeMounts", [])):
                    fail(where, "the NVIDIA Vulkan ICD is not mounted")
            if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
                fail(where, "pods must run as non-root")

# Grafana and the autoscaler: every metric they query is one Kairo exports. Exported means declared: the
# text format's "# HELP <family>" line each family is written with (a name in a comment or a log line is not
# a metric).
exported = set()
for src in glob.glob(f"{source}/node/*.cpp") + glob.glob(f"{source}/control-plane/*.cpp"):
    exported |= set(re.findall(r"# HELP (kairo_[a-z_]+) ", open(src).read()))
if len(exported) < 10:
    fail("metrics", f"only {len(exported)} metric families declared: the HELP lines were not found")
# Every family a dashboard or an autoscaler might read is asserted by some test (a family nobody checks can
# go wrong unnoticed: kairo_capacity_utilisation, which the autoscaler scales on, once had no test).
test_sources = "".join(open(f).read() for f in glob.glob(f"{source}/tests/*.cpp") + glob.glob(f"{source}/web/test/*.mjs"))
for family in sorted(exported):
    if not re.search(r'"[^"\n]*\b' + family + r'\b', test_sources):
        fail("metrics", f"{family} is exported but no test reads it")


def check_metric(where, metric):
    base = re.sub(r"_(bucket|sum|count)$", "", metric)
    if metric not in exported and base not in exported:
        fail(where, f"{metric} is not exported by Kairo")


dashboard = json.load(open(f"{source}/docker/grafana/dashboards/kairo.json"))
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        for metric in re.findall(r"(kairo_[a-z_]+)", target["expr"]):
            check_metric(f"dashboard panel {panel['title']!r}", metric)
scaled_on = 0
for doc in yaml.safe_load_all(open(f"{source}/k8s/autoscaling.yaml")):
    for metric in re.findall(r"\b(kairo_[a-z_]+)\b", yaml.safe_dump(doc) if doc else ""):
        check_metric("k8s/autoscaling.yaml", metric)
        scaled_on += 1
if scaled_on == 0:
    fail("k8s/autoscaling.yaml", "scales on no Kairo metric")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"packaging consistent with kairo: {len(images)} images, {len(help_cache)} subcommands checked")
