// 1000 frames through one renderer along a synthetic head trace, with NV12 and RGBA readback every frame.
// Built normally it checks validation stays silent; CI also runs it from an AddressSanitizer build, where
// LeakSanitizer fails the run on any leak.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "core/synthetic_trace.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

// The Vulkan loader unloads the driver and layers when the instance goes, before LeakSanitizer looks: their
// own process-lifetime allocations would then show as "<unknown module>" and escape tests/lsan.supp.
// Pinning them (RTLD_NODELETE) keeps their names on the stacks so that only they are suppressed.
const bool driver_pinned = [] {
  for (const char* library : {"libvulkan_lvp.so", "libVkLayer_khronos_validation.so"})
    dlopen(library, RTLD_NOW | RTLD_NODELETE);
  return true;
}();

TEST(RenderSoak, a_thousand_frames_without_leaks_or_validation_messages) {
  auto context = VulkanContext::create(VulkanOptions{.gpu = "", .validation = true});
  auto scene = GpuScene::upload(context, load_scene(test::scene_path("vr-room.glb")));
  StereoRenderer renderer(
      scene, RendererConfig{
                 .eye_width = 64, .eye_height = 64, .frames_in_flight = 3, .nv12 = Nv12Layout::kSideBySide});
  const auto trace = synthetic_trace({.duration_s = 1000.0 / 90.0, .rate_hz = 90, .seed = 42});
  ASSERT_GE(trace.size(), 1000u);
  uint64_t collected = 0;
  // A few frames' pictures, kept to compare with renders of the same poses after the soak.
  std::map<uint64_t, std::pair<std::vector<uint8_t>, std::vector<uint8_t>>> kept;
  auto collect_one = [&] {
    const RenderedFrame& f = renderer.collect();
    EXPECT_EQ(f.frame_id, collected);
    if (f.frame_id == 3 || f.frame_id == 500 || f.frame_id == 997)
      kept[f.frame_id] = {{f.rgba.begin(), f.rgba.end()}, {f.nv12[0].y.begin(), f.nv12[0].y.end()}};
    renderer.release(f);
    ++collected;
  };
  for (uint64_t i = 0; i < 1000; ++i) {
    if (renderer.free_slots() == 0) collect_one();
    renderer.submit(FrameRequest{.frame_id = i, .view = test::head_view(trace[i].head), .want_rgba = true});
  }
  while (renderer.in_flight() > 0) collect_one();
  EXPECT_EQ(collected, 1000u);
  // A thousand frames later the renderer still draws each pose exactly as it did (no state leaks from
  // frame to frame), and different poses still give different pictures.
  ASSERT_EQ(kept.size(), 3u);
  for (const auto& [id, pictures] : kept) {
    renderer.submit(
        FrameRequest{.frame_id = 2000 + id, .view = test::head_view(trace[id].head), .want_rgba = true});
    const RenderedFrame& f = renderer.collect();
    EXPECT_TRUE(std::equal(f.rgba.begin(), f.rgba.end(), pictures.first.begin(), pictures.first.end()))
        << "frame " << id << " renders differently after the soak";
    EXPECT_TRUE(
        std::equal(f.nv12[0].y.begin(), f.nv12[0].y.end(), pictures.second.begin(), pictures.second.end()))
        << "frame " << id << " converts differently after the soak";
    renderer.release(f);
  }
  EXPECT_NE(kept[3].first, kept[997].first) << "the head moved; the picture should have";
  EXPECT_EQ(context->validation_message_count(), 0u);
}

// The validation layer reports any Vulkan object we failed to destroy when the device goes (after which no
// counter can be read, so its log lines are captured); LeakSanitizer cannot attribute those to us.
TEST(RenderSoak, tearing_down_leaves_no_vulkan_object_behind) {
  auto messages = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("teardown", messages));
  {
    auto context = VulkanContext::create(VulkanOptions{.gpu = "", .validation = true});
    auto scene = GpuScene::upload(context, load_scene(test::scene_path("vr-room.glb")));
    StereoRenderer renderer(scene, RendererConfig{.eye_width = 32, .eye_height = 32, .frames_in_flight = 2});
    renderer.submit(FrameRequest{
        .frame_id = 0, .view = test::head_view(Pose{.position = {0, 1.6f, 0}}), .want_rgba = true});
    renderer.submit(FrameRequest{.frame_id = 1, .view = test::head_view(Pose{.position = {0, 1.6f, 0}})});
    renderer.release(renderer.collect());  // one frame still in flight at destruction
  }
  spdlog::set_default_logger(previous);
  for (const std::string& line : messages->last_formatted())
    EXPECT_EQ(line.find("vulkan validation"), std::string::npos) << line;
}

}  // namespace
}  // namespace kairo
