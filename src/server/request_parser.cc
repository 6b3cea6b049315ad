#include "src/server/request_parser.h"

#include <google/protobuf/descriptor.pb.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/utf8.h"

namespace dsinfer {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorProto;
using google::protobuf::FieldDescriptor;
using google::protobuf::FieldDescriptorProto;
using google::protobuf::Message;

void StringsToBytes(DescriptorProto* m) {
  for (FieldDescriptorProto& f : *m->mutable_field()) {
    if (f.type() == FieldDescriptorProto::TYPE_STRING) f.set_type(FieldDescriptorProto::TYPE_BYTES);
  }
  for (DescriptorProto& nested : *m->mutable_nested_type()) StringsToBytes(&nested);
}

// Depth-first search of `m` (lenient) for a field that is a string in `strict` and holds
// invalid UTF-8; writes its path ("chat.messages[1].content") to `path`.
bool FindInvalidUtf8(const Message& m, const Descriptor* strict, const std::string& prefix,
                     std::string* path) {
  const google::protobuf::Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const FieldDescriptor* sf = strict->FindFieldByNumber(f->number());
    if (sf == nullptr) continue;
    const std::string name = prefix + f->name();
    if (sf->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          if (!utf8::IsValid(r->GetRepeatedString(m, f, i))) {
            *path = absl::StrCat(name, "[", i, "]");
            return true;
          }
        }
      } else if (!utf8::IsValid(r->GetString(m, f))) {
        *path = name;
        return true;
      }
    } else if (sf->type() == FieldDescriptor::TYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < r->FieldSize(m, f); ++i) {
          if (FindInvalidUtf8(r->GetRepeatedMessage(m, f, i), sf->message_type(),
                              absl::StrCat(name, "[", i, "]."), path)) {
            return true;
          }
        }
      } else if (FindInvalidUtf8(r->GetMessage(m, f), sf->message_type(), name + ".", path)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace

RequestParser::RequestParser(const Descriptor* type) : strict_(type) {
  google::protobuf::FileDescriptorProto file;
  type->file()->CopyTo(&file);
  DSINFER_CHECK(file.dependency_size() == 0);
  for (DescriptorProto& m : *file.mutable_message_type()) StringsToBytes(&m);
  DSINFER_CHECK(lenient_pool_.BuildFile(file) != nullptr);
  const Descriptor* lenient = lenient_pool_.FindMessageTypeByName(type->full_name());
  DSINFER_CHECK(lenient != nullptr);
  factory_ = std::make_unique<google::protobuf::DynamicMessageFactory>(&lenient_pool_);
  lenient_prototype_ = factory_->GetPrototype(lenient);
}

absl::Status RequestParser::Parse(const grpc::ByteBuffer& wire, Message* out) const {
  std::vector<grpc::Slice> slices;
  if (!wire.Dump(&slices).ok()) return absl::InvalidArgumentError("request: unreadable message");
  std::string bytes;
  bytes.reserve(wire.Length());
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return ParseBytes(bytes, out);
}

absl::Status RequestParser::ParseBytes(const std::string& bytes, Message* out) const {
  if (out->ParseFromString(bytes)) return absl::OkStatus();
  std::unique_ptr<Message> lenient(lenient_prototype_->New());
  std::string path;
  if (lenient->ParseFromString(bytes) && FindInvalidUtf8(*lenient, strict_, "", &path)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid UTF-8"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("request: not a valid ", strict_->full_name(), " message"));
}

}  // namespace dsinfer
