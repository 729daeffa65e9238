#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/cli_parsing.hpp"
#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "encoder/video_encoder.hpp"
#include "encoder/y4m.hpp"

namespace kairo::app {
namespace {

const char* kCodecs[] = {"h264", "hevc", "av1"};

std::string status_text(const BackendStatus& s) {
  return s.available ? "yes" : "no: " + s.reason;
}

}  // namespace

Runner add_encoders_command(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto vaapi_device = std::make_shared<std::string>();
  app.add_flag("--json", *json, "print JSON");
  app.add_option("--vaapi-device", *vaapi_device, "DRM render node for VA-API (default: the first found)");
  return [json, vaapi_device] {
    nlohmann::json out = nlohmann::json::array();
    for (const char* codec : kCodecs)
      for (const BackendStatus& s : probe_encoders(parse_codec(codec), *vaapi_device)) {
        if (*json) {
          out.push_back({{"backend", s.backend},
                         {"encoder", s.encoder},
                         {"codec", codec_name(s.codec)},
                         {"available", s.available},
                         {"reason", s.reason},
                         {"loss_recovery", s.loss_recovery}});
        } else {
          std::printf("%-6s %-7s %-12s %-24s %s\n", codec_name(s.codec), s.backend.c_str(), s.encoder.c_str(),
                      s.loss_recovery.c_str(), status_text(s).c_str());
        }
      }
    if (*json) std::printf("%s\n", out.dump().c_str());
    return 0;
  };
}

Runner add_encode_command(CLI::App& app) {
  struct Options {
    std::string in, out, codec = "h264", encoder = "auto", bitrate = "20M", vaapi_device;
    int fps = 0, slices = 4;
    bool quiet = false;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--in", o->in, "raw pictures, YUV4MPEG2 8-bit 4:2:0 (.y4m)")->required();
  app.add_option("--codec", o->codec, "h264, hevc or av1")->capture_default_str();
  app.add_option("--encoder", o->encoder, "auto, nvenc, vaapi, x264, x265 or svtav1")->capture_default_str();
  app.add_option("--bitrate", o->bitrate, "target bits/s, e.g. 20M or 800k")->capture_default_str();
  app.add_option("--fps", o->fps, "frame rate (default: the file's)");
  app.add_option("--slices", o->slices, "slices per picture")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--vaapi-device", o->vaapi_device, "DRM render node for VA-API");
  app.add_option("--out", o->out, "output elementary stream (Annex-B)")->required();
  app.add_flag("--quiet", o->quiet, "no progress on stderr");
  return [o] {
    const int64_t bitrate = parse_bitrate(o->bitrate, "--bitrate");
    const Codec codec = parse_codec(o->codec);
    Y4mReader reader(o->in);
    EncoderConfig config{.codec = codec,
                         .backend = o->encoder,
                         .width = reader.width(),
                         .height = reader.height(),
                         .fps = o->fps > 0 ? o->fps : reader.fps(),
                         .bitrate_bps = bitrate,
                         .slices = o->slices,
                         .vaapi_device = o->vaapi_device};
    auto encoder = VideoEncoder::open(config);
    std::ofstream out(o->out, std::ios::binary);
    if (!out) throw_runtime("cannot write " + o->out);
    std::vector<uint8_t> y, uv;
    std::vector<double> ms;
    uint64_t bytes = 0, frame = 0, keyframes = 0;
    Progress progress("encode", "frames", 0, o->quiet ? ProgressMode::kQuiet : ProgressMode::kAuto);
    while (reader.next(y, uv)) {
      const AccessUnit& au = encoder->encode(
          EncodeRequest{.frame_id = frame,
                        .pose_id = frame,
                        .eye = -1,
                        .picture = {.y = y, .uv = uv, .width = reader.width(), .height = reader.height()},
                        .keyframe = false});
      out.write(reinterpret_cast<const char*>(au.data.data()), std::streamsize(au.data.size()));
      bytes += au.data.size();
      keyframes += au.keyframe;
      ms.push_back(double(au.encode_end_ns - au.encode_start_ns) * 1e-6);
      ++frame;
      progress.advance();
    }
    progress.finish();
    if (!out) throw_runtime("error writing " + o->out);
    if (frame == 0) throw_invalid_input(o->in + ": no frames");
    std::sort(ms.begin(), ms.end());
    auto percentile = [&](double p) { return ms[std::min(ms.size() - 1, size_t(p * double(ms.size())))]; };
    nlohmann::json summary{{"frames", frame},
                           {"bytes", bytes},
                           {"keyframes", keyframes},
                           {"bitrate_bps", double(bytes) * 8.0 * config.fps / double(frame)},
                           {"ms_per_frame_p50", percentile(0.5)},
                           {"ms_per_frame_p99", percentile(0.99)},
                           {"backend", encoder->backend()},
                           {"encoder", encoder->encoder_name()},
                           {"codec", codec_name(codec)}};
    std::printf("%s\n", summary.dump().c_str());
    return 0;
  };
}

}  // namespace kairo::app
