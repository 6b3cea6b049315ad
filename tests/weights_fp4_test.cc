// Packed FP4 E2M1 tensors with E8M0 scales (DeepSeek-V4 experts) in safetensors and WeightStore:
// the dtype strings torch writes ("F4" counting values, "F8_E8M0"), U8 / I8 packed storage,
// dequantisation, codes as stored, and errors naming the tensor.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/fp4.h"
#include "nlohmann/json.hpp"
#include "src/weights/safetensors.h"
#include "src/weights/safetensors_writer.h"
#include "src/weights/weight_store.h"

namespace dsinfer {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kRows = 6, kCols = 80;  // 80 = 2.5 scale blocks: a partial edge block

class Fp4Store : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::path(::testing::TempDir()) /
            (std::string("dsinfer_fp4_") +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::mt19937 rng(7);
    packed_.resize(kRows * kCols / 2);
    for (uint8_t& b : packed_) b = static_cast<uint8_t>(rng());
    scales_.resize(kRows * 3);
    for (uint8_t& s : scales_) s = static_cast<uint8_t>(120 + rng() % 12);
    scales_[4] = 0;  // 2^-127: the subnormal end of E8M0
    // The expected values, written out from the format's definition (low nibble first).
    static const float kValues[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    for (int64_t i = 0; i < kRows; ++i)
      for (int64_t j = 0; j < kCols; ++j) {
        const uint8_t b = packed_[i * kCols / 2 + j / 2];
        const uint8_t c = j % 2 == 0 ? (b & 0xf) : (b >> 4);
        const float v = (c & 8 ? -1.f : 1.f) * kValues[c & 7];
        want_.push_back(v * std::ldexp(1.0f, scales_[i * 3 + j / 32] - 127));
      }
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::vector<TensorToWrite>& t) {
    ASSERT_TRUE(WriteSafetensors(dir_ + "/model.safetensors", t).ok());
    auto s = WeightStore::Open(dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  std::string Read(const std::string& name) {
    std::vector<float> out(kRows * kCols);
    absl::Status st = store_->ReadF32(name, {kRows, kCols}, out.data());
    if (st.ok()) EXPECT_EQ(out, want_) << name;
    return std::string(st.message());
  }

  std::string dir_;
  std::vector<uint8_t> packed_, scales_;
  std::vector<float> want_;
  std::unique_ptr<WeightStore> store_;
};

TEST_F(Fp4Store, TorchDtypeStringsAndValueShape) {
  Write({{"a.weight", DType::kF4E2M1x2, {kRows, kCols / 2}, packed_},
         {"a.scale", DType::kF8E8M0, {kRows, 3}, scales_}});
  // The header says what torch's float4_e2m1fn_x2 / float8_e8m0fnu serialise to.
  std::ifstream in(dir_ + "/model.safetensors", std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  std::string text(n, ' ');
  in.read(text.data(), static_cast<std::streamsize>(n));
  const auto header = nlohmann::json::parse(text);
  EXPECT_EQ(header["a.weight"]["dtype"], "F4");
  EXPECT_EQ(header["a.weight"]["shape"], nlohmann::json({kRows, kCols}));
  EXPECT_EQ(header["a.scale"]["dtype"], "F8_E8M0");
  auto t = store_->Get("a.weight");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->dtype, DType::kF4E2M1x2);
  EXPECT_EQ((*t)->shape, (std::vector<int64_t>{kRows, kCols / 2}));
  EXPECT_TRUE(store_->IsFp4("a.weight"));
  EXPECT_EQ(*store_->LogicalShape("a.weight"), (std::vector<int64_t>{kRows, kCols}));
  EXPECT_EQ(Read("a.weight"), "");
}

TEST_F(Fp4Store, PackedBytesWithEitherScaleName) {
  Write({{"i.weight", DType::kI8, {kRows, kCols / 2}, packed_},
         {"i.scale", DType::kF8E8M0, {kRows, 3}, scales_},
         {"u.weight", DType::kU8, {kRows, kCols / 2}, packed_},
         {"u.weight_scale_inv", DType::kU8, {kRows, 3}, scales_},
         {"plain", DType::kU8, {2, 2}, {1, 2, 3, 4}}});
  EXPECT_EQ(Read("i.weight"), "");
  EXPECT_EQ(Read("u.weight"), "");
  EXPECT_TRUE(store_->IsFp4("u.weight"));
  EXPECT_FALSE(store_->IsFp4("plain"));
  EXPECT_EQ(*store_->LogicalShape("plain"), (std::vector<int64_t>{2, 2}));
  std::vector<uint16_t> b(kRows * kCols);
  ASSERT_TRUE(store_->ReadBf16("i.weight", {kRows, kCols}, b.data()).ok());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(Bf16ToF32(b[i]), want_[i]);  // exact in bf16
  float x[4];
  EXPECT_THAT(std::string(store_->ReadF32("plain", {2, 2}, x).message()),
              HasSubstr("tensor \"plain\" in " + dir_ + "/model.safetensors: U8 is read only as "
                        "packed FP4"));
}

TEST_F(Fp4Store, CodesAsStoredAndSlices) {
  Write({{"e.weight", DType::kI8, {kRows, kCols / 2}, packed_},
         {"e.scale", DType::kF8E8M0, {kRows, 3}, scales_}});
  auto all = store_->ReadFp4("e.weight", {kRows, kCols});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->codes, packed_);
  EXPECT_EQ(all->scales, scales_);
  EXPECT_EQ(all->scale_cols, 3);
  const TensorSlice sl{.row0 = 1, .rows = 3, .col0 = 32, .cols = 48};
  auto part = store_->ReadFp4("e.weight", {kRows, kCols}, &sl);
  ASSERT_TRUE(part.ok()) << part.status();
  ASSERT_EQ(part->scale_cols, 2);
  for (int64_t i = 0; i < 3; ++i) {
    std::vector<float> row(48);
    cpu::DequantFp4Row(part->codes.data() + i * 24, part->scales.data() + i * 2, 48, row.data());
    for (int64_t j = 0; j < 48; ++j) EXPECT_EQ(row[j], want_[(1 + i) * kCols + 32 + j]);
  }
  std::vector<float> f(3 * 48);
  ASSERT_TRUE(store_->ReadF32("e.weight", {kRows, kCols}, f.data(), &sl).ok());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 48; ++j) EXPECT_EQ(f[i * 48 + j], want_[(1 + i) * kCols + 32 + j]);
  const TensorSlice off{.row0 = 0, .rows = 2, .col0 = 16, .cols = 32};
  EXPECT_EQ(store_->ReadFp4("e.weight", {kRows, kCols}, &off).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(Fp4Store, ErrorsNameTheTensor) {
  std::vector<uint8_t> nan = scales_;
  nan[7] = 0xff;
  Write({{"m.weight", DType::kI8, {kRows, kCols / 2}, packed_},
         {"s.weight", DType::kI8, {kRows, kCols / 2}, packed_},
         {"s.scale", DType::kF8E8M0, {kRows, 2}, std::vector<uint8_t>(kRows * 2, 127)},
         {"n.weight", DType::kF4E2M1x2, {kRows, kCols / 2}, packed_},
         {"n.scale", DType::kF8E8M0, {kRows, 3}, nan},
         {"f.weight", DType::kF4E2M1x2, {kRows, kCols / 2}, packed_},
         {"f.weight_scale_inv", DType::kF32, {kRows, 3}, std::vector<uint8_t>(kRows * 3 * 4)}});
  // An I8 tensor without a scale is not FP4: it is refused as raw bytes.
  EXPECT_THAT(Read("m.weight"), HasSubstr("tensor \"m.weight\""));
  EXPECT_THAT(Read("s.weight"), HasSubstr("scale tensor \"s.scale\""));
  EXPECT_THAT(Read("s.weight"), HasSubstr("expected F8_E8M0 (or U8) of shape [6, 3]"));
  EXPECT_THAT(Read("n.weight"), HasSubstr("scale tensor \"n.scale\""));
  EXPECT_THAT(Read("n.weight"), HasSubstr("block [2, 1] is NaN (0xFF)"));
  EXPECT_THAT(Read("f.weight"), HasSubstr("scale tensor \"f.weight_scale_inv\""));
  EXPECT_THAT(Read("f.weight"), HasSubstr("the file has F32 [6, 3]"));
  std::vector<float> out(kRows * kCols);
  EXPECT_THAT(std::string(store_->ReadF32("n.weight", {kRows, kCols / 2}, out.data()).message()),
              HasSubstr("tensor \"n.weight\" in " + dir_ +
                        "/model.safetensors: expected FP4 values of shape [6, 40]"));
  EXPECT_THAT(std::string(store_->ReadFp4("m.weight", {kRows, kCols}).status().message()),
              HasSubstr("tensor \"m.weight\""));
}

TEST_F(Fp4Store, MissingScaleAndOddF4) {
  Write({{"n.weight", DType::kF4E2M1x2, {kRows, kCols / 2}, packed_}});
  EXPECT_THAT(Read("n.weight"), HasSubstr("tensor \"n.weight\" is packed FP4 but its scale "
                                          "\"n.scale\" or \"n.weight_scale_inv\" is missing"));
  // A hand-made header with an odd F4 width.
  std::string h = R"({"x":{"dtype":"F4","shape":[2,3],"data_offsets":[0,3]}})";
  std::vector<uint8_t> file(8 + h.size() + 3);
  const uint64_t n = h.size();
  std::memcpy(file.data(), &n, 8);
  std::memcpy(file.data() + 8, h.data(), h.size());
  auto parsed = ParseSafetensorsHeader(file.data(), file.size());
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("\"x\""));
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("needs an even last dimension"));
}

TEST(Fp4Format, E8M0AndE2M1) {
  EXPECT_EQ(cpu::E8M0ToF32(127), 1.0f);
  EXPECT_EQ(cpu::E8M0ToF32(0), std::ldexp(1.0f, -127));
  EXPECT_EQ(cpu::E8M0ToF32(254), std::ldexp(1.0f, 127));
  EXPECT_TRUE(std::isnan(cpu::E8M0ToF32(0xff)));
  for (uint8_t c = 0; c < 16; ++c) EXPECT_EQ(cpu::F32ToE2M1(cpu::E2M1ToF32(c)), c == 8 ? 8 : c);
  EXPECT_EQ(cpu::F32ToE2M1(0.25f), 0);   // tie to even: 0
  EXPECT_EQ(cpu::F32ToE2M1(0.75f), 2);   // tie to even: 1.0
  EXPECT_EQ(cpu::F32ToE2M1(2.5f), 4);    // tie to even: 2.0
  EXPECT_EQ(cpu::F32ToE2M1(5.0f), 6);    // tie to even: 4.0
  EXPECT_EQ(cpu::F32ToE2M1(100.f), 7);   // saturates at 6
  EXPECT_EQ(cpu::F32ToE2M1(-1.6f), 8 | 3);
}

}  // namespace
}  // namespace dsinfer
