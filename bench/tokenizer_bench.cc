// Tokenizer throughput, single thread, on tests/fixtures/tokenizer/corpus.json: its texts in
// order, repeated to at least DSINFER_TOKENIZER_BENCH_MB megabytes (default 4; 1 MB = 1e6 bytes),
// one Encode call per text -- the same work as tools/bench_hf_tokenizer.py does with HF.
// Counter "MB/s" is input bytes / 1e6 per second.
//   Warm: the BPE word cache is already filled (by earlier iterations).
//   Cold: a freshly loaded tokenizer for every pass (loading not timed).
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "nlohmann/json.hpp"
#include "src/tokenizer/stream_detokenizer.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer {
namespace {

const std::string kRoot = DSINFER_SOURCE_DIR;
const std::string kTokenizerJson = kRoot + "/models/tokenizers/deepseek-v3/tokenizer.json";

struct Corpus {
  std::vector<std::string> docs;
  size_t bytes = 0;
};

const Corpus& GetCorpus() {
  static const Corpus corpus = [] {
    std::ifstream f(kRoot + "/tests/fixtures/tokenizer/corpus.json");
    const nlohmann::json j = nlohmann::json::parse(f);
    std::vector<std::string> texts;
    for (const auto& section : j["sections"]) {
      for (const auto& t : section["texts"]) {
        if (!t.get<std::string>().empty()) texts.push_back(t.get<std::string>());
      }
    }
    const char* env = std::getenv("DSINFER_TOKENIZER_BENCH_MB");
    const double mb = env ? std::atof(env) : 4.0;
    Corpus c;
    while (c.bytes < mb * 1e6) {
      for (const std::string& t : texts) {
        c.docs.push_back(t);
        c.bytes += t.size();
      }
    }
    return c;
  }();
  return corpus;
}

std::unique_ptr<Tokenizer> Load() {
  auto t = Tokenizer::FromFile(kTokenizerJson);
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", std::string(t.status().message()).c_str());
    std::abort();
  }
  return std::move(t).value();
}

const Tokenizer& Shared() {
  static const std::unique_ptr<Tokenizer> tok = Load();
  return *tok;
}

size_t EncodeAll(const Tokenizer& tok, const Corpus& c, bool plain) {
  size_t n = 0;
  for (const std::string& d : c.docs) {
    const std::vector<int32_t> ids = plain ? tok.EncodePlain(d) : tok.Encode(d);
    n += ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  return n;
}

void SetRate(benchmark::State& state, size_t bytes_per_iteration, size_t tokens) {
  const double bytes = static_cast<double>(bytes_per_iteration) * state.iterations();
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["MB/s"] = benchmark::Counter(bytes / 1e6, benchmark::Counter::kIsRate);
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_EncodeWarm(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  const Tokenizer& tok = Shared();
  EncodeAll(tok, c, false);  // fill the word cache
  size_t tokens = 0;
  for (auto _ : state) tokens = EncodeAll(tok, c, false);
  SetRate(state, c.bytes, tokens);
}
BENCHMARK(BM_EncodeWarm)->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_EncodePlainWarm(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  const Tokenizer& tok = Shared();
  EncodeAll(tok, c, true);
  size_t tokens = 0;
  for (auto _ : state) tokens = EncodeAll(tok, c, true);
  SetRate(state, c.bytes, tokens);
}
BENCHMARK(BM_EncodePlainWarm)->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_EncodeCold(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  size_t tokens = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::unique_ptr<Tokenizer> tok = Load();
    state.ResumeTiming();
    tokens = EncodeAll(*tok, c, false);
    state.PauseTiming();
    tok.reset();
    state.ResumeTiming();
  }
  SetRate(state, c.bytes, tokens);
}
BENCHMARK(BM_EncodeCold)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Decode(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  const Tokenizer& tok = Shared();
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& d : c.docs) ids.push_back(tok.Encode(d));
  for (auto _ : state) {
    for (const auto& v : ids) {
      auto text = tok.Decode(v);
      benchmark::DoNotOptimize(text);
    }
  }
  SetRate(state, c.bytes, 0);
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_StreamDetokenize(benchmark::State& state) {
  const Corpus& c = GetCorpus();
  const Tokenizer& tok = Shared();
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& d : c.docs) ids.push_back(tok.Encode(d));
  for (auto _ : state) {
    for (const auto& v : ids) {
      StreamDetokenizer stream(tok);
      for (int32_t id : v) benchmark::DoNotOptimize(stream.Push(id));
      benchmark::DoNotOptimize(stream.Finish());
    }
  }
  SetRate(state, c.bytes, 0);
}
BENCHMARK(BM_StreamDetokenize)->Unit(benchmark::kMillisecond);

void BM_Load(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Load());
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace dsinfer

BENCHMARK_MAIN();
