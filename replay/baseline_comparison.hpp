#pragma once
// A replay against its baseline (a previous replay's output folder): which frames regressed and why, with
// the thresholds of ReplayOptions.
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace kairo {

struct ReplayOptions;
struct ReplayFrame;
struct Regression;

// The baseline's summary.json. Throws kairo::Error (invalid input) when it is missing or not a summary.
nlohmann::json load_baseline_summary(const ReplayOptions& options);

// Regressions in frame order, each frame's first; the run's own (frame count, latency) last.
std::vector<Regression> compare_with_baseline(const ReplayOptions& options, const nlohmann::json& baseline,
                                              const std::vector<ReplayFrame>& frames);

}  // namespace kairo
