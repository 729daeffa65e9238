#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "app/commands.hpp"
#include "app/replay_case.hpp"
#include "app/replay_suite_file.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "replay/replay.hpp"
#include "replay/replay_suite.hpp"

namespace kairo::app {
namespace {

// One line of JSON on stdout (what scripts read), the regressions on stderr.
int report_single(const ReplayOptions& r, const ReplayResult& result) {
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
                      {"regression_ranges", result.ranges.size()},
                      {"frames_per_second", std::round(result.frames_per_second * 10) / 10},
                      {"report", (r.out / "report.html").string()}};
  if (r.netsim) line["frames_lost"] = result.frames_lost;
  std::printf("%s\n", line.dump().c_str());
  for (const auto& reg : result.regressions)
    std::fprintf(stderr, "kairo replay: frame %llu: %s\n", static_cast<unsigned long long>(reg.frame),
                 reg.what.c_str());
  return result.regressions.empty() ? 0 : 3;  // a regression: neither bad input (2) nor a failure to run (1)
}

}  // namespace

Runner add_replay_command(CLI::App& app) {
  struct Options {
    ReplayCaseSpec spec;
    std::string out, baseline, suite, junit;
    float foveation = 0;
    double scale = 1;
    int fps = 30, jobs = 1;
    bool quiet = false;
    std::string size = "512x512", bitrate = "8M", netsim, gaze;
  };
  auto o = std::make_shared<Options>();
  CLI::Option* scene_option =
      app.add_option("--scene", o->spec.scene, "scene file (or a project scene name)");
  CLI::Option* trace_option = app.add_option(
      "--trace", o->spec.trace, "pose trace (JSON Lines), or a session recorded by kairo node --record");
  CLI::Option* suite_option =
      app.add_option(
             "--suite", o->suite,
             "a suite file (JSON: cases of scene, trace, settings, tolerances; docs/replay.md) instead of "
             "--scene and --trace")
          ->excludes(scene_option)
          ->excludes(trace_option);
  CLI::Option* size_option = app.add_option("--size", o->size, "per-eye WxH")->capture_default_str();
  CLI::Option* fps_option =
      app.add_option("--fps", o->fps, "frame rate the encoder is tuned for")->capture_default_str();
  app.add_option("--out", o->out, "output directory")->required();
  app.add_option("--encoder", o->spec.verbatim.encoder, "auto, nvenc, vaapi, x264, x265")
      ->capture_default_str();
  app.add_option("--codec", o->spec.verbatim.codec, "h264 or hevc")->capture_default_str();
  CLI::Option* bitrate_option =
      app.add_option("--bitrate", o->bitrate, "bit/s (k, M suffixes)")->capture_default_str();
  CLI::Option* foveation_option =
      app.add_option("--foveation", o->foveation,
                     "foveated encoding strength 0..1, as a node's quality controller sets it (0: none)")
          ->capture_default_str()
          ->check(CLI::Range(0.0f, 1.0f));
  CLI::Option* gaze_option = app.add_option(
      "--gaze", o->gaze, "X,Y: the fovea's centre, -1..1 (x right, y down); default the centre");
  CLI::Option* scale_option =
      app.add_option("--scale", o->scale, "coded size / rendered size per axis, as a node may lower it")
          ->capture_default_str()
          ->check(CLI::Range(0.25, 1.0));
  CLI::Option* netsim_option = app.add_option(
      "--netsim", o->netsim,
      "send every frame through Kairo's transport and a netsim relay with these impairments, e.g. "
      "\"--loss 5 --delay 20 --seed 3\" (kairo netsim's flags)");
  app.add_option("--baseline", o->baseline,
                 "an earlier replay's output directory to compare with (with --suite: an earlier suite's)");
  app.add_option("--image-tolerance", o->spec.verbatim.image_tolerance_db,
                 "rendered frames must match the baseline above this PSNR (dB)")
      ->capture_default_str();
  app.add_option("--quality-drop", o->spec.verbatim.quality_drop_db,
                 "allowed drop of decoded PSNR per frame (dB)")
      ->capture_default_str();
  app.add_option("--latency-rise", o->spec.verbatim.latency_rise,
                 "allowed rise of the median stage latency (share)")
      ->capture_default_str();
  app.add_option("--latency-floor", o->spec.verbatim.latency_floor_ms,
                 "a latency rise under this many ms is never a regression (timer noise)")
      ->capture_default_str();
  app.add_option("--max-frames", o->spec.verbatim.max_frames, "replay at most this many poses")
      ->capture_default_str();
  app.add_flag("--keep-frames,!--no-keep-frames", o->spec.verbatim.keep_frames,
               "keep every rendered frame full size and lossless (rendered.h264, about 0.35 MB a frame at "
               "2x512^2) so that runs against this one picture changes at full size; without, from 128-pixel "
               "fingerprints")
      ->capture_default_str();
  app.add_option("--jobs", o->jobs, "suite cases run at once (each stays bit-exact)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_flag("--quiet", o->quiet, "no progress on stderr (regressions are still listed)");
  app.add_option("--junit", o->junit, "also write JUnit XML here (one testcase per case) for CI systems");
  return [o, scene_option, trace_option, suite_option, size_option, fps_option, bitrate_option,
          foveation_option, gaze_option, scale_option, netsim_option] {
    if (suite_option->count() > 0) {
      // The suite's own file says each case's settings: flags that set one case's are refused, not ignored.
      for (CLI::Option* one : {size_option, fps_option, bitrate_option, foveation_option, gaze_option,
                               scale_option, netsim_option})
        if (one->count() > 0)
          throw_invalid_input(one->get_name() +
                              " sets one replay's value: with --suite, put it in the suite file");
      SuiteFile suite = load_suite(o->suite, o->out, o->baseline);
      Progress progress("replay " + suite.name, "frames", 0,
                        o->quiet ? ProgressMode::kQuiet : ProgressMode::kAuto);
      for (SuiteCase& c : suite.cases) c.options.progress = &progress;
      const auto start = std::chrono::steady_clock::now();
      const std::vector<CaseOutcome> outcomes = run_suite(suite.cases, o->jobs);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress.finish();
      write_suite_summary(o->out, outcomes);
      if (!o->junit.empty()) write_junit(o->junit, suite.name, outcomes);
      int failed = 0, errors = 0;
      size_t frames = 0;
      for (const CaseOutcome& c : outcomes) {
        frames += c.result ? c.result->frames.size() : 0;
        if (!c.result) {
          ++errors;
          std::fprintf(stderr, "kairo replay: %s: could not run: %s\n", c.name.c_str(), c.error.c_str());
          continue;
        }
        failed += !c.result->regressions.empty();
        for (const auto& reg : c.result->regressions)
          std::fprintf(stderr, "kairo replay: %s: frame %llu: %s\n", c.name.c_str(),
                       static_cast<unsigned long long>(reg.frame), reg.what.c_str());
      }
      std::printf("%s\n",
                  nlohmann::json{{"cases", outcomes.size()},
                                 {"failed", failed},
                                 {"errors", errors},
                                 {"frames", frames},
                                 {"frames_per_second", std::round(double(frames) / seconds * 10) / 10},
                                 {"index", (std::filesystem::path(o->out) / "index.html").string()}}
                      .dump()
                      .c_str());
      return errors > 0 ? 1 : failed > 0 ? 3 : 0;
    }
    if (scene_option->count() == 0 || trace_option->count() == 0)
      throw_invalid_input("give --scene and --trace, or --suite");
    ReplayCaseSpec spec = o->spec;
    if (size_option->count()) spec.size = o->size;
    if (fps_option->count()) spec.fps = o->fps;
    if (bitrate_option->count()) spec.bitrate = o->bitrate;
    if (foveation_option->count()) spec.foveation = o->foveation;
    if (gaze_option->count()) spec.gaze = o->gaze;
    if (scale_option->count()) spec.scale = o->scale;
    if (netsim_option->count()) spec.netsim = o->netsim;
    spec.verbatim.out = o->out;
    spec.verbatim.baseline = o->baseline;
    ReplayOptions r = replay_options(spec);
    Progress progress("replay", "frames", 0, o->quiet ? ProgressMode::kQuiet : ProgressMode::kAuto);
    r.progress = &progress;
    const auto start = std::chrono::steady_clock::now();
    const ReplayResult result = run_replay(r);
    progress.finish();
    if (!o->junit.empty()) {
      CaseOutcome one{
          .name = r.scene.stem().string() + " " + r.trace.filename().string(),
          .result = result,
          .error = {},
          .seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
          .report = r.out / "report.html"};
      write_junit(o->junit, "kairo replay", {one});
    }
    return report_single(r, result);
  };
}

}  // namespace kairo::app
