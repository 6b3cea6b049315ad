// FP4 routed experts (DeepSeek-V4's storage, expert_dtype fp4) on the V3 program: tests/fixtures/
// models/v3_fp4 (tools/gen_fp4_fixture.py) kept FP4 in memory gives the logits of the same
// checkpoint with its experts dequantised to F32 (written here, experts only), and a config that
// says fp4 over experts that are not is refused naming expert_dtype. (The golden bars against
// HF run in model_golden_test.)
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"
#include "src/engine/batch_generator.h"
#include "src/kv_cache/block_pool.h"
#include "src/model/program_runner.h"
#include "src/runner/runner_factory.h"
#include "src/weights/safetensors_writer.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

const std::string kModel = std::string(DSINFER_SOURCE_DIR) + "/tests/fixtures/models/v3_fp4";

absl::StatusOr<std::unique_ptr<ModelRunner>> Load(const std::string& dir, Precision p) {
  return MakeModelRunner(
      {.model_dir = dir, .precision = p, .keep_fp8 = true, .threads = 2, .num_kv_blocks = 16});
}

std::vector<float> Logits(ModelRunner& r, const std::vector<int32_t>& prompt) {
  BlockPool pool(r.num_kv_blocks());
  BlockTable table;
  EXPECT_TRUE(table.Reserve(pool, static_cast<int64_t>(prompt.size())).ok());
  RunnerSequence in{.tokens = prompt, .block_table = table.blocks(), .all_logits = true};
  StepResult out;
  EXPECT_TRUE(r.Step({&in, 1}, &out).ok());
  return out.logits;
}

double RelErr(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(got[i] - want[i])));
    den = std::max(den, static_cast<double>(std::fabs(want[i])));
  }
  return num / den;
}

std::vector<int32_t> Prompt(int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back((37 * i + 11) % 500 + 1);
  return p;
}

// The fixture with every packed FP4 tensor written as F32 (dequantised by WeightStore) and its
// scale dropped; everything else byte for byte. config.json's expert_dtype is kept or removed.
class DequantisedCopy {
 public:
  explicit DequantisedCopy(bool keep_expert_dtype) {
    dir_ = (std::filesystem::path(::testing::TempDir()) /
            ("dsinfer_fp4_copy_" + std::to_string(keep_expert_dtype)))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto store = WeightStore::Open(kModel);
    EXPECT_TRUE(store.ok()) << store.status();
    std::vector<TensorToWrite> out;
    std::vector<std::string> scales;
    for (const std::string& name : (*store)->Names()) {
      if (!(*store)->IsFp4(name)) continue;
      const std::string base = name.substr(0, name.size() - 7);  // minus ".weight"
      scales.push_back(base + ".scale");
      scales.push_back(name + "_scale_inv");
    }
    for (const std::string& name : (*store)->Names()) {
      if (std::find(scales.begin(), scales.end(), name) != scales.end()) continue;
      const TensorInfo* t = *(*store)->Get(name);
      if ((*store)->IsFp4(name)) {
        const std::vector<int64_t> shape = *(*store)->LogicalShape(name);
        std::vector<float> v(static_cast<size_t>(shape[0] * shape[1]));
        EXPECT_TRUE((*store)->ReadF32(name, shape, v.data()).ok());
        out.push_back({name, DType::kF32, shape, F32Bytes(v)});
        ++fp4_tensors_;
      } else {
        out.push_back({name, t->dtype, t->shape, std::vector<uint8_t>(t->data, t->data + t->nbytes)});
      }
    }
    EXPECT_TRUE(WriteSafetensors(dir_ + "/model.safetensors", out).ok());
    std::ifstream in(kModel + "/config.json");
    nlohmann::json c = nlohmann::json::parse(in);
    if (!keep_expert_dtype) c["quantization_config"].erase("expert_dtype");
    std::ofstream(dir_ + "/config.json") << c.dump(2);
  }
  ~DequantisedCopy() { std::filesystem::remove_all(dir_); }
  const std::string& dir() const { return dir_; }
  int fp4_tensors() const { return fp4_tensors_; }

 private:
  std::string dir_;
  int fp4_tensors_ = 0;
};

TEST(Fp4Experts, KeptFp4IsTheModelWithDequantisedExperts) {
  DequantisedCopy copy(false);
  // 16 experts x 3 projections x (2 MoE layers + the MTP layer).
  EXPECT_EQ(copy.fp4_tensors(), 16 * 3 * 3);
  for (Precision p : {Precision::kF32, Precision::kBF16}) {
    auto fp4 = Load(kModel, p);
    auto deq = Load(copy.dir(), p);
    ASSERT_TRUE(fp4.ok()) << fp4.status();
    ASSERT_TRUE(deq.ok()) << deq.status();
    auto* k = dynamic_cast<ProgramRunner*>(fp4->get());
    auto* d = dynamic_cast<ProgramRunner*>(deq->get());
    ASSERT_TRUE(k && d);
    // The experts stay FP4 (half a byte a value plus a scale byte per 32): the kept-quantised
    // bytes grow and the held bytes shrink against the copy.
    EXPECT_GT(k->fp8_weight_bytes(), d->fp8_weight_bytes());
    EXPECT_LT(k->weight_bytes(), d->weight_bytes());
    for (int n : {1, 9, 70}) {
      const auto prompt = Prompt(n);
      const std::vector<float> a = Logits(**fp4, prompt), b = Logits(**deq, prompt);
      const double err = RelErr(a, b);
      std::printf("%s prompt %d: FP4 kept vs dequantised experts rel err %.3g\n",
                  p == Precision::kF32 ? "f32" : "bf16", n, err);
      if (p == Precision::kF32) {
        EXPECT_LE(err, 1e-5) << n;
      } else {
        EXPECT_EQ(a, b) << n;  // FP4 values are exact in bf16: the same GEMM on the same bits
      }
    }
    GenerationRequest r{.prompt = Prompt(20), .max_tokens = 12, .stop_at_eos = false};
    auto ga = GenerateOnRunner(**fp4, {&r, 1});
    auto gb = GenerateOnRunner(**deq, {&r, 1});
    ASSERT_TRUE(ga.ok() && gb.ok());
    EXPECT_EQ((*ga)[0].tokens, (*gb)[0].tokens);
  }
}

TEST(Fp4Experts, ExpertDtypeFp4OverUnpackedExpertsIsRefused) {
  DequantisedCopy copy(true);
  auto m = Load(copy.dir(), Precision::kF32);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("expert_dtype: config.json says fp4 but the checkpoint's "
                                      "model.layers.1.mlp.experts.0.gate_proj.weight is F32"),
            std::string::npos)
      << m.status();
}

}  // namespace
}  // namespace dsinfer
