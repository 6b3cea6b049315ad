// The plain structs of the dsinfer embedding API: what loads a model, what a request says, and
// what comes back. Standard library and absl::Status only; nothing here needs the library's
// internals, so these structs may be filled anywhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dsinfer/export.h"

namespace dsinfer::api {

// The model sharded over local rank processes (tensor + expert parallelism). tp 1: this
// process alone.
struct ParallelOptions {
  int tp = 1;  // ranks in total, all on this machine: [1, 1024]
  int ep = 1;  // expert-parallel groups; divides tp
  // tp > 1: the `dsinfer` binary that runs the other ranks as `dsinfer worker` processes
  // (installed next to the library: <prefix>/bin/dsinfer). Required then.
  std::string worker_executable;
  double timeout_seconds = 60;  // a rank silent this long is gone
};

// The paged KV cache (blocks of 64 tokens). At most one of num_blocks and memory_bytes.
struct KvCacheOptions {
  int32_t num_blocks = 0;        // > 0: exactly this many blocks
  int64_t memory_bytes = 0;      // > 0: this many bytes
  double memory_fraction = 0.9;  // else: this share (0, 1] of the memory left after the weights,
                                 // capped at scheduler.max_running sequences of full context
  bool prefix_caching = true;    // requests sharing a prompt prefix reuse its cached blocks
};

// Continuous batching: how many requests run together and how long they may queue.
struct SchedulerOptions {
  int32_t max_running = 64;           // sequences in the running batch; <= max_batched_tokens
  int64_t max_batched_tokens = 2048;  // tokens computed per step (prefill chunks + decodes)
  int32_t max_waiting = 1024;         // queued requests; a Submit beyond is RESOURCE_EXHAUSTED
  double max_queue_seconds = 30;      // a request queued longer ends RESOURCE_EXHAUSTED
  int64_t prefill_chunk = 512;        // prompt tokens of one sequence per step
};

// Lower is more urgent; emergency requests may take a running slot from the others.
enum class Priority : uint8_t { kEmergency = 0, kInteractive = 1, kBatch = 2 };

// A tenant: one county service sharing the model. The scheduler shares the batch between
// tenants by weight (fair share) and applies their limits at admission.
struct TenantOptions {
  std::string id;                         // 1-64 of [A-Za-z0-9_.-]
  double weight = 1.0;                    // fair-share weight, > 0
  Priority max_priority = Priority::kInteractive;  // a request asking for more gets this class
  int32_t max_concurrent = 0;             // queued + running requests; 0: no limit
  int32_t max_queued = 0;                 // waiting requests; 0: no limit
  int64_t tokens_per_minute = 0;          // prompt + max_tokens per sliding minute; 0: no limit
};

struct LoadOptions {
  // A Hugging Face checkpoint directory as downloaded: config.json, safetensors (sharded or
  // not), and tokenizer.json or tiktoken.model (without one, requests must send token_ids).
  std::string model_path;
  std::string backend = "cpu";  // "cpu" | "cuda" (builds made with CUDA)
  std::string dtype = "bf16";   // compute precision: "bf16" | "f32" (cuda: bf16)
  int threads = 0;              // CPU threads; 0: $DSINFER_THREADS or every core
  // FP8 (block-scaled e4m3) checkpoints: false keeps the weights FP8 in memory (the kernels take
  // them as they are); true converts them to `dtype` at load (more memory, the exact path).
  bool dequantize_fp8 = false;
  // Load the checkpoint's MTP layer and use it for speculative drafts (DeepSeek-V3 / R1 / V3.2
  // checkpoints; tp / ep layouts too). Output is unchanged (greedy: identical).
  bool mtp = false;
  int mtp_draft_tokens = 1;  // with mtp: draft tokens per step (the MTP layer chained; 1 .. 8)
  ParallelOptions parallel;
  KvCacheOptions kv_cache;
  SchedulerOptions scheduler;
  // Empty: one tenant, "embedded", whose ceiling is emergency (a request's priority is what it
  // asks for). Otherwise every Request::tenant must be one of these.
  std::vector<TenantOptions> tenants;
  // Called while the weights load (bytes read so far, bytes in all); may be empty.
  std::function<void(uint64_t done_bytes, uint64_t total_bytes)> progress;
};

// What the loaded model is and what it can hold.
struct ModelInfo {
  std::string model_type;       // config.json model_type, e.g. "deepseek_v3"
  std::string backend;          // "cpu" | "cuda"
  std::string dtype;            // compute precision
  int64_t vocab_size = 0;       // token ids lie in [0, vocab_size)
  int64_t context_length = 0;   // prompt + output tokens of one request, at most
  int64_t kv_cache_tokens = 0;  // tokens the whole KV pool holds (all requests together)
  bool has_tokenizer = false;   // false: requests must send token_ids; no text is produced
  int64_t weight_bytes = 0;     // the weights in memory, as loaded (FP8 kept or dequantised)
};

struct SamplingOptions {
  float temperature = 0.0f;         // 0: greedy
  int32_t top_k = 0;                // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  float repetition_penalty = 1.0f;  // 1: off
  float frequency_penalty = 0.0f;   // 0: off
  float presence_penalty = 0.0f;    // 0: off
  std::optional<uint64_t> seed;     // same seed, same output; unset: random
};

// An assistant's earlier tool call, as sent back in a conversation.
struct ToolCall {
  std::string id;         // the caller's bookkeeping (DeepSeek's formats carry no ids)
  std::string name;       // the function
  std::string arguments;  // a JSON text, rendered into the prompt verbatim
};

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant" | "tool"
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant: the calls it made
  std::string tool_call_id;          // tool: the call this message answers (required)
};

// A function the model may call (OpenAI's function schema).
struct Tool {
  std::string name;
  std::string description;
  std::string parameters_json;  // a JSON Schema object, printed into the prompt in its key order
};

// "auto": tools rendered into the prompt and calls parsed from the output; "none": neither (the
// model answers in text).
enum class ToolChoice : uint8_t { kAuto, kNone };

// Exactly one of prompt, token_ids and messages. Text is plain text: special-token strings in
// it stay text (the chat template adds the real control tokens around messages).
struct Request {
  std::string prompt;                 // raw text (the tokenizer's BOS is prepended)
  std::vector<int32_t> token_ids;     // the prompt as ids
  std::vector<ChatMessage> messages;  // a conversation, rendered by the model's chat template
  // With messages: functions the model may call, and whether it may; the thinking switch of
  // formats that have one (DeepSeek-V3.1: chat_template_kwargs.thinking; R1 always thinks).
  std::vector<Tool> tools;
  ToolChoice tool_choice = ToolChoice::kAuto;
  bool thinking = false;
  SamplingOptions sampling;
  std::optional<int64_t> max_tokens;    // unset: the rest of the context (and of the KV pool)
  std::vector<std::string> stop;        // stop strings, not included in the output
  std::vector<int32_t> stop_token_ids;  // ids that end the output (included)
  bool ignore_eos = false;              // true: the model's end-of-sequence does not stop it
  // -1: none; n in [0, 20]: each output token's log-probability and its n most likely
  // alternatives, in Delta::logprobs.
  int32_t logprobs = -1;
  // Who asks ("": the model's only tenant, when it has one). An unknown tenant is refused
  // (PERMISSION_DENIED); the priority is capped at the tenant's max_priority.
  std::string tenant;
  Priority priority = Priority::kInteractive;
  double timeout_seconds = 0;  // > 0: ends with DEADLINE_EXCEEDED after this long
  // An absolute deadline too (the earlier of the two applies): a request still queued or
  // running then ends with DEADLINE_EXCEEDED.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // When the request reached the application (unset: at Submit). Queue time and time to first
  // token in Usage count from here, so a caller's parsing and authentication are included (an
  // arrival before the Model was loaded counts from the end of the load; a later one than
  // Submit, from Submit).
  std::optional<std::chrono::steady_clock::time_point> arrival;
  std::string client_request_id;  // the caller's id for it (at most 128 bytes)
};

enum class FinishReason : uint8_t {
  kStop,       // end of sequence, a stop token id or a stop string
  kLength,     // max_tokens or the context length
  kCancelled,  // RequestHandle::Cancel
  kToolCalls,  // a chat answer that made tool calls and then stopped by itself
};
// "stop" | "length" | "cancelled" | "tool_calls"
DSINFER_API const char* FinishReasonName(FinishReason reason);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  double queue_seconds = 0;
  double time_to_first_token_seconds = 0;
  double total_seconds = 0;
};

struct TopLogprob {
  int32_t token_id = 0;
  float logprob = 0;
};

// One output token's log-probability under the model, and its most likely alternatives (most
// likely first), when Request::logprobs >= 0.
struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0;
  std::vector<TopLogprob> top;
};

// A piece of a tool call the model is making: the first piece of a call has its id and name,
// later pieces only more `arguments` text (a call's arguments are its pieces' concatenation).
struct ToolCallDelta {
  int32_t index = 0;  // the call's place in the answer: 0, 1, ...
  std::string id;     // "call_..." (made here: DeepSeek's formats carry none); first piece only
  std::string name;   // first piece only
  std::string arguments;
};

// New output of a request: token ids and the text they complete. Text is always whole UTF-8
// characters (a character split across tokens arrives with its last token) and never includes
// (a prefix of) a stop string. Chat requests of models whose format has reasoning or tool calls
// (DeepSeek V3, R1, V3.1) have their output read as a chat answer: `text` is then the answer's
// content, `reasoning_text` the thought, and the call tokens become `tool_calls`.
struct Delta {
  std::vector<int32_t> token_ids;
  std::string text;
  std::string reasoning_text;
  std::vector<ToolCallDelta> tool_calls;
  std::vector<TokenLogprob> logprobs;  // one per token id, when asked for
};

// How a request ended. status not OK: it failed (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED when it
// waited longer than scheduler.max_queue_seconds, UNAVAILABLE when the model is destroyed or
// its backend failed); `finish` is meaningful only with an OK status.
struct Result {
  absl::Status status;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
  // Chat answers read as such (see Delta): the complete tool calls made. The pieces of a call
  // the model left malformed were streamed in deltas but are not here (its text came back as
  // content).
  std::vector<ToolCall> tool_calls;
};

// For RESOURCE_EXHAUSTED (scheduler.max_waiting requests already queued, or a request queued
// longer than scheduler.max_queue_seconds): the engine's estimate, from the rate its queue
// drains, of when a retry would be admitted. nullopt for any other status.
DSINFER_API std::optional<double> RetryAfterSeconds(const absl::Status& status);

// Both are called on the model's engine thread, in order, and must return quickly (they hold up
// every request's next step). They may call Submit and RequestHandle::Cancel; they must not
// destroy the Model or call Generate.
struct Callbacks {
  std::function<void(const Delta&)> on_delta;  // may be empty
  std::function<void(const Result&)> on_done;  // exactly once, after every delta
};

// Generate's whole answer.
struct Generation {
  std::vector<int32_t> token_ids;
  std::string text;            // chat answers: the content
  std::string reasoning_text;  // chat answers: the thought
  std::vector<ToolCall> tool_calls;  // chat answers: the calls made, complete
  std::vector<TokenLogprob> logprobs;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
};

}  // namespace dsinfer::api
