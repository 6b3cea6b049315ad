// Safetensors parsing. Every offset and size from the file is checked before it is used, so a
// corrupt or hostile file yields an error, never a read outside the buffer.
#include "src/weights/safetensors.h"

#include <algorithm>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "src/core/status_macros.h"

namespace dsinfer {
namespace {

using Json = nlohmann::json;

// Tensor names come from the file; keep messages readable when they are garbage.
std::string Quoted(const std::string& name) {
  std::string shown = name.size() > 200 ? name.substr(0, 200) + "..." : name;
  return absl::StrCat("\"", shown, "\"");
}

absl::Status TensorError(const std::string& name, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("tensor ", Quoted(name), ": ", what));
}

// A non-negative JSON integer that fits in int64.
bool AsIndex(const Json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i < 0) return false;
    *out = static_cast<uint64_t>(i);
  } else {
    return false;
  }
  return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) absl::StrAppend(&s, i ? ", " : "", shape[i]);
  return s + "]";
}

absl::StatusOr<TensorInfo> ParseEntry(const std::string& name, const Json& entry,
                                      const uint8_t* data_section, uint64_t data_size) {
  if (!entry.is_object()) return TensorError(name, "entry must be a JSON object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return TensorError(name, "missing or non-string \"dtype\"");
  }
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return TensorError(name, "missing or non-list \"shape\"");
  }
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    return TensorError(name, "\"data_offsets\" must be a list [begin, end]");
  }
  TensorInfo t;
  t.name = name;
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  if (!ParseSafetensorsDType(dtype_name, &t.dtype)) {
    return TensorError(name, absl::StrCat("dtype ", Quoted(dtype_name),
                                          " is not supported (BF16, F16, F32, F8_E4M3, F4, F8_E8M0, U8, I8, I32, I64)"));
  }
  uint64_t numel = 1;
  for (const Json& d : *shape_it) {
    uint64_t dim;
    if (!AsIndex(d, &dim)) {
      return TensorError(name, "shape entries must be non-negative integers");
    }
    if (__builtin_mul_overflow(numel, dim, &numel) ||
        numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return TensorError(name, "shape product overflows");
    }
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  if (t.dtype == DType::kF4E2M1x2) {  // "F4" counts values: keep the packed byte shape
    if (t.shape.empty() || t.shape.back() % 2 != 0) {
      return TensorError(name, absl::StrCat("F4 tensor of shape ", ShapeString(t.shape),
                                            " needs an even last dimension (two values a byte)"));
    }
    t.shape.back() /= 2;
    numel /= 2;
  }
  uint64_t expected_bytes;
  if (__builtin_mul_overflow(numel, static_cast<uint64_t>(DTypeSize(t.dtype)), &expected_bytes)) {
    return TensorError(name, "shape product overflows");
  }
  uint64_t begin, end;
  if (!AsIndex((*offsets_it)[0], &begin) || !AsIndex((*offsets_it)[1], &end)) {
    return TensorError(name, "data_offsets must be non-negative integers");
  }
  if (begin > end) {
    return TensorError(name, absl::StrCat("data_offsets [", begin, ", ", end, "] are reversed"));
  }
  if (end > data_size) {
    return TensorError(
        name, absl::StrCat("data_offsets [", begin, ", ", end, "] run past the data section of ",
                           data_size, " bytes (file truncated?)"));
  }
  if (end - begin != expected_bytes) {
    return TensorError(name, absl::StrCat("holds ", end - begin, " bytes but ", dtype_name, " ",
                                          ShapeString(t.shape), " needs ", expected_bytes));
  }
  t.data = data_section + begin;
  t.nbytes = static_cast<size_t>(end - begin);
  return t;
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool ParseSafetensorsDType(const std::string& name, DType* out) {
  if (name == "F32") {
    *out = DType::kF32;
  } else if (name == "BF16") {
    *out = DType::kBF16;
  } else if (name == "F16") {
    *out = DType::kF16;
  } else if (name == "F8_E4M3") {
    *out = DType::kF8E4M3;
  } else if (name == "F4") {
    *out = DType::kF4E2M1x2;
  } else if (name == "F8_E8M0") {
    *out = DType::kF8E8M0;
  } else if (name == "U8") {
    *out = DType::kU8;
  } else if (name == "I8") {
    *out = DType::kI8;
  } else if (name == "I32") {
    *out = DType::kI32;
  } else if (name == "I64") {
    *out = DType::kI64;
  } else {
    return false;
  }
  return true;
}

absl::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(const uint8_t* data, size_t size) {
  if (size < 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("file is ", size, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > size - 8) {
    return absl::InvalidArgumentError(absl::StrCat("header length ", header_len, " exceeds the ",
                                                   size - 8,
                                                   " bytes that follow it (file truncated?)"));
  }
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "header length ", header_len, " exceeds the limit of ", kMaxSafetensorsHeaderBytes));
  }
  const char* text = reinterpret_cast<const char*>(data + 8);
  if (header_len == 0 || text[0] != '{') {
    return absl::InvalidArgumentError("header does not start with a JSON object");
  }

  // nlohmann keeps the last of duplicate keys; watch top-level keys to reject duplicates.
  std::set<std::string> seen;
  std::string duplicate;
  Json::parser_callback_t on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && parsed.is_string()) {
      if (!seen.insert(parsed.get<std::string>()).second && duplicate.empty()) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  Json header = Json::parse(text, text + header_len, on_event, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return absl::InvalidArgumentError("header is not a valid JSON object");
  }
  if (!duplicate.empty()) {
    return TensorError(duplicate, "appears more than once in the header");
  }

  const uint8_t* data_section = data + 8 + header_len;
  uint64_t data_size = size - 8 - header_len;
  SafetensorsHeader out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) {
        return absl::InvalidArgumentError("__metadata__ must be a JSON object");
      }
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat("__metadata__ value for ", Quoted(m.key()), " is not a string"));
        }
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(TensorInfo t, ParseEntry(it.key(), *it, data_section, data_size));
    out.tensors.push_back(std::move(t));
  }
  std::sort(out.tensors.begin(), out.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });

  // No two tensors may share bytes (empty tensors occupy none).
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : out.tensors) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    const TensorInfo* cur = by_offset[i];
    if (cur->data < prev->data + prev->nbytes) {
      return TensorError(cur->name, absl::StrCat("data overlaps tensor ", Quoted(prev->name)));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
  absl::StatusOr<SafetensorsHeader> header = ParseSafetensorsHeader(file->data(), file->size());
  if (!header.ok()) {
    return absl::Status(header.status().code(),
                        absl::StrCat(path, ": ", header.status().message()));
  }
  return std::unique_ptr<SafetensorsFile>(
      new SafetensorsFile(std::move(file), std::move(header).value()));
}

const TensorInfo* SafetensorsFile::Find(const std::string& name) const {
  auto it = std::lower_bound(header_.tensors.begin(), header_.tensors.end(), name,
                             [](const TensorInfo& t, const std::string& n) { return t.name < n; });
  if (it == header_.tensors.end() || it->name != name) return nullptr;
  return &*it;
}

}  // namespace dsinfer
