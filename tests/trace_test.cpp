#include <gtest/gtest.h>
#include <cmath>
#include <fstream>

#include "core/error.hpp"
#include "core/synthetic_trace.hpp"
#include "core/trace.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Trace, a_line_round_trips_through_format_and_parse) {
  TraceSample s{.t_ns = 123456789,
                .head = {.position = {0.1f, 1.6f, -0.2f},
                         .orientation = glm::normalize(glm::quat(0.9f, 0.1f, 0.2f, 0.3f))},
                .ipd = 0.061f,
                .fov = std::array<Fov, 2>{Fov{-0.9f, 0.7f, 0.8f, -0.8f}, Fov{-0.7f, 0.9f, 0.8f, -0.8f}}};
  const TraceSample back = parse_trace_line(format_trace_line(s));
  EXPECT_EQ(back.t_ns, s.t_ns);
  EXPECT_NEAR(glm::distance(back.head.position, s.head.position), 0.0f, 1e-6f);
  EXPECT_NEAR(std::abs(glm::dot(back.head.orientation, s.head.orientation)), 1.0f, 1e-6f);
  EXPECT_FLOAT_EQ(back.ipd, 0.061f);
  ASSERT_TRUE(back.fov.has_value());
  EXPECT_FLOAT_EQ((*back.fov)[1].right, 0.9f);
}

TEST(Trace, the_documented_example_parses) {
  const TraceSample s = parse_trace_line(R"({"t_ns":0,"head":{"p":[0,1.6,0],"q":[0,0,0,1]},"ipd":0.063})");
  EXPECT_FLOAT_EQ(s.head.position.y, 1.6f);
  EXPECT_FLOAT_EQ(s.head.orientation.w, 1.0f);
  EXPECT_FALSE(s.fov.has_value());
}

TEST(Trace, malformed_lines_are_refused_with_the_reason) {
  EXPECT_NE(error_of([] { parse_trace_line("{not json"); }).find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of([] { parse_trace_line(R"({"head":{"p":[0,0,0],"q":[0,0,0,1]}})"); }).find("t_ns"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { parse_trace_line(R"({"t_ns":0,"head":{"p":[0,0],"q":[0,0,0,1]}})"); }).find("head.p"),
      std::string::npos);
  EXPECT_NE(error_of([] {
              parse_trace_line(R"({"t_ns":0,"head":{"p":[0,0,0],"q":[0,0,0,0]}})");
            }).find("zero length"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_trace_line(R"({"t_ns":0,"head":{"p":[0,0,0],"q":[0,0,0,1]},"ipd":5})");
            }).find("ipd"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_trace_line(R"({"t_ns":0,"head":{"p":[0,0,0],"q":["a",0,0,1]}})");
            }).find("numbers"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_trace_line(std::string(70000, ' ')); }).find("64 KiB"), std::string::npos);
}

TEST(Trace, file_errors_name_the_line) {
  const auto path = test::temp_dir() / "bad.jsonl";
  std::ofstream(path) << R"({"t_ns":0,"head":{"p":[0,1.6,0],"q":[0,0,0,1]}})"
                      << "\n\n"
                      << R"({"t_ns":5,"head":{"p":[0,1.6,0],"q":[0,0,0,1]}})"
                      << "\n"
                      << R"({"t_ns":9,"head":{"p":[0,1.6,0],"q":[0,0,nan,1]}})"
                      << "\n";
  const std::string message = error_of([&] { load_trace(path); });
  EXPECT_NE(message.find("bad.jsonl:4:"), std::string::npos) << message;
}

// Found by the trace-line fuzzer: a component whose square overflows a float made a zero quaternion, which
// was accepted and then could not be read back from the recording it went into.
TEST(Trace, a_huge_quaternion_component_normalises_and_the_line_it_formats_to_reads_back) {
  const TraceSample s =
      parse_trace_line(R"({"t_ns":1,"head":{"p":[0,1.6,0],"q":[0,7777777777777777777777770,0,1]}})");
  EXPECT_FLOAT_EQ(s.head.orientation.y, 1.0f);
  EXPECT_NEAR(glm::length(s.head.orientation), 1.0f, 1e-6f);
  const TraceSample again = parse_trace_line(format_trace_line(s));
  EXPECT_EQ(format_trace_line(again), format_trace_line(s));
}

TEST(Trace, timestamps_going_backwards_are_refused) {
  const auto path = test::temp_dir() / "backwards.jsonl";
  std::ofstream(path) << R"({"t_ns":10,"head":{"p":[0,1.6,0],"q":[0,0,0,1]}})"
                      << "\n"
                      << R"({"t_ns":5,"head":{"p":[0,1.6,0],"q":[0,0,0,1]}})"
                      << "\n";
  EXPECT_NE(error_of([&] { load_trace(path); }).find(":2: \"t_ns\" goes backwards"), std::string::npos);
}

// The recorded head motion the tests use lives in the repository (no skip when ../shared is absent).
TEST(Trace, the_recorded_head_trace_in_the_repository_loads) {
  const auto samples =
      load_trace(std::filesystem::path(KAIRO_SOURCE_DIR) / "tests/data/head-trace-real-user1-30s.jsonl");
  ASSERT_EQ(samples.size(), 1739u);
  EXPECT_EQ(samples.front().t_ns, 0);
  EXPECT_LE(samples.back().t_ns, 30'000'000'000);
  EXPECT_GT(samples.back().t_ns, 29'000'000'000);
}

double angle_between(const glm::quat& a, const glm::quat& b) {
  return 2.0 * std::acos(std::min(1.0, double(std::abs(glm::dot(a, b)))));
}

TEST(SyntheticTrace, the_same_seed_gives_the_same_trace_and_another_seed_another) {
  const auto a = synthetic_trace({.duration_s = 5, .rate_hz = 90, .seed = 7});
  const auto b = synthetic_trace({.duration_s = 5, .rate_hz = 90, .seed = 7});
  const auto c = synthetic_trace({.duration_s = 5, .rate_hz = 90, .seed = 8});
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(format_trace_line(a[i]), format_trace_line(b[i]));
  EXPECT_NE(format_trace_line(a.back()), format_trace_line(c.back()));
}

TEST(SyntheticTrace, motion_looks_human_slow_looks_quick_turns_small_translation) {
  const auto s = synthetic_trace({.duration_s = 60, .rate_hz = 100, .seed = 3});
  ASSERT_EQ(s.size(), 6001u);
  double max_speed = 0, max_offset = 0;
  size_t fast_samples = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    const double dt = double(s[i].t_ns - s[i - 1].t_ns) * 1e-9;
    const double speed = glm::degrees(angle_between(s[i].head.orientation, s[i - 1].head.orientation)) / dt;
    max_speed = std::max(max_speed, speed);
    fast_samples += speed > 120.0;
    max_offset = std::max(max_offset, double(glm::distance(s[i].head.position, glm::vec3(0, 1.6f, 0))));
  }
  EXPECT_GT(max_speed, 150.0);                              // saccade-like turns happen...
  EXPECT_LT(max_speed, 800.0);                              // ...at human speeds
  EXPECT_LT(double(fast_samples) / double(s.size()), 0.2);  // most of the time the head moves slowly
  EXPECT_GT(max_offset, 0.01);                              // the head translates...
  EXPECT_LT(max_offset, 0.4);                               // ...a little, like a seated or standing user
}

}  // namespace
}  // namespace kairo
