#pragma once
// Percentiles of latency samples, for reports (client, replay, benchmarks): off the hot path.
#include <vector>

namespace kairo {

// The p-quantile (p in 0..1) of `samples`, interpolated linearly between neighbouring order statistics;
// 0 when there are none.
double percentile(std::vector<double> samples, double p);

}  // namespace kairo
