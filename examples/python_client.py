#!/usr/bin/env python3
"""Stream a chat completion from a dsinfer server over gRPC (grpcio).

The Python stubs are generated at run time from proto/dsinfer/v1/dsinfer.proto with
grpc_tools.protoc into a temporary directory; nothing generated is kept.

  pip install grpcio grpcio-tools
  DSINFER_API_KEY=local-key-anning python3 examples/python_client.py \
      --address 127.0.0.1:50051 "What are the opening hours of the civil affairs office?"

Text is written to stdout as it arrives; a JSON line with the finish reason and usage goes to
stderr. A failed call prints its gRPC status (and retry-after-ms when the server sent one) and
exits 1.
"""
import argparse
import importlib
import json
import os
import sys
import tempfile

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")


def load_stubs(proto_root):
    """Compiles dsinfer/v1/dsinfer.proto and imports (dsinfer_pb2, dsinfer_pb2_grpc)."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="dsinfer_stubs_")
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        os.path.join(proto_root, "dsinfer", "v1", "dsinfer.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed ({rc}) on {proto_root}")
    sys.path.insert(0, out)
    pb2 = importlib.import_module("dsinfer.v1.dsinfer_pb2")
    pb2_grpc = importlib.import_module("dsinfer.v1.dsinfer_pb2_grpc")
    return pb2, pb2_grpc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("prompt", nargs="?", default="Hello!", help="the user message")
    p.add_argument("--address", default="127.0.0.1:50051", help="host:port of dsinfer serve")
    p.add_argument("--api-key", default=os.environ.get("DSINFER_API_KEY", ""),
                   help="API key (default: $DSINFER_API_KEY)")
    p.add_argument("--tls-ca", help="PEM file of the CA that signed the server certificate")
    p.add_argument("--system", help="a system prompt")
    p.add_argument("--ids", help="send token ids (comma separated) instead of chat text")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--priority", choices=["emergency", "interactive", "batch"])
    p.add_argument("--timeout", type=float, default=60.0, help="deadline in seconds")
    p.add_argument("--proto-root", default=PROTO_ROOT)
    args = p.parse_args()

    import grpc

    pb2, pb2_grpc = load_stubs(os.path.abspath(args.proto_root))

    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            channel = grpc.secure_channel(args.address, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.address)
    stub = pb2_grpc.InferenceStub(channel)

    req = pb2.GenerateRequest(max_tokens=args.max_tokens)
    if args.ids:
        req.token_ids.ids.extend(int(x) for x in args.ids.split(","))
    else:
        if args.system:
            req.chat.messages.add(role="system", content=args.system)
        req.chat.messages.add(role="user", content=args.prompt)
    req.sampling.temperature = args.temperature
    if args.top_p is not None:
        req.sampling.top_p = args.top_p
    if args.seed is not None:
        req.sampling.seed = args.seed
    if args.priority:
        req.priority = pb2.Priority.Value("PRIORITY_" + args.priority.upper())

    metadata = [("authorization", f"Bearer {args.api_key}")] if args.api_key else []
    stream = stub.Generate(req, metadata=metadata, timeout=args.timeout)
    result = {"request_id": "", "token_ids": []}
    try:
        for msg in stream:
            if msg.request_id:
                result["request_id"] = msg.request_id
            result["token_ids"].extend(msg.token_ids)
            if msg.reasoning_text:  # a thinking model's thought (chat input): kept apart
                result["reasoning_content"] = result.get("reasoning_content", "") + \
                    msg.reasoning_text
            for t in msg.tool_calls:  # tool-call pieces: put back together by index
                calls = result.setdefault("tool_calls", {})
                call = calls.setdefault(t.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = t.id or call["id"]
                call["name"] = t.name or call["name"]
                call["arguments"] += t.arguments
            if msg.text:
                sys.stdout.write(msg.text)
                sys.stdout.flush()
            if msg.finish_reason:
                result["finish_reason"] = pb2.FinishReason.Name(msg.finish_reason)
                u = msg.usage
                result["usage"] = {
                    "prompt_tokens": u.prompt_tokens,
                    "completion_tokens": u.completion_tokens,
                    "cached_tokens": u.cached_tokens,
                    "queue_seconds": u.queue_seconds,
                    "time_to_first_token_seconds": u.time_to_first_token_seconds,
                    "total_seconds": u.total_seconds,
                }
    except grpc.RpcError as e:
        sys.stdout.write("\n")
        retry = dict(e.trailing_metadata() or ()).get("retry-after-ms")
        err = {"code": e.code().name, "message": e.details()}
        if retry is not None:
            err["retry_after_ms"] = int(retry)
        print(json.dumps(err), file=sys.stderr)
        return 1
    sys.stdout.write("\n")
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
