"""What the Python end-to-end tests share: failing with a message, the bundled tiny model made
once, and a `dsinfer serve` process started and waited for (its JSON log read from stderr)."""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def tiny_model(tool, model):
    """The bundled tiny model at `model`, written once (shared with server_test)."""
    if not os.path.exists(os.path.join(model, "config.json")):
        os.makedirs(os.path.dirname(model), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix="tiny-v3.", dir=os.path.dirname(model))
        subprocess.run([tool, "--out", tmp], check=True)
        try:
            os.rename(tmp, model)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another run won the race
    return model


def start_server(dsinfer, config):
    server = subprocess.Popen([dsinfer, "serve", "--config", config], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, errors="replace")
    lines, log = queue.Queue(), []

    def pump():
        for line in server.stderr:
            log.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    ports, deadline = None, time.time() + 90
    while time.time() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if server.poll() is not None:
                fail("server exited early:\n" + "".join(log))
            continue
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        if ev.get("event") == "listening":
            ports = ev
        if ev.get("event") == "serving":
            return server, log, ports
    server.kill()
    fail("server did not start serving:\n" + "".join(log))
