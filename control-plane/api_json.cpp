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

namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Printed inside a JSON string as they are by protobuf's printer too: printable ASCII but " \ < > (its
// escaping also rewrites < and >, and control and format characters beyond ASCII).
bool plain(const std::string& text) {
  for (const unsigned char c : text)
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>') return false;
  return true;
}

// One value of `field` (the `index`th of a repeated one, -1 for a singular one).
bool append_value(const Message& message, const Reflection& reflection, const FieldDescriptor& field,
                  int index, std::string& out);

// `message` as protobuf's printer prints it with to_json's options, or false (`out` then holds a partial
// print) when it holds what this printer leaves to protobuf's: numbers other than 32-bit integers and bools,
// bytes, enums, maps, or a string with a character that needs escaping. Protobuf's order: the fields without
// presence (printed always, defaults too) and the messages, as declared; then the fields with presence
// (`optional`, oneofs) that are set, by number.
//
// Written by hand because protobuf's printer serialises the message to binary and converts that through a
// type resolver: 99 us for a node feed of a dozen sessions, 13 us here (bench/api_json_bench.cpp); it was
// 12 % of the control plane's time at 500 placements a second. A test holds this printer to protobuf's
// output for every API message.
bool append_message(const Message& message, std::string& out) {
  const Descriptor& descriptor = *message.GetDescriptor();
  const Reflection& reflection = *message.GetReflection();
  out += '{';
  bool first = true;
  const auto append_field = [&](const FieldDescriptor& field) {
    if (!first) out += ',';
    first = false;
    out += '"';
    out += field.name();
    out += "\":";
    if (!field.is_repeated()) return append_value(message, reflection, field, -1, out);
    out += '[';
    const int count = reflection.FieldSize(message, &field);
    for (int k = 0; k < count; ++k) {
      if (k > 0) out += ',';
      if (!append_value(message, reflection, field, k, out)) return false;
    }
    out += ']';
    return true;
  };
  for (int i = 0; i < descriptor.field_count(); ++i) {
    const FieldDescriptor& field = *descriptor.field(i);
    if (field.is_map()) return false;
    if (field.containing_oneof() != nullptr) continue;  // below
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field.is_repeated() &&
        !reflection.HasField(message, &field))
      continue;
    if (!append_field(field)) return false;
  }
  for (int number = 1, left = descriptor.field_count(); left > 0; ++number) {
    const FieldDescriptor* field = descriptor.FindFieldByNumber(number);
    if (field == nullptr) continue;
    --left;
    if (field->containing_oneof() != nullptr && reflection.HasField(message, field) && !append_field(*field))
      return false;
  }
  out += '}';
  return true;
}

bool append_value(const Message& message, const Reflection& reflection, const FieldDescriptor& field,
                  int index, std::string& out) {
  const bool repeated = index >= 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      out += std::to_string(repeated ? reflection.GetRepeatedInt32(message, &field, index)
                                     : reflection.GetInt32(message, &field));
      return true;
    case FieldDescriptor::CPPTYPE_UINT32:
      out += std::to_string(repeated ? reflection.GetRepeatedUInt32(message, &field, index)
                                     : reflection.GetUInt32(message, &field));
      return true;
    case FieldDescriptor::CPPTYPE_BOOL:
      out += (repeated ? reflection.GetRepeatedBool(message, &field, index)
                       : reflection.GetBool(message, &field))
                 ? "true"
                 : "false";
      return true;
    case FieldDescriptor::CPPTYPE_STRING: {
      if (field.type() != FieldDescriptor::TYPE_STRING) return false;  // bytes: base64
      std::string scratch;
      const std::string& text = repeated
                                    ? reflection.GetRepeatedStringReference(message, &field, index, &scratch)
                                    : reflection.GetStringReference(message, &field, &scratch);
      if (!plain(text)) return false;
      out += '"';
      out += text;
      out += '"';
      return true;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return append_message(repeated ? reflection.GetRepeatedMessage(message, &field, index)
                                     : reflection.GetMessage(message, &field),
                            out);
    default:
      return false;
  }
}

}  // namespace

std::optional<std::string> to_json_directly(const google::protobuf::Message& message) {
  std::string out;
  out.reserve(256);
  if (!append_message(message, out)) return std::nullopt;
  return out;
}

std::string to_json(const google::protobuf::Message& message) {
  if (auto direct = to_json_directly(message)) return std::move(*direct);
  return to_json_by_protobuf(message);
}

std::string to_json_by_protobuf(const google::protobuf::Message& message) {
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
