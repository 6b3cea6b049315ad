#!/usr/bin/env python3
"""The official `openai` client against a scripted dsinfer server (tests/chat_serving_test.cc
starts it: DeepSeek-V3.1 format, answers scripted by trigger words). Checks that the client
parses reasoning_content and tool_calls, streamed and not, and sends tool results back.
Exit 77 (skipped) when the `openai` package is not installed; 1 on a failed check.
"""
import argparse
import sys

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}},
         {"type": "function", "function": {
             "name": "get_time", "description": "The time",
             "parameters": {"type": "object", "properties": {}}}}]


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    try:
        import openai
    except ImportError:
        print("SKIP: the openai package is not installed", file=sys.stderr)
        return 77
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{args.port}/v1", api_key=args.key,
                           max_retries=0, timeout=60)

    # Reasoning (V3.1 with thinking on), not streamed and streamed.
    thinking = {"chat_template_kwargs": {"thinking": True}}
    r = client.chat.completions.create(model="m", max_tokens=100, extra_body=thinking,
                                       messages=[{"role": "user", "content": "think-about-it"}])
    m = r.choices[0].message
    check(getattr(m, "reasoning_content", None) == "Let me think.", f"reasoning: {m}")
    check(m.content == "The answer is 4.", f"content: {m.content!r}")
    reasoning, content = "", ""
    for chunk in client.chat.completions.create(
            model="m", max_tokens=100, extra_body=thinking, stream=True,
            messages=[{"role": "user", "content": "think-about-it"}]):
        for c in chunk.choices:
            reasoning += getattr(c.delta, "reasoning_content", None) or ""
            content += c.delta.content or ""
    check(reasoning == "Let me think." and content == "The answer is 4.",
          f"streamed reasoning {reasoning!r} content {content!r}")

    # Tool calls, not streamed.
    messages = [{"role": "user", "content": "what-weather"}]
    r = client.chat.completions.create(model="m", max_tokens=200, messages=messages, tools=TOOLS,
                                       tool_choice="auto")
    choice = r.choices[0]
    check(choice.finish_reason == "tool_calls", f"finish_reason {choice.finish_reason}")
    calls = choice.message.tool_calls or []
    check([c.function.name for c in calls] == ["get_weather", "get_time"], f"calls {calls}")
    check(calls[0].function.arguments == '{"city": "Hangzhou"}', f"arguments {calls[0]}")
    check(all(c.id.startswith("call_") and c.type == "function" for c in calls), f"ids {calls}")

    # Tool calls, streamed: put back together by index as client code does.
    acc, finish = {}, None
    for chunk in client.chat.completions.create(model="m", max_tokens=200, messages=messages,
                                                tools=TOOLS, stream=True):
        for c in chunk.choices:
            for t in c.delta.tool_calls or []:
                a = acc.setdefault(t.index, {"id": None, "name": "", "arguments": ""})
                if t.id:
                    a["id"] = t.id
                if t.function and t.function.name:
                    a["name"] += t.function.name
                if t.function and t.function.arguments:
                    a["arguments"] += t.function.arguments
            finish = c.finish_reason or finish
    check(finish == "tool_calls", f"streamed finish_reason {finish}")
    check([acc[i]["name"] for i in sorted(acc)] == ["get_weather", "get_time"], f"streamed {acc}")
    check(acc[0]["arguments"] == '{"city": "Hangzhou"}' and acc[0]["id"], f"streamed {acc}")

    # The calls and their results sent back, as the client's own objects.
    messages.append(choice.message.model_dump(exclude_none=True))
    for c in calls:
        messages.append({"role": "tool", "tool_call_id": c.id, "content": "22 degrees"})
    r = client.chat.completions.create(model="m", max_tokens=4, messages=messages, tools=TOOLS)
    check(r.usage.prompt_tokens > 0, "round trip answered")

    # A named tool_choice is refused by name.
    try:
        client.chat.completions.create(
            model="m", max_tokens=4, messages=messages, tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_time"}})
        check(False, "a named tool_choice was accepted")
    except openai.BadRequestError as e:
        check(e.body.get("param") == "tool_choice", f"param {e.body}")
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
