#pragma once
// The Gilbert-Elliott loss model on its own: the one `kairo netsim` impairs links with, and the one tests run
// a simulated channel with (no sockets, no wall time: the same seed gives the same losses). Every packet in
// the bad state is lost; the state lasts `burst_mean` packets on average (longer where the loss asked for
// needs it), and the good -> bad rate is chosen so that the long-run loss equals `loss_percent`.
#include <algorithm>
#include <random>

namespace kairo {

struct BurstLoss {
  double loss_percent = 0;
  double burst_mean = 1;  // 1: independent losses
  bool bad = false;       // the state, carried from packet to packet

  // Whether the next packet is lost; draws one number from `rng` (none when there is no loss).
  template <typename Random>
  bool lose(Random& rng) {
    const double p = loss_percent / 100.0;
    if (p <= 0) return false;
    if (p >= 1) return bad = true;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    // Above 50 % loss, bursts of the mean asked for cannot give it (the good -> bad rate would pass 1: 60 %
    // with independent losses once gave 50 %): bursts then last as long as the loss needs, p / (1 - p).
    const double leave_bad = std::min(1.0 / std::max(1.0, burst_mean), (1.0 - p) / p);
    const double enter_bad = std::min(1.0, p * leave_bad / (1.0 - p));
    bad = bad ? uniform(rng) >= leave_bad : uniform(rng) < enter_bad;
    return bad;
  }
};

}  // namespace kairo
