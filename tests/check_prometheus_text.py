#!/usr/bin/env python3
"""Validates a Prometheus text exposition file with prometheus_client's own parser.

Checks what promtool does not: every line parses, types are as declared, histogram buckets are
cumulative and end in +Inf == _count, and the dsinfer metric set is complete.
Usage: check_prometheus_text.py FILE
"""
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

# Family names as prometheus_client reports them (counters without the _total suffix).
EXPECTED = {
    "dsinfer_requests": "counter",
    "dsinfer_queue_length": "gauge",
    "dsinfer_sequences_running": "gauge",
    "dsinfer_sequences_waiting": "gauge",
    "dsinfer_kv_cache_blocks": "gauge",
    "dsinfer_kv_cache_usage_ratio": "gauge",
    "dsinfer_prefix_cache_queried_tokens": "counter",
    "dsinfer_prefix_cache_hit_tokens": "counter",
    "dsinfer_prompt_tokens": "counter",
    "dsinfer_generation_tokens": "counter",
    "dsinfer_time_to_first_token_seconds": "histogram",
    "dsinfer_time_per_output_token_seconds": "histogram",
    "dsinfer_e2e_request_latency_seconds": "histogram",
    "dsinfer_request_queue_time_seconds": "histogram",
    "dsinfer_batch_tokens": "histogram",
    "dsinfer_batch_sequences": "histogram",
    "dsinfer_step_duration_seconds": "histogram",
    "dsinfer_preemptions": "counter",
    "dsinfer_rejections": "counter",
    "dsinfer_moe_expert_tokens": "counter",
    "dsinfer_moe_expert_load_imbalance_ratio": "gauge",
    "dsinfer_model_info": "gauge",
}


def check_histogram(family, errors):
    series = {}
    for s in family.samples:
        labels = {k: v for k, v in s.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {"buckets": [], "count": None, "sum": None})
        if s.name.endswith("_bucket"):
            entry["buckets"].append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            entry["count"] = s.value
        elif s.name.endswith("_sum"):
            entry["sum"] = s.value
    for key, e in series.items():
        where = f"{family.name}{dict(key)}"
        b = e["buckets"]
        if not b or not math.isinf(b[-1][0]):
            errors.append(f"{where}: last bucket is not +Inf")
            continue
        les = [le for le, _ in b]
        if les != sorted(les) or len(set(les)) != len(les):
            errors.append(f"{where}: bucket bounds not strictly ascending")
        counts = [c for _, c in b]
        if any(x > y for x, y in zip(counts, counts[1:])):
            errors.append(f"{where}: bucket counts not cumulative")
        if e["count"] is None or e["sum"] is None:
            errors.append(f"{where}: missing _count or _sum")
        elif e["count"] != counts[-1]:
            errors.append(f"{where}: _count {e['count']} != +Inf bucket {counts[-1]}")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    errors = []
    found = {}
    samples = 0
    try:
        for family in text_string_to_metric_families(text):
            found[family.name] = family.type
            samples += len(family.samples)
            if not family.documentation:
                errors.append(f"{family.name}: no HELP")
            if family.type == "histogram":
                check_histogram(family, errors)
            if family.name == "dsinfer_model_info":
                labels = family.samples[0].labels
                if labels.get("model") != 'DeepSeek "V3" \\ test\nmodel':
                    errors.append(f"dsinfer_model_info: model label unescaped wrongly: {labels!r}")
    except Exception as e:  # the parser raises ValueError and friends on malformed text
        errors.append(f"parse error: {e}")
    for name, kind in EXPECTED.items():
        if name not in found:
            errors.append(f"{name}: missing")
        elif found[name] != kind:
            errors.append(f"{name}: type {found[name]}, expected {kind}")
    if errors:
        print("prometheus_client check FAILED:")
        for e in errors[:50]:
            print("  " + e)
        return 1
    print(f"prometheus_client check: OK ({len(found)} families, {samples} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
