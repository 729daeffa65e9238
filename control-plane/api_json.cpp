#include "control-plane/api_json.hpp"

#include <google/protobuf/util/json_util.h>

#include "control-plane/api_error.hpp"
#include "core/error.hpp"

namespace kairo::control {

namespace {

using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonPrintOptions;

std::string short_reason(const std::string& text) {
  return text.substr(0, 200);
}

}  // namespace

void parse_request(const std::string& body, google::protobuf::Message& message) {
  JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a typo in a request is an error, not a silently ignored setting
  const std::string text = body.empty() ? std::string("{}") : body;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &message, options);
  if (status.ok()) return;
  const std::string reason(status.message());
  if (reason.find("Cannot find field") != std::string::npos)
    throw ApiError(400, "unknown_field", short_reason(reason));
  const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded()) throw ApiError(400, "malformed_json", "request body is not valid JSON");
  if (!parsed.is_object()) throw ApiError(400, "malformed_json", "request body must be a JSON object");
  throw ApiError(400, "invalid_field", short_reason(reason));
}

namespace {

// Answers: from a peer (lenient, so that fields a newer control plane adds are ignored) or built by this
// process (strict: a field the schema lacks is a bug).
void parse_answer_with(const std::string& body, google::protobuf::Message& message, bool ignore_unknown,
                       const char* failure) {
  JsonParseOptions options;
  options.ignore_unknown_fields = ignore_unknown;
  const auto status = google::protobuf::util::JsonStringToMessage(body, &message, options);
  if (!status.ok())
    throw_runtime(std::string(failure) + " (" + message.GetTypeName() +
                  "): " + short_reason(std::string(status.message())));
}

}  // namespace

void parse_answer(const std::string& body, google::protobuf::Message& message) {
  parse_answer_with(body, message, true, "unexpected answer from the control plane");
}

std::string to_json(const google::protobuf::Message& message) {
  JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok())
    throw_runtime("cannot print " + message.GetTypeName() + ": " + std::string(status.message()));
  return out;
}

}  // namespace kairo::control
