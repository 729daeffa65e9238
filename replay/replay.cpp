#include "replay/replay.hpp"
#include "core/session_shape.hpp"

#include <sodium.h>
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

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
#include "replay/baseline_comparison.hpp"
#include "replay/frame_archive.hpp"
#include "replay/replay_transport.hpp"
#include "replay/report_html.hpp"

namespace kairo {

using nlohmann::json;

double plane_ssim(const uint8_t* a, const uint8_t* b, int width, int height) {
  // x264's formulation, which FFmpeg's `ssim` filter keeps: sums over 8x8 windows at a stride of 4, and its
  // constants (c1 scaled by 64 rather than 64^2, c2 by 64 * 63), so that replay's numbers are the ones QA
  // gets from ffmpeg (tests/replay_test.cpp compares them).
  constexpr double c1 = .01 * .01 * 255 * 255 * 64, c2 = .03 * .03 * 255 * 255 * 64 * 63;
  double sum = 0;
  int windows = 0;
  for (int y = 0; y + 8 <= height; y += 4)
    for (int x = 0; x + 8 <= width; x += 4) {
      int64_t s1 = 0, s2 = 0, ss = 0, s12 = 0;
      for (int j = 0; j < 8; ++j) {
        const uint8_t* pa = a + size_t(y + j) * size_t(width) + x;
        const uint8_t* pb = b + size_t(y + j) * size_t(width) + x;
        for (int i = 0; i < 8; ++i) {
          s1 += pa[i];
          s2 += pb[i];
          ss += pa[i] * pa[i] + pb[i] * pb[i];
          s12 += pa[i] * pb[i];
        }
      }
      const double f1 = double(s1), f2 = double(s2);
      const double vars = double(ss) * 64 - f1 * f1 - f2 * f2, covar = double(s12) * 64 - f1 * f2;
      sum += (2 * f1 * f2 + c1) * (2 * covar + c2) / ((f1 * f1 + f2 * f2 + c1) * (vars + c2));
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

json range_json(const RegressionRange& r) {
  json j{{"kind", r.kind},
         {"first", r.first},
         {"last", r.last},
         {"frames", r.frames},
         {"worst_frame", r.worst_frame},
         {"worst", r.worst_what}};
  if (!r.pictures.empty())
    j["pictures"] = {{"side_by_side", r.pictures},
                     {"baseline", r.baseline_image},
                     {"new", r.new_image},
                     {"difference", r.difference_image},
                     {"from_fingerprints", r.pictures_from_fingerprints},
                     {"of", r.pictures_of}};
  return j;
}

// summary.json (every frame, the regressions and their ranges, the transport's totals) and report.html.
void write_summary(const ReplayOptions& o, const ReplayTransport* transport, const json* baseline,
                   ReplayResult& result) {
  json frames = json::array();
  if (transport) {
    const TransportTotals t = transport->totals();
    result.frames_lost = t.frames_lost;
    result.fec_recovered_fragments = t.fec_recovered_fragments;
    result.retransmitted_fragments = t.retransmitted_fragments;
    result.datagrams_lost_by_netsim = t.datagrams_lost_by_netsim;
    result.keyframe_requests = t.keyframe_requests;
  }
  std::ofstream lines(o.out / "frames.jsonl");
  for (const ReplayFrame& f : result.frames) {
    frames.push_back(frame_json(f, transport != nullptr));
    lines << frames.back().dump() << "\n";
  }
  json regressions = json::array();
  for (const Regression& r : result.regressions)
    regressions.push_back({{"frame", r.frame}, {"what", r.what}, {"kind", r.kind}});
  json ranges = json::array();
  for (const RegressionRange& r : result.ranges) ranges.push_back(range_json(r));
  json summary{{"scene", o.scene.filename().string()},
               {"trace", o.trace.filename().string()},
               {"eye_width", o.eye_width},
               {"eye_height", o.eye_height},
               {"fps", o.fps},
               {"encoder", result.encoder_backend},
               {"bitrate_bps", o.bitrate_bps},
               {"frame_count", result.frames.size()},
               {"frames_per_second", std::round(result.frames_per_second * 10) / 10},
               {"baseline", o.baseline.string()},
               {"regressions", regressions},
               {"regression_ranges", ranges},
               {"frames", frames}};
  summary["verdict"] = !baseline ? "no baseline" : result.regressions.empty() ? "pass" : "regression";
  if (const RegressionRange* worst = worst_range(result.ranges))
    summary["worst"] = {{"kind", worst->kind}, {"frame", worst->worst_frame}, {"what", worst->worst_what}};
  if (transport)
    summary["transport"] = {{"netsim", o.netsim_args},
                            {"seed", o.netsim_seed},
                            {"frames_lost", result.frames_lost},
                            {"fec_recovered_fragments", result.fec_recovered_fragments},
                            {"retransmitted_fragments", result.retransmitted_fragments},
                            {"datagrams_lost_by_netsim", result.datagrams_lost_by_netsim}};
  std::ofstream(o.out / "summary.json") << summary.dump(1) << "\n";
  write_report_html(o.out / "report.html", summary, baseline);
}

// What the render thread hands the encode thread: a rendered frame (its slot held until the encode thread
// gives it back) and its record, half filled.
struct RenderedItem {
  StageRendered rendered;
  size_t index = 0;
  FrameSettings settings;
};

// A bounded hand-over between the two threads, with a way to stop both when either fails.
class Handover {
 public:
  void push(RenderedItem item) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(item));
    changed_.notify_all();
  }
  // False once closed and empty, or aborted.
  bool pop(RenderedItem& item) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return aborted_ || closed_ || !queue_.empty(); });
    if (aborted_ || queue_.empty()) return false;
    item = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }
  void encoded(size_t index) {
    std::lock_guard lock(mutex_);
    encoded_.push_back(index);
    changed_.notify_all();
  }
  // Waits until fewer than `limit` frames are unreleased, collecting the encoded ones to release.
  bool wait_for_slot(size_t in_flight, size_t limit, std::vector<size_t>& to_release) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return aborted_ || in_flight - encoded_.size() < limit; });
    to_release.assign(encoded_.begin(), encoded_.end());
    encoded_.clear();
    return !aborted_;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }
  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<RenderedItem> queue_;
  std::vector<size_t> encoded_;
  bool closed_ = false, aborted_ = false;
};

}  // namespace

std::string replay_fingerprint_name(uint64_t frame) {
  char name[48];
  std::snprintf(name, sizeof(name), "fingerprints/%06llu.png", static_cast<unsigned long long>(frame));
  return name;
}

ReplayResult run_replay(const ReplayOptions& o) {
  // The rules a session keeps (core/session_shape.hpp): what replay runs, a node could run.
  if (const auto problem = session_shape_problem(SessionShape{
          .scene = "replay", .eye_width = o.eye_width, .eye_height = o.eye_height, .fps = o.fps}))
    throw_invalid_input((problem->code == "invalid_fps" ? "--fps: " : "--size: ") + problem->message);
  std::optional<json> baseline;
  if (!o.baseline.empty()) baseline = load_baseline_summary(o);
  const std::vector<TraceSample> trace = load_trace(o.trace);
  if (trace.empty()) throw_invalid_input(o.trace.string() + ": the trace is empty");
  if (sodium_init() < 0) throw_runtime("libsodium failed to initialise");
  std::error_code ec;
  std::filesystem::create_directories(o.out / "fingerprints", ec);
  std::filesystem::create_directories(o.out / "thumbnails", ec);
  if (ec) throw_runtime("cannot create " + o.out.string() + ": " + ec.message());
  std::filesystem::remove_all(o.out / "changes", ec);  // a previous run's pictures would mislead
  std::filesystem::remove(o.out / "rendered.h264", ec);
  for (const char* codec : {"h264", "hevc", "av1"})
    std::filesystem::remove(o.out / (std::string("decoded.") + codec), ec);

  const SceneData scene_data = load_scene(o.scene);
  auto context = VulkanContext::create();
  // The node's frame stage (node/frame_stage.hpp), its two halves on two threads as on a node: this thread
  // renders frame N+1 (and hashes, fingerprints and archives it) while the encode thread encodes, sends and
  // decodes frame N. One encoder thread and the frames' order keep every run bit-exact.
  constexpr size_t kFramesInFlight = 2;
  FrameStage stage(GpuScene::upload(context, scene_data),
                   FrameStageConfig{.eye_width = o.eye_width,
                                    .eye_height = o.eye_height,
                                    .fps = o.fps,
                                    .codec = parse_codec(o.codec),
                                    .encoder_backend = o.encoder,
                                    .bitrate_bps = o.bitrate_bps,
                                    .frames_in_flight = kFramesInFlight,
                                    .encoder_threads = 1,
                                    .keep_rgba = true});
  ReplayResult result;
  result.encoder_backend = stage.encoder_backend();
  const size_t count = std::min(trace.size(), size_t(o.max_frames));
  result.frames.resize(count);
  std::unique_ptr<ReplayTransport> transport;
  if (o.netsim) transport = std::make_unique<ReplayTransport>(*o.netsim, o.netsim_seed, o.fps);
  std::optional<FrameArchiveWriter> archive;
  if (o.keep_frames) archive.emplace(o.out / "rendered.h264", 2 * o.eye_width, o.eye_height);
  if (o.progress) o.progress->add_total(count);
  const int64_t start_ns = steady_now_ns();

  Handover handover;
  std::exception_ptr encode_failure;
  std::thread encode_thread([&] {
    try {
      VideoDecoder decoder(parse_codec(o.codec));
      // What the client's decoder took, as one raw stream (the pictures of a quality drop are decoded from
      // it against the baseline's).
      std::ofstream decoded_stream;
      if (o.keep_frames)
        decoded_stream.open(o.out / (std::string("decoded.") + codec_name(parse_codec(o.codec))),
                            std::ios::binary | std::ios::trunc);
      DecodedPicture picture;
      std::vector<uint8_t> rendered_y;
      bool after_loss = false;
      RenderedItem item;
      while (handover.pop(item)) {
        ReplayFrame& frame = result.frames[item.index];
        const Nv12View nv12 = stage.picture(item.rendered);  // the encoder's picture (luma for PSNR/SSIM)
        rendered_y.resize(size_t(nv12.width) * size_t(nv12.height));
        for (int row = 0; row < nv12.height; ++row)
          std::memcpy(&rendered_y[size_t(row) * size_t(nv12.width)],
                      &nv12.y[size_t(row) * size_t(nv12.y_stride)], size_t(nv12.width));
        // After a lost frame the client asks for a keyframe; giving it at once (not when the request happens
        // to arrive) keeps the run deterministic for the same losses.
        // A recording's loss-recovery encodes are made again where the node made them.
        const auto recorded = o.recorded_encodes.find(item.index);
        const RecordedEncode as_recorded =
            recorded == o.recorded_encodes.end() ? RecordedEncode{} : recorded->second;
        const StageEncoded au = stage.encode(item.rendered, item.settings,
                                             item.index == 0 || after_loss || as_recorded.keyframe ||
                                                 (transport && transport->take_keyframe_request()),
                                             as_recorded.recover_from, as_recorded.speculative);
        handover.encoded(item.index);  // the render thread may release its slot
        frame.encode_ms = double(au.encode_end_ns - au.encode_start_ns) * 1e-6;
        frame.encoded_bytes = au.access_unit.size();
        frame.keyframe = au.keyframe;
        std::span<const uint8_t> to_decode = au.access_unit;
        if (transport) {
          const TransportOutcome sent = transport->send(item.index, au.keyframe, au.access_unit);
          frame.lost = !sent.delivered;
          frame.transport_ms = sent.transport_ms;
          frame.fec_recovered = sent.fec_recovered;
          frame.retransmitted = sent.retransmitted;
          to_decode = sent.data;
          after_loss = frame.lost;
        }
        if (!frame.lost) {
          if (decoded_stream.is_open())
            decoded_stream.write(reinterpret_cast<const char*>(to_decode.data()),
                                 std::streamsize(to_decode.size()));
          const int64_t decode_start = steady_now_ns();
          if (!decoder.decode(to_decode, picture))
            throw_runtime("frame " + std::to_string(item.index) + " did not decode");
          frame.decode_ms = double(steady_now_ns() - decode_start) * 1e-6;
          frame.decoded_hash = hash_hex(picture.y);
          frame.psnr_db = std::min(99.0, plane_psnr(rendered_y, picture.y));
          frame.ssim = plane_ssim(rendered_y.data(), picture.y.data(), picture.width, picture.height);
        }
        if (o.progress) o.progress->advance();
      }
    } catch (...) {
      encode_failure = std::current_exception();
      handover.abort();
    }
  });

  const std::array<Fov, 2> default_fovs{symmetric_fov(kDefaultFovDegrees), symmetric_fov(kDefaultFovDegrees)};
  const uint64_t thumbnail_every = std::max<uint64_t>(1, count / 12);
  std::vector<const RenderedFrame*> held(count, nullptr);
  std::vector<size_t> to_release;
  size_t released = 0;
  std::exception_ptr render_failure;
  try {
    for (size_t i = 0; i < count; ++i) {
      if (!handover.wait_for_slot(i - released, kFramesInFlight, to_release)) break;
      for (size_t done : to_release) stage.release(*std::exchange(held[done], nullptr)), ++released;
      const TraceSample& sample = trace[i];
      const FrameSettings settings = i < o.recorded_settings.size() ? o.recorded_settings[i] : o.settings;
      StageRendered rendered =
          stage.render(i, stereo_view_from_head(sample.head, sample.ipd, sample.fov.value_or(default_fovs)),
                       settings, {}, steady_now_ns());
      const RenderedFrame& f = *rendered.frame;
      held[i] = &f;
      ReplayFrame& frame =
          result.frames[i];  // the fields this thread fills; the encode thread fills the rest
      frame.index = i;
      frame.t_ns = sample.t_ns;
      frame.render_ms = double(f.completed_ns - f.submitted_ns) * 1e-6;
      frame.foveation = rendered.metadata.foveation.strength;
      frame.coded_width = rendered.metadata.coded_width;
      frame.coded_height = rendered.metadata.coded_height;
      handover.push({.rendered = std::move(rendered), .index = i, .settings = settings});
      // While the frame encodes: its hash, a small fingerprint (tolerant baseline comparison), a few
      // thumbnails and the full-size archive, all from the rendered RGBA (read by both threads, written by
      // none).
      frame.render_hash = hash_hex(f.rgba);
      const ImageRgba8 rendered_image{2 * o.eye_width, o.eye_height, {f.rgba.begin(), f.rgba.end()}};
      const ImageRgba8 small = resized(rendered_image, 128);
      write_png(o.out / replay_fingerprint_name(i), small.width, small.height, small.pixels);
      if (i % thumbnail_every == 0) {
        const ImageRgba8 thumb = resized(rendered_image, 320);
        char name[48];
        std::snprintf(name, sizeof(name), "thumbnails/%06zu.png", i);
        write_png(o.out / name, thumb.width, thumb.height, thumb.pixels);
      }
      if (archive) archive->add(f.rgba);
    }
  } catch (...) {
    render_failure = std::current_exception();
    handover.abort();
  }
  handover.close();
  encode_thread.join();
  if (render_failure) std::rethrow_exception(render_failure);
  if (encode_failure) std::rethrow_exception(encode_failure);
  handover.wait_for_slot(count - released, kFramesInFlight + count, to_release);  // all encoded: collect
  for (size_t done : to_release) stage.release(*std::exchange(held[done], nullptr));
  if (archive) archive->finish();
  result.frames_per_second = double(count) / std::max(1e-9, double(steady_now_ns() - start_ns) * 1e-9);

  if (baseline) {
    result.regressions = compare_with_baseline(o, *baseline, result.frames);
    result.ranges = group_regressions(result.regressions);
    PictureSources sources{.out = o.out,
                           .baseline = o.baseline,
                           .codec = parse_codec(o.codec),
                           .delivered_now = {},
                           .delivered_then = {}};
    for (const ReplayFrame& f : result.frames) sources.delivered_now.push_back(!f.lost);
    for (const auto& f : (*baseline)["frames"]) sources.delivered_then.push_back(!f.value("lost", false));
    draw_change_pictures(sources, result.ranges);
  }
  write_summary(o, transport.get(), baseline ? &*baseline : nullptr, result);
  return result;
}

}  // namespace kairo
