#!/usr/bin/env python3
"""Renders helm/dsinfer with real Helm and checks the manifests offline.

Helm: helm-python-sdk (PyPI), which embeds Helm's own Go SDK (v4) as a C library: the same
template engine, Sprig functions, `helm lint` and values.schema.json handling as the helm CLI.
No cluster is contacted.

For each scenario (default values, configs/production.yaml through the chart, the local config
without TLS, a ServiceMonitor on) this
  1. lints the chart (helm lint, strict),
  2. renders it,
  3. validates every manifest against the Kubernetes OpenAPI schemas bundled in
     kubernetes-validate, strictly (unknown fields are errors), for several Kubernetes versions;
     ServiceMonitor is a CRD with no bundled schema and is checked by rule 4 only,
  4. cross-checks references the schemas cannot see (named ports, selectors, volumes, GPU
     limits, non-root and read-only root filesystem, names and label values),
  5. writes the rendered server.yaml and, given --config-check BINARY, parses it with dsinfer's
     own config parser (tests/server_config_check.cc).
It also renders invalid values and expects the chart's `fail` messages.

Usage: check_helm.py [--config-check BINARY] [--out DIR]
Exit: 0 all checks passed, 1 a check failed, 77 a Python package is missing (skip).
"""
import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "helm", "dsinfer")
KUBE_VERSIONS = ["1.28.0", "1.31.0", "1.37.0"]
# Keys of the server config that the chart owns (see templates/_helpers.tpl).
CHART_OWNED = ("model_path", "grpc_listen", "http_listen", "tls")

try:
    import yaml
    import kubernetes_validate
    import helm_python as helm
except ImportError as e:
    print(f"SKIP: {e.name} missing: python3 -m pip install pyyaml kubernetes-validate "
          "helm-python-sdk (scripts/install-deps.sh --helm)")
    sys.exit(77)


def server_config_values(path):
    """A server config file as chart `config` values (without the keys the chart owns)."""
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    for key in CHART_OWNED:
        cfg.pop(key, None)
    return cfg


def scenarios():
    prod = {
        "config": server_config_values(os.path.join(ROOT, "configs", "production.yaml")),
        "model": {"existingClaim": "", "hostPath": "/data/models/DeepSeek-V3"},
        "service": {"grpc": {"type": "LoadBalancer",
                             "annotations": {"metallb.universe.tf/address-pool": "county"}}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "priorityClassName": "system-cluster-critical",
        "imagePullSecrets": [{"name": "regcred"}],
    }
    local = {
        "config": server_config_values(os.path.join(ROOT, "configs", "local.yaml")),
        "tls": {"enabled": False, "requireClientCert": False},
        "gpu": {"count": 1},
        "model": {"mountPath": "/models/tiny-v3", "subPath": "tiny-v3"},
        "serviceAccount": {"create": False},
        "extraEnv": [{"name": "OMP_NUM_THREADS", "value": "8"}],
    }
    return {"default": {}, "production": prod, "local-no-tls": local}


# (values, substring of the expected failure)
BAD_VALUES = [
    ({"model": {"hostPath": "/data/m"}}, "set only one of existingClaim and hostPath"),
    ({"model": {"existingClaim": ""}}, "set existingClaim"),
    # values.schema.json refuses these before the templates' own guards would.
    ({"config": {"model_path": "/elsewhere"}}, "additional properties 'model_path' not allowed"),
    ({"config": {"tls": {"enabled": False}}}, "additional properties 'tls' not allowed"),
    ({"config": {"scheduler": {"max_batched_tokenz": 1}}},
     "additional properties 'max_batched_tokenz' not allowed"),
    ({"config": {"tenants": [{"id": "a", "max_priority": "urgent"}]}},
     "/config/tenants/0/max_priority"),
    ({"config": {"tenants": [{"id": "a", "api_key_sha256": ["plaintext-key"]}]}},
     "/config/tenants/0/api_key_sha256/0"),
    ({"config": {"log_request_content": True}}, "/config/log_request_content"),
    ({"gpu": {"count": 0}}, "/gpu/count"),
    ({"tls": {"secretName": ""}}, "tls.enabled needs tls.secretName"),
    ({"tls": {"clientCaSecretName": ""}}, "tls.requireClientCert needs tls.clientCaSecretName"),
]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def deep_merge(base, override):
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def cross_check(docs, errors, where):
    """Semantic checks the OpenAPI schemas do not express."""
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        meta = d["metadata"]
        if not DNS1123_SUBDOMAIN.match(meta["name"]) or len(meta["name"]) > 63:
            errors.append(f"{where}: {d['kind']} name {meta['name']!r} is not a DNS-1123 name")
        for k, v in (meta.get("labels") or {}).items():
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                errors.append(f"{where}: {d['kind']} label {k}={v!r} is not a valid label value")
    deps = by_kind.get("Deployment", [])
    if len(deps) != 1:
        errors.append(f"{where}: expected one Deployment, got {len(deps)}")
        return
    dep = deps[0]
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    for k, v in dep["spec"]["selector"]["matchLabels"].items():
        if pod_labels.get(k) != v:
            errors.append(f"{where}: Deployment selector {k}={v} does not match the pod labels")
    spec = pod["spec"]
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for name in ports:
        if len(name) > 15 or not PORT_NAME.match(name):
            errors.append(f"{where}: container port name {name!r} is not an IANA service name")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                        ("startupProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet")
        if not get:
            errors.append(f"{where}: {probe} missing")
            continue
        if get.get("path") != path or get.get("port") != "metrics" or "metrics" not in ports:
            errors.append(f"{where}: {probe} must GET {path} on the metrics port, got {get}")
    volumes = {v["name"] for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes:
            errors.append(f"{where}: volumeMount {m['name']} has no volume")
    res = c.get("resources", {})
    gpu_limit = res.get("limits", {}).get("nvidia.com/gpu")
    if gpu_limit is None or int(gpu_limit) < 1:
        errors.append(f"{where}: no nvidia.com/gpu limit")
    if res.get("requests", {}).get("nvidia.com/gpu") not in (None, gpu_limit):
        errors.append(f"{where}: nvidia.com/gpu request differs from its limit")
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        errors.append(f"{where}: pod may run as root")
    if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{where}: container root filesystem writable or privilege escalation on")
    if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
        errors.append(f"{where}: capabilities not dropped")
    model_mounts = [m for m in c.get("volumeMounts", []) if m["name"] == "model"]
    if not model_mounts or not model_mounts[0].get("readOnly"):
        errors.append(f"{where}: model volume missing or writable")
    services = by_kind.get("Service", [])
    if {s["metadata"]["name"].rsplit("-", 1)[-1] for s in services} != {"grpc", "metrics"}:
        errors.append(f"{where}: expected a grpc and a metrics Service")
    for s in services:
        for k, v in s["spec"]["selector"].items():
            if pod_labels.get(k) != v:
                errors.append(f"{where}: Service {s['metadata']['name']} selects {k}={v}, "
                              "which the pod does not carry")
        for p in s["spec"]["ports"]:
            if p["targetPort"] not in ports:
                errors.append(f"{where}: Service port {p['name']} targets unknown port "
                              f"{p['targetPort']}")
    for sm in by_kind.get("ServiceMonitor", []):
        if sm.get("apiVersion") != "monitoring.coreos.com/v1":
            errors.append(f"{where}: ServiceMonitor apiVersion {sm.get('apiVersion')}")
        sel = sm["spec"]["selector"]["matchLabels"]
        matched = [s for s in services
                   if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if [s["metadata"]["name"] for s in matched] != [
                s["metadata"]["name"] for s in services if s["metadata"]["name"].endswith("-metrics")]:
            errors.append(f"{where}: ServiceMonitor selects {[s['metadata']['name'] for s in matched]}"
                          ", not exactly the metrics Service")
        for ep in sm["spec"]["endpoints"]:
            names = {p["name"] for s in matched for p in s["spec"]["ports"]}
            if ep.get("port") not in names or ep.get("path") != "/metrics":
                errors.append(f"{where}: ServiceMonitor endpoint {ep} does not hit /metrics")
    # The ConfigMap's config must be the one whose checksum the pod carries.
    cms = [d for d in by_kind.get("ConfigMap", []) if "server.yaml" in d.get("data", {})]
    if len(cms) != 1:
        errors.append(f"{where}: expected one ConfigMap with server.yaml")
    else:
        if not any(v.get("configMap", {}).get("name") == cms[0]["metadata"]["name"]
                   for v in spec.get("volumes", [])):
            errors.append(f"{where}: the pod does not mount the config ConfigMap")


def check_scenario(name, values, args, errors):
    where = f"[{name}]"
    lint = helm.lint(CHART, values or None, strict=True, namespace="dsinfer")
    for m in lint.get("messages") or []:
        if m.get("severity", 0) >= 2:
            errors.append(f"{where} helm lint: {m.get('path')}: {m.get('error')}")
    for e in lint.get("errors") or []:
        errors.append(f"{where} helm lint: {e}")
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or None, name="dsinfer", namespace="dsinfer")
    docs = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for d in yaml.safe_load_all(text):
            if d:
                docs.append(d)
    out_dir = os.path.join(args.out, name)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manifests.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)

    validated, crd = 0, []
    for d in docs:
        for kv in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(d, kv, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                crd.append(d["kind"])
                break
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{where} {d['kind']}/{d['metadata']['name']} (k8s {kv}): "
                              f"{'.'.join(str(p) for p in e.path)}: {e.message}")
        else:
            validated += 1
    cross_check(docs, errors, where)

    cm = next(d for d in docs if d["kind"] == "ConfigMap" and "server.yaml" in d.get("data", {}))
    cfg_path = os.path.join(out_dir, "server.yaml")
    with open(cfg_path, "w", encoding="utf-8") as f:
        f.write(cm["data"]["server.yaml"])
    parsed = "not run (no --config-check)"
    if args.config_check:
        p = subprocess.run([args.config_check, cfg_path], capture_output=True, text=True)
        if p.returncode != 0:
            errors.append(f"{where} dsinfer rejects the rendered server.yaml:\n{p.stderr.strip()}")
        parsed = p.stdout.strip() or "failed"
    kinds = ", ".join(sorted(d["kind"] for d in docs))
    print(f"{where} {len(docs)} manifests ({kinds}); {validated} schema-valid on k8s "
          f"{'/'.join(KUBE_VERSIONS)}; no schema (CRD, cross-checks only): {crd or 'none'}; "
          f"server config: {parsed}")


def self_test(errors):
    """The checks must be able to fail: broken copies of a good Deployment are caught."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(None, name="dsinfer", namespace="dsinfer")
    docs = [d for path, t in rendered.items() if path.endswith(".yaml")
            for d in yaml.safe_load_all(t) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    broken = copy.deepcopy(dep)
    broken["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
    broken["spec"]["replicas"] = "one"
    try:
        kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)
        errors.append("[self-test] kubernetes-validate accepted an invalid Deployment")
    except kubernetes_validate.ValidationError:
        pass
    broken = copy.deepcopy(docs)
    d = next(x for x in broken if x["kind"] == "Deployment")
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["port"] = "http"
    c["securityContext"]["readOnlyRootFilesystem"] = False
    found = []
    cross_check(broken, found, "[self-test]")
    if len(found) < 2:
        errors.append(f"[self-test] cross-checks missed planted errors, found only {found}")
    print("[self-test] schema validation and cross-checks reject planted errors")


def check_failures(errors):
    with helm.Chart.load(CHART) as chart:
        for values, expected in BAD_VALUES:
            try:
                chart.render(values, name="dsinfer", namespace="dsinfer")
                errors.append(f"[bad values {values}] rendered, expected failure: {expected}")
            except helm.HelmError as e:
                if expected not in str(e):
                    errors.append(f"[bad values {values}] failed with {e!r}, expected {expected!r}")
    print(f"[bad values] {len(BAD_VALUES)} invalid value sets refused with their messages")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config-check", help="server_config_check binary (from the build dir)")
    ap.add_argument("--out", help="keep rendered manifests here (default: a temp dir)")
    args = ap.parse_args()
    tmp = None
    if not args.out:
        tmp = tempfile.TemporaryDirectory(prefix="dsinfer-helm-")
        args.out = tmp.name
    print(f"helm-python-sdk {helm.helm_c_version()} (Helm SDK {helm.helm_sdk_version()}), "
          f"kubernetes-validate {kubernetes_validate.version.__version__}")
    errors = []
    for name, values in scenarios().items():
        try:
            check_scenario(name, values, args, errors)
        except helm.HelmError as e:
            errors.append(f"[{name}] helm: {e}")
    check_failures(errors)
    self_test(errors)
    if errors:
        print("check_helm FAILED:")
        for e in errors:
            print("  " + e)
        return 1
    print("check_helm: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
