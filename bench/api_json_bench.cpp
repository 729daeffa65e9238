// The control plane's JSON answers (control-plane/api_json.cpp): a node feed of twelve sessions (the fleet's
// most frequent large answer) and a created session, printed by the hand-written path and by protobuf's
// printer, in the same invocation.
// Usage: kairo_api_json_bench [Google Benchmark flags]
#include <benchmark/benchmark.h>

#include "control-plane/api_json.hpp"

namespace {

using kairo::control::to_json_by_protobuf;
using kairo::control::to_json_directly;

kairo::v1::NodeFeed feed_of_twelve() {
  kairo::v1::NodeFeed feed;
  feed.set_cursor("123456");
  feed.set_changed(true);
  feed.set_heartbeat_interval_ms(2000);
  for (int i = 0; i < 12; ++i) {
    auto* s = feed.add_sessions();
    s->set_session_id("0123456789abcdef0123456789abcd" + std::to_string(10 + i));
    s->set_scene("vr-room");
    s->set_eye_width(1024);
    s->set_eye_height(1024);
    s->set_fps(72);
    s->set_codec("h264");
    s->set_state("running");
    s->set_session_key(std::string(64, 'f'));
    s->set_user("user-" + std::to_string(i));
    s->set_transport("udp");
    s->set_request_id("7f3c9a2e-" + std::to_string(i));
  }
  return feed;
}

kairo::v1::Session created_session() {
  kairo::v1::Session s;
  s.set_session_id("0123456789abcdef0123456789abcdef");
  s.set_node_id(17);
  s.set_node_address("10.0.0.17:7000");
  s.set_transport("udp");
  s.set_session_key(std::string(64, 'f'));
  s.set_state("placed");
  return s;
}

void node_feed_by_hand(benchmark::State& state) {
  const auto feed = feed_of_twelve();
  for (auto _ : state) benchmark::DoNotOptimize(to_json_directly(feed));
}
void node_feed_by_protobuf(benchmark::State& state) {
  const auto feed = feed_of_twelve();
  for (auto _ : state) benchmark::DoNotOptimize(to_json_by_protobuf(feed));
}
void session_by_hand(benchmark::State& state) {
  const auto session = created_session();
  for (auto _ : state) benchmark::DoNotOptimize(to_json_directly(session));
}
void session_by_protobuf(benchmark::State& state) {
  const auto session = created_session();
  for (auto _ : state) benchmark::DoNotOptimize(to_json_by_protobuf(session));
}

BENCHMARK(node_feed_by_hand);
BENCHMARK(node_feed_by_protobuf);
BENCHMARK(session_by_hand);
BENCHMARK(session_by_protobuf);

}  // namespace

BENCHMARK_MAIN();
