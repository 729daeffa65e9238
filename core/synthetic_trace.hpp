#pragma once
// A seeded, realistic synthetic head-motion generator for tests, demos and benchmarks when no recorded
// trace is at hand: slow looking around, quick saccade-like turns, and small translations of a seated user.
#include <cstdint>
#include <vector>

#include "core/trace.hpp"

namespace kairo {

struct SyntheticTraceOptions {
  double duration_s = 10.0;
  double rate_hz = 90.0;
  uint64_t seed = 1;
  float eye_height_m = 1.6f;
  float ipd = kDefaultIpdMetres;
  double mean_turn_interval_s = 2.5;  // quick turns arrive as a Poisson process
};

std::vector<TraceSample> synthetic_trace(const SyntheticTraceOptions& options);

}  // namespace kairo
