// The kind of a YAML node in words, for error messages of the YAML parsers (server config,
// capacity plan input): "expected a mapping, got a sequence".
#pragma once

#include "yaml-cpp/yaml.h"

namespace dsinfer {

inline const char* YamlKindName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

}  // namespace dsinfer
