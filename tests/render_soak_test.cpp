// 1000 frames through one renderer along a synthetic head trace, with NV12 and RGBA readback every frame.
// Built normally it checks validation stays silent; CI also runs it from an AddressSanitizer build, where
// LeakSanitizer fails the run on any leak.
#include <gtest/gtest.h>

#include "core/synthetic_trace.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

TEST(RenderSoak, a_thousand_frames_without_leaks_or_validation_messages) {
  auto scene = GpuScene::upload(test::vulkan(), load_scene(test::scene_path("vr-room.glb")));
  StereoRenderer renderer(
      scene, RendererConfig{
                 .eye_width = 64, .eye_height = 64, .frames_in_flight = 3, .nv12 = Nv12Layout::kSideBySide});
  const auto trace = synthetic_trace({.duration_s = 1000.0 / 90.0, .rate_hz = 90, .seed = 42});
  ASSERT_GE(trace.size(), 1000u);
  uint64_t collected = 0, checksum = 0;
  auto collect_one = [&] {
    const RenderedFrame& f = renderer.collect();
    EXPECT_EQ(f.frame_id, collected);
    checksum += f.nv12[0].y[f.nv12[0].y.size() / 2] + f.rgba[f.rgba.size() / 2];
    renderer.release(f);
    ++collected;
  };
  for (uint64_t i = 0; i < 1000; ++i) {
    if (renderer.free_slots() == 0) collect_one();
    renderer.submit(FrameRequest{.frame_id = i, .view = test::head_view(trace[i].head), .want_rgba = true});
  }
  while (renderer.in_flight() > 0) collect_one();
  EXPECT_EQ(collected, 1000u);
  EXPECT_GT(checksum, 0u);
  test::expect_validation_clean();
}

}  // namespace
}  // namespace kairo
