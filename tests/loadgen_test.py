#!/usr/bin/env python3
"""dsinfer-loadgen against a real `dsinfer serve` on loopback (bundled tiny model), one server
with both listeners, every case in both modes (--protocol grpc and --protocol openai):

  chat:     chat prompts (gRPC `chat` input, HTTP /v1/chat/completions): requests succeed
  mixed:    a normal tenant (requests succeed, tokens counted, usage matches), a tenant capped
            at one running + one queued request with four clients (429 / RESOURCE_EXHAUSTED,
            with the server's retry hint), a wrong API key (401 / UNAUTHENTICATED)
  timeout:  --timeout shorter than the generation: DEADLINE_EXCEEDED after tokens arrived
  drain:    open streams past --drain are cancelled: CANCELLED, none lost

The report's stream checks must pass (exit code 0) in every run.
"""
import argparse
import hashlib
import json
import os
import subprocess

from server_process import check, fail, start_server, tiny_model

KEY, TIGHT_KEY = "loadgen-test-key", "loadgen-tight-key"


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def loadgen(args, target, protocol, name, extra):
    cmd = [args.loadgen, "--protocol", protocol, "--target", target, "--label",
           f"{name}-{protocol}"] + extra
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    with open(os.path.join(args.work_dir, f"{name}-{protocol}.txt"), "w") as f:
        f.write(r.stderr)
    check(r.returncode == 0, f"{name}/{protocol}: exit {r.returncode}\n{r.stderr[-3000:]}")
    report = json.loads(r.stdout)
    check(report["protocol"] == protocol, f"{name}: report protocol {report['protocol']}")
    check(report["checks"]["passed"], f"{name}/{protocol}: checks failed {report['checks']}")
    return report


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dsinfer", required=True)
    p.add_argument("--loadgen", required=True)
    p.add_argument("--make-tiny-model", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--work-dir", required=True)
    args = p.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    model = tiny_model(args.make_tiny_model, os.path.abspath(args.model_dir))
    config = os.path.join(args.work_dir, "server.yaml")
    with open(config, "w") as f:
        f.write(f"""model_path: {model}
dtype: f32
threads: 2
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
openai_listen: 127.0.0.1:0
kv_cache:
  num_blocks: 256
tenants:
  - id: county
    api_key_sha256: [{sha(KEY)}]
  - id: tight
    max_concurrent: 1
    max_queued: 1
    api_key_sha256: [{sha(TIGHT_KEY)}]
log_level: info
""")
    server, _, ports = start_server(args.dsinfer, config)
    try:
        targets = {"grpc": f"127.0.0.1:{ports['grpc_port']}",
                   "openai": f"127.0.0.1:{ports['openai_port']}"}
        spec = {
            "duration_s": 20, "max_requests": 16, "drain_s": 20, "request_timeout_s": 30,
            "tenants": [
                {"name": "county", "api_key": KEY, "concurrency": 2, "max_requests": 6,
                 "prompt_tokens": [8, 16], "output_tokens": [4, 8]},
                {"name": "tight", "api_key": TIGHT_KEY, "concurrency": 4, "max_requests": 8,
                 "prompt_tokens": 8, "output_tokens": 24, "reject_backoff_s": 0.02},
                {"name": "intruder", "api_key": "not-a-key", "concurrency": 1,
                 "max_requests": 2, "prompt_tokens": 8, "output_tokens": 4},
            ]}
        spec_path = os.path.join(args.work_dir, "mixed.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        for protocol, target in targets.items():
            r = loadgen(args, target, protocol, "mixed", ["--spec", spec_path])
            county, tight, intruder = (r["tenants"][n] for n in ("county", "tight", "intruder"))
            check(county["ok"] == 6 and county["status_codes"] == {"OK": 6},
                  f"{protocol}: county {county['status_codes']}")
            check(county["output_tokens"] >= 6 * 4, f"{protocol}: tokens {county['output_tokens']}")
            check(county["ttft_s"]["n"] == 6 and county["ttft_s"]["p50"] > 0, f"{protocol}: ttft")
            check(r["checks"]["usage_tokens_mismatch"] == 0, f"{protocol}: usage")
            check(intruder["status_codes"] == {"UNAUTHENTICATED": 2},
                  f"{protocol}: intruder {intruder['status_codes']}")
            exhausted = tight["status_codes"].get("RESOURCE_EXHAUSTED", 0)
            check(exhausted >= 1 and tight["retry_after_hints"] == exhausted,
                  f"{protocol}: tight {tight['status_codes']} hints {tight['retry_after_hints']}")
            check(tight["ok"] >= 1, f"{protocol}: tight ok {tight['ok']}")
            check(tight["ok"] + exhausted == 8, f"{protocol}: tight {tight['status_codes']}")
            if protocol == "openai":
                check(intruder["http_status_codes"] == {"401": 2}, f"http {intruder}")
                check(tight["http_status_codes"].get("429") == exhausted, f"http {tight}")
                check(county["http_status_codes"] == {"200": 6}, f"http {county}")
            else:
                check("http_status_codes" not in county, "grpc report has HTTP codes")

        for protocol, target in targets.items():  # chat prompts: gRPC `chat`, HTTP chat route
            r = loadgen(args, target, protocol, "chat",
                        ["--api-keys", KEY, "--concurrency", "2", "--max-requests", "4",
                         "--prompt-kind", "chat", "--prompt-tokens", "8", "--output-tokens", "8",
                         "--duration", "10"])
            t = r["total"]
            check(t["status_codes"] == {"OK": 4} and t["output_tokens"] == 32,
                  f"{protocol}: chat {t['status_codes']} tokens {t['output_tokens']}")

        common = ["--api-keys", KEY, "--concurrency", "2", "--max-requests", "2",
                  "--prompt-tokens", "8", "--output-tokens", "2000"]
        for protocol, target in targets.items():
            r = loadgen(args, target, protocol, "timeout",
                        common + ["--duration", "5", "--timeout", "0.4", "--drain", "20"])
            t = r["total"]
            check(t["status_codes"] == {"DEADLINE_EXCEEDED": 2}, f"{protocol}: timeout {t}")
            check(t["admitted_then_failed"] == 2 and t["output_tokens"] > 0,
                  f"{protocol}: timeout admitted {t['admitted_then_failed']}")
            check(r["wall_s"] < 5, f"{protocol}: timeout run took {r['wall_s']} s")

            r = loadgen(args, target, protocol, "drain",
                        common + ["--duration", "1", "--timeout", "60", "--drain", "0.4"])
            t, c = r["total"], r["checks"]
            check(t["status_codes"] == {"CANCELLED": 2}, f"{protocol}: drain {t['status_codes']}")
            check(c["cancelled_at_drain"] == 2 and c["lost"] == 0, f"{protocol}: drain {c}")
            check(t["output_tokens"] > 0, f"{protocol}: drain tokens")
        print("ok")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
