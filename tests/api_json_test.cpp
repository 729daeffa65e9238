// The API's JSON printer (control-plane/api_json.cpp): its hand-written path prints every message exactly as
// protobuf's printer does, for random contents of every message the API has.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "control-plane/api_json.hpp"

namespace kairo::control {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Strings a field may hold: plain ones, and ones protobuf escapes (quotes, backslashes, angle brackets,
// control characters, non-ASCII).
const std::vector<std::string> kStrings{
    "",         "vr-room",     "0123abcdef",  "bench-user-7", "a b/c:d=e", "say \"hi\"", "back\\slash",
    "<script>", "line\nbreak", "caf\xc3\xa9", "\x7f",         "tab\there", "&amp;'"};

void fill(Message& message, std::minstd_rand& random, int depth);

void set_one(Message& message, const Reflection& r, const FieldDescriptor* f, std::minstd_rand& random,
             int depth) {
  const auto pick = [&](int n) { return int(random() % unsigned(n)); };
  const int32_t i32 = std::array<int32_t, 5>{0, 1, -7, 2147483647, -2147483647 - 1}[size_t(pick(5))];
  const uint32_t u32 = std::array<uint32_t, 4>{0, 1, 30'000'000, 4294967295u}[size_t(pick(4))];
  const std::string& text = kStrings[size_t(pick(int(kStrings.size())))];
  const bool repeated = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      repeated ? r.AddInt32(&message, f, i32) : r.SetInt32(&message, f, i32);
      break;
    case FieldDescriptor::CPPTYPE_UINT32:
      repeated ? r.AddUInt32(&message, f, u32) : r.SetUInt32(&message, f, u32);
      break;
    case FieldDescriptor::CPPTYPE_INT64:
      repeated ? r.AddInt64(&message, f, int64_t(i32) * 3) : r.SetInt64(&message, f, int64_t(i32) * 3);
      break;
    case FieldDescriptor::CPPTYPE_UINT64:
      repeated ? r.AddUInt64(&message, f, u32) : r.SetUInt64(&message, f, u32);
      break;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      repeated ? r.AddDouble(&message, f, 0.25 * i32) : r.SetDouble(&message, f, 0.25 * i32);
      break;
    case FieldDescriptor::CPPTYPE_FLOAT:
      repeated ? r.AddFloat(&message, f, 0.5f) : r.SetFloat(&message, f, 0.5f);
      break;
    case FieldDescriptor::CPPTYPE_BOOL:
      repeated ? r.AddBool(&message, f, pick(2) == 1) : r.SetBool(&message, f, pick(2) == 1);
      break;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const auto* value = f->enum_type()->value(pick(f->enum_type()->value_count()));
      repeated ? r.AddEnum(&message, f, value) : r.SetEnum(&message, f, value);
      break;
    }
    case FieldDescriptor::CPPTYPE_STRING:
      repeated ? r.AddString(&message, f, text) : r.SetString(&message, f, text);
      break;
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (depth < 3)
        fill(repeated ? *r.AddMessage(&message, f) : *r.MutableMessage(&message, f), random, depth + 1);
      break;
  }
}

// Each field left alone, set (to a default-looking value too) or, repeated, given 1-3 values.
void fill(Message& message, std::minstd_rand& random, int depth) {
  const Descriptor& d = *message.GetDescriptor();
  const Reflection& r = *message.GetReflection();
  for (int i = 0; i < d.field_count(); ++i) {
    const FieldDescriptor* f = d.field(i);
    if (random() % 3 == 0) continue;
    const int times = f->is_repeated() ? 1 + int(random() % 3) : 1;
    for (int k = 0; k < times; ++k) set_one(message, r, f, random, depth);
  }
}

TEST(ApiJson, the_hand_written_printer_prints_every_api_message_as_protobuf_does) {
  const auto* file = v1::NodeFeed::descriptor()->file();
  std::minstd_rand random(14);
  int direct = 0, total = 0;
  for (int m = 0; m < file->message_type_count(); ++m) {
    const Descriptor* type = file->message_type(m);
    const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
    ASSERT_NE(prototype, nullptr) << type->full_name();
    for (int trial = 0; trial < 200; ++trial) {
      std::unique_ptr<Message> message(prototype->New());
      if (trial > 0) fill(*message, random, 0);  // the first one empty
      const std::string expected = to_json_by_protobuf(*message);
      ++total;
      if (const auto printed = to_json_directly(*message)) {
        ++direct;
        ASSERT_EQ(*printed, expected) << type->full_name() << ": " << message->ShortDebugString();
      }
      ASSERT_EQ(to_json(*message), expected) << type->full_name();
    }
  }
  // The hand-written path is taken for much of it (else this test would compare protobuf with itself).
  EXPECT_GT(direct, total / 4) << direct << " of " << total;
}

TEST(ApiJson, node_feeds_and_sessions_of_plain_text_are_printed_by_hand) {
  v1::NodeFeed feed;
  feed.set_cursor("42");
  feed.set_changed(true);
  feed.set_heartbeat_interval_ms(2000);
  auto* s = feed.add_sessions();
  s->set_session_id("0123456789abcdef0123456789abcdef");
  s->set_scene("vr-room");
  s->set_eye_width(512);
  s->set_eye_height(512);
  s->set_fps(30);
  s->set_codec("h264");
  s->set_state("placed");
  s->set_session_key(std::string(64, 'a'));
  s->set_user("alice");
  s->set_transport("udp");
  s->set_request_id("req-1");
  const auto printed = to_json_directly(feed);
  ASSERT_TRUE(printed.has_value());
  EXPECT_EQ(*printed, to_json_by_protobuf(feed));
  v1::Session session;
  session.set_session_id("ab");
  session.set_node_id(3);
  session.set_state("placed");
  ASSERT_TRUE(to_json_directly(session).has_value());
  EXPECT_EQ(*to_json_directly(session), to_json_by_protobuf(session));
  // A character protobuf escapes: left to protobuf.
  s->set_user("<bob>");
  EXPECT_FALSE(to_json_directly(feed).has_value());
  EXPECT_EQ(to_json(feed), to_json_by_protobuf(feed));
}

}  // namespace
}  // namespace kairo::control
