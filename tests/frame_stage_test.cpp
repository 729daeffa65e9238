// The frame stage's zero-copy path: the NV12 pass writes into the encoder's own host pictures (imported into
// the Vulkan device), and what comes out is the same, bit for bit, as through the renderer's readback buffer
// and a copy, for every coded size the quality controller can choose.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/pose.hpp"
#include "node/frame_stage.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

std::shared_ptr<GpuScene> room() {
  static const std::shared_ptr<GpuScene> scene =
      GpuScene::upload(test::vulkan(), load_scene(test::scene_path("vr-room.glb")));
  return scene;
}

// What the quality controller moves between, frame after frame: full size, scaled, foveated with the gaze.
FrameSettings settings_for(int frame) {
  switch (frame % 4) {
    case 0:
      return FrameSettings{};
    case 1:
      return FrameSettings{.foveation = 0.6f, .gaze = {0.3f, -0.2f}};
    case 2:
      return FrameSettings{.resolution_scale = 0.75};
    default:
      return FrameSettings{.foveation = 0.3f, .gaze = {-0.5f, 0.1f}, .resolution_scale = 0.875};
  }
}

struct Encoded {
  std::vector<std::vector<uint8_t>> access_units;
  EncoderCounters counters;
};

Encoded run_stage(bool zero_copy, int frames) {
  FrameStage stage(room(), FrameStageConfig{.eye_width = 128,
                                            .eye_height = 96,
                                            .fps = 30,
                                            .encoder_backend = "x264",
                                            .bitrate_bps = 4'000'000,
                                            .encoder_threads = 1,
                                            .zero_copy = zero_copy});
  Encoded out;
  for (int i = 0; i < frames; ++i) {
    const Pose head{.position = {0.02f * float(i), 1.6f, 0}};
    const FrameSettings s = settings_for(i);
    const StageRendered rendered = stage.render(uint64_t(i), test::head_view(head), s, {}, 0);
    EXPECT_EQ(rendered.picture.has_value(), zero_copy) << "frame " << i;
    const StageEncoded encoded = stage.encode(rendered, s, i == 0);
    out.access_units.emplace_back(encoded.access_unit.begin(), encoded.access_unit.end());
    stage.release(*rendered.frame);
  }
  out.counters = stage.encoder_counters();
  return out;
}

TEST(FrameStage, renders_into_the_encoders_pictures_without_a_copy_and_encodes_the_same_bits) {
  if (!test::vulkan()->imports_host_memory()) GTEST_SKIP() << "this device lacks VK_EXT_external_memory_host";
  constexpr int kFrames = 12;
  const Encoded copied = run_stage(false, kFrames);
  const Encoded direct = run_stage(true, kFrames);
  EXPECT_EQ(copied.counters.pictures_copied, uint64_t(kFrames));
  EXPECT_EQ(copied.counters.pictures_in_place, 0u);
  EXPECT_EQ(direct.counters.pictures_copied, 0u) << "a picture went through the copy";
  EXPECT_EQ(direct.counters.pictures_in_place, uint64_t(kFrames));
  ASSERT_EQ(direct.access_units.size(), copied.access_units.size());
  for (size_t i = 0; i < copied.access_units.size(); ++i) {
    EXPECT_GT(copied.access_units[i].size(), 100u) << "frame " << i;
    EXPECT_EQ(direct.access_units[i], copied.access_units[i]) << "frame " << i << " differs";
  }
  test::expect_validation_clean();
}

TEST(FrameStage, a_frame_dropped_before_its_encode_gives_its_picture_back) {
  if (!test::vulkan()->imports_host_memory()) GTEST_SKIP() << "this device lacks VK_EXT_external_memory_host";
  FrameStage stage(room(), FrameStageConfig{.eye_width = 64, .eye_height = 64, .encoder_backend = "x264"});
  const StereoView view = test::head_view(Pose{.position = {0, 1.6f, 0}});
  // More frames than the pool has pictures: each dropped one must come back, or the path falls to copies.
  for (int i = 0; i < 10; ++i) {
    const StageRendered rendered = stage.render(uint64_t(i), view, FrameSettings{}, {}, 0);
    ASSERT_TRUE(rendered.picture.has_value()) << "frame " << i << ": the pool ran dry";
    stage.discard(rendered);
  }
  const StageRendered rendered = stage.render(10, view, FrameSettings{}, {}, 0);
  const StageEncoded encoded = stage.encode(rendered, FrameSettings{}, true);
  stage.release(*rendered.frame);
  EXPECT_TRUE(encoded.keyframe);
  EXPECT_EQ(stage.encoder_counters().pictures_in_place, 1u);
}

// A node under load changes its frame rate often; a keyframe at each change was most of the keyframes a
// CPU-bound node sent (bench/RESULTS.md, issue 20). The encoder keeps its rate and gets a scaled bitrate.
TEST(FrameStage, a_frame_rate_change_costs_no_keyframe_and_keeps_bits_per_frame) {
  FrameStage stage(room(), FrameStageConfig{.eye_width = 64,
                                            .eye_height = 64,
                                            .fps = 30,
                                            .encoder_backend = "x264",
                                            .bitrate_bps = 1'000'000,
                                            .encoder_threads = 1});
  int keyframes = 0;
  for (int i = 0; i < 12; ++i) {
    const FrameSettings s{.bitrate_bps = 1'000'000, .fps = i < 6 ? 30 : 15};
    const StageRendered rendered =
        stage.render(uint64_t(i), test::head_view(Pose{.position = {0.05f * float(i), 1.6f, 0}}), s, {}, 0);
    keyframes += stage.encode(rendered, s, i == 0).keyframe ? 1 : 0;
    stage.release(*rendered.frame);
  }
  EXPECT_EQ(keyframes, 1);
  EXPECT_EQ(stage.encoder_bitrate_bps(), 1'000'000);  // the target, as set
}

}  // namespace
}  // namespace kairo
