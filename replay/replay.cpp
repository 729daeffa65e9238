#include "replay/replay.hpp"
#include "core/session_shape.hpp"

#include <sodium.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/image_io.hpp"
#include "core/percentile.hpp"
#include "core/progress.hpp"
#include "core/trace.hpp"
#include "encoder/video_decoder.hpp"
#include "encoder/video_encoder.hpp"
#include "node/frame_stage.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "renderer/stereo_renderer.hpp"
#include "renderer/vulkan_context.hpp"
#include "replay/replay_transport.hpp"
#include "replay/report_html.hpp"

namespace kairo {

using nlohmann::json;

double plane_ssim(const uint8_t* a, const uint8_t* b, int width, int height) {
  constexpr double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  double sum = 0;
  int windows = 0;
  for (int y = 0; y + 8 <= height; y += 4)
    for (int x = 0; x + 8 <= width; x += 4) {
      double ma = 0, mb = 0, va = 0, vb = 0, cov = 0;
      for (int j = 0; j < 8; ++j)
        for (int i = 0; i < 8; ++i) {
          const double pa = a[size_t(y + j) * width + x + i], pb = b[size_t(y + j) * width + x + i];
          ma += pa;
          mb += pb;
          va += pa * pa;
          vb += pb * pb;
          cov += pa * pb;
        }
      ma /= 64;
      mb /= 64;
      va = va / 64 - ma * ma;
      vb = vb / 64 - mb * mb;
      cov = cov / 64 - ma * mb;
      sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      ++windows;
    }
  return windows ? sum / windows : 1.0;
}

namespace {

std::string hash_hex(std::span<const uint8_t> data) {
  unsigned char h[16];
  crypto_generichash(h, sizeof(h), data.data(), data.size(), nullptr, 0);
  char out[33];
  sodium_bin2hex(out, sizeof(out), h, sizeof(h));
  return out;
}

json frame_json(const ReplayFrame& f, bool transported) {
  json j{{"frame", f.index},
         {"t_ns", f.t_ns},
         {"render_hash", f.render_hash},
         {"psnr_db", f.psnr_db},
         {"ssim", f.ssim},
         {"encoded_bytes", f.encoded_bytes},
         {"keyframe", f.keyframe},
         {"render_ms", f.render_ms},
         {"encode_ms", f.encode_ms},
         {"decode_ms", f.decode_ms},
         {"decoded_hash", f.decoded_hash},
         {"foveation", f.foveation},
         {"coded_width", f.coded_width},
         {"coded_height", f.coded_height}};
  if (transported) {
    j["lost"] = f.lost;
    j["transport_ms"] = f.transport_ms;
    j["fec_recovered"] = f.fec_recovered;
    j["retransmitted"] = f.retransmitted;
  }
  return j;
}

std::string fingerprint_name(uint64_t i) {
  char name[48];
  std::snprintf(name, sizeof(name), "fingerprints/%06llu.png", static_cast<unsigned long long>(i));
  return name;
}

void compare_with_baseline(const ReplayOptions& o, ReplayResult& result) {
  const auto summary_path = o.baseline / "summary.json";
  std::ifstream in(summary_path);
  if (!in) throw_invalid_input("no baseline at " + summary_path.string());
  const json baseline = json::parse(in, nullptr, false);
  if (baseline.is_discarded() || !baseline.contains("frames"))
    throw_invalid_input(summary_path.string() + " is not a replay summary");
  const auto& frames = baseline["frames"];
  if (frames.size() != result.frames.size())
    result.regressions.push_back({0, "frame count changed: " + std::to_string(frames.size()) + " -> " +
                                         std::to_string(result.frames.size())});
  std::vector<double> old_latency, new_latency;
  for (size_t i = 0; i < std::min(frames.size(), result.frames.size()); ++i) {
    const ReplayFrame& now = result.frames[i];
    const json& then = frames[i];
    if (then.value("render_hash", "") != now.render_hash) {
      // Not bit-identical: within tolerance? Compare the fingerprints.
      const ImageRgba8 a = read_png(o.baseline / fingerprint_name(i)),
                       b = read_png(o.out / fingerprint_name(i));
      const double psnr = a.width == b.width && a.height == b.height ? compare_images(a, b, 24).psnr_db : 0.0;
      if (psnr < o.image_tolerance_db) {
        char what[128];
        std::snprintf(what, sizeof(what), "rendered image changed (PSNR %.1f dB against the baseline)", psnr);
        result.regressions.push_back({now.index, what});
      }
    }
    const double old_psnr = then.value("psnr_db", 0.0);
    if (now.lost && !then.value("lost", false)) {
      result.regressions.push_back({now.index, "lost in transport (delivered in the baseline)"});
    } else if (now.psnr_db < old_psnr - o.quality_drop_db) {
      char what[128];
      std::snprintf(what, sizeof(what), "quality down: PSNR %.2f -> %.2f dB", old_psnr, now.psnr_db);
      result.regressions.push_back({now.index, what});
    }
    old_latency.push_back(then.value("render_ms", 0.0) + then.value("encode_ms", 0.0) +
                          then.value("decode_ms", 0.0));
    new_latency.push_back(now.render_ms + now.encode_ms + now.decode_ms);
  }
  const double before = percentile(old_latency, 0.5), after = percentile(new_latency, 0.5);
  if (before > 0 && after > before * (1.0 + o.latency_rise) && after - before > o.latency_floor_ms) {
    char what[128];
    std::snprintf(what, sizeof(what), "latency up: median render+encode+decode %.1f -> %.1f ms", before,
                  after);
    result.regressions.push_back({0, what});
  }
}

// summary.json (every frame, the regressions, the transport's totals) and report.html.
void write_summary(const ReplayOptions& o, const ReplayTransport* transport, ReplayResult& result) {
  json frames = json::array();
  if (transport) {
    const TransportTotals t = transport->totals();
    result.frames_lost = t.frames_lost;
    result.fec_recovered_fragments = t.fec_recovered_fragments;
    result.retransmitted_fragments = t.retransmitted_fragments;
    result.datagrams_lost_by_netsim = t.datagrams_lost_by_netsim;
    result.keyframe_requests = t.keyframe_requests;
  }
  for (const ReplayFrame& f : result.frames) frames.push_back(frame_json(f, transport != nullptr));
  json regressions = json::array();
  for (const Regression& r : result.regressions)
    regressions.push_back({{"frame", r.frame}, {"what", r.what}});
  json summary{{"scene", o.scene.filename().string()},
               {"trace", o.trace.filename().string()},
               {"eye_width", o.eye_width},
               {"eye_height", o.eye_height},
               {"fps", o.fps},
               {"encoder", result.encoder_backend},
               {"bitrate_bps", o.bitrate_bps},
               {"frame_count", result.frames.size()},
               {"baseline", o.baseline.string()},
               {"regressions", regressions},
               {"frames", frames}};
  if (transport)
    summary["transport"] = {{"netsim", o.netsim_args},
                            {"seed", o.netsim_seed},
                            {"frames_lost", result.frames_lost},
                            {"fec_recovered_fragments", result.fec_recovered_fragments},
                            {"retransmitted_fragments", result.retransmitted_fragments},
                            {"datagrams_lost_by_netsim", result.datagrams_lost_by_netsim}};
  std::ofstream(o.out / "summary.json") << summary.dump(1) << "\n";
  write_report_html(o.out / "report.html", summary);
}

}  // namespace

ReplayResult run_replay(const ReplayOptions& o) {
  // The rules a session keeps (core/session_shape.hpp): what replay runs, a node could run.
  if (const auto problem = session_shape_problem(SessionShape{
          .scene = "replay", .eye_width = o.eye_width, .eye_height = o.eye_height, .fps = o.fps}))
    throw_invalid_input((problem->code == "invalid_fps" ? "--fps: " : "--size: ") + problem->message);
  if (!o.baseline.empty() && !std::filesystem::exists(o.baseline / "summary.json"))
    throw_invalid_input("no baseline at " + (o.baseline / "summary.json").string());
  const std::vector<TraceSample> trace = load_trace(o.trace);
  if (trace.empty()) throw_invalid_input(o.trace.string() + ": the trace is empty");
  if (sodium_init() < 0) throw_runtime("libsodium failed to initialise");
  std::error_code ec;
  std::filesystem::create_directories(o.out / "fingerprints", ec);
  std::filesystem::create_directories(o.out / "thumbnails", ec);
  if (ec) throw_runtime("cannot create " + o.out.string() + ": " + ec.message());

  const SceneData scene_data = load_scene(o.scene);
  auto context = VulkanContext::create();
  // The node's frame stage (node/frame_stage.hpp) with one frame in flight and one encoder thread: replay is
  // about determinism and per-frame numbers, not throughput.
  FrameStage stage(GpuScene::upload(context, scene_data), FrameStageConfig{.eye_width = o.eye_width,
                                                                           .eye_height = o.eye_height,
                                                                           .fps = o.fps,
                                                                           .codec = parse_codec(o.codec),
                                                                           .encoder_backend = o.encoder,
                                                                           .bitrate_bps = o.bitrate_bps,
                                                                           .frames_in_flight = 1,
                                                                           .encoder_threads = 1,
                                                                           .keep_rgba = true});
  VideoDecoder decoder(parse_codec(o.codec));
  DecodedPicture picture;
  ReplayResult result;
  result.encoder_backend = stage.encoder_backend();
  const std::array<Fov, 2> default_fovs{symmetric_fov(kDefaultFovDegrees), symmetric_fov(kDefaultFovDegrees)};
  std::unique_ptr<ReplayTransport> transport;
  if (o.netsim) transport = std::make_unique<ReplayTransport>(*o.netsim, o.netsim_seed, o.fps);
  bool after_loss = false;
  std::ofstream lines(o.out / "frames.jsonl");
  const size_t count = std::min(trace.size(), size_t(o.max_frames));
  const uint64_t thumbnail_every = std::max<uint64_t>(1, count / 12);
  if (o.progress) o.progress->add_total(count);
  for (size_t i = 0; i < count; ++i) {
    const TraceSample& sample = trace[i];
    const FrameSettings settings = i < o.recorded_settings.size() ? o.recorded_settings[i] : o.settings;
    const StageRendered rendered =
        stage.render(i, stereo_view_from_head(sample.head, sample.ipd, sample.fov.value_or(default_fovs)),
                     settings, {}, steady_now_ns());
    const RenderedFrame& f = *rendered.frame;
    ReplayFrame frame;
    frame.index = i;
    frame.t_ns = sample.t_ns;
    frame.render_hash = hash_hex(f.rgba);
    frame.render_ms = double(f.completed_ns - f.submitted_ns) * 1e-6;
    frame.foveation = rendered.metadata.foveation.strength;
    frame.coded_width = rendered.metadata.coded_width;
    frame.coded_height = rendered.metadata.coded_height;
    const ImageRgba8 rendered_image{2 * o.eye_width, o.eye_height, {f.rgba.begin(), f.rgba.end()}};
    const Nv12View nv12 = stage.picture(rendered);  // the picture the encoder takes (luma for PSNR/SSIM)
    std::vector<uint8_t> rendered_y(size_t(nv12.width) * size_t(nv12.height));
    for (int row = 0; row < nv12.height; ++row)
      std::memcpy(&rendered_y[size_t(row) * size_t(nv12.width)], &nv12.y[size_t(row) * size_t(nv12.y_stride)],
                  size_t(nv12.width));
    // After a lost frame the client asks for a keyframe; giving it at once (not when the request happens to
    // arrive) keeps the run deterministic for the same losses.
    const StageEncoded au = stage.encode(
        rendered, settings, i == 0 || after_loss || (transport && transport->take_keyframe_request()));
    stage.release(f);
    frame.encode_ms = double(au.encode_end_ns - au.encode_start_ns) * 1e-6;
    frame.encoded_bytes = au.access_unit.size();
    frame.keyframe = au.keyframe;
    std::span<const uint8_t> to_decode = au.access_unit;
    if (transport) {
      const TransportOutcome sent = transport->send(i, au.keyframe, au.access_unit);
      frame.lost = !sent.delivered;
      frame.transport_ms = sent.transport_ms;
      frame.fec_recovered = sent.fec_recovered;
      frame.retransmitted = sent.retransmitted;
      to_decode = sent.data;
      after_loss = frame.lost;
    }
    if (!frame.lost) {
      const int64_t decode_start = steady_now_ns();
      if (!decoder.decode(to_decode, picture))
        throw_runtime("frame " + std::to_string(i) + " did not decode");
      frame.decode_ms = double(steady_now_ns() - decode_start) * 1e-6;
      frame.decoded_hash = hash_hex(picture.y);
      frame.psnr_db = std::min(99.0, plane_psnr(rendered_y, picture.y));
      frame.ssim = plane_ssim(rendered_y.data(), picture.y.data(), picture.width, picture.height);
    }
    // A small fingerprint of every rendered frame (tolerant baseline comparison) and a few thumbnails.
    const ImageRgba8 small = resized(rendered_image, 128);
    write_png(o.out / fingerprint_name(i), small.width, small.height, small.pixels);
    if (i % thumbnail_every == 0) {
      const ImageRgba8 thumb = resized(rendered_image, 320);
      char name[48];
      std::snprintf(name, sizeof(name), "thumbnails/%06zu.png", i);
      write_png(o.out / name, thumb.width, thumb.height, thumb.pixels);
    }
    lines << frame_json(frame, bool(transport)).dump() << "\n";
    result.frames.push_back(std::move(frame));
    if (o.progress) o.progress->advance();
  }
  if (!o.baseline.empty()) compare_with_baseline(o, result);

  write_summary(o, transport.get(), result);
  return result;
}

}  // namespace kairo
