#pragma once
// `kairo replay --suite FILE`: the suite file (JSON), read into cases. Format (docs/replay.md):
//   {"name": "nightly", "defaults": {CASE FIELDS}, "cases": [{"name": "room-walk", CASE FIELDS}, ...]}
// Case fields: scene, trace, size, fps, bitrate, codec, encoder, foveation, gaze, scale, netsim, max_frames,
// tolerances {image_db, quality_drop_db, latency_rise, latency_floor_ms}. Paths are relative to the file.
#include <filesystem>
#include <string>
#include <vector>

#include "replay/replay_suite.hpp"

namespace kairo::app {

struct SuiteFile {
  std::string name;
  std::vector<SuiteCase> cases;
};

// Each case's output goes to out/<name>; its baseline (when `baseline` is given) is baseline/<name>, and a
// case the baseline does not have runs without a comparison. Throws kairo::Error (invalid input) naming the
// case and field: an unknown field, a duplicate or unusable name, a value out of range.
SuiteFile load_suite(const std::filesystem::path& file, const std::filesystem::path& out,
                     const std::filesystem::path& baseline);

}  // namespace kairo::app
