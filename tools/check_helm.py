#!/usr/bin/env python3
"""Renders helm/dsinfer with real Helm and checks the manifests offline.

Helm: helm-python-sdk (PyPI), which embeds Helm's own Go SDK (v4) as a C library: the same
template engine, Sprig functions, `helm lint` and values.schema.json handling as the helm CLI.
No cluster is contacted.

For each scenario (default values, configs/production.yaml through the chart, the local config
without TLS, 8 ranks on one node, the OpenAI API with and without TLS and with the metrics port
on TLS, and the multi-node LeaderWorkerSet: helm/dsinfer/ci/*.yaml plus a 4-GPU-per-pod
variant) this
  1. lints the chart (helm lint, strict),
  2. renders it,
  3. validates every manifest against the Kubernetes OpenAPI schemas bundled in
     kubernetes-validate, strictly (unknown fields are errors), for several Kubernetes versions.
     LeaderWorkerSet is a CRD without a bundled schema: it is validated against
     tools/schemas/leaderworkerset-v1.json (written from the LWS v1 API types), and its leader and
     worker pod templates, wrapped in Pods, against the Kubernetes schemas. ServiceMonitor is a
     CRD with no schema here and is checked by rule 4 only,
  4. cross-checks what the schemas cannot see: named ports, selectors, volumes, GPU limits,
     non-root and read-only root filesystem, names and label values; with a LeaderWorkerSet also
     size x ranks per pod = tp, GPU limits = ranks per pod, the worker's --node-rank/--leader
     arguments, the rendezvous port, and that the Services select the leader pod only (against
     the labels LWS puts on its pods),
  5. checks the rendered server.yaml's `parallel`, `openai_listen` and `tls` sections against the
     values (the OpenAI port and Service, the probes' scheme), writes the file
     and, given --config-check BINARY, parses it with dsinfer's own config parser
     (tests/server_config_check.cc).
It also renders invalid values and expects the chart's `fail` messages.

Usage: check_helm.py [--config-check BINARY] [--out DIR]
Exit: 0 all checks passed, 1 a check failed, 77 a Python package is missing (skip).
"""
import argparse
import copy
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHART = os.path.join(ROOT, "helm", "dsinfer")
LWS_SCHEMA = os.path.join(ROOT, "tools", "schemas", "leaderworkerset-v1.json")
KUBE_VERSIONS = ["1.28.0", "1.31.0", "1.37.0"]
# Keys of the server config that the chart owns (see templates/_helpers.tpl).
CHART_OWNED = ("model_path", "grpc_listen", "http_listen", "openai_listen", "tls", "parallel")
# Labels the LeaderWorkerSet controller puts on the pods it creates (api/leaderworkerset/v1).
LWS_NAME = "leaderworkerset.sigs.k8s.io/name"
LWS_GROUP_INDEX = "leaderworkerset.sigs.k8s.io/group-index"
LWS_WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"
CONFIG_PATH = "/etc/dsinfer/server.yaml"

try:
    import yaml
    import jsonschema  # a dependency of kubernetes-validate
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
    out = {"default": {}, "production": prod, "local-no-tls": local,
           "single-node-tp8": {"parallel": {"tp": 8, "ep": 8}, "config": {"backend": "cpu"}}}
    # The OpenAI API: over mTLS with the production config, in plain HTTP with the local one, and
    # with the metrics port on TLS too (probes and ServiceMonitor over HTTPS).
    out["openai-mtls"] = deep_merge(prod, {"openai": {"enabled": True, "port": 8443},
                                           "service": {"openai": {"port": 443}}})
    out["openai-no-tls"] = deep_merge(local, {"openai": {"enabled": True}})
    out["openai-metrics-tls"] = {
        "openai": {"enabled": True},
        "tls": {"metricsListener": True},
        "serviceMonitor": {"enabled": True, "tlsConfig": {
            "ca": {"secret": {"name": "dsinfer-tls", "key": "ca.crt"}},
            "serverName": "dsinfer-metrics.dsinfer.svc"}},
    }
    for path in sorted(glob.glob(os.path.join(CHART, "ci", "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            out["ci/" + os.path.basename(path)] = yaml.safe_load(f) or {}
    # Two groups of four 4-GPU pods, no TLS, a hostPath model, a non-default rendezvous port,
    # the OpenAI API on the leaders.
    out["multinode-4x4"] = {
        "multiNode": {"enabled": True},
        "openai": {"enabled": True, "port": 8080},
        "replicaCount": 2,
        "parallel": {"tp": 16, "ep": 4, "ranksPerNode": 4, "rendezvousPort": 29600,
                     "timeoutSeconds": 30},
        "gpu": {"count": 4},
        "tls": {"enabled": False, "requireClientCert": False},
        # Sharded layouts run the CPU backend in this build (the server refuses cuda with tp > 1).
        "config": {"backend": "cpu", "tenants": [{"id": "lab", "api_key_sha256": ["0" * 64]}]},
        "model": {"existingClaim": "", "hostPath": "/data/models/DeepSeek-V3"},
        "extraEnv": [{"name": "NCCL_SOCKET_IFNAME", "value": "eth0"}],
    }
    return out


def chart_values(overrides):
    """The chart's values.yaml with a scenario's values merged in, as Helm merges them."""
    with open(os.path.join(CHART, "values.yaml"), encoding="utf-8") as f:
        base = yaml.safe_load(f)
    # A list or scalar in the overrides replaces the default; maps merge.
    return deep_merge(base, overrides or {})


def expected_listeners(values):
    """What the chart renders from values: the OpenAI port (None when off), the metrics scheme."""
    tls = values["tls"]
    return {"openai": values["openai"]["port"] if values["openai"]["enabled"] else None,
            "scheme": "HTTPS" if tls["enabled"] and tls.get("metricsListener") else "HTTP"}


def expected_parallel(values):
    """What the chart renders from values: ranks per pod, pods per group, server.yaml section."""
    p, multi = values["parallel"], values["multiNode"]["enabled"]
    tp, ep = p["tp"], p["ep"]
    rpn = p["ranksPerNode"] or (values["gpu"]["count"] if multi else tp)
    section = None
    if multi or tp > 1:
        host = "0.0.0.0" if multi else "127.0.0.1"
        section = {"tp": tp, "ep": ep, "ranks_per_node": rpn,
                   "rendezvous_listen": f"{host}:{p['rendezvousPort']}",
                   "timeout_seconds": p["timeoutSeconds"]}
    return {"multi": multi, "tp": tp, "ep": ep, "rpn": rpn, "nodes": tp // rpn,
            "port": p["rendezvousPort"], "section": section,
            "cuda": values["config"].get("backend", "cpu") == "cuda"}


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
    ({"config": {"http": {"max_header_bytes": 100}}}, "/config/http/max_header_bytes"),
    ({"config": {"http": {"openai_listen": "0.0.0.0:8000"}}},
     "additional properties 'openai_listen' not allowed"),
    ({"gpu": {"count": 0}}, "/gpu/count"),
    ({"tls": {"secretName": ""}}, "tls.enabled needs tls.secretName"),
    ({"tls": {"clientCaSecretName": ""}}, "tls.requireClientCert needs tls.clientCaSecretName"),
    # Parallel layout: the schema checks ranges, the templates divisibility and GPU counts.
    ({"config": {"parallel": {"tp": 2}}}, "additional properties 'parallel' not allowed"),
    ({"parallel": {"ep": 0}}, "/parallel/ep"),
    ({"parallel": {"tpp": 2}}, "additional properties 'tpp' not allowed"),
    ({"multiNode": {"enabled": True, "size": 2}}, "additional properties 'size' not allowed"),
    ({"multiNode": {"enabled": True}}, "/parallel/tp"),
    ({"parallel": {"tp": 16, "ep": 3}}, "parallel.ep (3) must divide parallel.tp (16)"),
    ({"multiNode": {"enabled": True}, "parallel": {"tp": 12, "ranksPerNode": 8}},
     "parallel.tp (12) must be a multiple of parallel.ranksPerNode (8)"),
    ({"multiNode": {"enabled": True}, "parallel": {"tp": 8}}, "at least 2 pods"),
    ({"multiNode": {"enabled": True}, "parallel": {"tp": 16, "ranksPerNode": 4}},
     "gpu.count (8) must equal the ranks per pod (4)"),
    ({"parallel": {"tp": 4}}, "gpu.count (8) must equal the ranks per pod (4)"),
    ({"parallel": {"tp": 8, "ranksPerNode": 4}},
     "parallel.ranksPerNode (4) must be 0 or equal parallel.tp (8) on a single node"),
    ({"parallel": {"tp": 8, "rendezvousPort": 9090}}, "parallel.rendezvousPort (9090) collides"),
    # The OpenAI API: the chart owns openai_listen; its port is its own.
    ({"config": {"openai_listen": "0.0.0.0:8000"}},
     "additional properties 'openai_listen' not allowed"),
    ({"openai": {"enabled": True, "port": 9090}}, "openai.port (9090) collides"),
    ({"openai": {"enabled": True, "port": 0}}, "/openai/port"),
    ({"openai": {"enabled": True}, "parallel": {"tp": 8, "rendezvousPort": 8000}},
     "parallel.rendezvousPort (8000) collides"),
    ({"tls": {"enabled": False, "requireClientCert": False, "metricsListener": True}},
     "tls.metricsListener needs tls.enabled"),
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


def workload_pods(docs, values, errors, where):
    """The pod templates of the Deployment or LeaderWorkerSet, as (role, template, labels of each
    pod the controller creates from it). Also checks the workload object itself."""
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    exp = expected_parallel(values)
    deps, lwss = by_kind.get("Deployment", []), by_kind.get("LeaderWorkerSet", [])
    want = (0, 1) if exp["multi"] else (1, 0)
    if (len(deps), len(lwss)) != want:
        errors.append(f"{where}: expected {want[0]} Deployment and {want[1]} LeaderWorkerSet, got "
                      f"{len(deps)} and {len(lwss)}")
        return []
    if deps:
        dep = deps[0]
        pod = dep["spec"]["template"]
        labels = pod["metadata"]["labels"]
        for k, v in dep["spec"]["selector"]["matchLabels"].items():
            if labels.get(k) != v:
                errors.append(f"{where}: Deployment selector {k}={v} does not match the pod labels")
        return [("single", pod, [labels])]
    lws = lwss[0]
    name, spec = lws["metadata"]["name"], lws["spec"]
    lwt = spec["leaderWorkerTemplate"]
    size, replicas = lwt.get("size", 1), spec.get("replicas", 1)
    if lws.get("apiVersion") != "leaderworkerset.x-k8s.io/v1":
        errors.append(f"{where}: LeaderWorkerSet apiVersion {lws.get('apiVersion')}")
    if size != exp["nodes"] or size * exp["rpn"] != exp["tp"]:
        errors.append(f"{where}: LeaderWorkerSet size {size} x {exp['rpn']} ranks per pod != "
                      f"parallel.tp {exp['tp']}")
    if size < 2:
        errors.append(f"{where}: LeaderWorkerSet of size {size} has no workers")
    if replicas != values["replicaCount"]:
        errors.append(f"{where}: LeaderWorkerSet replicas {replicas} != replicaCount")
    if spec.get("startupPolicy") != "LeaderCreated":
        errors.append(f"{where}: startupPolicy {spec.get('startupPolicy')}, expected LeaderCreated")
    if lwt.get("restartPolicy") != "RecreateGroupOnPodRestart":
        errors.append(f"{where}: restartPolicy {lwt.get('restartPolicy')}, expected "
                      "RecreateGroupOnPodRestart (a lost rank needs the whole group restarted)")
    # Pods are <name>-<group> and <name>-<group>-<index>; the names are also hostnames.
    longest = f"{name}-{max(replicas - 1, 0)}-{size - 1}"
    if len(longest) > 63:
        errors.append(f"{where}: LWS pod name {longest!r} is longer than 63 characters")
    # LWS creates a headless Service named like the set (the pods' subdomain).
    if any(sv["metadata"]["name"] == name for sv in by_kind.get("Service", [])):
        errors.append(f"{where}: a chart Service is named {name!r}, the name of LWS's headless "
                      "Service")
    if "leaderTemplate" not in lwt:
        errors.append(f"{where}: LeaderWorkerSet has no leaderTemplate")
        return []
    out = []
    for role, key, indexes in (("leader", "leaderTemplate", [0]),
                               ("worker", "workerTemplate", range(1, size))):
        tmpl = lwt[key]
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        if any(k.startswith("leaderworkerset.sigs.k8s.io/") for k in labels):
            errors.append(f"{where}: {role} template sets LWS-owned labels")
        pods = [dict(labels, **{LWS_NAME: name, LWS_GROUP_INDEX: str(g),
                                LWS_WORKER_INDEX: str(i)})
                for g in range(max(replicas, 1)) for i in indexes]
        out.append((role, tmpl, pods))
    return out


def check_pod(role, pod, values, errors, where):
    """One pod template; returns its container's named ports."""
    exp = expected_parallel(values)
    w = f"{where} {role} pod:"
    spec = pod["spec"]
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    for name in ports:
        if len(name) > 15 or not PORT_NAME.match(name):
            errors.append(f"{w} container port name {name!r} is not an IANA service name")
    args = c.get("args") or []
    if role == "worker":
        if ports.keys() & {"grpc", "metrics", "openai"}:
            errors.append(f"{w} a worker serves no gRPC or metrics port, has {sorted(ports)}")
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if (c.get(probe) or {}).get("httpGet"):
                errors.append(f"{w} a worker has no HTTP server for an {probe}")
        want = ["worker", "--config", CONFIG_PATH, "--node-rank", "$(LWS_WORKER_INDEX)",
                "--leader", f"$(LWS_LEADER_ADDRESS):{exp['port']}"]
        if args != want:
            errors.append(f"{w} args {args}, expected {want}")
    else:
        if args[:1] != ["serve"] or "--node-rank" in args or "--leader" in args:
            errors.append(f"{w} args {args}, expected `serve` without --node-rank/--leader")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"),
                            ("startupProbe", "/healthz")):
            get = (c.get(probe) or {}).get("httpGet")
            if not get:
                errors.append(f"{w} {probe} missing")
                continue
            if get.get("path") != path or get.get("port") != "metrics" or "metrics" not in ports:
                errors.append(f"{w} {probe} must GET {path} on the metrics port, got {get}")
            scheme = expected_listeners(values)["scheme"]
            if get.get("scheme", "HTTP") != scheme:
                errors.append(f"{w} {probe} scheme {get.get('scheme', 'HTTP')}, the metrics port "
                              f"serves {scheme}")
        openai = expected_listeners(values)["openai"]
        if ports.get("openai") != openai:
            errors.append(f"{w} container port openai {ports.get('openai')}, expected {openai}")
        if role == "leader" and ports.get("rendezvous") != exp["port"]:
            errors.append(f"{w} rendezvous port {ports.get('rendezvous')}, expected {exp['port']}")
    if role != "single":
        env = {e["name"]: e for e in c.get("env", [])}
        ref = ((env.get("DSINFER_BIND_ADDRESS") or {}).get("valueFrom") or {}).get("fieldRef")
        if (ref or {}).get("fieldPath") != "status.podIP":
            errors.append(f"{w} DSINFER_BIND_ADDRESS is not the pod IP (downward API)")
        if env.keys() & {"LWS_WORKER_INDEX", "LWS_LEADER_ADDRESS"}:
            errors.append(f"{w} sets LWS_* variables, which LWS injects")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        if m["name"] not in volumes:
            errors.append(f"{w} volumeMount {m['name']} has no volume")
    if not any(m.get("mountPath") == CONFIG_PATH and m["name"] in volumes
               and "configMap" in volumes[m["name"]] for m in c.get("volumeMounts", [])):
        errors.append(f"{w} {CONFIG_PATH} is not mounted from the ConfigMap")
    res = c.get("resources", {})
    gpu_limit = res.get("limits", {}).get("nvidia.com/gpu")
    if gpu_limit is None or int(gpu_limit) < 1:
        errors.append(f"{w} no nvidia.com/gpu limit")
    elif exp["cuda"] and (exp["multi"] or exp["tp"] > 1) and int(gpu_limit) != exp["rpn"]:
        errors.append(f"{w} nvidia.com/gpu limit {gpu_limit} != {exp['rpn']} ranks per pod")
    if res.get("requests", {}).get("nvidia.com/gpu") not in (None, gpu_limit):
        errors.append(f"{w} nvidia.com/gpu request differs from its limit")
    psc, csc = spec.get("securityContext", {}), c.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        errors.append(f"{w} pod may run as root")
    if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False:
        errors.append(f"{w} container root filesystem writable or privilege escalation on")
    if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
        errors.append(f"{w} capabilities not dropped")
    model_mounts = [m for m in c.get("volumeMounts", []) if m["name"] == "model"]
    if not model_mounts or not model_mounts[0].get("readOnly"):
        errors.append(f"{w} model volume missing or writable")
    return ports


def cross_check(docs, values, errors, where):
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
    pods = workload_pods(docs, values, errors, where)
    if not pods:
        return
    serving_ports, serving_labels, other_labels = {}, [], []
    for role, tmpl, labels in pods:
        ports = check_pod(role, tmpl, values, errors, where)
        for v in (tmpl.get("metadata") or {}).get("labels", {}).values():
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                errors.append(f"{where}: {role} pod label value {v!r} is not valid")
        if role == "worker":
            other_labels += labels
        else:
            serving_ports, serving_labels = ports, labels
    services = by_kind.get("Service", [])
    want_services = {"grpc", "metrics"}
    if expected_listeners(values)["openai"] is not None:
        want_services.add("openai")
    if {s["metadata"]["name"].rsplit("-", 1)[-1] for s in services} != want_services:
        errors.append(f"{where}: expected the Services {sorted(want_services)}")
    for s in services:
        sel = s["spec"]["selector"]
        sname = s["metadata"]["name"]
        if not all(all(lb.get(k) == v for k, v in sel.items()) for lb in serving_labels):
            errors.append(f"{where}: Service {sname} selector {sel} misses a serving pod")
        hit = [lb for lb in other_labels if all(lb.get(k) == v for k, v in sel.items())]
        if hit:
            errors.append(f"{where}: Service {sname} selector {sel} also selects worker pods "
                          f"(worker-index {sorted({h[LWS_WORKER_INDEX] for h in hit})})")
        for p in s["spec"]["ports"]:
            if p["targetPort"] not in serving_ports:
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
            if ep.get("scheme") != expected_listeners(values)["scheme"].lower():
                errors.append(f"{where}: ServiceMonitor scheme {ep.get('scheme')}, the metrics "
                              f"port serves {expected_listeners(values)['scheme']}")
    # Every pod mounts the one ConfigMap, and carries its checksum (rolls on config changes).
    cms = [d for d in by_kind.get("ConfigMap", []) if "server.yaml" in d.get("data", {})]
    if len(cms) != 1:
        errors.append(f"{where}: expected one ConfigMap with server.yaml")
        return
    for role, tmpl, _ in pods:
        if not any(v.get("configMap", {}).get("name") == cms[0]["metadata"]["name"]
                   for v in tmpl["spec"].get("volumes", [])):
            errors.append(f"{where}: the {role} pod does not mount the config ConfigMap")
        if not (tmpl.get("metadata") or {}).get("annotations", {}).get("checksum/config"):
            errors.append(f"{where}: the {role} pod has no checksum/config annotation")
    check_server_config(yaml.safe_load(cms[0]["data"]["server.yaml"]), values, errors, where)


def check_server_config(cfg, values, errors, where):
    """The rendered server.yaml: the chart's parallel section from the values, the rest as given."""
    exp = expected_parallel(values)["section"]
    got = cfg.get("parallel")
    if got != exp:
        errors.append(f"{where}: server.yaml parallel {got}, expected {exp}")
    if got and (got.keys() & {"leader_address", "bind_address"}):
        errors.append(f"{where}: server.yaml sets leader_address/bind_address (command line/env)")
    listeners = expected_listeners(values)
    want_openai = None if listeners["openai"] is None else f"0.0.0.0:{listeners['openai']}"
    if cfg.get("openai_listen") != want_openai:
        errors.append(f"{where}: server.yaml openai_listen {cfg.get('openai_listen')}, expected "
                      f"{want_openai}")
    if bool((cfg.get("tls") or {}).get("on_http_listen")) != (listeners["scheme"] == "HTTPS"):
        errors.append(f"{where}: server.yaml tls.on_http_listen disagrees with tls.metricsListener")
    user = {k: v for k, v in cfg.items() if k not in CHART_OWNED}
    if user != values["config"]:
        errors.append(f"{where}: server.yaml differs from values.config outside the chart's keys")


def lws_validator():
    with open(LWS_SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate_lws(d, validator, errors, where):
    """LWS against its schema, and each pod template wrapped in a Pod against Kubernetes'."""
    w = f"{where} LeaderWorkerSet/{d['metadata']['name']}"
    for e in sorted(validator.iter_errors(d), key=lambda e: list(e.absolute_path)):
        errors.append(f"{w}: {'.'.join(str(p) for p in e.absolute_path)}: {e.message}")
    lwt = (d.get("spec") or {}).get("leaderWorkerTemplate") or {}
    for key in ("leaderTemplate", "workerTemplate"):
        tmpl = lwt.get(key)
        if not isinstance(tmpl, dict):
            continue
        meta = dict(tmpl.get("metadata") or {}, name=f"{d['metadata']['name']}-{key.lower()}")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": tmpl.get("spec")}
        for kv in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(pod, kv, strict=True)
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{w} {key} (as a Pod, k8s {kv}): "
                              f"{'.'.join(str(p) for p in e.path)}: {e.message}")


def render(values):
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values or None, name="dsinfer", namespace="dsinfer")
    docs = []
    for path, text in sorted(rendered.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for d in yaml.safe_load_all(text):
            if d:
                docs.append(d)
    return docs


def check_scenario(name, values, args, errors):
    where = f"[{name}]"
    lint = helm.lint(CHART, values or None, strict=True, namespace="dsinfer")
    for m in lint.get("messages") or []:
        if m.get("severity", 0) >= 2:
            errors.append(f"{where} helm lint: {m.get('path')}: {m.get('error')}")
    for e in lint.get("errors") or []:
        errors.append(f"{where} helm lint: {e}")
    docs = render(values)
    out_dir = os.path.join(args.out, name.replace("/", "_"))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manifests.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)

    validated, own_schema, crd = 0, [], []
    for d in docs:
        if d["kind"] == "LeaderWorkerSet":
            validate_lws(d, args.lws_validator, errors, where)
            own_schema.append(d["kind"])
            continue
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
    cross_check(docs, chart_values(values), errors, where)

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
          f"{'/'.join(KUBE_VERSIONS)}; own schema + pod templates as Pods: {own_schema or 'none'}; "
          f"no schema (CRD, cross-checks only): {crd or 'none'}; server config: {parsed}")


def self_test(validator, errors):
    """The checks must be able to fail: planted errors in good manifests are caught."""
    docs = render(None)
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
    cross_check(broken, chart_values(None), found, "[self-test]")
    if len(found) < 2:
        errors.append(f"[self-test] cross-checks missed planted errors, found only {found}")

    # Multi-node: each planted error must be reported on its own.
    with open(os.path.join(CHART, "ci", "multinode-values.yaml"), encoding="utf-8") as f:
        mn_values = yaml.safe_load(f)
    mn = render(mn_values)
    mn_chart_values = chart_values(mn_values)
    good = []
    cross_check(mn, mn_chart_values, good, "[self-test]")
    if good:
        errors.append(f"[self-test] the multi-node render has cross-check errors: {good}")

    def lws_of(ds):
        return next(x for x in ds if x["kind"] == "LeaderWorkerSet")

    def worker(ds):
        return lws_of(ds)["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]

    def plant_service_selects_workers(ds):
        for s in ds:
            if s["kind"] == "Service":
                s["spec"]["selector"].pop(LWS_WORKER_INDEX)

    def plant_size(ds):
        lws_of(ds)["spec"]["leaderWorkerTemplate"]["size"] = 3

    def plant_node_rank(ds):
        worker(ds)["containers"][0]["args"].remove("--node-rank")

    def plant_gpus(ds):
        worker(ds)["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = 4

    def plant_parallel(ds):
        cm = next(x for x in ds if x["kind"] == "ConfigMap")
        cfg = yaml.safe_load(cm["data"]["server.yaml"])
        cfg["parallel"]["ep"] = 8
        cm["data"]["server.yaml"] = yaml.safe_dump(cfg)

    def plant_restart_policy(ds):
        lws_of(ds)["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "None"

    # The OpenAI listener: a probe scheme that does not match the metrics port, a missing
    # openai_listen, a Service without its container port.
    oa_values = {"openai": {"enabled": True}, "tls": {"metricsListener": True}}
    oa = render(oa_values)
    good = []
    cross_check(oa, chart_values(oa_values), good, "[self-test]")
    if good:
        errors.append(f"[self-test] the OpenAI render has cross-check errors: {good}")

    def oa_container(ds):
        d = next(x for x in ds if x["kind"] == "Deployment")
        return d["spec"]["template"]["spec"]["containers"][0]

    def plant_probe_scheme(ds):
        oa_container(ds)["livenessProbe"]["httpGet"].pop("scheme")

    def plant_openai_listen(ds):
        cm = next(x for x in ds if x["kind"] == "ConfigMap")
        cfg = yaml.safe_load(cm["data"]["server.yaml"])
        cfg.pop("openai_listen")
        cm["data"]["server.yaml"] = yaml.safe_dump(cfg)

    def plant_openai_port(ds):
        c = oa_container(ds)
        c["ports"] = [p for p in c["ports"] if p["name"] != "openai"]

    for plant in (plant_probe_scheme, plant_openai_listen, plant_openai_port):
        broken = copy.deepcopy(oa)
        plant(broken)
        found = []
        cross_check(broken, chart_values(oa_values), found, "[self-test]")
        if not found:
            errors.append(f"[self-test] cross-checks missed {plant.__name__}")

    for plant in (plant_service_selects_workers, plant_size, plant_node_rank, plant_gpus,
                  plant_parallel, plant_restart_policy):
        broken = copy.deepcopy(mn)
        plant(broken)
        found = []
        cross_check(broken, mn_chart_values, found, "[self-test]")
        if not found:
            errors.append(f"[self-test] cross-checks missed {plant.__name__}")

    lws = lws_of(mn)
    schema_errors = []
    validate_lws(lws, validator, schema_errors, "[self-test]")
    if schema_errors:
        errors.append(f"[self-test] the rendered LeaderWorkerSet is invalid: {schema_errors}")
    for plant in (lambda x: x["spec"].__setitem__("startupPolicy", "LeaderStarted"),
                  lambda x: x["spec"]["leaderWorkerTemplate"].__setitem__("sizee", 2),
                  lambda x: x["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"][
                      "containers"][0].__setitem__("bogusField", 1),
                  lambda x: x["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"][
                      "containers"][0]["ports"][0].__setitem__("containerPort", "grpc")):
        broken = copy.deepcopy(lws)
        plant(broken)
        found = []
        validate_lws(broken, validator, found, "[self-test]")
        if not found:
            errors.append("[self-test] LWS validation accepted a planted error")
    print("[self-test] schema validation (Kubernetes and LWS) and cross-checks reject planted "
          "errors")


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
    args.lws_validator = lws_validator()
    for name, values in scenarios().items():
        try:
            check_scenario(name, values, args, errors)
        except helm.HelmError as e:
            errors.append(f"[{name}] helm: {e}")
    check_failures(errors)
    self_test(args.lws_validator, errors)
    if errors:
        print("check_helm FAILED:")
        for e in errors:
            print("  " + e)
        return 1
    print("check_helm: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
