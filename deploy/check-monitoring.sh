#!/usr/bin/env bash
# Checks the operators' monitoring files (a few seconds, idempotent): the Prometheus alert
# rules and their unit tests, the Prometheus configurations, the Grafana dashboard and its
# provisioning, and that every metric they use is one the Go code defines. Exits non-zero
# with a message naming each problem.
#
#   deploy/check-monitoring.sh
#
# Needs promtool (Debian's `prometheus` package: deploy/local/setup.sh test-deps installs it)
# and python3 with PyYAML (deploy/check-packaging.sh installs it). Without promtool the
# promtool checks are skipped with a message, except under CI=true, where that fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
failures=0
fail() { printf '\033[1;31mFAIL:\033[0m %s\n' "$*" >&2; failures=$((failures + 1)); }

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

python=""
for p in python3 /usr/bin/python3; do
  if command -v "${p}" >/dev/null && "${p}" -c 'import yaml' 2>/dev/null; then python="${p}"; break; fi
done
if [[ -z ${python} ]]; then
  echo "error: python3 with PyYAML is missing: apt-get install python3-yaml (deploy/check-packaging.sh installs it)" >&2
  exit 2
fi

# --- structure and cross-references ---------------------------------------------------------
# Writes ${tmp}/dashboard-rules.yml (every dashboard query as a recording rule, for promtool's
# parser) and ${tmp}/kubernetes.yml (kubernetes.yml with its service discovery replaced, which
# Debian's promtool is built without).
say "alerts, dashboard, scrape configurations and metric names"
if ! "${python}" - "${root}" "${tmp}" <<'PY'; then
import glob, json, os, re, sys
import yaml

root, tmp = sys.argv[1], sys.argv[2]
errors = []
def err(path, msg):
    errors.append(f"{os.path.relpath(path, root)}: {msg}")
def ok(msg):
    print(f"    ok: {msg}")
def read(p):
    with open(p, encoding="utf-8") as f:
        return f.read()
P = lambda *a: os.path.join(root, *a)

# Metrics that branches add before the code defining them is merged; empty when none are. The
# check fails for any of them the code defines (remove it) and for any other the code does not.
PENDING: set[str] = set()
JOBS = {"dionysia-api", "dionysia-router", "dionysia-edge", "dionysia-worker"}

# --- what the code defines: every "dionysia_..." string literal of the Go sources -------------
defined = set()
for p in glob.glob(P("**", "*.go"), recursive=True):
    if p.endswith("_test.go") or "/node_modules/" in p:
        continue
    defined |= set(re.findall(r'"(dionysia_[a-z0-9_]+)"', read(p)))
for n in sorted(PENDING & defined):
    err(P("deploy", "check-monitoring.sh"), f"{n} is now defined by the code: remove it from PENDING")
known = defined | PENDING

NAME = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b")
def metric_names(expr):
    """Metric names of a PromQL expression: the dionysia_ ones and our recording rules."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop string literals (label values)
    return {n for n in NAME.findall(bare) if n.startswith("dionysia_") or n.startswith("dionysia:")}

def check_names(path, where, expr, records):
    for n in sorted(metric_names(expr)):
        if n.startswith("dionysia:"):
            if n not in records:
                err(path, f"{where}: {n} is not a recording rule of alerts.yml")
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", n)
        if n not in known and base not in known:
            err(path, f"{where}: metric {n} is not defined by the Go code (typo?)")
    for j in re.findall(r'job=~?"([^"]+)"', expr):
        if not any(re.fullmatch(j, k) for k in JOBS):
            err(path, f"{where}: job {j!r} matches none of {sorted(JOBS)}")

# --- alerts.yml ---------------------------------------------------------------------------------
ap = P("deploy", "prometheus", "alerts.yml")
rules = yaml.safe_load(read(ap))
records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
ops = read(P("docs", "operations.md"))
headings = set(re.findall(r"^#### (\S+)$", ops, re.M))
for r in [r for g in rules["groups"] for r in g["rules"]]:
    check_names(ap, r.get("alert") or r.get("record"), r["expr"], records)
for a in alerts:
    n = a["alert"]
    if not re.fullmatch(r"Dionysia[A-Z][A-Za-z]+", n):
        err(ap, f"{n}: alert names are DionysiaCamelCase")
    if (a.get("labels") or {}).get("severity") not in ("warning", "critical"):
        err(ap, f"{n}: severity must be warning or critical")
    ann = a.get("annotations") or {}
    for k in ("summary", "description", "runbook"):
        if not ann.get(k):
            err(ap, f"{n}: no {k} annotation")
    if ann.get("runbook") != f"docs/operations.md#{n.lower()}":
        err(ap, f"{n}: runbook must be docs/operations.md#{n.lower()}")
    if n not in headings:
        err(P("docs", "operations.md"), f"no runbook section '#### {n}'")
for h in sorted(headings - {a["alert"] for a in alerts}):
    if h.startswith("Dionysia"):
        err(P("docs", "operations.md"), f"runbook section {h} has no alert in alerts.yml")
# Every alert has a unit test that fires and one that does not.
tp = P("deploy", "prometheus", "alerts_test.yml")
tests = yaml.safe_load(read(tp))
evals = [e for t in tests.get("tests", []) for e in t.get("alert_rule_test") or []]
for a in alerts:
    n = a["alert"]
    if not any(e["alertname"] == n and e.get("exp_alerts") for e in evals):
        err(tp, f"{n}: no test case in which it fires")
    if not any(e["alertname"] == n and not e.get("exp_alerts") for e in evals):
        err(tp, f"{n}: no test case in which it stays silent")
ok(f"alerts.yml: {len(alerts)} alerts, {len(records)} recording rules; each with severity, summary, description, "
   f"a runbook section in docs/operations.md and a firing and a silent test")

# --- the Grafana dashboard --------------------------------------------------------------------------
dp = P("deploy", "grafana", "dionysia.json")
try:
    dash = json.loads(read(dp))
except ValueError as e:
    err(dp, f"not valid JSON: {e}")
    dash = {}
GRAFANA_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
variables = {v["name"]: v for v in (dash.get("templating") or {}).get("list", [])}
for need, typ in (("datasource", "datasource"), ("stream_id", "query")):
    if (variables.get(need) or {}).get("type") != typ:
        err(dp, f"no {typ} template variable {need}")
def substitute(where, expr):
    def sub(m):
        name = m.group(1) or m.group(2)
        if name in GRAFANA_VARS:
            return GRAFANA_VARS[name]
        if name in variables:
            return "check"
        err(dp, f"{where}: unknown variable ${name}")
        return "check"
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, expr)
queries = []
for name, v in variables.items():
    if v.get("type") != "query":
        continue
    q = v.get("query")
    q = q.get("query") if isinstance(q, dict) else q
    m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q or "")
    if not m:
        err(dp, f"variable {name}: query must be label_values(<selector>, <label>)")
        continue
    queries.append((f"variable {name}", f"variable_{name}", m.group(1)))
    if m.group(2) != name:
        err(dp, f"variable {name}: takes the values of label {m.group(2)}")
ids = set()
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels") or [])
panels = list(walk(dash.get("panels") or []))
for p in panels:
    where = f"panel {p.get('id')} {p.get('title')!r}"
    if p.get("id") in ids:
        err(dp, f"{where}: duplicate id")
    ids.add(p.get("id"))
    g = p.get("gridPos") or {}
    if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
        err(dp, f"{where}: bad gridPos {g}")
    if p.get("type") == "row":
        continue
    if (p.get("datasource") or {}).get("uid") != "${datasource}":
        err(dp, f"{where}: datasource must be the ${{datasource}} variable")
    if not p.get("targets"):
        err(dp, f"{where}: no query")
    refs = [t.get("refId") for t in p.get("targets") or []]
    if len(set(refs)) != len(refs):
        err(dp, f"{where}: duplicate refId")
    for t in p.get("targets") or []:
        if not t.get("expr"):
            err(dp, f"{where} {t.get('refId')}: no expr")
            continue
        queries.append((f"{where} {t['refId']}", f"panel_{p.get('id')}_{t['refId']}", t["expr"]))
dash_rules = []
for where, rec, expr in queries:  # rule names say where each query is: check:panel_<id>_<refId>
    check_names(dp, where, expr, records)
    dash_rules.append({"record": f"check:{rec}", "expr": substitute(where, expr)})
with open(os.path.join(tmp, "dashboard-rules.yml"), "w") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": dash_rules}]}, f)
for need in ("Fleet", "Webhooks"):
    if not any(p.get("type") == "row" and p.get("title", "").startswith(need) for p in panels):
        err(dp, f"no row {need}")
if not any(p.get("type") == "row" and "$stream_id" in p.get("title", "") for p in panels):
    err(dp, "no per-stream row (a row whose title names $stream_id)")
ok(f"dionysia.json: valid JSON, {len(panels)} panels, {len(queries)} queries (parsed by promtool below)")

# Grafana provisioning: the data source and the dashboard provider.
gp = P("deploy", "grafana", "provisioning")
ds = yaml.safe_load(read(os.path.join(gp, "datasources", "prometheus.yml")))
if not any(d.get("type") == "prometheus" and d.get("url") == "http://prometheus:9090" for d in ds.get("datasources", [])):
    err(os.path.join(gp, "datasources", "prometheus.yml"), "no prometheus data source at http://prometheus:9090")
prov = yaml.safe_load(read(os.path.join(gp, "dashboards", "dionysia.yml")))
dash_dirs = [(pr.get("options") or {}).get("path") for pr in prov.get("providers", []) if pr.get("type") == "file"]

# --- docker-compose.yml: Prometheus and Grafana, every service scraped -------------------------------
compose = yaml.safe_load(read(P("docker-compose.yml")))
svcs = compose.get("services", {})
def mounts(svc):
    out = {}
    for v in (svcs.get(svc) or {}).get("volumes") or []:
        parts = v.split(":") if isinstance(v, str) else [v.get("source"), v.get("target")]
        out[parts[1]] = parts[0]
    return out
pm, gm = mounts("prometheus"), mounts("grafana")
if pm.get("/etc/prometheus") != "./deploy/prometheus":
    err(P("docker-compose.yml"), "prometheus must mount ./deploy/prometheus at /etc/prometheus")
if "--config.file=/etc/prometheus/prometheus.yml" not in ((svcs.get("prometheus") or {}).get("command") or []):
    err(P("docker-compose.yml"), "prometheus must run with --config.file=/etc/prometheus/prometheus.yml")
if gm.get("/etc/grafana/provisioning") != "./deploy/grafana/provisioning":
    err(P("docker-compose.yml"), "grafana must mount ./deploy/grafana/provisioning at /etc/grafana/provisioning")
if not any(gm.get(f"{d}/dionysia.json") == "./deploy/grafana/dionysia.json" for d in dash_dirs):
    err(P("docker-compose.yml"), f"grafana must mount ./deploy/grafana/dionysia.json into the provider's path {dash_dirs}")
pp = P("deploy", "prometheus", "prometheus.yml")
pcfg = yaml.safe_load(read(pp))
if pcfg.get("rule_files") != ["alerts.yml"]:
    err(pp, "rule_files must be [alerts.yml]")
targets = {}
for sc in pcfg.get("scrape_configs", []):
    for s in sc.get("static_configs") or []:
        for t in s.get("targets", []):
            targets[t] = sc["job_name"]
    for d in sc.get("dns_sd_configs") or []:
        for n in d.get("names", []):
            targets[f"{n}:{d.get('port')}"] = sc["job_name"]
metrics_port = {"api": 8080, "router": 8081, "edge": 9990}
for name in svcs:
    if name in ("postgres", "redis", "migrate", "recordings-init", "prometheus", "grafana"):
        continue
    kind = "worker" if name.startswith("worker") else name
    t = f"{name}:{metrics_port.get(kind, 8090)}"
    if targets.get(t) != f"dionysia-{kind}":
        err(pp, f"compose service {name}: no target {t} in job dionysia-{kind}")
missing = JOBS - set(targets.values())
if missing:
    err(pp, f"no scrape job {sorted(missing)}")
ok(f"docker-compose.yml: prometheus and grafana mounts; prometheus.yml scrapes {sorted(targets)}")

# --- Kubernetes: every workload annotated, and kubernetes.yml's relabelling gives the right jobs -------
kp = P("deploy", "prometheus", "kubernetes.yml")
kcfg = yaml.safe_load(read(kp))
jobs = kcfg.get("scrape_configs") or []
sd = [s for j in jobs for s in j.get("kubernetes_sd_configs") or []]
ns = yaml.safe_load(read(P("deploy", "k8s", "base", "namespace.yaml")))["metadata"]["name"]
if not sd or any(s.get("role") != "pod" or (s.get("namespaces") or {}).get("names") != [ns] for s in sd):
    err(kp, f"kubernetes_sd_configs must be role: pod in namespace {ns}")
def relabel(cfgs, labels):
    """Prometheus' relabelling (replace and keep), enough for kubernetes.yml."""
    labels = dict(labels)
    for c in cfgs:
        val = (c.get("separator", ";")).join(labels.get(s, "") for s in c.get("source_labels", []))
        m = re.fullmatch(c.get("regex", "(.*)"), val)
        act = c.get("action", "replace")
        if act == "keep":
            if not m:
                return None
        elif act == "replace":
            if m:
                rep = re.sub(r"\$(\d+)|\$\{(\d+)\}", lambda g: m.group(int(g.group(1) or g.group(2))) or "",
                             c.get("replacement", "$1"))
                labels[c["target_label"]] = rep
        else:
            err(kp, f"relabel action {act} is not simulated by this check")
    return labels
produced = set()
for p in sorted(glob.glob(P("deploy", "k8s", "base", "*.yaml"))):
    for d in yaml.safe_load_all(read(p)):
        if not d or d.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        name = d["metadata"]["name"]
        tpl = d["spec"]["template"]
        ann = (tpl.get("metadata") or {}).get("annotations") or {}
        c = tpl["spec"]["containers"][0]
        port = next((pt["containerPort"] for pt in c.get("ports", [])
                     if pt.get("name") == c["readinessProbe"]["httpGet"]["port"]), None)
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(port) \
                or ann.get("prometheus.io/path") != "/metrics":
            err(p, f"{d['kind']} {name}: pod annotations prometheus.io/scrape \"true\", port \"{port}\", path /metrics")
        labels = {"__address__": "10.0.0.1", "__metrics_path__": "/metrics", "job": "dionysia",
                  "__meta_kubernetes_pod_name": f"{name}-0", "__meta_kubernetes_pod_phase": "Running",
                  "__meta_kubernetes_pod_ip": "10.0.0.1"}
        labels.update({"__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in ann.items()})
        labels.update({"__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", k): v
                       for k, v in (tpl.get("metadata") or {}).get("labels", {}).items()})
        for j in jobs:
            out = relabel(j.get("relabel_configs") or [], labels)
            if out is None:
                err(kp, f"{d['kind']} {name}: its pods are not scraped")
                continue
            want = "dionysia-" + ("worker" if name.startswith("worker") else name)
            if out.get("job") != want or out.get("__address__") != f"10.0.0.1:{port}" or out.get("__metrics_path__") != "/metrics":
                err(kp, f"{d['kind']} {name}: scraped as job {out.get('job')} at {out.get('__address__')}{out.get('__metrics_path__')}, "
                        f"want {want} at 10.0.0.1:{port}/metrics")
            produced.add(out.get("job"))
if produced != JOBS:
    err(kp, f"the Kubernetes workloads give jobs {sorted(produced)}, want {sorted(JOBS)}")
# Debian's promtool has no Kubernetes discovery: check the rest of the file with static targets.
for j in jobs:
    j.pop("kubernetes_sd_configs", None)
    j["static_configs"] = [{"targets": ["check.invalid:80"]}]
kcfg["rule_files"] = [ap]
with open(os.path.join(tmp, "kubernetes.yml"), "w") as f:
    yaml.safe_dump(kcfg, f)
ok(f"Kubernetes: every workload annotated; kubernetes.yml relabels them into {sorted(produced)}")

ok(f"metric names: every name used is one of the {len(defined)} the Go code defines, "
   f"or one of the {len(PENDING)} pending ones")
for e in errors:
    print(f"\033[1;31mFAIL:\033[0m {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
  fail "structure checks (see above)"
fi

# --- promtool -------------------------------------------------------------------------------
promtool="$(command -v promtool || true)"
if [[ -z ${promtool} ]]; then
  if [[ ${CI:-} == true ]]; then
    fail "promtool not found: deploy/local/setup.sh test-deps installs it (Debian package prometheus)"
  else
    echo "    skipped: promtool not found; the rules, their tests and the queries are NOT checked" \
      "(deploy/local/setup.sh test-deps, or apt-get install prometheus)" >&2
  fi
else
  say "promtool ($("${promtool}" --version 2>&1 | awk 'NR==1 {print $3}'))"
  run() { # what command...
    local what="$1"; shift
    if out="$("$@" 2>&1)"; then ok "${what}"; else fail "${what}:"$'\n'"${out}"; fi
  }
  run "promtool check rules deploy/prometheus/alerts.yml" "${promtool}" check rules deploy/prometheus/alerts.yml
  run "promtool test rules deploy/prometheus/alerts_test.yml" "${promtool}" test rules deploy/prometheus/alerts_test.yml
  run "promtool check config deploy/prometheus/prometheus.yml" "${promtool}" check config deploy/prometheus/prometheus.yml
  if [[ -f ${tmp}/kubernetes.yml ]]; then
    run "promtool check config deploy/prometheus/kubernetes.yml (relabelling; discovery checked above)" \
      "${promtool}" check config "${tmp}/kubernetes.yml"
  fi
  if [[ -f ${tmp}/dashboard-rules.yml ]]; then
    run "promtool parses every query of deploy/grafana/dionysia.json" "${promtool}" check rules "${tmp}/dashboard-rules.yml"
  fi
fi

if ((failures)); then
  printf '\033[1;31m%d monitoring check(s) failed\033[0m\n' "${failures}" >&2
  exit 1
fi
printf '\033[1;32mmonitoring checks passed\033[0m\n'
