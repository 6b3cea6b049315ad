#!/usr/bin/env python3
"""Runs examples/python_client.py against a real `dsinfer serve` on loopback.

Starts the server on the bundled tiny model (ephemeral ports, read from its JSON log), streams a
chat completion with the example, checks auth failures, the project's own client and its health
check, that no request text reaches the server log, and that SIGTERM drains and exits 0.
Exit 77 (skipped) when grpcio / grpcio-tools are not installed.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from server_process import fail, start_server, tiny_model

PROMPT = "Where do I renew a residence permit in Anning county?"
KEY = "python-example-key"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--make-tiny-model", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--model-dir", required=True, help="the tiny model (made if missing)")
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()
    try:
        import grpc  # noqa: F401
        import grpc_tools  # noqa: F401
    except ImportError as e:
        print(f"SKIP: Python grpcio / grpcio-tools not installed ({e}); "
              "pip install grpcio grpcio-tools", file=sys.stderr)
        return 77

    os.makedirs(args.work_dir, exist_ok=True)
    model = tiny_model(args.make_tiny_model, args.model_dir)
    config = os.path.join(args.work_dir, "server.yaml")
    with open(config, "w") as f:
        f.write(f"""model_path: {model}
dtype: f32
threads: 2
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
kv_cache:
  num_blocks: 128
tenants:
  - id: example-county
    max_priority: interactive
    api_key_sha256: [{hashlib.sha256(KEY.encode()).hexdigest()}]
drain_grace_seconds: 5
log_level: debug
""")

    server, log, ports = start_server(args.dsinfer, config)
    port = ports["grpc_port"] if ports else None
    if port is None:
        server.kill()
        fail("server did not say its ports:\n" + "".join(log))
    address = f"127.0.0.1:{port}"

    try:
        example = os.path.join(args.source_dir, "examples", "python_client.py")
        r = subprocess.run([sys.executable, example, "--address", address, "--api-key", KEY,
                            "--max-tokens", "8", "--system", "You answer county questions.",
                            PROMPT], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail(f"example exited {r.returncode}:\n{r.stderr}")
        summary = json.loads(r.stderr.strip().splitlines()[-1])
        if summary.get("finish_reason") not in ("FINISH_REASON_STOP", "FINISH_REASON_LENGTH"):
            fail(f"bad finish reason: {summary}")
        usage = summary["usage"]
        if not (1 <= usage["completion_tokens"] <= 8) or usage["prompt_tokens"] < 10:
            fail(f"bad usage: {summary}")
        if len(summary["token_ids"]) != usage["completion_tokens"] or not summary["request_id"]:
            fail(f"bad stream: {summary}")
        print(f"example: {summary}")

        r = subprocess.run([sys.executable, example, "--address", address, "--api-key", "wrong",
                            PROMPT], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 or "UNAUTHENTICATED" not in r.stderr:
            fail(f"wrong key: exit {r.returncode}: {r.stderr}")

        r = subprocess.run([args.dsinfer, "client", "--address", address, "--health"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or "SERVING" not in r.stdout:
            fail(f"dsinfer client --health: exit {r.returncode}: {r.stdout} {r.stderr}")

        env = dict(os.environ, DSINFER_API_KEY=KEY)
        r = subprocess.run([args.dsinfer, "client", "--address", address, "--chat", "--prompt",
                            PROMPT, "--max-tokens", "4", "--priority", "emergency"],
                           capture_output=True, text=True, timeout=60, env=env)
        if r.returncode != 0:
            fail(f"dsinfer client: exit {r.returncode}: {r.stderr}")
        out = json.loads(r.stderr.strip().splitlines()[-1])
        if out["usage"]["completion_tokens"] < 1:
            fail(f"dsinfer client: {out}")

        r = subprocess.run([args.dsinfer, "client", "--address", address, "--ids", "1,2,3",
                            "--max-tokens", "0"], capture_output=True, text=True, timeout=30,
                           env=env)
        if r.returncode == 0:
            fail("dsinfer client accepted --max-tokens 0")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("server did not exit within 30 s of SIGTERM")
    time.sleep(0.1)
    text = "".join(log)
    if code != 0:
        fail(f"server exit code {code} after SIGTERM:\n{text}")
    if PROMPT in text or "county questions" in text:
        fail("request text appeared in the server log")
    events = [json.loads(l)["event"] for l in log if l.startswith("{")]
    for want in ("listening", "serving", "request_end", "draining", "stopped"):
        if want not in events:
            fail(f"no {want} event in the server log:\n{text}")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
