#include "core/percentile.hpp"

#include <algorithm>

namespace kairo {

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double rank = std::clamp(p, 0.0, 1.0) * double(samples.size() - 1);
  const size_t lo = size_t(rank);
  const size_t hi = std::min(lo + 1, samples.size() - 1);
  return samples[lo] + (samples[hi] - samples[lo]) * (rank - double(lo));
}

}  // namespace kairo
