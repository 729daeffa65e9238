// The node's pure logic: pose prediction on real head motion, the quality controller's decisions, the frame
// metadata layout, and the foveation warp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <glm/gtx/quaternion.hpp>

#include "core/foveation.hpp"
#include "core/synthetic_trace.hpp"
#include "core/trace.hpp"
#include "node/pose_predictor.hpp"
#include "node/quality_controller.hpp"
#include "streaming/frame_metadata.hpp"

namespace kairo {
namespace {

double angle_between(const glm::quat& a, const glm::quat& b) {
  return 2.0 * std::acos(std::min(1.0f, std::abs(glm::dot(a, b))));
}

// Real head motion, always: the first 30 s of a recorded trace, kept in the repository
// (tests/data/*.LICENSE).
std::vector<TraceSample> head_motion() {
  return load_trace(KAIRO_SOURCE_DIR "/tests/data/head-trace-real-user1-30s.jsonl");
}

TEST(PosePredictor, predicting_50_ms_ahead_beats_holding_the_last_pose_on_real_head_motion) {
  const auto trace = head_motion();
  ASSERT_GT(trace.size(), 1000u);
  // Replay the trace: at each sample, predict where the head is 50 ms later and compare with the trace.
  PosePredictor predictor;
  double predicted_error = 0, held_error = 0;
  int n = 0;
  size_t future = 0;
  for (size_t i = 0; i < trace.size(); ++i) {
    predictor.add(trace[i].t_ns, trace[i].head);
    const int64_t target = trace[i].t_ns + 50'000'000;
    while (future < trace.size() && trace[future].t_ns < target) ++future;
    if (future >= trace.size()) break;
    if (future == 0 || trace[future].t_ns - trace[future - 1].t_ns > 200'000'000)
      continue;  // a gap in the trace
    // The true orientation at the target time, between the two samples around it.
    const TraceSample& before = trace[future - 1];
    const TraceSample& after = trace[future];
    const float f =
        float(double(target - before.t_ns) / double(std::max<int64_t>(1, after.t_ns - before.t_ns)));
    const glm::quat truth =
        glm::slerp(before.head.orientation, after.head.orientation, std::clamp(f, 0.0f, 1.0f));
    predicted_error += angle_between(predictor.predict(target).orientation, truth);
    held_error += angle_between(trace[i].head.orientation, truth);
    ++n;
  }
  ASSERT_GT(n, 100);
  EXPECT_LT(predicted_error, 0.8 * held_error)
      << "mean error predicted " << predicted_error / n << " rad, held " << held_error / n << " rad over "
      << n << " samples";
}

TEST(PosePredictor, extrapolates_a_constant_turn_and_caps_the_horizon) {
  PosePredictor p;
  const float rate = 1.0f;  // rad/s about +Y
  for (int i = 0; i <= 10; ++i)
    p.add(int64_t(i) * 5'000'000, Pose{glm::vec3(0.01f * float(i), 1.6f, 0),
                                       glm::angleAxis(rate * 0.005f * float(i), glm::vec3(0, 1, 0))});
  const Pose at = p.predict(50'000'000 + 40'000'000);
  EXPECT_NEAR(glm::angle(at.orientation), rate * 0.09f, 1e-3);
  EXPECT_NEAR(at.position.x, 0.01f * 18, 1e-3);
  const Pose far = p.predict(50'000'000 + 10'000'000'000LL);  // capped at 80 ms ahead
  EXPECT_NEAR(glm::angle(far.orientation), rate * (0.05f + 0.08f), 1e-3);
  p.add(10, Pose{});  // out of order: ignored
  EXPECT_EQ(p.newest_time_ns(), 50'000'000);
}

QualityInputs inputs(int64_t t_ms, int64_t target, double slowest_ms = 5) {
  return QualityInputs{.now_ns = t_ms * 1'000'000,
                       .transport_target_bps = target,
                       .loss = 0,
                       .client_decode_ms = 2,
                       .slowest_stage_ms = slowest_ms};
}

TEST(QualityController, follows_the_estimate_under_the_control_plane_cap_with_reasons) {
  QualityController q(QualityCaps{.max_bitrate_bps = 6'000'000, .max_fps = 60, .min_fps = 20}, 512, 512,
                      4'000'000);
  auto d = q.update(inputs(0, 5'000'000));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].knob, "bitrate");
  EXPECT_EQ(d[0].reason, "bandwidth_estimate");
  d = q.update(inputs(100, 50'000'000));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, "control_plane_cap");
  EXPECT_EQ(q.settings().bitrate_bps, 6'000'000);
  EXPECT_TRUE(q.update(inputs(200, 50'000'000)).empty());  // nothing changes, nothing is reported
}

TEST(QualityController, a_starved_picture_gives_way_in_order_foveation_resolution_then_frame_rate) {
  QualityController q(QualityCaps{.max_bitrate_bps = std::nullopt, .max_fps = 60, .min_fps = 20}, 1024, 1024,
                      20'000'000);
  std::vector<std::string> knobs;
  for (int t = 0; t < 20'000; t += 100)
    for (const auto& d : q.update(inputs(t, 300'000)))
      if (d.knob != "bitrate") {
        knobs.push_back(d.knob);
        EXPECT_EQ(d.reason, "starved");
      }
  ASSERT_GE(knobs.size(), 5u);
  EXPECT_EQ(knobs[0], "foveation");
  EXPECT_EQ(knobs[1], "foveation");
  EXPECT_EQ(knobs[2], "resolution_scale");
  EXPECT_EQ(knobs[3], "resolution_scale");
  EXPECT_EQ(knobs[4], "fps");
  EXPECT_GE(q.settings().fps, 20);
  // Bandwidth back: everything returns, resolution first.
  for (int t = 20'000; t < 60'000; t += 100) q.update(inputs(t, 200'000'000));
  EXPECT_EQ(q.settings().resolution_scale, 1.0);
  EXPECT_EQ(q.settings().foveation, 0.0f);
  EXPECT_EQ(q.settings().fps, 60);
}

TEST(QualityController, a_slow_pipeline_lowers_the_frame_rate_and_recovers) {
  QualityController q(QualityCaps{.max_bitrate_bps = std::nullopt, .max_fps = 90, .min_fps = 30}, 256, 256,
                      20'000'000);
  for (int t = 0; t < 2000; t += 100) q.update(inputs(t, 20'000'000, 25));  // 25 ms stages: 36 fps at most
  EXPECT_LE(q.settings().fps, 36);
  EXPECT_GE(q.settings().fps, 30);
  for (int t = 2000; t < 30'000; t += 100) q.update(inputs(t, 20'000'000, 3));
  EXPECT_EQ(q.settings().fps, 90);
}

// A session's first frames render with cold caches: a second of slow stages at the start does not lower
// the frame rate the client asked for; the same slowness later does.
TEST(QualityController, the_first_second_of_slow_frames_is_warm_up_not_load) {
  QualityController q(QualityCaps{.max_bitrate_bps = std::nullopt, .max_fps = 90, .min_fps = 15}, 256, 256,
                      20'000'000);
  for (int t = 0; t < 900; t += 100) EXPECT_TRUE(q.update(inputs(t, 20'000'000, 50)).empty());
  for (int t = 900; t < 5000; t += 100) q.update(inputs(t, 20'000'000, 8));
  EXPECT_EQ(q.settings().fps, 90);
  for (int t = 5000; t < 6000; t += 100) q.update(inputs(t, 20'000'000, 50));
  EXPECT_LT(q.settings().fps, 90);
}

TEST(FrameMetadata, round_trips_and_refuses_what_does_not_make_sense) {
  FrameMetadata m;
  m.frame_id = 42;
  m.pose_id = 7;
  m.pose_sample_ns = -5;
  m.encode_end_ns = 123456789;
  m.view[1].pose.position = glm::vec3(1, 2, 3);
  m.view[1].fov = symmetric_fov(90);
  m.eye_width = 512;
  m.eye_height = 256;
  m.coded_width = 328;
  m.coded_height = 160;
  m.foveation.strength = 0.6f;
  m.foveation.centre[1] = glm::vec2(0.25f, -0.5f);
  m.keyframe = true;
  std::array<uint8_t, FrameMetadata::kSize> buffer{};
  ASSERT_EQ(write(m, buffer), FrameMetadata::kSize);
  const auto back = read_frame_metadata(buffer);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->frame_id, 42u);
  EXPECT_EQ(back->pose_sample_ns, -5);
  EXPECT_EQ(back->encode_end_ns, 123456789);
  EXPECT_EQ(back->view[1].pose.position, glm::vec3(1, 2, 3));
  EXPECT_EQ(back->view[1].fov.left, m.view[1].fov.left);
  EXPECT_EQ(back->foveation.centre[1], glm::vec2(0.25f, -0.5f));
  EXPECT_TRUE(back->keyframe);
  EXPECT_FALSE(read_frame_metadata(std::span(buffer).first(FrameMetadata::kSize - 1)));
  auto broken = buffer;
  broken[0] ^= 1;  // magic
  EXPECT_FALSE(read_frame_metadata(broken));
  m.coded_width = 600;  // bigger than rendered
  write(m, buffer);
  EXPECT_FALSE(read_frame_metadata(buffer));
  m.coded_width = 328;
  // A repair frame carries the first frame it no longer predicts from; it must be before the frame itself.
  EXPECT_FALSE(back->repairs_from);
  m.keyframe = false;
  m.repairs_from = 40;
  write(m, buffer);
  const auto repair = read_frame_metadata(buffer);
  ASSERT_TRUE(repair);
  EXPECT_FALSE(repair->keyframe);
  EXPECT_EQ(repair->repairs_from, std::optional<uint64_t>(40));
  m.repairs_from = 42;
  write(m, buffer);
  EXPECT_FALSE(read_frame_metadata(buffer));
  m.repairs_from.reset();
  m.view[0].pose.position.x = std::nanf("");
  write(m, buffer);
  EXPECT_FALSE(read_frame_metadata(buffer));
}

TEST(Foveation, the_warp_copies_the_fovea_pixel_for_pixel_and_inverts_exactly) {
  for (float strength : {0.0f, 0.3f, 0.6f, 1.0f})
    for (float centre : {-0.8f, 0.0f, 0.3f}) {
      const glm::ivec2 coded = coded_eye_size(1000, 1000, 1.0, strength);
      const AxisWarp w = axis_warp(centre, 0.4f, strength, 1000, coded.x);
      for (float u = -1.0f; u <= 1.0f; u += 0.01f)
        EXPECT_NEAR(source_to_coded(w, coded_to_source(w, u)), u, 1e-4) << strength << " " << centre;
      EXPECT_NEAR(coded_to_source(w, -1), -1, 1e-5);
      EXPECT_NEAR(coded_to_source(w, 1), 1, 1e-5);
      if (strength == 0) continue;
      // Inside the fovea a coded pixel centre lands exactly on a rendered pixel centre, one pixel apart.
      const float first = (w.coded_a + 1.0f) * 0.5f * float(coded.x);
      for (int p = int(std::ceil(first)) + 1; p < int((w.coded_b + 1.0f) * 0.5f * float(coded.x)) - 1; ++p) {
        const float x =
            (coded_to_source(w, (float(p) + 0.5f) / float(coded.x) * 2.0f - 1.0f) + 1.0f) * 0.5f * 1000.0f;
        EXPECT_NEAR(x - 0.5f, std::round(x - 0.5f), 2e-3) << "coded pixel " << p;
        const float next =
            (coded_to_source(w, (float(p) + 1.5f) / float(coded.x) * 2.0f - 1.0f) + 1.0f) * 0.5f * 1000.0f;
        EXPECT_NEAR(next - x, 1.0f, 2e-3);
      }
    }
  // Strength 0.6 with a 0.4 fovea: the coded eye is 64 % of the rendered size per axis.
  EXPECT_EQ(coded_eye_size(1000, 1000, 1.0, 0.6f), glm::ivec2(640, 640));
  EXPECT_EQ(coded_eye_size(512, 512, 0.5, 0), glm::ivec2(256, 256));
  EXPECT_EQ(coded_eye_size(100, 60, 1.0, 0), glm::ivec2(100, 60));  // never above the rendered size
}

}  // namespace
}  // namespace kairo
