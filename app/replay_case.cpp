#include "app/replay_case.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "app/cli_parsing.hpp"
#include "app/impairment_options.hpp"
#include "app/scene_paths.hpp"
#include "core/error.hpp"

namespace kairo::app {
namespace {

// Each line of a recording's JSON-lines file, parsed, to `take`; a line that is not a JSON object, or that
// `take` refuses (throws), fails with the file and line. An absent file has no lines.
void for_each_json_line(const std::filesystem::path& path,
                        const std::function<void(const nlohmann::json&)>& take) {
  std::ifstream in(path);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    try {
      if (j.is_discarded() || !j.is_object()) throw std::invalid_argument("not a JSON object");
      take(j);
    } catch (const std::exception& e) {
      throw_invalid_input(path.string() + ":" + std::to_string(n) + ": " + e.what());
    }
  }
}

// A recording's frames.jsonl (node/session_recorder.hpp): one line per rendered frame. Absent in older
// recordings: then every frame uses the command line's settings.
std::vector<FrameSettings> load_recorded_settings(const std::filesystem::path& path) {
  std::vector<FrameSettings> out;
  for_each_json_line(path, [&](const nlohmann::json& j) {
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
  });
  return out;
}

// A recording's encodes.jsonl (node/session_recorder.hpp): the frames its node encoded for a loss. Absent in
// older recordings and in those of sessions that lost nothing.
std::map<uint64_t, RecordedEncode> load_recorded_encodes(const std::filesystem::path& path) {
  std::map<uint64_t, RecordedEncode> out;
  for_each_json_line(path, [&](const nlohmann::json& j) {
    RecordedEncode e{.keyframe = j.at("keyframe").get<bool>(),
                     .speculative = j.at("speculative").get<bool>()};
    const uint64_t frame = j.at("frame").get<uint64_t>();
    if (j.contains("recover_from")) e.recover_from = j.at("recover_from").get<uint64_t>();
    if (e.recover_from && *e.recover_from >= frame)
      throw std::invalid_argument("recover_from must be an earlier frame");
    if (!out.emplace(frame, e).second) throw std::invalid_argument("a frame recorded twice");
  });
  return out;
}

}  // namespace

ReplayOptions replay_options(const ReplayCaseSpec& spec) {
  ReplayOptions r = spec.verbatim;
  if (spec.fps && (*spec.fps < 1 || *spec.fps > 240)) throw_invalid_input("fps must be 1 to 240");
  if (spec.foveation) {
    if (!(*spec.foveation >= 0 && *spec.foveation <= 1))
      throw_invalid_input("--foveation must be within 0..1");
    r.settings.foveation = *spec.foveation;
  }
  if (spec.scale) {
    if (!(*spec.scale >= 0.25 && *spec.scale <= 1)) throw_invalid_input("--scale must be within 0.25..1");
    r.settings.resolution_scale = *spec.scale;
  }
  if (spec.gaze) {
    const auto comma = spec.gaze->find(',');
    try {
      if (comma == std::string::npos) throw std::invalid_argument("no comma");
      r.settings.gaze = {std::stof(spec.gaze->substr(0, comma)), std::stof(spec.gaze->substr(comma + 1))};
    } catch (const std::exception&) {
      throw_invalid_input("--gaze must be X,Y, got \"" + *spec.gaze + "\"");
    }
    if (!(std::abs(r.settings.gaze.x) <= 1 && std::abs(r.settings.gaze.y) <= 1))
      throw_invalid_input("--gaze X,Y must be within -1..1");
  }
  std::string size = spec.size.value_or("512x512");
  r.fps = spec.fps.value_or(30);
  std::filesystem::path trace = spec.trace;
  const bool settings_given = spec.foveation || spec.gaze || spec.scale;
  if (std::filesystem::is_directory(trace)) {
    // A recorded session: its poses, and its size and frame rate unless given here.
    std::ifstream in(trace / "session.json");
    const auto session = nlohmann::json::parse(in, nullptr, false);
    if (session.is_discarded() || !session.is_object())
      throw_invalid_input(trace.string() + " is not a session recording (no session.json)");
    if (!spec.size)
      size = std::to_string(session.value("eye_width", 512)) + "x" +
             std::to_string(session.value("eye_height", 512));
    if (!spec.fps) r.fps = session.value("fps", r.fps);
    // The settings each frame was made with (foveation, its centre, scale, bitrate), unless given here.
    if (!settings_given) r.recorded_settings = load_recorded_settings(trace / "frames.jsonl");
    r.recorded_encodes = load_recorded_encodes(trace / "encodes.jsonl");
    trace /= "poses.jsonl";
  }
  const Size parsed = parse_size(size, "--size");
  r.scene = resolve_scene(spec.scene);
  r.trace = trace;
  r.eye_width = parsed.width;
  r.eye_height = parsed.height;
  r.bitrate_bps = parse_bitrate(spec.bitrate.value_or("8M"), "--bitrate");
  // A recording: the encoder starts at the session's first bitrate, as the node's did.
  if (!r.recorded_settings.empty() && !spec.bitrate && r.recorded_settings[0].bitrate_bps > 0)
    r.bitrate_bps = r.recorded_settings[0].bitrate_bps;
  if (spec.netsim && !spec.netsim->empty()) {
    ImpairmentConfig impairment;
    parse_impairment(*spec.netsim, impairment, r.netsim_seed);
    r.netsim = impairment;
    r.netsim_args = *spec.netsim;
  }
  return r;
}

}  // namespace kairo::app
