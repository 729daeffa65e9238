#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "app/cli_parsing.hpp"
#include "app/commands.hpp"
#include "app/scene_paths.hpp"
#include "core/error.hpp"
#include "core/image_io.hpp"
#include "core/progress.hpp"
#include "core/trace.hpp"
#include "renderer/stereo_renderer.hpp"

namespace kairo::app {
namespace {

struct RenderOptions {
  std::string scene;
  std::string size;
  std::string pose;
  std::string trace;
  std::string out;
  float ipd = kDefaultIpdMetres;
  float fov_degrees = kDefaultFovDegrees;
  std::string gpu;
  bool validation = false;
  bool quiet = false;
  int frames_in_flight = 3;
};

int run_render(const RenderOptions& o) {
  const Size size = parse_size(o.size, "--size");
  if (!(o.ipd >= 0.0f && o.ipd <= 0.2f)) throw_invalid_input("--ipd must be between 0 and 0.2 metres");
  if (!(o.fov_degrees > 1.0f && o.fov_degrees < 170.0f))
    throw_invalid_input("--fov must be between 1 and 170 degrees");
  const Fov default_fov = symmetric_fov(o.fov_degrees);

  // Validate all input before the (slow) device and scene set-up.
  std::vector<TraceSample> samples;
  if (!o.pose.empty()) {
    samples.push_back(
        TraceSample{.t_ns = 0, .head = parse_pose(o.pose, "--pose"), .ipd = o.ipd, .fov = std::nullopt});
  } else {
    samples = load_trace(o.trace);
    std::error_code ec;
    std::filesystem::create_directories(o.out, ec);
    if (ec) throw_runtime("cannot create output directory " + o.out + ": " + ec.message());
  }

  const SceneData scene_data = load_scene(resolve_scene(o.scene));
  auto context = VulkanContext::create(VulkanOptions{.gpu = o.gpu, .validation = o.validation});
  auto scene = GpuScene::upload(context, scene_data);
  StereoRenderer renderer(scene, RendererConfig{.eye_width = size.width,
                                                .eye_height = size.height,
                                                .frames_in_flight = o.frames_in_flight,
                                                .nv12 = Nv12Layout::kNone});

  const auto start = std::chrono::steady_clock::now();
  double gpu_ms_total = 0;
  size_t written = 0;
  // PNG compression costs more than rendering: it runs on worker threads, a bounded number at a time,
  // each with its own copy of the pixels so the frame slot goes straight back to the renderer.
  std::deque<std::future<void>> png_writers;
  // A trace's frames: progress on stderr (stdout is the JSON summary).
  Progress progress("render", "frames", samples.size(),
                    o.quiet || !o.pose.empty() ? ProgressMode::kQuiet : ProgressMode::kAuto);
  const size_t max_writers = std::max(1u, std::thread::hardware_concurrency());
  auto write_oldest = [&] {
    const RenderedFrame& frame = renderer.collect();
    char name[32];
    std::snprintf(name, sizeof(name), "%06llu.png", static_cast<unsigned long long>(frame.frame_id));
    const std::filesystem::path path =
        o.pose.empty() ? std::filesystem::path(o.out) / name : std::filesystem::path(o.out);
    std::vector<uint8_t> pixels(frame.rgba.begin(), frame.rgba.end());
    gpu_ms_total += frame.gpu_render_ms + frame.gpu_convert_ms;
    renderer.release(frame);
    if (png_writers.size() >= max_writers) {
      png_writers.front().get();  // rethrows a write error
      png_writers.pop_front();
    }
    png_writers.push_back(
        std::async(std::launch::async, [path, pixels = std::move(pixels), w = 2 * size.width,
                                        h = size.height] { write_png(path, w, h, pixels); }));
    ++written;
    progress.advance();
  };
  for (size_t i = 0; i < samples.size(); ++i) {
    if (renderer.free_slots() == 0) write_oldest();
    const TraceSample& s = samples[i];
    const std::array<Fov, 2> fovs = s.fov.value_or(std::array<Fov, 2>{default_fov, default_fov});
    const float ipd = o.pose.empty() ? s.ipd : o.ipd;
    renderer.submit(
        FrameRequest{.frame_id = i, .view = stereo_view_from_head(s.head, ipd, fovs), .want_rgba = true});
  }
  while (renderer.in_flight() > 0) write_oldest();
  for (auto& writer : png_writers) writer.get();
  progress.finish();
  const double wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();

  if (context->validation_message_count() > 0)
    throw_runtime(std::to_string(context->validation_message_count()) +
                  " Vulkan validation messages (see log)");
  if (o.pose.empty()) {
    nlohmann::json summary{
        {"frames", written},
        {"ms_per_frame", wall_ms / double(written)},
        {"gpu_ms_per_frame", context->has_timestamps() ? gpu_ms_total / double(written) : -1.0},
        {"size", o.size},
        {"device", context->gpu().name},
        {"out", o.out}};
    std::printf("%s\n", summary.dump().c_str());
  }
  return 0;
}

}  // namespace

Runner add_render_command(CLI::App& app) {
  auto o = std::make_shared<RenderOptions>();
  app.add_option("--scene", o->scene, "scene file (glTF, GLB, FBX, OBJ, Collada, ...) or project scene name")
      ->required();
  app.add_option("--size", o->size, "per-eye size WIDTHxHEIGHT; the PNG is 2*WIDTH x HEIGHT")->required();
  auto* pose =
      app.add_option("--pose", o->pose, "head pose PX,PY,PZ,QX,QY,QZ,QW (OpenXR: +Y up, -Z forward)");
  auto* trace =
      app.add_option("--trace", o->trace, "pose trace (.jsonl): render every sample into --out DIR");
  pose->excludes(trace);
  app.add_option("--ipd", o->ipd, "interpupillary distance, metres")->capture_default_str();
  app.add_option("--fov", o->fov_degrees, "symmetric full field of view per eye, degrees")
      ->capture_default_str();
  app.add_option("--out", o->out, "PNG file (with --pose) or directory (with --trace)")->required();
  app.add_option("--gpu", o->gpu, "Vulkan device index or name (default: the best one)");
  app.add_option("--frames-in-flight", o->frames_in_flight, "frames pipelined on the device")
      ->capture_default_str()
      ->check(CLI::Range(1, 8));
  app.add_flag("--quiet", o->quiet, "no progress on stderr");
  app.add_flag("--validation", o->validation,
               "enable Vulkan validation layers; any message fails the command");
  return [o] {
    if (o->pose.empty() && o->trace.empty()) throw_invalid_input("render needs --pose or --trace");
    return run_render(*o);
  };
}

Runner add_gpus_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  app.add_flag("--json", *json, "print JSON");
  return [json] {
    const auto gpus = list_gpus();
    if (*json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& g : gpus) out.push_back({{"index", g.index}, {"name", g.name}, {"type", g.type}});
      std::printf("%s\n", out.dump().c_str());
    } else {
      if (gpus.empty()) std::printf("no Vulkan device found\n");
      for (const auto& g : gpus) std::printf("%u: %s (%s)\n", g.index, g.name.c_str(), g.type.c_str());
    }
    return 0;
  };
}

}  // namespace kairo::app
