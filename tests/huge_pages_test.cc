// src/core/huge_pages.h: large buffers are 2 MiB-aligned mappings advised for transparent huge
// pages, small ones ordinary heap memory; contents and copies behave as std::vector's.
#include "src/core/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>

namespace dsinfer {
namespace {

bool ThpNever() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.empty() || s.find("[never]") != std::string::npos;
}

// The smaps block of the mapping that holds p ("" if none; adjacent anonymous mappings with the
// same flags may be merged into one).
std::string SmapsOf(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::ifstream f("/proc/self/smaps");
  std::string line, block;
  bool in = false;
  while (std::getline(f, line)) {
    // "start-end perms offset dev inode path" headers; "Name: value" fields otherwise.
    const size_t dash = line.find('-');
    const bool header = dash != std::string::npos && dash < line.find(' ');
    if (header) {
      if (in) return block;
      const uintptr_t lo = std::stoull(line.substr(0, dash), nullptr, 16);
      const uintptr_t hi = std::stoull(line.substr(dash + 1), nullptr, 16);
      in = lo <= a && a < hi;
    }
    if (in) block += line + "\n";
  }
  return block;
}

// Whether p lies in a mapping advised for huge pages.
bool Advised(const void* p) {
  const std::string s = SmapsOf(p);
  const size_t flags = s.find("VmFlags:");
  return flags != std::string::npos && s.find(" hg", flags) != std::string::npos;
}

TEST(HugePages, MappedLengthRoundsToHugePagesOnlyWhenCheap) {
  using huge_pages::MappedLength;
  constexpr size_t M = size_t{1} << 20;
  EXPECT_EQ(MappedLength(16 * M - 100), 16 * M);     // 100 bytes short: whole huge pages
  EXPECT_EQ(MappedLength(5 * M + 1), 5 * M + 4096);  // 1 MiB of waste: 4 KiB pages
  EXPECT_EQ(MappedLength(4 * M), 4 * M);
}

TEST(HugePages, LargeBuffersAreAlignedAdvisedMappings) {
  HugeVector<uint16_t> v(3 << 20);  // 6 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % huge_pages::kHugePage, 0u);
  for (uint16_t x : v) ASSERT_EQ(x, 0);
  std::iota(v.begin(), v.end(), uint16_t{0});
  HugeVector<uint16_t> copy = v;
  EXPECT_EQ(copy, v);
  EXPECT_NE(copy.data(), v.data());
  if (!ThpNever()) EXPECT_TRUE(Advised(v.data())) << SmapsOf(v.data());
}

TEST(HugePages, SmallBuffersComeFromTheHeap) {
  HugeVector<float> v(1000, 1.5f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % 64, 0u);
  v.resize(3 << 20, 2.0f);  // grows onto an advised mapping: contents move with it
  EXPECT_EQ(v[999], 1.5f);
  EXPECT_EQ(v.back(), 2.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % huge_pages::kHugePage, 0u);
  if (!ThpNever()) EXPECT_TRUE(Advised(v.data())) << SmapsOf(v.data());
}

}  // namespace
}  // namespace dsinfer
