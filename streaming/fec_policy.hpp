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
  double burst_p90 = 1.0;   // 90 % of loss runs are this long or shorter (the client's histogram)
  double target = 0.002;    // acceptable probability that FEC alone cannot recover a block
  double max_ratio = 0.5;   // no more than 50 % parity, but for the burst tail below

  int parity_for(int k) const {
    if (loss <= 0.0) return 0;
    const double burst = std::max(1.0, burst_mean);
    const double p = std::min(0.5, loss / burst);  // probability a fragment starts a loss burst
    // The tail of the burst lengths, not only their mean: bursts of mean 4 (geometric) leave about 10 % of
    // them 9 or longer, and a block sized by the mean loses every one of those to the round trip of a NACK.
    // Where a block is likely to see a burst at all, it gets parity for one burst of the 90th-percentile
    // length, past max_ratio if the block is small.
    const int long_burst = int(std::ceil(std::max(burst, burst_p90)));
    const double burst_in_block = 1.0 - std::pow(1.0 - p, k + long_burst);
    const int floor_m = burst_p90 > burst && burst_in_block >= 0.01 ? std::min(255 - k, long_burst) : 0;
    const int limit = std::max(floor_m, std::min(255 - k, int(std::ceil(max_ratio * k))));
    for (int m = floor_m; m <= limit; ++m) {
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
