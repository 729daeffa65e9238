#pragma once
// The API's messages on the wire: protobuf messages (control-plane/proto/control.proto) through protobuf's
// JSON mapping, snake_case field names, primitive fields always printed. Includes the generated header:
// only for .cpp files that speak the API.
#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control-plane/proto/control.pb.h"
#include "core/error.hpp"

namespace kairo::control {

// Strict parse of a request body (an empty body is an empty object): throws ApiError 400 with code
// malformed_json, unknown_field or invalid_field.
void parse_request(const std::string& body, google::protobuf::Message& message);
// Lenient parse of an answer (fields a newer control plane added are ignored); throws kairo::Error.
void parse_answer(const std::string& body, google::protobuf::Message& message);
std::string to_json(const google::protobuf::Message& message);
// The two ways to_json prints: by hand, for messages of strings without characters to escape, 32-bit
// integers, bools and messages of those (the hot answers: node feeds, sessions), else nullopt; and by
// protobuf's printer.
std::optional<std::string> to_json_directly(const google::protobuf::Message& message);
std::string to_json_by_protobuf(const google::protobuf::Message& message);
// An answer that is a JSON array of T.
template <typename T>
std::vector<T> parse_answer_array(const std::string& body) {
  const nlohmann::json values = nlohmann::json::parse(body, nullptr, false);
  std::vector<T> out;
  if (!values.is_array()) throw_runtime("unexpected answer from the control plane: not a JSON array");
  for (const auto& v : values) parse_answer(v.dump(), out.emplace_back());
  return out;
}

}  // namespace kairo::control
