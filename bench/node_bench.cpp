// Kairo's node end to end on this machine (lavapipe, x264), through the real control plane on a real
// PostgreSQL and the reference client on loopback:
//   1. pose-to-decoded latency p50/p99, frames/s and per-stage medians at 2x(512x512) and 2x(1024x1024),
//      with the pipelining efficiency: achieved fps / (1 / slowest stage);
//   2. sessions per node: 1, 2 and 4 concurrent sessions;
//   3. foveation's bitrate saving at equal quality in the fovea (rendered, encoded, decoded and un-warped
//      without the network, so that only the encoding differs).
// Usage: kairo_node_bench [seconds per run, default 8]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/frame_reconstruction.hpp"
#include "client/reference_client.hpp"
#include "core/foveation.hpp"
#include "core/percentile.hpp"
#include "core/synthetic_trace.hpp"
#include "encoder/video_decoder.hpp"
#include "encoder/video_encoder.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "renderer/stereo_renderer.hpp"
#include "renderer/vulkan_context.hpp"
#include "tests/fleet_harness.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {
namespace {

double median(const std::vector<double>& v) {
  return percentile(v, 0.5);
}

double p99(const std::vector<double>& v) {
  return percentile(v, 0.99);
}

void print_session_row(const char* label, const ClientReport& r) {
  const auto& l = r.latency_ms;
  const double slowest = std::max(median(l.at("render")), median(l.at("encode")));
  std::printf(
      "| %s | %.1f | %.0f / %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n",
      label, r.fps, median(l.at("total")), p99(l.at("total")), median(l.at("uplink")),
      median(l.at("pose_wait")), median(l.at("render")), median(l.at("encode")),
      median(l.at("pacing")) + median(l.at("send")), median(l.at("network")), median(l.at("decode")), slowest,
      r.fps / (1000.0 / slowest), r.bitrate_bps * 1e-6);
}

void end_to_end(double seconds) {
  test::PostgresServer pg;
  test::ControlPlane control(pg.url());
  const std::string admin = control.admin_token();
  for (int i = 0; i < 4; ++i)
    control::http_request(
        control.server.port(), "POST", "/v1/users",
        nlohmann::json{
            {"username", "viewer" + std::to_string(i)}, {"password", "viewer-password"}, {"role", "client"}}
            .dump(),
        admin);
  test::InProcessNode node(control.url(), "", 4);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto options = [&](int user, int eye, int fps) {
    return ClientOptions{.control_url = control.url(),
                         .user = "viewer" + std::to_string(user),
                         .password = "viewer-password",
                         .scene = "vr-room",
                         .eye_width = eye,
                         .eye_height = eye,
                         .fps = fps,
                         .duration_s = seconds};
  };
  std::printf("\n### Pose to decoded frame, one session (%.0f s each, 30 fps requested)\n\n", seconds);
  std::printf(
      "| per eye | fps | total p50 / p99 ms | uplink | pose wait | render | encode | pacing+send | network | "
      "decode | slowest stage ms | pipelining efficiency | Mbit/s "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::fflush(stdout);
  print_session_row("512x512", run_client(options(0, 512, 30), std::atomic<bool>(false)));
  std::fflush(stdout);
  print_session_row("1024x1024", run_client(options(1, 1024, 30), std::atomic<bool>(false)));
  std::fflush(stdout);

  std::printf("\n### Sessions per node (2x512x512, 30 fps requested each, concurrent)\n\n");
  std::printf(
      "| sessions | fps per session (mean) | fps total | total latency p50 ms (mean of sessions) "
      "|\n|---|---|---|---|\n");
  for (int n : {1, 2, 4}) {
    std::vector<ClientReport> reports(static_cast<size_t>(n));
    std::vector<std::thread> clients;
    for (int i = 0; i < n; ++i)
      clients.emplace_back(
          [&, i] { reports[size_t(i)] = run_client(options(i, 512, 30), std::atomic<bool>(false)); });
    for (auto& t : clients) t.join();
    double fps = 0, latency = 0;
    for (const auto& r : reports) {
      fps += r.fps;
      latency += median(r.latency_ms.at("total"));
    }
    std::printf("| %d | %.1f | %.1f | %.0f |\n", n, fps / n, fps, latency / n);
    std::fflush(stdout);
  }
}

// PSNR (RGB) of the fovea (the central +-0.4 of each eye, where foveation keeps full density).
double fovea_psnr(const ImageRgba8& a, const ImageRgba8& b, int eye_width) {
  double se = 0;
  size_t n = 0;
  const int x0 = int(0.3 * eye_width), x1 = int(0.7 * eye_width);
  const int y0 = int(0.3 * a.height), y1 = int(0.7 * a.height);
  for (int eye = 0; eye < 2; ++eye)
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x)
        for (int c = 0; c < 3; ++c) {
          const size_t i = (size_t(y) * a.width + size_t(eye * eye_width + x)) * 4 + size_t(c);
          const double d = double(a.pixels[i]) - double(b.pixels[i]);
          se += d * d;
          ++n;
        }
  return 10.0 * std::log10(255.0 * 255.0 / std::max(1e-9, se / double(n)));
}

void foveation_saving() {
  constexpr int kEye = 512, kFrames = 60, kFps = 30;
  auto context = VulkanContext::create();
  auto scene = GpuScene::upload(context, load_scene(std::string(KAIRO_SCENE_DIR) + "/vr-room.glb"));
  StereoRenderer renderer(scene,
                          RendererConfig{.eye_width = kEye, .eye_height = kEye, .frames_in_flight = 1});
  const auto trace = synthetic_trace(SyntheticTraceOptions{.duration_s = 3, .rate_hz = kFps, .seed = 5});
  const float kStrength = 0.6f;
  const glm::ivec2 coded = coded_eye_size(kEye, kEye, 1.0, kStrength);
  const std::array<Fov, 2> fovs{symmetric_fov(90), symmetric_fov(90)};
  std::vector<ImageRgba8> reference;
  std::map<float, std::vector<std::vector<uint8_t>>> nv12;  // by strength: Y then UV
  std::map<float, std::vector<FrameMetadata>> metadata;
  for (int i = 0; i < kFrames; ++i) {
    const StereoView view = stereo_view_from_head(trace[size_t(i)].head, kDefaultIpdMetres, fovs);
    for (float strength : {0.0f, kStrength}) {
      const glm::ivec2 size = strength > 0 ? coded : glm::ivec2(kEye, kEye);
      FoveationParams f{.strength = strength, .centre = {}, .fovea_radius = 0.4f};
      renderer.submit(FrameRequest{.frame_id = uint64_t(i),
                                   .view = view,
                                   .want_rgba = strength == 0,
                                   .coded_width = size.x,
                                   .coded_height = size.y,
                                   .foveation = f});
      const RenderedFrame& r = renderer.collect();
      if (strength == 0) reference.push_back(ImageRgba8{2 * kEye, kEye, {r.rgba.begin(), r.rgba.end()}});
      std::vector<uint8_t> picture(r.nv12[0].y.begin(), r.nv12[0].y.end());
      picture.insert(picture.end(), r.nv12[0].uv.begin(), r.nv12[0].uv.end());
      nv12[strength].push_back(std::move(picture));
      FrameMetadata m;
      m.eye_width = m.eye_height = uint16_t(kEye);
      m.coded_width = uint16_t(size.x);
      m.coded_height = uint16_t(size.y);
      m.foveation = f;
      metadata[strength].push_back(m);
      renderer.release(r);
    }
  }
  std::printf("\n### Foveation: bitrate at equal fovea quality (2x512x512, %d frames, %d fps, x264 CBR)\n\n",
              kFrames, kFps);
  std::printf("Coded eye %dx%d with strength %.1f (%.0f %% of the pixels).\n\n", coded.x, coded.y, kStrength,
              100.0 * coded.x * coded.y / (kEye * kEye));
  std::printf("| Mbit/s | fovea PSNR, full frame (dB) | fovea PSNR, foveated (dB) |\n|---|---|---|\n");
  const std::vector<double> ladder{0.5, 1, 2, 4, 8};
  std::map<float, std::vector<double>> psnr;
  for (double mbps : ladder) {
    for (float strength : {0.0f, kStrength}) {
      const FrameMetadata& m0 = metadata[strength][0];
      auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                      .backend = "x264",
                                                      .width = 2 * m0.coded_width,
                                                      .height = m0.coded_height,
                                                      .fps = kFps,
                                                      .bitrate_bps = int64_t(mbps * 1e6)});
      VideoDecoder decoder(Codec::kH264);
      DecodedPicture picture;
      double sum = 0;
      int n = 0;
      for (int i = 0; i < kFrames; ++i) {
        const auto& p = nv12[strength][size_t(i)];
        const size_t y_bytes = size_t(2 * m0.coded_width) * m0.coded_height;
        const AccessUnit& au =
            encoder->encode(EncodeRequest{.frame_id = uint64_t(i),
                                          .picture = Nv12View{.y = std::span(p).first(y_bytes),
                                                              .uv = std::span(p).subspan(y_bytes),
                                                              .width = 2 * m0.coded_width,
                                                              .height = m0.coded_height},
                                          .keyframe = i == 0});
        if (!decoder.decode(au.data, picture)) continue;
        if (i < 10) continue;  // past the first keyframe's rate-control transient
        sum += fovea_psnr(reconstruct_stereo(picture, metadata[strength][size_t(i)]), reference[size_t(i)],
                          kEye);
        ++n;
      }
      psnr[strength].push_back(sum / std::max(1, n));
    }
    std::printf("| %.1f | %.2f | %.2f |\n", mbps, psnr[0.0f].back(), psnr[kStrength].back());
  }
  // For each full-frame point, the foveated bitrate that reaches the same fovea PSNR (log-linear between
  // ladder points).
  std::printf("\n| fovea PSNR (dB) | full frame Mbit/s | foveated Mbit/s | saving |\n|---|---|---|---|\n");
  for (size_t i = 0; i < ladder.size(); ++i) {
    const double target = psnr[0.0f][i];
    const auto& f = psnr[kStrength];
    if (target < f[0]) {
      std::printf("| %.2f | %.1f | < %.1f (below the ladder) | > %.0f %% |\n", target, ladder[i], ladder[0],
                  100.0 * (1.0 - ladder[0] / ladder[i]));
      continue;
    }
    for (size_t j = 0; j + 1 < ladder.size(); ++j) {
      if (!(f[j] <= target && target <= f[j + 1])) continue;
      const double t = std::clamp((target - f[j]) / std::max(1e-9, f[j + 1] - f[j]), 0.0, 1.0);
      const double rate = std::exp(std::log(ladder[j]) + t * (std::log(ladder[j + 1]) - std::log(ladder[j])));
      std::printf("| %.2f | %.1f | %.2f | %.0f %% |\n", target, ladder[i], rate,
                  100.0 * (1.0 - rate / ladder[i]));
      break;
    }
  }
}

}  // namespace
}  // namespace kairo

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 8.0;
  kairo::end_to_end(seconds);
  kairo::foveation_saving();
  return 0;
}
