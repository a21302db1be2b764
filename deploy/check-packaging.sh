#!/usr/bin/env bash
# Checks the operator packaging without a container engine or a cluster (idempotent, a few
# seconds): docker-compose.yml (+ the gpu profile), the Dockerfiles' inputs, the Kubernetes
# manifests (and their kustomize builds when kubectl is installed) and the systemd units.
# Exits non-zero with a message naming each invalid file.
#
#   deploy/check-packaging.sh
#
# Installs what is missing through apt (docker-compose, python3-yaml) unless
# DIONYSIA_SKIP_APT=1, like deploy/local/setup.sh. What it cannot check: that the images
# build and the services run (no Docker engine, no cluster, no systemd here).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
ok() { printf '    ok: %s\n' "$*"; }
failures=0
fail() { printf '\033[1;31mFAIL:\033[0m %s\n' "$*" >&2; failures=$((failures + 1)); }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
apt_install() { # package...
  if [[ ${DIONYSIA_SKIP_APT:-} == 1 ]] || ! command -v apt-get >/dev/null; then
    echo "error: missing $*; install it (apt-get install $*) or unset DIONYSIA_SKIP_APT" >&2
    exit 2
  fi
  say "installing $* (apt)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

# --- tools --------------------------------------------------------------------------------
command -v docker-compose >/dev/null || apt_install docker-compose
python=""
for p in python3 /usr/bin/python3; do
  if command -v "${p}" >/dev/null && "${p}" -c 'import yaml' 2>/dev/null; then python="${p}"; break; fi
done
if [[ -z ${python} ]]; then
  apt_install python3-yaml
  python=/usr/bin/python3
fi

# --- docker-compose.yml -------------------------------------------------------------------
say "docker-compose.yml ($(docker-compose version --short 2>/dev/null || echo '?'))"
# As CI runs it: no .env (secrets have no defaults, so this must still validate) ...
for args in "" "--profile gpu"; do
  # shellcheck disable=SC2086 # args is deliberately split
  if out="$(docker-compose -f docker-compose.yml ${args} config -q 2>&1)"; then
    ok "docker-compose -f docker-compose.yml ${args:+${args} }config -q"
  else
    fail "docker-compose.yml${args:+ (${args})} is invalid: ${out}"
  fi
done
# ... and with every value filled in (placeholders for this check only), as an operator runs it.
cat > "${tmp}/check.env" <<'EOF'
POSTGRES_PASSWORD=check0123456789abcdef
DIONYSIA_EDGE_SECRET=check-edge-secret
DIONYSIA_WORKER_SECRET=check-worker-secret
DIONYSIA_PLAYBACK_KEYS=k1:Y2hlY2stcGxheWJhY2sta2V5LTMyLWJ5dGVzLWxvbmc=
GRAFANA_ADMIN_PASSWORD=check-grafana-password
EOF
if out="$(docker-compose --env-file "${tmp}/check.env" -f docker-compose.yml --profile gpu config -q 2>&1)"; then
  ok "docker-compose --env-file <filled> --profile gpu config -q"
else
  fail "docker-compose.yml with a filled env file is invalid: ${out}"
fi
# No secret may have a default, and the committed example must hold none.
for v in POSTGRES_PASSWORD DIONYSIA_EDGE_SECRET DIONYSIA_WORKER_SECRET DIONYSIA_PLAYBACK_KEYS GRAFANA_ADMIN_PASSWORD \
  DIONYSIA_STORAGE_SECRET_ACCESS_KEY; do
  if grep -Eq "\\\$\{${v}:?-[^}]" docker-compose.yml; then fail "docker-compose.yml: ${v} has a default value"; fi
  if ! grep -Eq "^${v}=$" .env.example; then fail ".env.example: ${v} must be present and empty"; fi
done
docker-compose --env-file "${tmp}/check.env" -f docker-compose.yml config > "${tmp}/compose.rendered.yml" 2>/dev/null || true

# --- structure and cross-references (compose, Dockerfiles, Kubernetes, env names) ---------
say "Dockerfiles, Kubernetes manifests and variable names"
if ! "${python}" - "${root}" "${tmp}/compose.rendered.yml" <<'PY'; then
import glob, os, re, sys
import yaml

root, rendered = sys.argv[1], sys.argv[2]
errors = []
def err(path, msg):
    errors.append(f"{os.path.relpath(path, root)}: {msg}")
def ok(msg):
    print(f"    ok: {msg}")
def read(p):
    with open(p, encoding="utf-8") as f:
        return f.read()

# Every DIONYSIA_* name the packaging sets must be a setting of a binary: a variable of a
# table row of docs/configuration.md (the binaries' tests keep those rows exactly the
# settings each binary reads).
known = set(re.findall(r"^\| `(DIONYSIA_[A-Z0-9_]+)` \|", read(os.path.join(root, "docs", "configuration.md")), re.M))
# Names that only the packaging defines (compose/.env settings, image tags).
packaging_only = {"DIONYSIA_API_BIND", "DIONYSIA_WORKER_CPU_CAPACITY",
                  "DIONYSIA_IMAGE", "DIONYSIA_EDGE_IMAGE", "DIONYSIA_WORKER_IMAGE",
                  "DIONYSIA_WORKER_GPU_IMAGE", "DIONYSIA_SKIP_APT"}

# --- compose ---
compose = yaml.safe_load(read(os.path.join(root, "docker-compose.yml")))
svcs = compose.get("services", {})
want = {"postgres", "redis", "recordings-init", "migrate", "api", "edge", "router", "worker-cpu", "worker-gpu", "prometheus", "grafana"}
if set(svcs) != want:
    err("docker-compose.yml", f"services {sorted(svcs)} != {sorted(want)}")
gpu = svcs.get("worker-gpu", {})
devs = (((gpu.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
if gpu.get("profiles") != ["gpu"] or not any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devs):
    err("docker-compose.yml", "worker-gpu needs profiles: [gpu] and an nvidia device reservation")
dep = (svcs.get("api", {}).get("depends_on") or {}).get("migrate", {})
if not isinstance(dep, dict) or dep.get("condition") != "service_completed_successfully":
    err("docker-compose.yml", "api must depend on migrate completing (service_completed_successfully)")
if "--appendonly" not in (svcs.get("redis", {}).get("command") or []):
    err("docker-compose.yml", "redis must run with --appendonly yes")
# Origins: each worker its own URL.
urls = {}
try:
    r = yaml.safe_load(read(rendered)) or {}
    for name, s in (r.get("services") or {}).items():
        env = s.get("environment") or {}
        if name.startswith("worker"):
            u = env.get("DIONYSIA_WORKER_ORIGIN_URL", "")
            if not u or "127.0.0.1" in u or "localhost" in u:
                err("docker-compose.yml", f"{name}: DIONYSIA_WORKER_ORIGIN_URL {u!r} is not reachable by the router")
            if u in urls:
                err("docker-compose.yml", f"{name} and {urls[u]} share origin URL {u}")
            urls[u] = name
            if not str(env.get("DIONYSIA_WORKER_ORIGIN_ADDR", "")).startswith("0.0.0.0:"):
                err("docker-compose.yml", f"{name}: the origin must listen on 0.0.0.0")
    # Recordings: api, router and the workers open one store, by default the `recordings`
    # volume, all as the worker image's uid (the file store's directories are 0755).
    rsv = r.get("services") or {}
    wuser = re.search(r"^USER\s+(\S+)", read(os.path.join(root, "deploy/docker/worker.Dockerfile")), re.M).group(1)
    store = {n: (rsv.get(n, {}).get("environment") or {}).get("DIONYSIA_STORAGE_URL") for n in ("api", "router", "worker-cpu", "worker-gpu")}
    if set(store.values()) != {"file:///var/lib/dionysia/recordings"}:
        err("docker-compose.yml", f"api, router and the workers must default to the recordings volume's store: {store}")
    for name in ("recordings-init", "api", "router", "worker-cpu", "worker-gpu"):
        if "recordings:/var/lib/dionysia/recordings" not in (svcs.get(name, {}).get("volumes") or []):
            err("docker-compose.yml", f"{name}: must mount the recordings volume at /var/lib/dionysia/recordings")
        if name != "recordings-init":
            # api and router: the services image's own uid (65532) would not do.
            if svcs.get(name, {}).get("user", None if name in ("api", "router") else wuser) != wuser:
                err("docker-compose.yml", f"{name}: must run as {wuser}, the recordings volume's owner")
            d = (svcs.get(name, {}).get("depends_on") or {}).get("recordings-init")
            if not isinstance(d, dict) or d.get("condition") != "service_completed_successfully":
                err("docker-compose.yml", f"{name}: must depend on recordings-init completing")
    if f"chown {wuser} " not in " ".join(svcs.get("recordings-init", {}).get("entrypoint") or []):
        err("docker-compose.yml", f"recordings-init must chown the volume to {wuser}")
    renv = rsv.get("router", {}).get("environment") or {}
    if renv.get("DIONYSIA_API_URL") != "http://api:8080" or not renv.get("DIONYSIA_WORKER_SECRET"):
        err("docker-compose.yml", "router: VOD needs DIONYSIA_API_URL=http://api:8080 and DIONYSIA_WORKER_SECRET")
except Exception as e:  # the config step above already reported a broken file
    err("docker-compose.yml", f"rendered config unreadable: {e}")
cenv = read(os.path.join(root, "docker-compose.yml"))
for v in sorted(set(re.findall(r"\$\{([A-Z0-9_]+)", cenv))):
    if not re.search(rf"^{v}=", read(os.path.join(root, ".env.example")), re.M):
        err(".env.example", f"{v} is used by docker-compose.yml but not listed")
for v in sorted(set(re.findall(r"DIONYSIA_[A-Z0-9_]+", cenv))):
    if v not in known and v not in packaging_only:
        err("docker-compose.yml", f"unknown variable {v}")
ok("docker-compose.yml services, GPU reservation, origins, .env.example")

# --- Dockerfiles: inputs exist, every workspace module's go.mod is copied ---
gowork = read(os.path.join(root, "go.work"))
modules = re.findall(r"^\s*\./(\S+)", gowork, re.M)
gover = re.search(r"^go (\d+\.\d+)", gowork, re.M).group(1)
for df in sorted(glob.glob(os.path.join(root, "deploy/docker/*.Dockerfile"))):
    text = read(df)
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I)
    for m in re.finditer(r"^COPY\s+(?!--from)(.+)$", text, re.M):
        parts = m.group(1).split()
        for src in parts[:-1]:
            if src != "." and not glob.glob(os.path.join(root, src)):
                err(df, f"COPY source {src} does not exist")
    if not re.search(r"^COPY\s+\.\s+\.$", text, re.M):
        err(df, "the build stage must COPY . . (the workspace needs every module of go.work)")
    m = re.search(r"ARG GO_IMAGE=golang:(\d+\.\d+)-bookworm", text)
    if not m or m.group(1) != gover:
        err(df, f"build image must be golang:{gover}-bookworm (go.work says go {gover})")
    for ref in re.findall(r"--from=(\S+)", text):
        if ref not in stages:
            err(df, f"COPY --from={ref}: no such stage")
    for u in re.findall(r"^USER\s+(\S+)", text, re.M):
        if u.split(":")[0] in ("root", "0"):
            err(df, "runs as root")
    # Runtime stages (FROM the runtime image or another runtime stage) install no -dev package.
    for blk in re.split(r"^(?=FROM\s)", text, flags=re.M):
        m = re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", blk, re.I)
        if m and m.group(2) in ("services", "edge", "worker", "worker-gpu"):
            code = "\n".join(l for l in blk.splitlines() if not l.lstrip().startswith("#"))
            dev = re.findall(r"\b[a-z0-9][a-z0-9.+-]*-dev\b", code)
            if dev:
                err(df, f"runtime stage {m.group(2)} installs {dev}")
for target, df in {"services": "services", "edge": "services", "worker": "worker", "worker-gpu": "worker"}.items():
    if not re.search(rf"^FROM\s+\S+\s+AS\s+{target}$", read(os.path.join(root, f"deploy/docker/{df}.Dockerfile")), re.M):
        err(f"deploy/docker/{df}.Dockerfile", f"no stage {target}")
for name, s in svcs.items():
    b = s.get("build")
    if isinstance(b, dict):
        df = os.path.join(root, b.get("dockerfile", ""))
        if not os.path.exists(df):
            err("docker-compose.yml", f"{name}: no Dockerfile {b.get('dockerfile')}")
        elif not re.search(rf"^FROM\s+\S+\s+AS\s+{b.get('target')}$", read(df), re.M):
            err("docker-compose.yml", f"{name}: target {b.get('target')} not in {b.get('dockerfile')}")
ignore = [l.strip() for l in read(os.path.join(root, ".dockerignore")).splitlines()
          if l.strip() and not l.startswith("#")]
for must in (".git", ".dev", "bin", "**/node_modules"):
    if must not in ignore:
        err(".dockerignore", f"must exclude {must}")
import fnmatch
for need in ["go.work", "go.work.sum", "deploy/local/player-assets.sh", "deploy/local/build-mediamtx.sh", "deploy/local/lib.sh"] + \
        [f"{m}/go.mod" for m in modules]:
    for pat in ignore:
        if not pat.startswith("!") and (fnmatch.fnmatch(need, pat.replace("**/", "")) or
                                        fnmatch.fnmatch(need, pat) or need.startswith(pat.rstrip("/") + "/")):
            err(".dockerignore", f"{pat} excludes {need}, which the build needs")
ok(f"Dockerfiles: COPY sources, stages, .dockerignore keeps go.work + modules {modules}, golang:{gover}, non-root")

# --- Kubernetes ---
k8s = os.path.join(root, "deploy/k8s")
docs = {}
for p in sorted(glob.glob(os.path.join(k8s, "**/*.yaml"), recursive=True)):
    try:
        ds = [d for d in yaml.safe_load_all(read(p)) if d is not None]
    except yaml.YAMLError as e:
        err(p, f"YAML: {e}")
        continue
    for d in ds:
        if not isinstance(d, dict) or not d.get("apiVersion") or not d.get("kind"):
            err(p, "a document without apiVersion/kind")
            continue
        if d["kind"] != "Kustomization" and not (d.get("metadata") or {}).get("name"):
            err(p, f"{d['kind']} without metadata.name")
    docs[p] = ds

def kust(dirpath):
    p = os.path.join(dirpath, "kustomization.yaml")
    if p not in docs:
        if not os.path.exists(p):
            err(p, "missing")
        return []
    res = []
    for r in docs[p][0].get("resources", []):
        rp = os.path.normpath(os.path.join(dirpath, r))
        if os.path.isdir(rp):
            res += kust(rp)
        elif rp in docs:
            res.append(rp)
        elif not os.path.exists(rp):
            err(p, f"resource {r} does not exist")
    return res

base = kust(k8s)
overlay = kust(os.path.join(k8s, "keda"))
listed = set(base) | set(overlay) | {p for p in docs if p.endswith("kustomization.yaml")}
for p in docs:
    if p not in listed and not p.endswith("secret.example.yaml"):
        err(p, "not listed in any kustomization.yaml")
objs = [d for p in base for d in docs[p]]
by = {(d["kind"], d["metadata"]["name"]): d for d in objs if isinstance(d, dict) and d.get("metadata")}
for need in [("Namespace", "dionysia"), ("ConfigMap", "dionysia"), ("Deployment", "api"), ("Service", "api"),
             ("Deployment", "router"), ("Service", "router"), ("StatefulSet", "edge"), ("Service", "edge"),
             ("Deployment", "worker-cpu"), ("Deployment", "worker-gpu"), ("PodDisruptionBudget", "api"),
             ("PodDisruptionBudget", "router"), ("PodDisruptionBudget", "edge"),
             ("PodDisruptionBudget", "worker-cpu"), ("PodDisruptionBudget", "worker-gpu")]:
    if need not in by:
        err(k8s, f"no {need[0]} {need[1]} in the base kustomization")
if any(d.get("kind") == "Secret" for d in objs):
    err(k8s, "a Secret is listed in kustomization.yaml: keep placeholders out of clusters")

cm = (by.get(("ConfigMap", "dionysia")) or {}).get("data", {})
secret = next((d for d in docs.get(os.path.join(k8s, "base", "secret.example.yaml"), []) if d.get("kind") == "Secret"), {})
skeys = set((secret.get("stringData") or {}).keys())
images = {i["name"] for i in docs[os.path.join(k8s, "base", "kustomization.yaml")][0].get("images", [])}
probe_ports = {"api": 8080, "router": 8081, "edge": 9990, "worker-cpu": 8090, "worker-gpu": 8090}
for (kind, name), d in by.items():
    if kind not in ("Deployment", "StatefulSet"):
        continue
    spec = d["spec"]["template"]["spec"]
    sel = d["spec"]["selector"]["matchLabels"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in sel.items()):
        err(k8s, f"{kind} {name}: selector does not match the pod labels")
    pdb = by.get(("PodDisruptionBudget", name))
    if pdb and pdb["spec"]["selector"]["matchLabels"] != sel:
        err(k8s, f"PodDisruptionBudget {name}: selector differs from the {kind}'s")
    for c in spec.get("initContainers", []) + spec["containers"]:
        where = f"{kind} {name} container {c['name']}"
        if c.get("image") not in images:
            err(k8s, f"{where}: image {c.get('image')} is not in kustomization images")
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("readOnlyRootFilesystem") is not True \
                or (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            err(k8s, f"{where}: securityContext must drop ALL, no privilege escalation, read-only root")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for e in c.get("env", []):
            n, vf = e["name"], e.get("valueFrom") or {}
            if n.startswith("DIONYSIA_") and n not in known:
                err(k8s, f"{where}: unknown variable {n}")
            if "secretKeyRef" in vf and vf["secretKeyRef"]["key"] not in skeys:
                err(k8s, f"{where}: Secret key {vf['secretKeyRef']['key']} is not in secret.example.yaml")
            if "configMapKeyRef" in vf and vf["configMapKeyRef"]["key"] not in cm:
                err(k8s, f"{where}: ConfigMap key {vf['configMapKeyRef']['key']} is not in configmap.yaml")
        if c in spec["containers"]:
            for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                pr = (c.get(probe) or {}).get("httpGet") or {}
                port = ports.get(pr.get("port"), pr.get("port"))
                if pr.get("path") != path or port != probe_ports.get(name):
                    err(k8s, f"{where}: {probe} must be GET {path} on port {probe_ports.get(name)}")
    # Recordings: one S3 store (a file store cannot be shared by pods) for api, router, workers.
    if name in ("api", "router", "worker-cpu", "worker-gpu"):
        refs = {e["name"]: e.get("valueFrom") or {} for e in spec["containers"][0].get("env", [])}
        if (refs.get("DIONYSIA_STORAGE_URL", {}).get("configMapKeyRef") or {}).get("key") != "storage-url":
            err(k8s, f"{name}: DIONYSIA_STORAGE_URL must come from the ConfigMap's storage-url")
        for v in ("DIONYSIA_STORAGE_ACCESS_KEY_ID", "DIONYSIA_STORAGE_SECRET_ACCESS_KEY") + \
                (("DIONYSIA_WORKER_SECRET", "DIONYSIA_API_URL") if name == "router" else ()):
            if v not in refs:
                err(k8s, f"{name}: {v} is not set")
    if name.startswith("worker"):
        env = {e["name"]: e.get("value") for e in spec["containers"][0].get("env", [])}
        if env.get("DIONYSIA_WORKER_ORIGIN_URL") != "http://$(POD_IP):8090":
            err(k8s, f"{name}: DIONYSIA_WORKER_ORIGIN_URL must be the pod IP (downward API)")
        if "replicas" in d["spec"]:
            err(k8s, f"{name}: no replicas field (KEDA / kubectl scale own it)")
        if spec.get("terminationGracePeriodSeconds", 30) < 30:
            err(k8s, f"{name}: terminationGracePeriodSeconds too short for the graceful handover")
if not str(cm.get("storage-url", "")).startswith("s3://"):
    err(os.path.join(k8s, "base", "configmap.yaml"), "storage-url must be an s3:// URL (pods cannot share a file store)")
gpu = by.get(("Deployment", "worker-gpu"), {}).get("spec", {}).get("template", {}).get("spec", {})
if gpu:
    lim = gpu["containers"][0].get("resources", {}).get("limits", {})
    if str(lim.get("nvidia.com/gpu")) != "1" or not gpu.get("nodeSelector") \
            or not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NoSchedule" for t in gpu.get("tolerations", [])):
        err(k8s, "worker-gpu: needs limits nvidia.com/gpu: 1, a nodeSelector and a nvidia.com/gpu NoSchedule toleration")

# KEDA: list names must be asynq's keys of our queues (pkg/job) and the triggers named in the formula.
job = read(os.path.join(root, "pkg/job/job.go"))
queues = dict(re.findall(r'(Queue(?:CPU|GPU))\s*=\s*"([^"]+)"', job))
base_go = glob.glob(os.path.expanduser("~/go/pkg/mod/github.com/hibiken/asynq@v0.26.0/internal/base/base.go"))
if base_go and 'return "asynq:{" + qname + "}:"' not in read(base_go[0]):
    err(base_go[0], "asynq's queue key format changed: update deploy/k8s/keda/scaledobjects.yaml")
for p in overlay:
    for d in docs[p]:
        if d.get("kind") != "ScaledObject":
            continue
        target = d["spec"]["scaleTargetRef"]["name"]
        q = queues.get("QueueGPU" if target == "worker-gpu" else "QueueCPU")
        names = set()
        for t in d["spec"]["triggers"]:
            names.add(t.get("name"))
            ln = t["metadata"].get("listName", "")
            if ln not in (f"asynq:{{{q}}}:pending", f"asynq:{{{q}}}:active"):
                err(p, f"ScaledObject {d['metadata']['name']}: listName {ln} is not asynq's list of queue {q}")
        formula = d["spec"].get("advanced", {}).get("scalingModifiers", {}).get("formula", "")
        for n in re.findall(r"[a-z_]+", formula):
            if n not in names:
                err(p, f"ScaledObject {d['metadata']['name']}: formula uses {n}, no trigger has that name")
        if ("Deployment", target) not in by:
            err(p, f"ScaledObject {d['metadata']['name']}: no Deployment {target}")
ok(f"Kubernetes: {sum(len(v) for v in docs.values())} documents in {len(docs)} files parse; kustomizations, "
   f"keys, images, probes, GPU scheduling, KEDA queues {sorted(queues.values())}")

# --- systemd environment file ---
envex = os.path.join(root, "deploy/systemd/dionysia.env.example")
for line in read(envex).splitlines():
    if line.strip() and not line.startswith("#"):
        n = line.split("=", 1)[0]
        if not re.fullmatch(r"[A-Z_][A-Z0-9_]*", n) or "=" not in line:
            err(envex, f"bad line {line!r}")
        elif n.startswith("DIONYSIA_") and n not in known:
            err(envex, f"unknown variable {n}")
for p in glob.glob(os.path.join(root, "deploy/systemd/*.service")):
    for n in re.findall(r"^Environment=(DIONYSIA_[A-Z0-9_]+)=", read(p), re.M):
        if n not in known:
            err(p, f"unknown variable {n}")
# The default file store: one directory the API, router and worker units share.
for u in ("dionysia-api.service", "dionysia-router.service", "dionysia-worker@.service"):
    t = read(os.path.join(root, "deploy/systemd", u))
    sd = re.search(r"^StateDirectory=(.*)$", t, re.M)
    if not sd or "dionysia/recordings" not in sd.group(1).split() or not re.search(r"^StateDirectoryMode=0750$", t, re.M):
        err(os.path.join(root, "deploy/systemd", u), "needs StateDirectory=dionysia/recordings, StateDirectoryMode=0750")
ok("systemd environment names, the shared recordings directory")

for e in errors:
    print(f"\033[1;31mFAIL:\033[0m {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
  fail "structure checks (see above)"
fi

# --- kustomize builds (kubectl's kustomize: it refuses what the YAML checks above cannot see,
# such as an overlay inside its base's directory) ---------------------------------------
if command -v kubectl >/dev/null; then
  for k in deploy/k8s deploy/k8s/keda; do
    if out="$(kubectl kustomize "${k}" 2>&1 >/dev/null)"; then
      ok "kubectl kustomize ${k}"
    else
      fail "kubectl kustomize ${k}: ${out}"
    fi
  done
else
  echo "    skipped: kubectl not found (install it to build deploy/k8s and deploy/k8s/keda with kustomize)"
fi

# --- systemd units ------------------------------------------------------------------------
say "systemd units"
if command -v systemd-analyze >/dev/null; then
  # verify needs the ExecStart binaries to exist: check copies that point at stubs.
  mkdir -p "${tmp}/units" "${tmp}/bin"
  for b in dionysia dionysia-worker mediamtx; do printf '#!/bin/sh\n' > "${tmp}/bin/${b}"; chmod +x "${tmp}/bin/${b}"; done
  for f in deploy/systemd/*.service; do sed "s#/usr/local/bin/#${tmp}/bin/#g" "${f}" > "${tmp}/units/$(basename "${f}")"; done
  # Any output (an unknown key, a bad value) is a failure: verify itself only warns.
  if out="$(cd "${tmp}/units" && systemd-analyze verify --man=no ./*.service 2>&1)" && [[ -z ${out} ]]; then
    ok "systemd-analyze verify: $(cd deploy/systemd && echo *.service)"
  else
    fail "systemd units: ${out//${tmp}\/units\//deploy/systemd/}"
  fi
else
  echo "    skipped: systemd-analyze not found (install systemd to verify deploy/systemd/*.service)"
fi
for f in deploy/systemd/*.service; do
  for key in NoNewPrivileges=yes ProtectSystem=strict Restart=on-failure KillSignal=SIGTERM TimeoutStopSec= User=dionysia; do
    if [[ $(basename "${f}") == dionysia-migrate.service && ${key} == Restart=on-failure ]]; then continue; fi
    if [[ $(basename "${f}") == dionysia-migrate.service && ${key} == KillSignal=SIGTERM ]]; then continue; fi
    if [[ $(basename "${f}") == dionysia-migrate.service && ${key} == TimeoutStopSec= ]]; then continue; fi
    grep -q "^${key}" "${f}" || fail "${f}: missing ${key}"
  done
done

if ((failures)); then
  printf '\033[1;31m%d packaging check(s) failed\033[0m\n' "${failures}" >&2
  exit 1
fi
printf '\033[1;32mpackaging checks passed\033[0m (nothing was built or run: no Docker engine, cluster or systemd here)\n'
