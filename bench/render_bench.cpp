// Renderer throughput on this machine's Vulkan device (lavapipe here): wall ms/frame with frames pipelined
// over 3 slots, device time from timestamp queries, and the NV12 conversion + readback cost on its own.
//   build/bench/kairo_render_bench --benchmark_counters_tabular=true
// Each case renders along a synthetic head trace so the view changes every frame, as in a session.
#include <benchmark/benchmark.h>

#include <map>

#include "core/synthetic_trace.hpp"
#include "renderer/stereo_renderer.hpp"

namespace kairo {
namespace {

std::shared_ptr<VulkanContext> context() {
  static auto c = VulkanContext::create();
  return c;
}

std::shared_ptr<GpuScene> scene(const std::string& name) {
  static std::map<std::string, std::shared_ptr<GpuScene>> cache;
  auto& s = cache[name];
  if (!s) s = GpuScene::upload(context(), load_scene(std::string(KAIRO_SCENE_DIR) + "/" + name));
  return s;
}

enum Output { kRenderOnly = 0, kWithNv12 = 1 };
enum Detail { kFullDetail = 0, kLod = 1 };  // levels of detail at 1 pixel of error, or every mesh in full

void render_frames(benchmark::State& state, const std::string& scene_name) {
  const int eye = int(state.range(0));
  const bool nv12 = state.range(1) == kWithNv12;
  const bool lod = state.range(2) == kLod;
  StereoRenderer renderer(scene(scene_name),
                          RendererConfig{.eye_width = eye,
                                         .eye_height = eye,
                                         .frames_in_flight = 3,
                                         .nv12 = nv12 ? Nv12Layout::kSideBySide : Nv12Layout::kNone,
                                         .lod_pixel_error = lod ? 1.0f : 0.0f});
  const auto trace = synthetic_trace({.duration_s = 20, .rate_hz = 90, .seed = 5});
  const Fov fov = symmetric_fov(100);
  double render_ms = 0, convert_ms = 0;
  uint64_t frames = 0, submitted = 0, triangles = 0;
  auto collect_one = [&] {
    const RenderedFrame& f = renderer.collect();
    render_ms += f.gpu_render_ms;
    convert_ms += f.gpu_convert_ms;
    triangles += f.triangles_drawn;
    benchmark::DoNotOptimize(nv12 ? f.nv12[0].y[f.nv12[0].y.size() / 2] : 0);
    renderer.release(f);
    ++frames;
  };
  for (auto _ : state) {
    if (renderer.free_slots() == 0) collect_one();
    const TraceSample& s = trace[submitted % trace.size()];
    renderer.submit(
        FrameRequest{.frame_id = submitted++, .view = stereo_view_from_head(s.head, s.ipd, {fov, fov})});
  }
  while (renderer.in_flight() > 0) collect_one();
  state.counters["fps"] = benchmark::Counter(double(frames), benchmark::Counter::kIsRate);
  state.counters["gpu_render_ms"] = render_ms / double(frames);
  state.counters["gpu_nv12_readback_ms"] = nv12 ? convert_ms / double(frames) : 0.0;
  state.counters["triangles"] = double(triangles) / double(frames);
  state.SetLabel(std::to_string(eye) + "x" + std::to_string(eye) + " per eye, " +
                 (nv12 ? "render + NV12 readback" : "render only") +
                 (renderer.uses_multiview() ? ", multiview" : ", per-eye passes") +
                 (lod ? ", LOD" : ", full detail"));
}

void apply_sizes(benchmark::internal::Benchmark* b) {
  for (int size : {1024, 1920})
    for (int output : {kRenderOnly, kWithNv12}) b->Args({size, output, kLod});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);
}

BENCHMARK_CAPTURE(render_frames, vr_room, std::string("vr-room.glb"))->Apply(apply_sizes);
BENCHMARK_CAPTURE(render_frames, stress, std::string("stress.glb"))->Apply(apply_sizes);
// Levels of detail on and off (#16), same trace, 2 x 1024^2.
BENCHMARK_CAPTURE(render_frames, stress_detail, std::string("stress.glb"))
    ->Args({1024, kRenderOnly, kFullDetail})
    ->Args({1024, kRenderOnly, kLod})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

}  // namespace
}  // namespace kairo

BENCHMARK_MAIN();
