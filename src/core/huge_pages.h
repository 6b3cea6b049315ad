// Large host buffers on transparent huge pages. Decoding one token streams every active weight
// (about a GB for V2-Lite dims) through the CPU once; on 4 KiB pages that is a TLB miss every
// 4 KiB, which costs ~10% of the achievable read bandwidth on the machines measured
// (bench/RESULTS.md, "Weights on huge pages"). Buffers of at least kMinHugeBytes are mmap'ed
// 2 MiB-aligned and marked madvise(MADV_HUGEPAGE), which the kernel honours in its default
// `madvise` THP mode; smaller ones come from operator new. Where THP is off the buffer is an
// ordinary anonymous mapping: nothing depends on getting huge pages.
//
// Each such buffer is its own mapping; past kMaxMappings live ones (vm.max_map_count is 65530 by
// default, and a Kimi-K2-sized expert count would approach it) buffers come from operator new.
//
// Invariants: deallocate(p, n) finds how p was made from p alone (the registry of live
// mappings); the memory is zero-filled and value-initialised by std::vector as before.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <unordered_set>
#include <vector>

namespace dsinfer {

namespace huge_pages {
inline constexpr size_t kHugePage = size_t{2} << 20;
inline constexpr size_t kMinHugeBytes = size_t{4} << 20;

// The mapping kept for a buffer of `bytes`: whole 4 KiB pages, rounded up to whole huge pages
// when that wastes at most 1/8 of the buffer (so all of it can sit on huge pages).
inline size_t MappedLength(size_t bytes) {
  const size_t small = (bytes + 4095) & ~size_t{4095};
  const size_t huge = (bytes + kHugePage - 1) & ~(kHugePage - 1);
  return huge - bytes <= bytes / 8 ? huge : small;
}

inline void* Map(size_t bytes) {
  const size_t len = MappedLength(bytes);
  const size_t span = len + kHugePage;  // room to align the start
  void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
  if (start > base) ::munmap(raw, start - base);
  const uintptr_t end = base + span;
  if (end > start + len) ::munmap(reinterpret_cast<void*>(start + len), end - (start + len));
  void* p = reinterpret_cast<void*>(start);
#ifdef MADV_HUGEPAGE
  ::madvise(p, len, MADV_HUGEPAGE);  // advice only: failure leaves ordinary pages
#endif
  return p;
}

inline void Unmap(void* p, size_t bytes) { ::munmap(p, MappedLength(bytes)); }

inline constexpr size_t kMaxMappings = 16384;

// The live mappings made by Map (so deallocation never guesses how a buffer was made).
class Registry {
 public:
  static Registry& Get() {
    static Registry* r = new Registry();  // never destroyed: buffers may outlive statics
    return *r;
  }
  void* Allocate(size_t bytes) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (live_.size() >= kMaxMappings) return nullptr;
    }
    void* p = Map(bytes);
    std::lock_guard<std::mutex> l(mu_);
    live_.insert(p);
    return p;
  }
  bool Release(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (live_.erase(p) == 0) return false;
    }
    Unmap(p, bytes);
    return true;
  }

 private:
  std::mutex mu_;
  std::unordered_set<void*> live_;
};
}  // namespace huge_pages

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding is implicit

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes >= huge_pages::kMinHugeBytes) {
      if (void* p = huge_pages::Registry::Get().Allocate(bytes)) return static_cast<T*>(p);
    }
    return static_cast<T*>(::operator new(bytes, std::align_val_t{64}));
  }
  void deallocate(T* p, size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes >= huge_pages::kMinHugeBytes && huge_pages::Registry::Get().Release(p, bytes)) {
      return;
    }
    ::operator delete(p, std::align_val_t{64});
  }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

// A vector whose large buffers sit on transparent huge pages (weights streamed every step).
template <class T>
using HugeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace dsinfer
