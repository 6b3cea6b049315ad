// Tests for safetensors reading/writing, the sharded WeightStore, FP8 block dequantisation and
// the bundled tiny model.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/config/model_config.h"
#include "src/core/numeric.h"
#include "src/weights/fp8_block.h"
#include "src/weights/load_progress.h"
#include "src/weights/safetensors.h"
#include "src/weights/safetensors_index.h"
#include "src/weights/safetensors_writer.h"
#include "src/weights/tiny_model.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string leaf =
        std::string("dsinfer_weights_test_") + info->test_suite_name() + "_" + info->name();
    std::replace(leaf.begin(), leaf.end(), '/', '_');
    path_ = (std::filesystem::path(::testing::TempDir()) / leaf).string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string Message(const absl::Status& s) { return std::string(s.message()); }

std::vector<float> RandomValues(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// A safetensors file assembled by hand, for headers no honest writer produces.
std::vector<uint8_t> RawFile(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t i = 0; i < data_bytes; ++i) out[8 + header.size() + i] = static_cast<uint8_t>(i);
  return out;
}

absl::Status ParseRaw(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> f = RawFile(header, data_bytes);
  return ParseSafetensorsHeader(f.data(), f.size()).status();
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(SafetensorsTest, RoundTripAllDtypes) {
  TempDir dir;
  std::vector<float> f32 = RandomValues(6, 1);
  std::vector<float> bf = RandomValues(12, 2);
  // F16 bit patterns: 1, -2, 65504 (max), 2^-24 (smallest subnormal), 1/3.
  const uint16_t f16_bits[] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x3555};
  std::vector<uint8_t> f16_bytes(sizeof(f16_bits));
  std::memcpy(f16_bytes.data(), f16_bits, sizeof(f16_bits));
  std::vector<float> w = RandomValues(4 * 8, 3, 0.05f);
  Fp8BlockQuantized q = QuantizeFp8Blockwise(w.data(), 4, 8);

  std::vector<TensorToWrite> tensors = {
      {"a.f32", DType::kF32, {2, 3}, F32Bytes(f32)},
      {"b.bf16", DType::kBF16, {3, 2, 2}, Bf16Bytes(bf)},
      {"c.f16", DType::kF16, {5}, f16_bytes},
      {"d.weight", DType::kF8E4M3, {4, 8}, q.codes},
      {"d.weight_scale_inv", DType::kF32, {1, 1}, F32Bytes(q.scale_inv)},
      {"e.scalar", DType::kF32, {}, F32Bytes({7.5f})},
      {"f.empty", DType::kBF16, {0, 4}, {}},
  };
  ASSERT_TRUE(WriteSafetensors(dir.File("model.safetensors"), tensors, {{"format", "pt"}}).ok());

  std::vector<uint8_t> raw = ReadBytes(dir.File("model.safetensors"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | raw[i];
  EXPECT_EQ((8 + header_len) % 8, 0u) << "data section must start 8-byte aligned";

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open(dir.File("model.safetensors"));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  ASSERT_EQ((*file)->tensors().size(), tensors.size());
  const TensorInfo* b = (*file)->Find("b.bf16");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_THAT(b->shape, ::testing::ElementsAre(3, 2, 2));
  EXPECT_EQ(b->nbytes, 24u);
  EXPECT_EQ(b->numel(), 12);
  EXPECT_EQ((*file)->Find("nope"), nullptr);

  absl::StatusOr<std::unique_ptr<WeightStore>> store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT((*store)->Names(),
              ::testing::ElementsAre("a.f32", "b.bf16", "c.f16", "d.weight", "d.weight_scale_inv",
                                     "e.scalar", "f.empty"));
  std::vector<float> out(12);
  ASSERT_TRUE((*store)->ReadF32("a.f32", {2, 3}, out.data()).ok());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[i], f32[i]);
  ASSERT_TRUE((*store)->ReadF32("b.bf16", {3, 2, 2}, out.data()).ok());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(out[i], RoundToBf16(bf[i]));
  ASSERT_TRUE((*store)->ReadF32("c.f16", {5}, out.data()).ok());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_NEAR(out[4], 1.0f / 3, 1e-3);
  ASSERT_TRUE((*store)->ReadF32("e.scalar", {}, out.data()).ok());
  EXPECT_EQ(out[0], 7.5f);
  ASSERT_TRUE((*store)->ReadF32("f.empty", {0, 4}, out.data()).ok());

  std::vector<float> deq(32);
  ASSERT_TRUE((*store)->ReadF32("d.weight", {4, 8}, deq.data()).ok());
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(deq[i], F8E4M3ToF32(q.codes[i]) * q.scale_inv[0]);
    EXPECT_NEAR(deq[i], w[i], std::fabs(w[i]) / 16 + q.scale_inv[0] / 512);
  }

  std::vector<uint16_t> h(32);
  ASSERT_TRUE((*store)->ReadBf16("b.bf16", {3, 2, 2}, h.data()).ok());
  for (int i = 0; i < 12; ++i) EXPECT_EQ(h[i], F32ToBf16(bf[i]));
  ASSERT_TRUE((*store)->ReadBf16("a.f32", {2, 3}, h.data()).ok());
  for (int i = 0; i < 6; ++i) EXPECT_EQ(h[i], F32ToBf16(f32[i]));
  ASSERT_TRUE((*store)->ReadBf16("c.f16", {5}, h.data()).ok());
  EXPECT_EQ(Bf16ToF32(h[1]), -2.0f);
  ASSERT_TRUE((*store)->ReadBf16("d.weight", {4, 8}, h.data()).ok());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(h[i], F32ToBf16(deq[i]));
}

TEST(SafetensorsTest, WriterRejectsBadInput) {
  TempDir dir;
  EXPECT_FALSE(WriteSafetensors(dir.File("x"), {{"a", DType::kF32, {2}, {1, 2, 3}}}).ok());
  EXPECT_FALSE(WriteSafetensors(dir.File("x"), {{"a", DType::kF32, {1}, {0, 0, 0, 0}},
                                                {"a", DType::kF32, {1}, {0, 0, 0, 0}}})
                   .ok());
  EXPECT_FALSE(
      WriteSafetensors(dir.File("x"), {{"__metadata__", DType::kF32, {}, {0, 0, 0, 0}}}).ok());
  EXPECT_FALSE(WriteSafetensors(dir.path() + "/no/such/dir/x", {}).ok());
}

TEST(SafetensorsTest, DataMayBeUnaligned) {
  // A BF16 tensor at an odd offset: readers must not assume alignment.
  TempDir dir;
  const std::string header = R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[1,5]},)"
                             R"("c":{"dtype":"F8_E4M3","shape":[1,1],"data_offsets":[0,1]}})";
  std::vector<uint8_t> f = RawFile(header, 5);  // data bytes 0, 1, 2, 3, 4
  absl::StatusOr<SafetensorsHeader> h = ParseSafetensorsHeader(f.data(), f.size());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->tensors[0].name, "b");
  EXPECT_EQ(h->tensors[0].data, f.data() + 8 + header.size() + 1);

  WriteBytes(dir.File("model.safetensors"), f);
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  float out[2];
  ASSERT_TRUE((*store)->ReadF32("b", {2}, out).ok());
  EXPECT_EQ(out[0], Bf16ToF32(0x0201));
  EXPECT_EQ(out[1], Bf16ToF32(0x0403));
}

// ---------------------------------------------------------------------------------------------
// FP8 block dequantisation

// Writes an FP8 matrix with block scales and checks WeightStore against a plain loop.
void CheckFp8(int64_t rows, int64_t cols, int64_t block_n, int64_t block_k) {
  SCOPED_TRACE(::testing::Message()
               << rows << "x" << cols << " blocks " << block_n << "x" << block_k);
  TempDir dir;
  std::vector<float> w = RandomValues(static_cast<size_t>(rows * cols), 7, 0.02f);
  // Make block magnitudes differ a lot so a wrong block index shows.
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) w[i * cols + j] *= 1.0f + (i / block_n) * 3 + (j / block_k);
  }
  Fp8BlockQuantized q = QuantizeFp8Blockwise(w.data(), rows, cols, block_n, block_k);
  ASSERT_EQ(q.scale_rows, (rows + block_n - 1) / block_n);
  ASSERT_EQ(q.scale_cols, (cols + block_k - 1) / block_k);
  ASSERT_TRUE(WriteSafetensors(dir.File("model.safetensors"),
                               {{"layer.proj.weight", DType::kF8E4M3, {rows, cols}, q.codes},
                                {"layer.proj.weight_scale_inv",
                                 DType::kF32,
                                 {q.scale_rows, q.scale_cols},
                                 F32Bytes(q.scale_inv)}})
                  .ok());
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  (*store)->SetFp8BlockSize(block_n, block_k);
  std::vector<float> got(static_cast<size_t>(rows * cols));
  absl::Status st = (*store)->ReadF32("layer.proj.weight", {rows, cols}, got.data());
  ASSERT_TRUE(st.ok()) << st;
  int64_t mismatches = 0;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      float s = q.scale_inv[(i / block_n) * q.scale_cols + j / block_k];
      float want = F8E4M3ToF32(q.codes[i * cols + j]) * s;
      if (got[i * cols + j] != want) ++mismatches;
      // And within FP8 precision of the original: half an ulp of a 3-bit mantissa, or of the
      // smallest subnormal step.
      ASSERT_LE(std::fabs(got[i * cols + j] - w[i * cols + j]),
                std::fabs(w[i * cols + j]) / 16 + s / 1024 + 1e-12)
          << i << "," << j;
    }
  }
  EXPECT_EQ(mismatches, 0);
  std::vector<uint16_t> bf(static_cast<size_t>(rows * cols));
  ASSERT_TRUE((*store)->ReadBf16("layer.proj.weight", {rows, cols}, bf.data()).ok());
  for (int64_t i = 0; i < rows * cols; ++i) ASSERT_EQ(bf[i], F32ToBf16(got[i])) << i;
}

TEST(Fp8BlockTest, PartialEdgeBlocks) {
  CheckFp8(200, 320, 128, 128);
  CheckFp8(112, 72, 128, 128);
  CheckFp8(128, 256, 128, 128);
  CheckFp8(1, 1, 128, 128);
  CheckFp8(100, 90, 64, 32);
}

TEST(Fp8BlockTest, EveryCodeDecodes) {
  TempDir dir;
  std::vector<uint8_t> codes(256);
  for (int i = 0; i < 256; ++i) codes[i] = static_cast<uint8_t>(i);
  ASSERT_TRUE(WriteSafetensors(dir.File("model.safetensors"),
                               {{"w.weight", DType::kF8E4M3, {16, 16}, codes},
                                {"w.weight_scale_inv", DType::kF32, {1, 1}, F32Bytes({1.0f})}})
                  .ok());
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<float> out(256);
  ASSERT_TRUE((*store)->ReadF32("w.weight", {16, 16}, out.data()).ok());
  for (int i = 0; i < 256; ++i) {
    float want = F8E4M3ToF32(static_cast<uint8_t>(i));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(out[i])) << i;
    } else {
      EXPECT_EQ(out[i], want) << i;
      EXPECT_EQ(std::signbit(out[i]), std::signbit(want)) << i;
    }
  }
}

TEST(WeightStoreTest, EveryF16PatternDecodes) {
  TempDir dir;
  std::vector<uint8_t> bytes(65536 * 2);
  for (int i = 0; i < 65536; ++i) {
    uint16_t h = static_cast<uint16_t>(i);
    std::memcpy(bytes.data() + 2 * i, &h, 2);
  }
  ASSERT_TRUE(
      WriteSafetensors(dir.File("model.safetensors"), {{"h", DType::kF16, {65536}, bytes}}).ok());
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<float> out(65536);
  ASSERT_TRUE((*store)->ReadF32("h", {65536}, out.data()).ok());
  for (int i = 0; i < 65536; ++i) {
    float want = F16ToF32(static_cast<uint16_t>(i));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(out[i])) << i;
    } else {
      ASSERT_EQ(out[i], want) << i;
      ASSERT_EQ(std::signbit(out[i]), std::signbit(want)) << i;
    }
  }
}

TEST(Fp8BlockTest, LargeMatrixUsesThreadsAndMatches) {
  CheckFp8(1000, 1100, 128, 128);  // above the parallel threshold
}

TEST(Fp8BlockTest, QuantiserScaleIsBlockAmaxOver448) {
  std::vector<float> w(130 * 3, 0.0f);
  w[0] = -896.0f;      // block (0, 0): amax 896 -> scale 2
  w[129 * 3] = 4.48f;  // block (1, 0): amax 4.48 -> scale 0.01
  Fp8BlockQuantized q = QuantizeFp8Blockwise(w.data(), 130, 3);
  ASSERT_EQ(q.scale_inv.size(), 2u);
  EXPECT_EQ(q.scale_inv[0], 2.0f);
  EXPECT_EQ(q.scale_inv[1], 4.48f / 448.0f);
  EXPECT_EQ(F8E4M3ToF32(q.codes[0]), -448.0f);
  EXPECT_EQ(F8E4M3ToF32(q.codes[129 * 3]), 448.0f);
  std::vector<float> zeros(16, 0.0f);
  Fp8BlockQuantized z = QuantizeFp8Blockwise(zeros.data(), 4, 4);
  EXPECT_EQ(z.scale_inv[0], 1.0f);
  EXPECT_EQ(z.codes[5], 0);
}

TEST(WeightStoreTest, LargeConversionsMatchSerialLoop) {
  TempDir dir;
  const int64_t rows = 700, cols = 1024;  // 716800 elements: parallel path
  std::vector<float> v = RandomValues(static_cast<size_t>(rows * cols), 11);
  std::vector<uint8_t> f16(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h = static_cast<uint16_t>((i * 2654435761u) & 0x7bff);  // finite f16 patterns
    std::memcpy(f16.data() + 2 * i, &h, 2);
  }
  ASSERT_TRUE(WriteSafetensors(dir.File("model.safetensors"),
                               {{"bf", DType::kBF16, {rows, cols}, Bf16Bytes(v)},
                                {"f16", DType::kF16, {rows, cols}, f16},
                                {"f32", DType::kF32, {rows, cols}, F32Bytes(v)}})
                  .ok());
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  std::vector<float> out(v.size());
  ASSERT_TRUE((*store)->ReadF32("bf", {rows, cols}, out.data()).ok());
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(out[i], RoundToBf16(v[i])) << i;
  ASSERT_TRUE((*store)->ReadF32("f32", {rows, cols}, out.data()).ok());
  EXPECT_EQ(out, v);
  ASSERT_TRUE((*store)->ReadF32("f16", {rows, cols}, out.data()).ok());
  for (size_t i = 0; i < v.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, f16.data() + 2 * i, 2);
    ASSERT_EQ(out[i], F16ToF32(h)) << i;
  }
  std::vector<uint16_t> bf(v.size());
  ASSERT_TRUE((*store)->ReadBf16("f32", {rows, cols}, bf.data()).ok());
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(bf[i], F32ToBf16(v[i])) << i;
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints and progress

void WriteTwoShards(const TempDir& dir) {
  ASSERT_TRUE(WriteSafetensors(dir.File("model-00001-of-00002.safetensors"),
                               {{"x.weight", DType::kF32, {2}, F32Bytes({1, 2})},
                                {"y.weight", DType::kBF16, {2}, Bf16Bytes({3, 4})}})
                  .ok());
  ASSERT_TRUE(WriteSafetensors(dir.File("model-00002-of-00002.safetensors"),
                               {{"z.weight", DType::kF32, {3}, F32Bytes({5, 6, 7})}})
                  .ok());
  WriteText(dir.File("model.safetensors.index.json"), R"({
    "metadata": {"total_size": 24},
    "weight_map": {"x.weight": "model-00001-of-00002.safetensors",
                   "y.weight": "model-00001-of-00002.safetensors",
                   "z.weight": "model-00002-of-00002.safetensors"}})");
}

TEST(WeightStoreTest, ShardedIndex) {
  TempDir dir;
  WriteTwoShards(dir);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  auto store = WeightStore::Open(
      dir.path(), [&](uint64_t done, uint64_t total) { calls.emplace_back(done, total); });
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_THAT((*store)->Names(), ::testing::ElementsAre("x.weight", "y.weight", "z.weight"));
  EXPECT_TRUE((*store)->Has("z.weight"));
  EXPECT_FALSE((*store)->Has("w.weight"));
  EXPECT_EQ((*store)->total_bytes(), 24u);
  float out[3];
  ASSERT_TRUE((*store)->ReadF32("z.weight", {3}, out).ok());
  EXPECT_EQ(out[2], 7.0f);
  ASSERT_TRUE((*store)->ReadF32("y.weight", {2}, out).ok());
  EXPECT_EQ(out[1], 4.0f);
  ASSERT_TRUE((*store)->ReadF32("x.weight", {2}, out).ok());
  EXPECT_EQ(out[0], 1.0f);
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0], std::make_pair(uint64_t{12}, uint64_t{24}));
  EXPECT_EQ(calls[2], std::make_pair(uint64_t{24}, uint64_t{24}));
  absl::StatusOr<const TensorInfo*> info = (*store)->Get("y.weight");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ((*info)->dtype, DType::kBF16);

  (*store)->set_progress_total(100);
  (*store)->FinishProgress();
  EXPECT_EQ(calls.back(), std::make_pair(uint64_t{100}, uint64_t{100}));
}

TEST(WeightStoreTest, IndexIsPreferredOverSingleFile) {
  TempDir dir;
  WriteTwoShards(dir);
  ASSERT_TRUE(
      WriteSafetensors(dir.File("model.safetensors"), {{"other", DType::kF32, {1}, F32Bytes({1})}})
          .ok());
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->Has("other"));
  EXPECT_TRUE((*store)->Has("x.weight"));
}

TEST(WeightStoreTest, FollowsSymlinksLikeTheHfCache) {
  // huggingface_hub snapshots are symlinks into a blobs/ directory.
  TempDir dir;
  std::filesystem::create_directories(dir.File("blobs"));
  std::filesystem::create_directories(dir.File("snapshot"));
  ASSERT_TRUE(
      WriteSafetensors(dir.File("blobs/abc"), {{"t", DType::kF32, {1}, F32Bytes({2})}}).ok());
  std::filesystem::create_symlink("../blobs/abc", dir.File("snapshot/model.safetensors"));
  auto store = WeightStore::Open(dir.File("snapshot"));
  ASSERT_TRUE(store.ok()) << store.status();
  float out;
  ASSERT_TRUE((*store)->ReadF32("t", {1}, &out).ok());
  EXPECT_EQ(out, 2.0f);
}

TEST(LoadProgressTest, StderrProgressRuns) {
  ProgressFn p = StderrProgress("test");
  ::testing::internal::CaptureStderr();
  p(0, 200);
  p(1, 200);  // same percentage: no redraw
  p(100, 200);
  p(200, 200);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(err, HasSubstr("test:  50%"));
  EXPECT_THAT(err, HasSubstr("test: 100%"));
  EXPECT_EQ(std::count(err.begin(), err.end(), '\r'), 3);
  EXPECT_EQ(err.back(), '\n');
}

// ---------------------------------------------------------------------------------------------
// Bad input: every case must be a clear error, never a crash or an out-of-bounds read.

struct BadHeader {
  const char* label;
  std::string header;
  size_t data_bytes;
  const char* message;
};

class SafetensorsRejects : public ::testing::TestWithParam<BadHeader> {};

TEST_P(SafetensorsRejects, WithClearError) {
  absl::Status st = ParseRaw(GetParam().header, GetParam().data_bytes);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr(GetParam().message));
}

const BadHeader kBadHeaders[] = {
    {"garbage", "this is not json", 0, "header does not start with a JSON object"},
    {"broken_json", R"({"a": {"dtype": "F32", )", 0, "header is not a valid JSON object"},
    {"unknown_dtype", R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8,
     "tensor \"w\": dtype \"F64\" is not supported"},
    {"past_end", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12,
     "tensor \"w\": data_offsets [0, 16] run past the data section of 12 bytes"},
    {"huge_offset",
     R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551612, 0]}})", 8,
     "tensor \"w\": data_offsets must be non-negative integers"},
    {"reversed", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", 8,
     "data_offsets [4, 0] are reversed"},
    {"overlap",
     R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
     R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
     12, "tensor \"b\": data overlaps tensor \"a\""},
    {"nbytes", R"({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 8]}})", 8,
     "tensor \"w\": holds 8 bytes but BF16 [3] needs 6"},
    {"shape_overflow",
     R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", 0,
     "tensor \"w\": shape product overflows"},
    {"bytes_overflow",
     R"({"w": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0,
     "tensor \"w\": shape product overflows"},
    {"negative_dim", R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}})", 0,
     "shape entries must be non-negative integers"},
    {"float_dim", R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", 4,
     "shape entries must be non-negative integers"},
    {"no_dtype", R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4,
     "missing or non-string \"dtype\""},
    {"no_shape", R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4,
     "missing or non-list \"shape\""},
    {"offsets_arity", R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", 4,
     "\"data_offsets\" must be a list [begin, end]"},
    {"entry_not_object", R"({"w": [1, 2, 3]})", 0, "tensor \"w\": entry must be a JSON object"},
    {"duplicate",
     R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
     R"( "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
     8, "tensor \"w\": appears more than once"},
    {"metadata_type", R"({"__metadata__": {"format": 1}})", 0,
     "__metadata__ value for \"format\" is not a string"},
    {"metadata_not_object", R"({"__metadata__": "pt"})", 0, "__metadata__ must be a JSON object"},
    {"array_header", R"([1, 2])", 0, "header does not start with a JSON object"},
};

INSTANTIATE_TEST_SUITE_P(All, SafetensorsRejects, ::testing::ValuesIn(kBadHeaders),
                         [](const auto& info) { return std::string(info.param.label); });

TEST(SafetensorsTest, RejectsBadLengths) {
  absl::StatusOr<SafetensorsHeader> h = ParseSafetensorsHeader(nullptr, 0);
  ASSERT_FALSE(h.ok());
  EXPECT_THAT(Message(h.status()), HasSubstr("too short for the 8-byte header length"));

  std::vector<uint8_t> f = RawFile(R"({})", 0);
  f[0] = 200;  // header length 200 in a 10-byte file
  h = ParseSafetensorsHeader(f.data(), f.size());
  ASSERT_FALSE(h.ok());
  EXPECT_THAT(Message(h.status()), HasSubstr("header length 200 exceeds the 2 bytes"));

  f = RawFile(R"({})", 0);
  for (int i = 0; i < 8; ++i) f[i] = 0xff;
  h = ParseSafetensorsHeader(f.data(), f.size());
  ASSERT_FALSE(h.ok());
  EXPECT_THAT(Message(h.status()), HasSubstr("exceeds"));

  f = RawFile("", 0);
  h = ParseSafetensorsHeader(f.data(), f.size());
  ASSERT_FALSE(h.ok());

  // An empty header object is a valid file with no tensors.
  f = RawFile("{}  ", 0);
  h = ParseSafetensorsHeader(f.data(), f.size());
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_TRUE(h->tensors.empty());
}

TEST(SafetensorsTest, TruncatedFileNamesPathAndTensor) {
  TempDir dir;
  std::vector<float> v = RandomValues(64, 5);
  ASSERT_TRUE(WriteSafetensors(
                  dir.File("model.safetensors"),
                  {{"a", DType::kF32, {64}, F32Bytes(v)}, {"b", DType::kF32, {64}, F32Bytes(v)}})
                  .ok());
  std::vector<uint8_t> bytes = ReadBytes(dir.File("model.safetensors"));
  bytes.resize(bytes.size() - 10);
  WriteBytes(dir.File("model.safetensors"), bytes);
  auto file = SafetensorsFile::Open(dir.File("model.safetensors"));
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(Message(file.status()), HasSubstr(dir.File("model.safetensors") + ": tensor \"b\""));
  EXPECT_THAT(Message(file.status()), HasSubstr("file truncated?"));
  auto store = WeightStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(Message(store.status()), HasSubstr("tensor \"b\""));

  bytes.resize(5);
  WriteBytes(dir.File("model.safetensors"), bytes);
  store = WeightStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(Message(store.status()), HasSubstr("too short"));
}

// Deterministic mutation sweep over a valid file: whatever the bytes, parsing returns.
TEST(SafetensorsTest, MutatedFilesNeverCrash) {
  TempDir dir;
  std::vector<float> w = RandomValues(4 * 8, 9);
  Fp8BlockQuantized q = QuantizeFp8Blockwise(w.data(), 4, 8);
  ASSERT_TRUE(WriteSafetensors(dir.File("m"),
                               {{"a.weight", DType::kF8E4M3, {4, 8}, q.codes},
                                {"a.weight_scale_inv", DType::kF32, {1, 1}, F32Bytes(q.scale_inv)},
                                {"b", DType::kBF16, {3}, Bf16Bytes({1, 2, 3})}},
                               {{"format", "pt"}})
                  .ok());
  const std::vector<uint8_t> original = ReadBytes(dir.File("m"));
  std::mt19937 rng(1234);
  int ok = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> f = original;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % f.size();
      switch (rng() % 4) {
        case 0:
          f[pos] = static_cast<uint8_t>(rng());
          break;
        case 1:
          f[pos] = static_cast<uint8_t>("0123456789[]{},:\"-"[rng() % 18]);
          break;
        case 2:
          f.resize(pos);
          break;
        case 3:
          f[rng() % 8] = static_cast<uint8_t>(rng());
          break;
      }
      if (f.empty()) break;
    }
    // Copy into an exactly sized heap buffer so that ASan catches any overread.
    std::unique_ptr<uint8_t[]> buf(new uint8_t[f.size() + 1]);
    if (!f.empty()) std::memcpy(buf.get(), f.data(), f.size());
    absl::StatusOr<SafetensorsHeader> h = ParseSafetensorsHeader(buf.get(), f.size());
    if (!h.ok()) continue;
    ++ok;
    for (const TensorInfo& t : h->tensors) {
      ASSERT_GE(t.data, buf.get());
      ASSERT_LE(t.data + t.nbytes, buf.get() + f.size());
    }
  }
  EXPECT_GT(ok, 0);
}

class WeightStoreErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<float> w = RandomValues(200 * 320, 3, 0.02f);
    q_ = QuantizeFp8Blockwise(w.data(), 200, 320);
  }
  void Write(std::vector<TensorToWrite> tensors) {
    ASSERT_TRUE(WriteSafetensors(dir_.File("model.safetensors"), tensors).ok());
    auto store = WeightStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }
  TempDir dir_;
  Fp8BlockQuantized q_;
  std::unique_ptr<WeightStore> store_;
  std::vector<float> out_ = std::vector<float>(200 * 320);
};

TEST_F(WeightStoreErrors, MissingTensor) {
  Write({{"a", DType::kF32, {1}, F32Bytes({1})}});
  absl::Status st = store_->ReadF32("model.layers.0.mlp.up_proj.weight", {1}, out_.data());
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(st), HasSubstr("tensor \"model.layers.0.mlp.up_proj.weight\" not found in " +
                                     dir_.path()));
  EXPECT_EQ(store_->Get("b").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WeightStoreErrors, MisShapedTensor) {
  Write({{"a", DType::kF32, {2, 3}, F32Bytes({1, 2, 3, 4, 5, 6})}});
  absl::Status st = store_->ReadF32("a", {3, 2}, out_.data());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("tensor \"a\" in " + dir_.File("model.safetensors") +
                                     ": expected shape [3, 2] but the file has [2, 3]"));
  EXPECT_FALSE(store_->ReadF32("a", {6}, out_.data()).ok());
  EXPECT_FALSE(store_->ReadBf16("a", {2, 3, 1}, nullptr).ok());
}

TEST_F(WeightStoreErrors, MissingScale) {
  Write({{"p.weight", DType::kF8E4M3, {200, 320}, q_.codes}});
  absl::Status st = store_->ReadF32("p.weight", {200, 320}, out_.data());
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(st),
              HasSubstr("tensor \"p.weight\" is F8_E4M3 but its scale \"p.weight_scale_inv\" is "
                        "missing"));
}

TEST_F(WeightStoreErrors, MisShapedScale) {
  Write({{"p.weight", DType::kF8E4M3, {200, 320}, q_.codes},
         {"p.weight_scale_inv", DType::kF32, {3, 2}, F32Bytes(std::vector<float>(6, 1.0f))}});
  absl::Status st = store_->ReadF32("p.weight", {200, 320}, out_.data());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("scale tensor \"p.weight_scale_inv\""));
  EXPECT_THAT(Message(st), HasSubstr("expected shape [2, 3] for 128x128 blocks of [200, 320] but "
                                     "the file has [3, 2]"));
}

TEST_F(WeightStoreErrors, ScaleWrongDtypeOrBlockSize) {
  Write({{"p.weight", DType::kF8E4M3, {200, 320}, q_.codes},
         {"p.weight_scale_inv", DType::kBF16, {2, 3}, Bf16Bytes(std::vector<float>(6, 1.0f))},
         {"r.weight", DType::kF8E4M3, {200, 320}, q_.codes},
         {"r.weight_scale_inv", DType::kF32, {2, 3}, F32Bytes(q_.scale_inv)}});
  absl::Status st = store_->ReadF32("p.weight", {200, 320}, out_.data());
  EXPECT_THAT(Message(st), HasSubstr("dtype must be F32, is BF16"));
  EXPECT_TRUE(store_->ReadF32("r.weight", {200, 320}, out_.data()).ok());
  store_->SetFp8BlockSize(64, 64);
  st = store_->ReadF32("r.weight", {200, 320}, out_.data());
  EXPECT_THAT(Message(st), HasSubstr("expected shape [4, 5] for 64x64 blocks"));
}

TEST_F(WeightStoreErrors, Fp8MustBe2D) {
  Write(
      {{"v", DType::kF8E4M3, {4}, {1, 2, 3, 4}}, {"v_scale_inv", DType::kF32, {1}, F32Bytes({1})}});
  absl::Status st = store_->ReadF32("v", {4}, out_.data());
  EXPECT_THAT(Message(st), HasSubstr("F8_E4M3 tensor must be 2-D, has shape [4]"));
}

TEST(WeightStoreOpenErrors, NoCheckpoint) {
  TempDir dir;
  auto store = WeightStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(store.status()),
              HasSubstr("has neither model.safetensors.index.json nor model.safetensors"));
}

TEST(WeightStoreOpenErrors, MissingShardFile) {
  TempDir dir;
  WriteTwoShards(dir);
  std::filesystem::remove(dir.File("model-00002-of-00002.safetensors"));
  auto store = WeightStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(store.status()),
              HasSubstr("shard " + dir.File("model-00002-of-00002.safetensors") + " listed in " +
                        dir.File("model.safetensors.index.json") + " does not exist"));
}

TEST(WeightStoreOpenErrors, TensorMissingFromShard) {
  TempDir dir;
  WriteTwoShards(dir);
  WriteText(dir.File("model.safetensors.index.json"), R"({"weight_map": {
      "x.weight": "model-00001-of-00002.safetensors",
      "q.weight": "model-00002-of-00002.safetensors"}})");
  auto store = WeightStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(
      Message(store.status()),
      HasSubstr("tensor \"q.weight\" is listed in " + dir.File("model.safetensors.index.json") +
                " but missing from " + dir.File("model-00002-of-00002.safetensors")));
}

TEST(WeightStoreOpenErrors, MalformedIndex) {
  TempDir dir;
  WriteTwoShards(dir);
  const std::string index = dir.File("model.safetensors.index.json");
  struct Case {
    const char* text;
    const char* message;
  };
  const Case cases[] = {
      {R"({"weight_map": {"x.weight": )", "not valid JSON"},
      {"garbage", "not valid JSON"},
      {R"([])", "top level must be a JSON object"},
      {R"({"metadata": {}})", "missing \"weight_map\" object"},
      {R"({"weight_map": []})", "missing \"weight_map\" object"},
      {R"({"weight_map": {}})", "\"weight_map\" is empty"},
      {R"({"weight_map": {"x.weight": 3}})", "weight_map entry for \"x.weight\" is not a string"},
      {R"({"weight_map": {"x.weight": "../model-00001-of-00002.safetensors"}})",
       "outside the model directory"},
      {R"({"weight_map": {"x.weight": "/etc/passwd"}})", "outside the model directory"},
      {R"({"weight_map": {"x.weight": ""}})", "outside the model directory"},
  };
  for (const Case& c : cases) {
    WriteText(index, c.text);
    auto store = WeightStore::Open(dir.path());
    ASSERT_FALSE(store.ok()) << c.text;
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(Message(store.status()), HasSubstr(index + ": ")) << c.text;
    EXPECT_THAT(Message(store.status()), HasSubstr(c.message)) << c.text;
  }
  // Shards in subdirectories are fine.
  std::filesystem::create_directories(dir.File("sub"));
  std::filesystem::rename(dir.File("model-00002-of-00002.safetensors"),
                          dir.File("sub/z.safetensors"));
  WriteText(index, R"({"weight_map": {"z.weight": "sub/z.safetensors"}})");
  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->Has("z.weight"));
}

TEST(WeightStoreOpenErrors, CorruptShardNamesFile) {
  TempDir dir;
  WriteTwoShards(dir);
  WriteText(dir.File("model-00001-of-00002.safetensors"), "{garbage}");
  auto store = WeightStore::Open(dir.path());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(Message(store.status()), HasSubstr(dir.File("model-00001-of-00002.safetensors")));
}

// ---------------------------------------------------------------------------------------------
// Checkpoints written by Hugging Face's own safetensors (tests/fixtures/models)

TEST(HfFixturesTest, EveryTensorReads) {
  const std::filesystem::path root = DSINFER_SOURCE_DIR "/tests/fixtures/models";
  if (!std::filesystem::exists(root)) GTEST_SKIP() << "no fixtures under " << root;
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::string dir = entry.path().string();
    if (!std::filesystem::exists(dir + "/config.json")) continue;
    SCOPED_TRACE(dir);
    ++models;
    absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status();
    auto store = WeightStore::Open(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    (*store)->SetFp8BlockSize(config->fp8.block_n, config->fp8.block_k);
    int fp8 = 0;
    for (const std::string& name : (*store)->Names()) {
      const TensorInfo* t = *(*store)->Get(name);
      if (t->dtype == DType::kF8E4M3) ++fp8;
      // Packed FP4 tensors (v3_fp4's experts) read by their value shape.
      const std::vector<int64_t> shape = *(*store)->LogicalShape(name);
      int64_t numel = 1;
      for (int64_t d : shape) numel *= d;
      std::vector<float> out(static_cast<size_t>(numel));
      absl::Status st = (*store)->ReadF32(name, shape, out.data());
      ASSERT_TRUE(st.ok()) << st;
      for (float v : out) ASSERT_TRUE(std::isfinite(v)) << name;
    }
    EXPECT_EQ(fp8 > 0, config->fp8.enabled);
    EXPECT_TRUE((*store)->Has("model.embed_tokens.weight"));
  }
  EXPECT_GT(models, 0);
}

// ---------------------------------------------------------------------------------------------
// The bundled tiny model

uint64_t Fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

TEST(TinyModelTest, LoadsAndDequantisesToWhatWasWritten) {
  TempDir dir;
  const std::string tokenizers = DSINFER_SOURCE_DIR "/models/tokenizers/deepseek-v3";
  absl::Status st = WriteTinyModel(dir.path(), tokenizers);
  ASSERT_TRUE(st.ok()) << st;

  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir.path());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model_type, "deepseek_v3");
  EXPECT_EQ(config->vocab_size, 129280);
  EXPECT_EQ(config->hidden_size, 256);
  EXPECT_EQ(config->num_hidden_layers, 4);
  EXPECT_EQ(config->q_lora_rank, 192);
  EXPECT_EQ(config->qk_head_dim(), 48);
  EXPECT_EQ(config->n_routed_experts, 16);
  EXPECT_EQ(config->topk_method, TopkMethod::kNoauxTc);
  EXPECT_TRUE(config->fp8.enabled);
  EXPECT_TRUE(config->rope_scaling.yarn);
  EXPECT_EQ(config->num_nextn_predict_layers, 1);
  EXPECT_FALSE(config->IsMoeLayer(0));
  EXPECT_TRUE(config->IsMoeLayer(3));
  EXPECT_TRUE(std::filesystem::exists(dir.File("tokenizer.json")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("tokenizer_config.json")));

  auto store = WeightStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status();
  (*store)->SetFp8BlockSize(config->fp8.block_n, config->fp8.block_k);
  const std::vector<TinyTensorSpec> specs = TinyModelTensors();
  size_t fp8_count = 0;
  std::vector<float> got, scale;
  for (const TinyTensorSpec& s : specs) {
    SCOPED_TRACE(s.name);
    absl::StatusOr<const TensorInfo*> info = (*store)->Get(s.name);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_EQ((*info)->dtype, s.dtype);
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    got.resize(static_cast<size_t>(n));
    ASSERT_TRUE((*store)->ReadF32(s.name, s.shape, got.data()).ok());
    // Vocabulary-sized tensors: check a sample of rows to keep the test quick.
    const int64_t cols = s.shape.back();
    const int64_t row_step = n > (1 << 22) ? 97 : 1;
    if (s.dtype == DType::kF8E4M3) {
      ++fp8_count;
      const int64_t sc = (cols + 127) / 128;
      scale.resize(static_cast<size_t>(((s.shape[0] + 127) / 128) * sc));
      ASSERT_TRUE((*store)
                      ->ReadF32(s.name + "_scale_inv", {(s.shape[0] + 127) / 128, sc}, scale.data())
                      .ok());
      for (int64_t i = 0; i < n; ++i) {
        float want = TinyModelValue(s, i);
        float blk = scale[((i / cols) / 128) * sc + (i % cols) / 128];
        ASSERT_LE(std::fabs(got[i] - want), std::fabs(want) / 16 + blk / 1024) << i;
      }
    } else {
      for (int64_t r = 0; r < n / cols; r += row_step) {
        for (int64_t j = 0; j < cols; ++j) {
          int64_t i = r * cols + j;
          float want = TinyModelValue(s, i);
          ASSERT_EQ(got[i], s.dtype == DType::kBF16 ? RoundToBf16(want) : want) << i;
        }
      }
    }
  }
  EXPECT_EQ((*store)->Names().size(), specs.size() + fp8_count);
  EXPECT_GT(fp8_count, 100u);

  // The MTP layer's embedding and head are copies of the main ones, as in DeepSeek-V3.
  const TensorInfo* e0 = *(*store)->Get("model.embed_tokens.weight");
  const TensorInfo* e4 = *(*store)->Get("model.layers.4.embed_tokens.weight");
  ASSERT_EQ(e0->nbytes, e4->nbytes);
  EXPECT_EQ(std::memcmp(e0->data, e4->data, e0->nbytes), 0);
  EXPECT_TRUE((*store)->Has("model.layers.4.shared_head.head.weight"));
  EXPECT_TRUE((*store)->Has("model.layers.4.eh_proj.weight"));
  EXPECT_TRUE((*store)->Has("model.layers.3.mlp.experts.15.down_proj.weight_scale_inv"));
  EXPECT_TRUE((*store)->Has("model.layers.1.mlp.gate.e_score_correction_bias"));
  EXPECT_FALSE((*store)->Has("model.layers.0.mlp.gate.weight"));  // dense layer

  // Same bytes on every machine and every run: pin the files' hashes.
  EXPECT_EQ(Fnv1a(ReadBytes(dir.File("config.json"))), 8045370836441112812u);
  EXPECT_EQ(Fnv1a(ReadBytes(dir.File("model.safetensors.index.json"))), 15023162099129263482u);
  EXPECT_EQ(Fnv1a(ReadBytes(dir.File(kTinyModelShard0))), 11106139130429598672u);
  EXPECT_EQ(Fnv1a(ReadBytes(dir.File(kTinyModelShard1))), 17809612496800947706u);
}

TEST(TinyModelTest, MissingTokenizerIsAnError) {
  TempDir dir;
  absl::Status st = WriteTinyModel(dir.path() + "/out", dir.path() + "/no-tokenizer");
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(Message(st), HasSubstr("no-tokenizer/tokenizer.json does not exist"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/out"));
}

}  // namespace
}  // namespace dsinfer
