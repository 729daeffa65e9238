#pragma once
// How much Reed-Solomon parity a block needs: the smallest m such that, with the measured loss rate, a block
// of k data fragments loses more than m of its k + m fragments with probability below `target`. Bursty loss
// (mean run length b > 1) is treated as independent loss of bursts: fragments are interleaved across blocks
// and paced, so a burst costs a block about b fragments at once; m is then counted in bursts.
#include <algorithm>
#include <cmath>

namespace kairo {

struct FecPolicy {
  double loss = 0.02;       // measured fraction of fragments lost (EWMA of receiver reports)
  double burst_mean = 1.0;  // measured mean loss-run length
  double target = 0.002;    // acceptable probability that FEC alone cannot recover a block
  double max_ratio = 0.5;   // never more than 50 % parity

  int parity_for(int k) const {
    if (loss <= 0.0) return 0;
    const double burst = std::max(1.0, burst_mean);
    const double p = std::min(0.5, loss / burst);  // probability a fragment starts a loss burst
    const int limit = std::min(255 - k, int(std::ceil(max_ratio * k)));
    for (int m = 0; m <= limit; ++m) {
      const int n = k + m;
      const int bursts_tolerated = int(std::floor(double(m) / burst));
      // P(more than bursts_tolerated burst starts among n fragments), binomial tail in log space.
      double tail = 0;
      for (int x = bursts_tolerated + 1; x <= n; ++x)
        tail += std::exp(std::lgamma(n + 1.0) - std::lgamma(x + 1.0) - std::lgamma(n - x + 1.0) +
                         x * std::log(p) + (n - x) * std::log1p(-p));
      if (tail <= target) return m;
    }
    return limit;
  }
};

}  // namespace kairo
