// Encoder throughput on rendered VR-room frames, Kairo against Debian's ffmpeg CLI with identical settings
// (libx264, superfast, zerolatency, the same x264-params, bitrate, VBV, slices, threads), in one run.
//   build/bench/kairo_encode_bench [FRAMES]      prints a markdown table for bench/RESULTS.md
// Kairo is timed per encode() call; ffmpeg by wall clock of the whole process (reading the .y4m included,
// which favours Kairo slightly: the table says so).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "bench/stereo_encoder.hpp"
#include "core/synthetic_trace.hpp"
#include "encoder/y4m.hpp"
#include "renderer/stereo_renderer.hpp"

namespace {

using namespace kairo;
using Clock = std::chrono::steady_clock;

struct Clip {
  int eye = 0;
  std::vector<std::vector<uint8_t>> sbs_y, sbs_uv, left_y, left_uv, right_y, right_uv;
};

Clip render_clip(int eye, int frames, const std::filesystem::path& dir) {
  auto context = VulkanContext::create();
  auto scene = GpuScene::upload(context, load_scene(std::string(KAIRO_SCENE_DIR) + "/vr-room.glb"));
  StereoRenderer sbs(
      scene,
      RendererConfig{
          .eye_width = eye, .eye_height = eye, .frames_in_flight = 1, .nv12 = Nv12Layout::kSideBySide});
  StereoRenderer per_eye(
      scene, RendererConfig{
                 .eye_width = eye, .eye_height = eye, .frames_in_flight = 1, .nv12 = Nv12Layout::kPerEye});
  const auto trace = synthetic_trace({.duration_s = frames / 90.0 + 1, .rate_hz = 90, .seed = 3});
  Y4mWriter sbs_file(dir / "sbs.y4m", 2 * eye, eye, 90), left_file(dir / "left.y4m", eye, eye, 90),
      right_file(dir / "right.y4m", eye, eye, 90);
  Clip clip;
  clip.eye = eye;
  const Fov fov = symmetric_fov(100);
  for (int i = 0; i < frames; ++i) {
    const StereoView view = stereo_view_from_head(trace[size_t(i)].head, 0.063f, {fov, fov});
    sbs.submit(FrameRequest{.frame_id = uint64_t(i), .view = view});
    per_eye.submit(FrameRequest{.frame_id = uint64_t(i), .view = view});
    const RenderedFrame& a = sbs.collect();
    clip.sbs_y.emplace_back(a.nv12[0].y.begin(), a.nv12[0].y.end());
    clip.sbs_uv.emplace_back(a.nv12[0].uv.begin(), a.nv12[0].uv.end());
    sbs_file.write(a.nv12[0].y.data(), a.nv12[0].uv.data());
    sbs.release(a);
    const RenderedFrame& b = per_eye.collect();
    clip.left_y.emplace_back(b.nv12[0].y.begin(), b.nv12[0].y.end());
    clip.left_uv.emplace_back(b.nv12[0].uv.begin(), b.nv12[0].uv.end());
    clip.right_y.emplace_back(b.nv12[1].y.begin(), b.nv12[1].y.end());
    clip.right_uv.emplace_back(b.nv12[1].uv.begin(), b.nv12[1].uv.end());
    left_file.write(b.nv12[0].y.data(), b.nv12[0].uv.data());
    right_file.write(b.nv12[1].y.data(), b.nv12[1].uv.data());
    per_eye.release(b);
  }
  return clip;
}

struct Result {
  double p50 = 0, p99 = 0, fps = 0;
};

Result kairo_encode(const Clip& clip, StereoLayout layout, int64_t bitrate) {
  StereoEncoder encoder(EncoderConfig{.codec = Codec::kH264,
                                      .backend = "x264",
                                      .width = clip.eye,
                                      .height = clip.eye,
                                      .fps = 90,
                                      .bitrate_bps = bitrate,
                                      .slices = 4},
                        layout);
  std::vector<double> ms;
  const auto start = Clock::now();
  for (size_t i = 0; i < clip.sbs_y.size(); ++i) {
    const auto t0 = Clock::now();
    if (layout == StereoLayout::kSideBySide) {
      const Nv12View picture{
          .y = clip.sbs_y[i], .uv = clip.sbs_uv[i], .width = 2 * clip.eye, .height = clip.eye};
      encoder.encode(i, i, std::span(&picture, 1), false);
    } else {
      const std::array<Nv12View, 2> pictures{
          Nv12View{.y = clip.left_y[i], .uv = clip.left_uv[i], .width = clip.eye, .height = clip.eye},
          Nv12View{.y = clip.right_y[i], .uv = clip.right_uv[i], .width = clip.eye, .height = clip.eye}};
      encoder.encode(i, i, pictures, false);
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[std::min(ms.size() - 1, size_t(double(ms.size()) * 0.99))],
          double(ms.size()) / seconds};
}

std::string ffmpeg_command(const std::filesystem::path& input, int64_t bitrate, int threads) {
  const int64_t vbv = bitrate * 3 / 2 / 90;  // 1.5 frames, as Kairo's software backends
  return "ffmpeg -hide_banner -loglevel error -nostdin -i " + input.string() +
         " -c:v libx264 -preset superfast -tune zerolatency -forced-idr 1 -bf 0 -threads " +
         std::to_string(threads) +
         " -x264-params sliced-threads=1:slices=4:keyint=infinite:scenecut=0:filler=1:repeat-headers=1" +
         " -b:v " + std::to_string(bitrate) + " -maxrate " + std::to_string(bitrate) + " -bufsize " +
         std::to_string(vbv) + " -f h264 -y /dev/null";
}

Result ffmpeg_encode(const std::filesystem::path& dir, StereoLayout layout, int64_t bitrate, int frames) {
  const auto start = Clock::now();
  if (layout == StereoLayout::kSideBySide) {
    if (std::system(ffmpeg_command(dir / "sbs.y4m", bitrate, 0).c_str()) != 0)
      std::fprintf(stderr, "ffmpeg failed\n");
  } else {
    const unsigned cores = std::max(2u, std::thread::hardware_concurrency());
    const std::string both = ffmpeg_command(dir / "left.y4m", bitrate / 2, int(cores / 2)) + " & " +
                             ffmpeg_command(dir / "right.y4m", bitrate / 2, int(cores / 2)) + " & wait";
    if (std::system(both.c_str()) != 0) std::fprintf(stderr, "ffmpeg failed\n");
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {0, 0, frames / seconds};
}

}  // namespace

int main(int argc, char** argv) {
  const int frames = argc > 1 ? std::atoi(argv[1]) : 60;
  const auto dir = std::filesystem::temp_directory_path() / "kairo-encode-bench";
  std::printf(
      "| per eye | layout | Kairo p50 ms | Kairo p99 ms | Kairo fps | ffmpeg CLI fps | Kairo/ffmpeg |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int eye : {1024, 1920}) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const Clip clip = render_clip(eye, frames, dir);
    const int64_t bitrate = eye == 1024 ? 30'000'000 : 60'000'000;
    for (StereoLayout layout : {StereoLayout::kSideBySide, StereoLayout::kPerEye}) {
      const Result k = kairo_encode(clip, layout, bitrate);
      const Result f = ffmpeg_encode(dir, layout, bitrate, frames);
      std::printf("| 2x%dx%d | %s | %.1f | %.1f | %.1f | %.1f | %.2f |\n", eye, eye,
                  layout == StereoLayout::kSideBySide ? "side by side" : "per eye, parallel", k.p50, k.p99,
                  k.fps, f.fps, k.fps / f.fps);
      std::fflush(stdout);
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
