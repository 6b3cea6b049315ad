// The plain structs of the dsinfer embedding API: what loads a model, what a request says, and
// what comes back. Standard library and absl::Status only; nothing here needs the library's
// internals, so these structs may be filled anywhere.
#pragma once

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

struct LoadOptions {
  // A Hugging Face checkpoint directory as downloaded: config.json, safetensors (sharded or
  // not), and tokenizer.json or tiktoken.model (without one, requests must send token_ids).
  std::string model_path;
  std::string backend = "cpu";  // "cpu" | "cuda" (builds made with CUDA)
  std::string dtype = "bf16";   // compute precision: "bf16" | "f32" (cuda: bf16)
  int threads = 0;              // CPU threads; 0: $DSINFER_THREADS or every core
  ParallelOptions parallel;
  KvCacheOptions kv_cache;
  SchedulerOptions scheduler;
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
};

// Lower is more urgent; emergency requests may take a running slot from the others.
enum class Priority : uint8_t { kEmergency = 0, kInteractive = 1, kBatch = 2 };

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

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// Exactly one of prompt, token_ids and messages. Text is plain text: special-token strings in
// it stay text (the chat template adds the real control tokens around messages).
struct Request {
  std::string prompt;                 // raw text (the tokenizer's BOS is prepended)
  std::vector<int32_t> token_ids;     // the prompt as ids
  std::vector<ChatMessage> messages;  // a conversation, rendered by the model's chat template
  SamplingOptions sampling;
  std::optional<int64_t> max_tokens;    // unset: the rest of the context (and of the KV pool)
  std::vector<std::string> stop;        // stop strings, not included in the output
  std::vector<int32_t> stop_token_ids;  // ids that end the output (included)
  bool ignore_eos = false;              // true: the model's end-of-sequence does not stop it
  Priority priority = Priority::kInteractive;
  double timeout_seconds = 0;  // > 0: ends with DEADLINE_EXCEEDED after this long
};

enum class FinishReason : uint8_t {
  kStop,       // end of sequence, a stop token id or a stop string
  kLength,     // max_tokens or the context length
  kCancelled,  // RequestHandle::Cancel
};
DSINFER_API const char* FinishReasonName(FinishReason reason);  // "stop" | "length" | "cancelled"

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
  double queue_seconds = 0;
  double time_to_first_token_seconds = 0;
  double total_seconds = 0;
};

// New output of a request: token ids and the text they complete. Text is always whole UTF-8
// characters (a character split across tokens arrives with its last token) and never includes
// (a prefix of) a stop string.
struct Delta {
  std::vector<int32_t> token_ids;
  std::string text;
};

// How a request ended. status not OK: it failed (DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED when it
// waited longer than scheduler.max_queue_seconds, UNAVAILABLE when the model is destroyed or
// its backend failed); `finish` is meaningful only with an OK status.
struct Result {
  absl::Status status;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
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
  std::string text;
  FinishReason finish = FinishReason::kStop;
  Usage usage;
};

}  // namespace dsinfer::api
