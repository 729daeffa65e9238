#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "app/cli_parsing.hpp"
#include "app/commands.hpp"
#include "app/impairment_options.hpp"
#include "app/scene_paths.hpp"
#include "core/error.hpp"
#include "replay/replay.hpp"

namespace kairo::app {
namespace {

// A recording's frames.jsonl (node/session_recorder.hpp): one line per rendered frame. Absent in older
// recordings: then every frame uses the command line's settings.
std::vector<FrameSettings> load_recorded_settings(const std::filesystem::path& path) {
  std::vector<FrameSettings> out;
  std::ifstream in(path);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    try {
      if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("not a JSON object");
      const auto& gaze = j.at("gaze");
      FrameSettings s{.foveation = j.at("foveation").get<float>(),
                      .gaze = {gaze.at(0).get<float>(), gaze.at(1).get<float>()},
                      .resolution_scale = j.at("scale").get<double>(),
                      .bitrate_bps = j.at("bitrate_bps").get<int64_t>(),
                      .fps = j.at("fps").get<int>()};
      if (!(s.foveation >= 0 && s.foveation <= 1 && s.resolution_scale > 0 && s.resolution_scale <= 1 &&
            s.bitrate_bps >= 0 && s.fps >= 0 && std::abs(s.gaze.x) <= 1 && std::abs(s.gaze.y) <= 1))
        throw std::invalid_argument("a value out of range");
      out.push_back(s);
    } catch (const std::exception& e) {
      throw_invalid_input(path.string() + ":" + std::to_string(n) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace

Runner add_replay_command(CLI::App& app) {
  struct Options {
    ReplayOptions replay;
    std::string scene, trace, size = "512x512", out, baseline, bitrate = "8M", netsim, gaze;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--scene", o->scene, "scene file (or a project scene name)")->required();
  app.add_option("--trace", o->trace, "pose trace (JSON Lines), or a session recorded by kairo node --record")
      ->required();
  CLI::Option* size_option = app.add_option("--size", o->size, "per-eye WxH")->capture_default_str();
  CLI::Option* fps_option =
      app.add_option("--fps", o->replay.fps, "frame rate the encoder is tuned for")->capture_default_str();
  app.add_option("--out", o->out, "output directory")->required();
  app.add_option("--encoder", o->replay.encoder, "auto, nvenc, vaapi, x264, x265")->capture_default_str();
  app.add_option("--codec", o->replay.codec, "h264 or hevc")->capture_default_str();
  CLI::Option* bitrate_option =
      app.add_option("--bitrate", o->bitrate, "bit/s (k, M suffixes)")->capture_default_str();
  CLI::Option* foveation_option =
      app.add_option("--foveation", o->replay.settings.foveation,
                     "foveated encoding strength 0..1, as a node's quality controller sets it (0: none)")
          ->capture_default_str()
          ->check(CLI::Range(0.0f, 1.0f));
  CLI::Option* gaze_option = app.add_option(
      "--gaze", o->gaze, "X,Y: the fovea's centre, -1..1 (x right, y down); default the centre");
  CLI::Option* scale_option = app.add_option("--scale", o->replay.settings.resolution_scale,
                                             "coded size / rendered size per axis, as a node may lower it")
                                  ->capture_default_str()
                                  ->check(CLI::Range(0.25, 1.0));
  app.add_option("--netsim", o->netsim,
                 "send every frame through Kairo's transport and a netsim relay with these impairments, e.g. "
                 "\"--loss 5 --delay 20 --seed 3\" (kairo netsim's flags)");
  app.add_option("--baseline", o->baseline, "an earlier replay's output directory to compare with");
  app.add_option("--image-tolerance", o->replay.image_tolerance_db,
                 "rendered frames must match the baseline above this PSNR (dB)")
      ->capture_default_str();
  app.add_option("--quality-drop", o->replay.quality_drop_db, "allowed drop of decoded PSNR per frame (dB)")
      ->capture_default_str();
  app.add_option("--latency-rise", o->replay.latency_rise, "allowed rise of the median stage latency (share)")
      ->capture_default_str();
  app.add_option("--latency-floor", o->replay.latency_floor_ms,
                 "a latency rise under this many ms is never a regression (timer noise)")
      ->capture_default_str();
  app.add_option("--max-frames", o->replay.max_frames, "replay at most this many poses")
      ->capture_default_str();
  return [o, size_option, fps_option, foveation_option, gaze_option, scale_option, bitrate_option] {
    ReplayOptions r = o->replay;
    std::filesystem::path trace = o->trace;
    if (!o->gaze.empty()) {
      const auto comma = o->gaze.find(',');
      try {
        if (comma == std::string::npos) throw std::invalid_argument("no comma");
        r.settings.gaze = {std::stof(o->gaze.substr(0, comma)), std::stof(o->gaze.substr(comma + 1))};
      } catch (const std::exception&) {
        throw_invalid_input("--gaze must be X,Y, got \"" + o->gaze + "\"");
      }
      if (!(std::abs(r.settings.gaze.x) <= 1 && std::abs(r.settings.gaze.y) <= 1))
        throw_invalid_input("--gaze X,Y must be within -1..1");
    }
    const bool settings_given = foveation_option->count() + gaze_option->count() + scale_option->count() > 0;
    if (std::filesystem::is_directory(trace)) {
      // A recorded session: its poses, and its size and frame rate unless given here.
      std::ifstream in(trace / "session.json");
      const auto session = nlohmann::json::parse(in, nullptr, false);
      if (session.is_discarded() || !session.is_object())
        throw_invalid_input(trace.string() + " is not a session recording (no session.json)");
      if (size_option->count() == 0)
        o->size = std::to_string(session.value("eye_width", 512)) + "x" +
                  std::to_string(session.value("eye_height", 512));
      if (fps_option->count() == 0) r.fps = session.value("fps", r.fps);
      // The settings each frame was made with (foveation, its centre, scale, bitrate), unless given here.
      if (!settings_given) r.recorded_settings = load_recorded_settings(trace / "frames.jsonl");
      trace /= "poses.jsonl";
    }
    const Size size = parse_size(o->size, "--size");
    r.scene = resolve_scene(o->scene);
    r.trace = trace;
    r.out = o->out;
    r.baseline = o->baseline;
    r.eye_width = size.width;
    r.eye_height = size.height;
    r.bitrate_bps = parse_bitrate(o->bitrate, "--bitrate");
    // A recording: the encoder starts at the session's first bitrate, as the node's did.
    if (!r.recorded_settings.empty() && bitrate_option->count() == 0 &&
        r.recorded_settings[0].bitrate_bps > 0)
      r.bitrate_bps = r.recorded_settings[0].bitrate_bps;
    if (!o->netsim.empty()) {
      ImpairmentConfig impairment;
      parse_impairment(o->netsim, impairment, r.netsim_seed);
      r.netsim = impairment;
      r.netsim_args = o->netsim;
    }
    const ReplayResult result = run_replay(r);
    double psnr = 0;
    size_t decoded = 0;
    for (const auto& f : result.frames)
      if (!f.lost) {
        psnr += f.psnr_db;
        ++decoded;
      }
    nlohmann::json line{{"frames", result.frames.size()},
                        {"encoder", result.encoder_backend},
                        {"mean_psnr_db", psnr / double(std::max<size_t>(1, decoded))},
                        {"regressions", result.regressions.size()},
                        {"report", (r.out / "report.html").string()}};
    if (r.netsim) line["frames_lost"] = result.frames_lost;
    std::printf("%s\n", line.dump().c_str());
    if (result.regressions.empty()) return 0;
    for (const auto& reg : result.regressions)
      std::fprintf(stderr, "kairo replay: frame %llu: %s\n", static_cast<unsigned long long>(reg.frame),
                   reg.what.c_str());
    return 3;  // a regression: neither bad input (2) nor a failure to run (1)
  };
}

}  // namespace kairo::app
