// Reads a request message from the wire. protobuf refuses a proto3 string field that holds
// invalid UTF-8 without saying which one; on such a failure this re-reads the bytes with every
// string field typed as bytes and names the offending field, so the client gets
// INVALID_ARGUMENT "chat.messages[1].content: invalid UTF-8" instead of an anonymous error.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace dsinfer {

class RequestParser {
 public:
  // `type` must come from a file without imports (dsinfer/v1/dsinfer.proto has none).
  explicit RequestParser(const google::protobuf::Descriptor* type);

  // OK, or INVALID_ARGUMENT naming the field with invalid UTF-8, or saying the bytes are not a
  // valid message.
  absl::Status Parse(const grpc::ByteBuffer& wire, google::protobuf::Message* out) const;
  absl::Status ParseBytes(const std::string& bytes, google::protobuf::Message* out) const;

 private:
  const google::protobuf::Descriptor* strict_;
  google::protobuf::DescriptorPool lenient_pool_;
  std::unique_ptr<google::protobuf::DynamicMessageFactory> factory_;
  const google::protobuf::Message* lenient_prototype_ = nullptr;
};

}  // namespace dsinfer
