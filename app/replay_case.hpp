#pragma once
// One replay as QA describes it, on `kairo replay`'s command line or as a case of a suite (--suite): the
// values as written, and which were written at all (a recorded session supplies the others: its size, frame
// rate, per-frame settings and first bitrate). One conversion to ReplayOptions for both, so a case in a suite
// means exactly what the same flags mean.
#include <filesystem>
#include <optional>
#include <string>

#include "replay/replay.hpp"

namespace kairo::app {

struct ReplayCaseSpec {
  std::string scene;  // a file, or a project scene's name
  std::string trace;  // a pose trace (JSON Lines), or a directory recorded by `kairo node --record`
  std::optional<std::string> size;  // "WxH"
  std::optional<int> fps;
  std::optional<std::string> bitrate;  // "8M", "800k", ...
  std::optional<float> foveation;      // 0..1
  std::optional<std::string> gaze;     // "X,Y", -1..1
  std::optional<double> scale;         // 0.25..1
  std::optional<std::string> netsim;   // kairo netsim's flags in one string
  // What is used as written (encoder, codec, tolerances, max_frames, out, baseline), with ReplayOptions' own
  // defaults; replay_options() fills in the rest from the fields above.
  ReplayOptions verbatim{};
};

// Throws kairo::Error (invalid input) naming the field, for a value out of range or a recording that is
// not one.
ReplayOptions replay_options(const ReplayCaseSpec& spec);

}  // namespace kairo::app
