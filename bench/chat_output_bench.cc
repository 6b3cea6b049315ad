// ChatOutputParser throughput on model-shaped output: a reasoning block, an answer, and V3.1
// tool calls, fed as the detokenized pieces of the DeepSeek-V3 tokenizer (one Push per token, as
// the serving layer does). Reported per piece, to compare with a decode step's milliseconds.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "src/chat/output_parser.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::chat {
namespace {

std::vector<std::string> Pieces(const std::string& text) {
  static const std::unique_ptr<Tokenizer> tok = [] {
    auto t = Tokenizer::FromFile(std::string(DSINFER_SOURCE_DIR) +
                                 "/models/tokenizers/deepseek-v3/tokenizer.json");
    if (!t.ok()) std::abort();
    return *std::move(t);
  }();
  std::vector<std::string> out;
  for (int32_t id : tok->Encode(text)) {
    out.push_back(*tok->Decode(absl::MakeConstSpan(&id, 1)));
  }
  return out;
}

std::string Output(bool tools) {
  std::string reasoning;
  for (int i = 0; i < 40; ++i) {
    reasoning +=
        "The citizen asks about renewing a residence permit in Anning; the office is "
        "the county service centre, documents: ID card, <proof> of address. ";
  }
  std::string out = reasoning + "</think>请携带身份证和居住证明到安宁市政务服务中心办理。";
  if (tools) {
    out +=
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>find_office<｜tool▁sep｜>{\"service\": "
        "\"residence permit\", \"county\": \"Anning\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  }
  return out;
}

void BM_ParsePieces(benchmark::State& state) {
  const bool tools = state.range(0) != 0;
  const std::vector<std::string> pieces = Pieces(Output(tools));
  OutputParserOptions o;
  o.syntax = ToolCallSyntax::kV31;
  o.starts_in_reasoning = true;
  o.parse_tool_calls = tools;
  for (auto _ : state) {
    ChatOutputParser p(o);
    for (const std::string& piece : pieces) benchmark::DoNotOptimize(p.Push(piece));
    benchmark::DoNotOptimize(p.Finish());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(pieces.size()));
  state.counters["pieces"] = static_cast<double>(pieces.size());
}
BENCHMARK(BM_ParsePieces)->Arg(0)->Arg(1);

}  // namespace
}  // namespace dsinfer::chat

BENCHMARK_MAIN();
