#!/usr/bin/env python3
"""The OpenAI-compatible API of a real `dsinfer serve`, through the official `openai` package.

Starts the server on the bundled tiny model (ephemeral ports, read from its JSON log) and checks:
models, chat (streaming and not, with include_usage), completions (text and token ids), n > 1,
stop strings, logprobs, every error status it can provoke (400 naming the parameter, 401, 413,
429 with Retry-After, 503 while draining), that a client that disconnects frees its engine
request at once, and that no request text reaches the server log. Then, on a second server with
tls.enabled and a client CA (certificates made with the openssl CLI; skipped without it), the
same client over HTTPS (its HTTP client verifying the test CA, presenting a client certificate):
the certificate's tenant together with a key of the same tenant, 403 with another tenant's
certificate, a plain HTTP request to the TLS port refused with 400, and no connection at all
without a client certificate.
Exit 77 (skipped) when the `openai` package is not installed.
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

from server_process import check, fail, start_server, tiny_model

PROMPT = "Which office in Anning county renews a residence permit?"
KEY = "openai-test-key"
QUOTA_KEY = "openai-quota-key"  # a tenant with max_concurrent 1: the second request gets 429


def status_error(fn, want_status):
    """Runs fn, which must raise openai.APIStatusError with `want_status`; returns it."""
    import openai
    try:
        fn()
    except openai.APIStatusError as e:
        check(e.status_code == want_status, f"want {want_status}, got {e.status_code}: {e}")
        body = e.response.json()
        check(set(body["error"]) >= {"message", "type", "param", "code"}, f"error shape: {body}")
        return e
    fail(f"no error; want {want_status}")


def make_pki(d):
    """A CA, a server certificate for 127.0.0.1 and two client certificates, in `d`."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*cmd):
        subprocess.run(["openssl", *cmd], cwd=d, check=True, capture_output=True)

    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
        "/CN=dsinfer-openai-test-ca")
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"),
                      ("county-client", "DNS:county-client.example"),
                      ("other-client", "DNS:other-client.example")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        run("req", *key, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem")


def check_https(args, model, sha):
    """The OpenAI API over HTTPS with client certificates (tls.enabled, client_ca_file)."""
    import openai
    if shutil.which("openssl") is None:
        print("https: skipped (no openssl command to make test certificates)")
        return
    d = os.path.join(args.work_dir, "pki")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    make_pki(d)
    config = os.path.join(args.work_dir, "server-tls.yaml")
    with open(config, "w") as f:
        f.write(f"""model_path: {model}
dtype: f32
threads: 2
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
openai_listen: 127.0.0.1:0
kv_cache:
  num_blocks: 256
tls:
  enabled: true
  cert_file: {d}/server.pem
  key_file: {d}/server.key
  client_ca_file: {d}/ca.pem
  require_client_cert: true
tenants:
  - id: county
    api_key_sha256: [{sha(KEY)}]
    client_cert_identities: [county-client]
  - id: other
    client_cert_identities: [other-client.example]
drain_grace_seconds: 1
log_level: info
""")
    server, log, ports = start_server(args.dsinfer, config)
    port = ports["openai_port"]
    default_client = getattr(openai, "DefaultHttpx2Client", None) or openai.DefaultHttpxClient

    def client_with(cert):
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
        if cert:
            ctx.load_cert_chain(os.path.join(d, cert + ".pem"), os.path.join(d, cert + ".key"))
        return openai.OpenAI(base_url=f"https://127.0.0.1:{port}/v1", api_key=KEY,
                             max_retries=0, timeout=30,
                             http_client=default_client(verify=ctx, timeout=30))

    msgs = [{"role": "user", "content": PROMPT}]
    try:
        county = client_with("county-client")
        name = county.models.list().data[0].id
        r = county.chat.completions.create(model=name, messages=msgs, max_tokens=4)
        check(r.choices[0].finish_reason in ("stop", "length"), f"https chat: {r}")
        chunks = list(county.chat.completions.create(model=name, messages=msgs, max_tokens=4,
                                                     stream=True))
        check(chunks and chunks[-1].choices[0].finish_reason in ("stop", "length"),
              f"https stream: {chunks}")
        # Another tenant's certificate with this tenant's key.
        status_error(lambda: client_with("other-client").chat.completions.create(
            model=name, messages=msgs, max_tokens=2), 403)
        # No client certificate: the handshake fails; the client never gets an answer.
        try:
            client_with(None).models.list()
            fail("an HTTPS client without a certificate got an answer")
        except openai.APIConnectionError:
            pass
        # Plain HTTP to the TLS port: an unencrypted 400 naming HTTPS, then the server goes on.
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=10)
            fail("plain HTTP to the TLS port was answered with success")
        except urllib.error.HTTPError as e:
            check(e.code == 400 and b"HTTPS" in e.read(), f"plain HTTP: {e}")
        check(len(county.models.list().data) == 1, "https after a plain HTTP request")
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['http_port']}/healthz",
                                    timeout=10) as h:
            check(h.status == 200, "/healthz stays plain HTTP")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("TLS server did not exit within 30 s of SIGTERM")
    check(code == 0, f"TLS server exit code {code}:\n" + "".join(log))
    check(PROMPT not in "".join(log), "request text appeared in the TLS server log")
    print("https: ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsinfer", required=True)
    ap.add_argument("--make-tiny-model", required=True)
    ap.add_argument("--model-dir", required=True, help="the tiny model (made if missing)")
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()
    try:
        import openai
    except ImportError as e:
        print(f"SKIP: the openai package is not installed ({e}); pip install openai",
              file=sys.stderr)
        return 77

    os.makedirs(args.work_dir, exist_ok=True)
    model = tiny_model(args.make_tiny_model, args.model_dir)
    config = os.path.join(args.work_dir, "server.yaml")
    sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
    with open(config, "w") as f:
        f.write(f"""model_path: {model}
dtype: f32
threads: 2
grpc_listen: 127.0.0.1:0
http_listen: 127.0.0.1:0
openai_listen: 127.0.0.1:0
http:
  max_body_bytes: 65536
kv_cache:
  num_blocks: 256
tenants:
  - id: county
    max_priority: interactive
    api_key_sha256: [{sha(KEY)}]
  - id: quota
    max_priority: interactive
    max_concurrent: 1
    api_key_sha256: [{sha(QUOTA_KEY)}]
drain_grace_seconds: 3
log_level: debug
""")
    server, log, ports = start_server(args.dsinfer, config)
    base = f"http://127.0.0.1:{ports['openai_port']}/v1"
    metrics_url = f"http://127.0.0.1:{ports['http_port']}/metrics"
    # No retries: the test wants to see every status as the server sends it.
    client = openai.OpenAI(base_url=base, api_key=KEY, max_retries=0, timeout=60)
    msgs = [{"role": "system", "content": "You answer county questions."},
            {"role": "user", "content": PROMPT}]
    signalled = False  # a second SIGTERM while draining makes the server stop at once (exit 1)
    try:
        models = client.models.list()
        check(len(models.data) == 1 and models.data[0].id == "tiny-v3", f"models: {models}")
        name = models.data[0].id

        r = client.chat.completions.create(model=name, messages=msgs, max_tokens=8,
                                           temperature=0, seed=7)
        check(r.object == "chat.completion" and r.id.startswith("chatcmpl-"), f"chat: {r}")
        c = r.choices[0]
        check(c.message.role == "assistant" and c.finish_reason in ("stop", "length"), f"{r}")
        u = r.usage
        check(1 <= u.completion_tokens <= 8 and u.prompt_tokens >= 10, f"usage: {u}")
        check(u.total_tokens == u.prompt_tokens + u.completion_tokens, f"usage: {u}")
        check(u.prompt_tokens_details is not None and
              u.prompt_tokens_details.cached_tokens >= 0, f"usage: {u}")
        greedy_text = c.message.content
        print(f"chat: {u}")

        # The same request streamed: the same text (greedy), usage in a final chunk.
        chunks = list(client.chat.completions.create(
            model=name, messages=msgs, max_tokens=8, temperature=0, stream=True,
            stream_options={"include_usage": True}))
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        check(text == greedy_text, f"stream text {text!r} != {greedy_text!r}")
        check(chunks[0].choices[0].delta.role == "assistant", f"first chunk: {chunks[0]}")
        finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices]
        check(finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1]),
              f"finish reasons: {finishes}")
        check(chunks[-1].choices == [] and chunks[-1].usage.completion_tokens ==
              u.completion_tokens, f"usage chunk: {chunks[-1]}")

        # n > 1, sampled, with logprobs.
        r = client.chat.completions.create(model=name, messages=msgs, max_tokens=4, n=3,
                                           temperature=1.0, seed=1, logprobs=True, top_logprobs=2)
        check(sorted(ch.index for ch in r.choices) == [0, 1, 2], f"n=3: {r}")
        for ch in r.choices:
            lp = ch.logprobs.content
            check(len(lp) >= 1 and all(len(t.top_logprobs) == 2 for t in lp), f"logprobs: {ch}")
        check(r.usage.completion_tokens == sum(
            len(ch.logprobs.content) for ch in r.choices), f"n=3 usage: {r.usage}")

        # Tools: rendered into the prompt (more prompt tokens), and a conversation with calls
        # and results is served. The tiny model writes random text, so the answer is checked
        # for shape only (tests/chat_serving_test.cc scripts the model's calls).
        tools = [{"type": "function", "function": {
            "name": "find_office", "description": "The office that handles a service",
            "parameters": {"type": "object", "properties": {"service": {"type": "string"}}}}}]
        r = client.chat.completions.create(model=name, messages=msgs, max_tokens=4, tools=tools)
        check(r.usage.prompt_tokens > u.prompt_tokens and
              r.choices[0].finish_reason in ("stop", "length", "tool_calls"), f"tools: {r}")
        history = msgs + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "find_office", "arguments": '{"service": "permit"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Anning service centre"}]
        r = client.chat.completions.create(model=name, messages=history, max_tokens=4,
                                           tools=tools, tool_choice="auto")
        check(r.choices[0].message.role == "assistant", f"tool round trip: {r}")

        # Completions: text and token ids; a stop string cuts the text before it.
        r = client.completions.create(model=name, prompt=PROMPT, max_tokens=12, temperature=0)
        check(r.object == "text_completion" and r.choices[0].text is not None, f"{r}")
        full = r.choices[0].text
        r2 = client.completions.create(model=name, prompt=[1, 2, 3, 4], max_tokens=3)
        check(r2.usage.prompt_tokens == 4, f"token-id prompt: {r2.usage}")
        if len(full) >= 4:
            stop = full[2:4]
            r3 = client.completions.create(model=name, prompt=PROMPT, max_tokens=12,
                                           temperature=0, stop=[stop])
            got = r3.choices[0].text
            check(r3.choices[0].finish_reason == "stop" and stop not in got and
                  full.startswith(got), f"stop {stop!r}: {got!r} of {full!r}")
        s = list(client.completions.create(model=name, prompt=PROMPT, max_tokens=5,
                                           temperature=0, stream=True))
        check("".join(ch.choices[0].text for ch in s if ch.choices) == full[:len(
            "".join(ch.choices[0].text for ch in s if ch.choices))], "completions stream")

        # Errors, each in OpenAI's shape.
        e = status_error(lambda: client.chat.completions.create(
            model=name, messages=msgs, temperature=5), 400)
        check(e.body["param"] == "temperature", f"param: {e.body}")
        e = status_error(lambda: client.chat.completions.create(
            model=name, messages=[{"role": "function", "content": "x", "name": "f"}]), 400)
        check(e.body["param"] == "messages[0].role", f"param: {e.body}")
        e = status_error(lambda: client.chat.completions.create(
            model=name, messages=msgs + [{"role": "tool", "content": "x"}]), 400)
        check(e.body["param"] == "messages[2].tool_call_id", f"param: {e.body}")
        e = status_error(lambda: client.chat.completions.create(
            model=name, messages=msgs, max_tokens=200000), 400)
        check(e.body["param"] == "max_tokens", f"param: {e.body}")
        e = status_error(lambda: client.chat.completions.create(
            model=name, messages=msgs, logit_bias={"1": 5}), 400)
        check(e.body["param"] == "logit_bias", f"param: {e.body}")
        bad = openai.OpenAI(base_url=base, api_key="wrong", max_retries=0)
        status_error(lambda: bad.chat.completions.create(model=name, messages=msgs), 401)
        status_error(lambda: bad.models.list(), 401)
        status_error(lambda: client.chat.completions.create(
            model=name, messages=[{"role": "user", "content": "x" * 100000}]), 413)

        # 429: the quota tenant's one slot is taken by a long stream; the next is rejected at
        # admission, with Retry-After. Closing the stream then frees the slot (and its KV).
        quota = openai.OpenAI(base_url=base, api_key=QUOTA_KEY, max_retries=0, timeout=60)
        long_stream = quota.chat.completions.create(
            model=name, messages=msgs, max_tokens=8000, stream=True,
            extra_body={"ignore_eos": True})
        next(iter(long_stream))
        e = status_error(lambda: quota.chat.completions.create(
            model=name, messages=msgs, max_tokens=4), 429)
        check(int(e.response.headers["retry-after"]) >= 1, f"retry-after: {e.response.headers}")
        long_stream.close()  # the client goes away mid-stream
        deadline = time.time() + 10
        while True:
            try:
                quota.chat.completions.create(model=name, messages=msgs, max_tokens=2)
                break
            except openai.RateLimitError:
                check(time.time() < deadline, "the cancelled stream still holds its slot")
                time.sleep(0.05)
        # The same for a non-streaming request whose client gives up (its timeout): the
        # server notices the closed connection while the engine works, and frees the slot.
        impatient = openai.OpenAI(base_url=base, api_key=QUOTA_KEY, max_retries=0, timeout=0.5)
        try:
            impatient.chat.completions.create(model=name, messages=msgs, max_tokens=8000,
                                              extra_body={"ignore_eos": True})
            fail("a long request finished within 0.5 s")
        except openai.APITimeoutError:
            pass
        deadline = time.time() + 10
        while True:
            try:
                quota.chat.completions.create(model=name, messages=msgs, max_tokens=2)
                break
            except openai.RateLimitError:
                check(time.time() < deadline, "the abandoned request still holds its slot")
                time.sleep(0.05)
        with urllib.request.urlopen(metrics_url, timeout=10) as m:
            exposition = m.read().decode()
        cancelled = [l for l in exposition.splitlines() if l.startswith(
            'dsinfer_requests_total{tenant="quota",priority="interactive",outcome="cancelled"}')]
        check(cancelled and float(cancelled[0].split()[-1]) >= 2,
              f"want 2 cancelled quota requests: {cancelled}")
        calls = {l.split("{")[1].split("}")[0]: float(l.split()[-1])
                 for l in exposition.splitlines() if l.startswith("dsinfer_api_calls_total{")}
        for code, at_least in (("OK", 8), ("RESOURCE_EXHAUSTED", 1), ("CANCELLED", 2),
                               ("INVALID_ARGUMENT", 4), ("UNAUTHENTICATED", 1)):
            got = calls.get(f'protocol="openai",code="{code}"', 0)
            check(got >= at_least, f"dsinfer_api_calls_total openai {code}: {got} < {at_least}")

        # 503 while draining: a request in flight keeps the server draining for a moment.
        holder = client.chat.completions.create(
            model=name, messages=msgs, max_tokens=8000, stream=True,
            extra_body={"ignore_eos": True})
        next(iter(holder))
        server.send_signal(signal.SIGTERM)
        signalled = True
        deadline = time.time() + 5
        while True:
            try:
                client.chat.completions.create(model=name, messages=msgs, max_tokens=2)
                check(time.time() < deadline, "no 503 while draining")
                time.sleep(0.02)
            except openai.APIStatusError as e:
                check(e.status_code == 503, f"draining: {e.status_code} {e}")
                break
        try:
            for _ in holder:
                pass
        except (openai.APIError, Exception):  # noqa: B014 (cut off at the end of the grace)
            pass
    finally:
        if server.poll() is None and not signalled:
            server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            fail("server did not exit within 30 s of SIGTERM")
    time.sleep(0.1)
    text = "".join(log)
    check(code == 0, f"server exit code {code}:\n{text}")
    check(PROMPT not in text and "county questions" not in text and "x" * 50 not in text,
          "request text appeared in the server log")
    check("find_office" not in text and "Anning service centre" not in text and
          "The office that handles" not in text, "tool definitions or results appeared in the log")
    check('"chat_format"' in text and "deepseek-v3" in text, "the chat format is logged at load")
    events = [json.loads(l)["event"] for l in log if l.startswith("{")]
    check("request_end" in events and "stopped" in events, f"log events: {set(events)}")
    check_https(args, model, sha)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
