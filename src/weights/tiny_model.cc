// The tiny model's shapes follow DeepSeek-V3 with every dimension shrunk (see config below);
// tensor names, dtypes and the MTP layer match the real checkpoint.
#include "src/weights/tiny_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/core/status_macros.h"
#include "src/weights/fp8_block.h"
#include "src/weights/safetensors_writer.h"

namespace dsinfer {
namespace {

constexpr int64_t kVocab = 129280, kHidden = 256, kInter = 512, kMoeInter = 128;
constexpr int64_t kLayers = 4, kFirstDense = 1, kHeads = 8;
constexpr int64_t kQLora = 192, kKvLora = 128, kNope = 32, kRope = 16, kV = 32;
constexpr int64_t kExperts = 16, kShared = 1, kTopk = 4, kGroups = 4, kTopkGroup = 2;
constexpr int64_t kMtpLayers = 1;
constexpr int64_t kBlock = 128;

uint64_t Mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t SeedOf(const std::string& key) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Linear layers: std 0.5 / sqrt(fan_in) keeps each projection's output near 0.5 RMS for unit-RMS
// input (about 0.03 at hidden 256).
double LinearStd(int64_t fan_in) { return 0.5 / std::sqrt(static_cast<double>(fan_in)); }

class SpecList {
 public:
  void Add(std::string name, DType dtype, std::vector<int64_t> shape, TinyTensorSpec::Init init,
           double scale, int shard, std::string seed_key = "") {
    uint64_t seed = SeedOf(seed_key.empty() ? name : seed_key);
    specs_.push_back({std::move(name), dtype, std::move(shape), init, scale, seed, shard});
  }
  void Norm(const std::string& name, int64_t dim, int shard) {
    Add(name, DType::kBF16, {dim}, TinyTensorSpec::Init::kOnes, 0, shard);
  }
  void Linear(const std::string& name, int64_t out, int64_t in, int shard) {
    Add(name, DType::kF8E4M3, {out, in}, TinyTensorSpec::Init::kNormal, LinearStd(in), shard);
  }
  void Mlp(const std::string& prefix, int64_t inter, int shard) {
    Linear(prefix + ".gate_proj.weight", inter, kHidden, shard);
    Linear(prefix + ".up_proj.weight", inter, kHidden, shard);
    Linear(prefix + ".down_proj.weight", kHidden, inter, shard);
  }
  void DecoderLayer(int64_t layer, int shard) {
    const std::string p = absl::StrCat("model.layers.", layer, ".");
    Norm(p + "input_layernorm.weight", kHidden, shard);
    Linear(p + "self_attn.q_a_proj.weight", kQLora, kHidden, shard);
    Norm(p + "self_attn.q_a_layernorm.weight", kQLora, shard);
    Linear(p + "self_attn.q_b_proj.weight", kHeads * (kNope + kRope), kQLora, shard);
    Linear(p + "self_attn.kv_a_proj_with_mqa.weight", kKvLora + kRope, kHidden, shard);
    Norm(p + "self_attn.kv_a_layernorm.weight", kKvLora, shard);
    Linear(p + "self_attn.kv_b_proj.weight", kHeads * (kNope + kV), kKvLora, shard);
    Linear(p + "self_attn.o_proj.weight", kHidden, kHeads * kV, shard);
    Norm(p + "post_attention_layernorm.weight", kHidden, shard);
    if (layer < kFirstDense) {
      Mlp(p + "mlp", kInter, shard);
      return;
    }
    Add(p + "mlp.gate.weight", DType::kBF16, {kExperts, kHidden}, TinyTensorSpec::Init::kNormal,
        LinearStd(kHidden) * 2, shard);
    Add(p + "mlp.gate.e_score_correction_bias", DType::kF32, {kExperts},
        TinyTensorSpec::Init::kUniform, 0.01, shard);
    for (int64_t e = 0; e < kExperts; ++e)
      Mlp(absl::StrCat(p, "mlp.experts.", e), kMoeInter, shard);
    Mlp(p + "mlp.shared_experts", kMoeInter * kShared, shard);
  }
  std::vector<TinyTensorSpec> Take() { return std::move(specs_); }

 private:
  std::vector<TinyTensorSpec> specs_;
};

absl::Status CopyFile(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot copy ", from, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return absl::PermissionDeniedError(absl::StrCat("cannot create ", path));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

void AppendTensor(const TinyTensorSpec& s, std::vector<TensorToWrite>* out) {
  int64_t n = 1;
  for (int64_t d : s.shape) n *= d;
  if (s.dtype == DType::kF8E4M3) {
    std::vector<float> w(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) w[i] = TinyModelValue(s, i);
    Fp8BlockQuantized q = QuantizeFp8Blockwise(w.data(), s.shape[0], s.shape[1], kBlock, kBlock);
    out->push_back({s.name, DType::kF8E4M3, s.shape, std::move(q.codes)});
    out->push_back(
        {s.name + "_scale_inv", DType::kF32, {q.scale_rows, q.scale_cols}, F32Bytes(q.scale_inv)});
    return;
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(n) * DTypeSize(s.dtype));
  for (int64_t i = 0; i < n; ++i) {
    float v = TinyModelValue(s, i);
    if (s.dtype == DType::kBF16) {
      uint16_t h = F32ToBf16(v);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    } else {
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    }
  }
  out->push_back({s.name, s.dtype, s.shape, std::move(bytes)});
}

}  // namespace

std::vector<TinyTensorSpec> TinyModelTensors() {
  using Init = TinyTensorSpec::Init;
  SpecList l;
  l.Add("model.embed_tokens.weight", DType::kBF16, {kVocab, kHidden}, Init::kNormal, 1.0, 0);
  for (int64_t layer = 0; layer < kLayers; ++layer) l.DecoderLayer(layer, layer < 2 ? 0 : 1);
  l.Norm("model.norm.weight", kHidden, 1);
  l.Add("lm_head.weight", DType::kBF16, {kVocab, kHidden}, Init::kNormal, LinearStd(kHidden) * 4,
        1);
  // Multi-token-prediction layer after the decoder layers, as DeepSeek-V3 ships it (loaders for
  // next-token generation skip it). Its embedding and head are copies of the main ones.
  const std::string p = absl::StrCat("model.layers.", kLayers, ".");
  l.Add(p + "embed_tokens.weight", DType::kBF16, {kVocab, kHidden}, Init::kNormal, 1.0, 1,
        "model.embed_tokens.weight");
  l.Norm(p + "enorm.weight", kHidden, 1);
  l.Norm(p + "hnorm.weight", kHidden, 1);
  l.Add(p + "eh_proj.weight", DType::kBF16, {kHidden, 2 * kHidden}, Init::kNormal,
        LinearStd(2 * kHidden), 1);
  l.DecoderLayer(kLayers, 1);
  l.Norm(p + "shared_head.norm.weight", kHidden, 1);
  l.Add(p + "shared_head.head.weight", DType::kBF16, {kVocab, kHidden}, Init::kNormal,
        LinearStd(kHidden) * 4, 1, "lm_head.weight");
  return l.Take();
}

float TinyModelValue(const TinyTensorSpec& spec, int64_t index) {
  switch (spec.init) {
    case TinyTensorSpec::Init::kOnes:
      return 1.0f;
    case TinyTensorSpec::Init::kUniform: {
      uint64_t r = Mix64(spec.seed ^ Mix64(static_cast<uint64_t>(index)));
      int64_t centered = static_cast<int64_t>(r >> 32) - (int64_t{1} << 31);  // [-2^31, 2^31)
      return static_cast<float>(static_cast<double>(centered) * (spec.scale / 2147483648.0));
    }
    case TinyTensorSpec::Init::kNormal: {
      // Irwin-Hall: the sum of four uniform 32-bit draws, centred, has variance 2^64 / 3.
      uint64_t a = Mix64(spec.seed ^ Mix64(2 * static_cast<uint64_t>(index)));
      uint64_t b = Mix64(spec.seed ^ Mix64(2 * static_cast<uint64_t>(index) + 1));
      int64_t sum =
          static_cast<int64_t>((a >> 32) + (a & 0xffffffffu) + (b >> 32) + (b & 0xffffffffu)) -
          (int64_t{1} << 33);
      const double unit = 1.7320508075688772 / 4294967296.0;  // sqrt(3) / 2^32
      return static_cast<float>(static_cast<double>(sum) * (unit * spec.scale));
    }
  }
  return 0.0f;
}

std::string TinyModelConfigJson() {
  nlohmann::json c = {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"vocab_size", kVocab},
      {"hidden_size", kHidden},
      {"intermediate_size", kInter},
      {"moe_intermediate_size", kMoeInter},
      {"num_hidden_layers", kLayers},
      {"first_k_dense_replace", kFirstDense},
      {"moe_layer_freq", 1},
      {"num_attention_heads", kHeads},
      {"num_key_value_heads", kHeads},
      {"q_lora_rank", kQLora},
      {"kv_lora_rank", kKvLora},
      {"qk_nope_head_dim", kNope},
      {"qk_rope_head_dim", kRope},
      {"v_head_dim", kV},
      {"n_routed_experts", kExperts},
      {"n_shared_experts", kShared},
      {"num_experts_per_tok", kTopk},
      {"n_group", kGroups},
      {"topk_group", kTopkGroup},
      {"topk_method", "noaux_tc"},
      {"scoring_func", "sigmoid"},
      {"norm_topk_prob", true},
      {"routed_scaling_factor", 2.5},
      {"hidden_act", "silu"},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"rms_norm_eps", 1e-6},
      {"rope_theta", 10000},
      {"rope_scaling",
       {{"type", "yarn"},
        {"factor", 40},
        {"original_max_position_embeddings", 4096},
        {"beta_fast", 32},
        {"beta_slow", 1},
        {"mscale", 1.0},
        {"mscale_all_dim", 1.0}}},
      {"max_position_embeddings", 163840},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"tie_word_embeddings", false},
      {"torch_dtype", "bfloat16"},
      {"initializer_range", 0.02},
      {"use_cache", true},
      {"quantization_config",
       {{"quant_method", "fp8"},
        {"fmt", "e4m3"},
        {"activation_scheme", "dynamic"},
        {"weight_block_size", {kBlock, kBlock}}}},
      {"num_nextn_predict_layers", kMtpLayers},
  };
  return c.dump(2) + "\n";
}

absl::Status WriteTinyModel(const std::string& out_dir, const std::string& tokenizer_dir) {
  const char* tokenizer_files[] = {"tokenizer.json", "tokenizer_config.json"};
  for (const char* f : tokenizer_files) {
    std::error_code ec;
    const std::string path = tokenizer_dir + "/" + f;
    if (!std::filesystem::is_regular_file(path, ec)) {
      return absl::NotFoundError(absl::StrCat("tokenizer file ", path, " does not exist"));
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  }

  const std::vector<TinyTensorSpec> specs = TinyModelTensors();
  const char* shard_names[2] = {kTinyModelShard0, kTinyModelShard1};
  nlohmann::json weight_map = nlohmann::json::object();
  uint64_t total_size = 0;
  for (int shard = 0; shard < 2; ++shard) {
    std::vector<TensorToWrite> tensors;
    for (const TinyTensorSpec& s : specs) {
      if (s.shard == shard) AppendTensor(s, &tensors);
    }
    for (const TensorToWrite& t : tensors) {
      weight_map[t.name] = shard_names[shard];
      total_size += t.bytes.size();
    }
    RETURN_IF_ERROR(
        WriteSafetensors(out_dir + "/" + shard_names[shard], tensors, {{"format", "pt"}}));
  }
  nlohmann::json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  RETURN_IF_ERROR(WriteText(out_dir + "/model.safetensors.index.json", index.dump(2) + "\n"));
  for (const char* f : tokenizer_files) {
    RETURN_IF_ERROR(CopyFile(tokenizer_dir + "/" + f, out_dir + "/" + f));
  }
  // config.json last: its presence means the model is complete.
  return WriteText(out_dir + "/config.json", TinyModelConfigJson());
}

}  // namespace dsinfer
