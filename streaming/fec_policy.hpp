#pragma once
// How much Reed-Solomon parity a block needs: the smallest m such that a block of k data fragments loses more
// than m of its k + m fragments with probability at most `target`, under a loss model fitted to what the
// client measures: a Gilbert-Elliott chain (a fragment is lost in the "bad" state; bad stays bad with
// probability `stay`) with the measured loss rate, and bursts at least as long as the measured mean and as
// the measured 90th percentile say (bursts of mean 4 leave about 10 % of them 9 or longer: parity sized by
// the mean sends every frame one of those hits to a NACK's round trip, late for the display). The block's
// fragments are taken as consecutive on the wire (true of every frame under 64 fragments; larger ones are
// interleaved over several blocks, which shortens the bursts each block sees: the model is conservative).
//
// Written by hand: the block failure probability of a two-state chain is a small dynamic programme over the
// block's positions (no library in Debian's archive computes it); FEC codecs (ISA-L) only do the coding.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

#include "streaming/wire.hpp"

namespace kairo {

struct FecPolicy {
  double loss = 0.02;       // measured fraction of fragments lost (EWMA of receiver reports)
  double burst_mean = 1.0;  // measured mean loss-run length
  double burst_p90 = 1.0;   // 90 % of loss runs are this long or shorter (the client's histogram)
  // Acceptable probability that FEC alone cannot recover a block (it is then NACKed, and late for the display
  // when the round trip is long: each such frame holds a display slot). 1 in 500: at 5 % loss in bursts of
  // 4, 2x256^2 at 30 fps, the simulated channel has 17 frames late and 1 lost of 12,000 where 1 in 200 had
  // 42 and 4, for 10 % more wire bytes (tests/simulated_channel_test.cpp); live, 99.0-99.7 % of display
  // slots showed a correct frame against 98.5-99.3 % (bench/RESULTS.md, issue 15, session 33).
  double target = 0.002;
  double max_ratio = 0.5;  // no more than 50 % parity, but for bursty loss (below)

  int parity_for(int k) const {
    if (loss <= 0.0 || k <= 0) return 0;
    const Chain chain = fitted();
    // Bursty loss may take parity past max_ratio by up to two bursts of the 90th-percentile length: a small
    // block that sees a burst at all loses most of one.
    const double burst = std::max({1.0, burst_mean, burst_p90});
    const int ratio_cap = int(std::ceil(max_ratio * k));
    const int tail_allowance = burst > 1.0 ? int(std::ceil(2.0 * burst)) : 0;
    const int limit = std::min(255 - k, ratio_cap + tail_allowance);
    // The failure probability falls as parity grows (each added fragment is lost with probability <= 1/2
    // but adds one to what the block tolerates): binary search for the smallest m that meets the target.
    int low = 0, high = limit;
    if (block_failure(chain, k + high, high) > target) return limit;
    while (low < high) {
      const int mid = (low + high) / 2;
      if (block_failure(chain, k + mid, mid) <= target)
        high = mid;
      else
        low = mid + 1;
    }
    return low;
  }

  // Probability that FEC alone cannot recover a block of k data fragments carrying m parity.
  double failure(int k, int m) const { return k <= 0 ? 0.0 : block_failure(fitted(), k + m, m); }

  // How a frame of `frame_bytes` is cut into fragments of one body size (at most `max_body`, at least
  // kMinFragmentBody), and the parity of its block. At the least: as few fragments as `max_body` allows,
  // balanced (a 5.8 kB frame as 6 of 967 bytes, not 5 of 1,112 and one of 240 padded to 1,112: the padding
  // went on the wire, and into every parity fragment), with the parity the policy asks within `cap(k)`.
  // Under loss, finer where that meets `target` for fewer wire bytes (counting `datagram_overhead` a
  // datagram), and where the coarse cut cannot meet it (the cap binds: a small frame under bursty loss) and
  // no cut can, the one that recovers its block most often for no more bytes than the coarse cut. Loss comes
  // in runs of datagrams, so a frame in few large fragments needs parity for most of a run: at 5 % loss in
  // runs of 4 and a target of 1 in 200, the 5.8 kB frame as 6 fragments needs 12 parity where the server's
  // cap allows 12 (0.56 % of blocks lost, 19.5 kB on the wire); 22 fragments of 264 bytes need 18 (0.49 %,
  // 15.2 kB). (Spending all of
  // the coarse cut's bytes on parity instead, 29 fragments, lost 3-4 frames in two live runs of three at
  // 0.7-0.8 Mbit/s of video, against 0-1 at 1.3 Mbit/s: the parity took the video's share of the target.)
  struct Cut {
    size_t body = 0;
    int data = 0, parity = 0;  // the parity for a block of `data` fragments (0 and 0: the policy's own)
  };
  template <typename ParityCap>
  Cut cut_for(size_t frame_bytes, size_t max_body, size_t datagram_overhead, ParityCap&& cap) const {
    if (frame_bytes == 0 || max_body <= kMinFragmentBody) return {max_body, 0, 0};
    const int coarse = int((frame_bytes + max_body - 1) / max_body);
    const auto capped = [&](int k, int m) { return std::max(0, std::min({m, int(cap(k)), 255 - k})); };
    // data 0: no block of its own parity (the caller's policy decides, block by block).
    Cut best{std::clamp((frame_bytes + size_t(coarse) - 1) / size_t(coarse), kMinFragmentBody, max_body), 0,
             0};
    if (loss <= 0.0 || coarse > kCutFinerUpTo) return best;
    best.data = int((frame_bytes + best.body - 1) / best.body);
    best.parity = capped(best.data, parity_for(best.data));
    if (best.parity == 0) return best;
    const Chain chain = fitted();
    double best_failure = block_failure(chain, best.data + best.parity, best.parity);
    // The finer cut that meets the target for the fewest bytes (5 % fewer than a coarser cut that meets it
    // too: each datagram costs the sender and the receiver work beyond its bytes); when none does, the one
    // that recovers its block most often. Never more bytes than the coarse cut.
    const double budget = double(best.data + best.parity) * double(best.body + datagram_overhead);
    double best_cost = budget;
    bool best_meets = best_failure <= target;
    for (int k = best.data + 1; k <= kFinestCut; ++k) {
      const size_t body = (frame_bytes + size_t(k) - 1) / size_t(k);
      if (body < kMinFragmentBody) break;
      if (int((frame_bytes + body - 1) / body) != k) continue;  // the same cut as a coarser k
      const double datagram = double(body + datagram_overhead);
      int m = capped(k, parity_for(k));
      double fails = block_failure(chain, k + m, m);
      if (fails > target) {  // short of it: as much parity as the bytes allow
        m = capped(k, int(budget / datagram) - k);
        fails = block_failure(chain, k + m, m);
      }
      const double cost = double(k + m) * datagram;
      const bool meets = fails <= target;
      if (cost > budget) continue;
      if (meets ? (!best_meets || cost < 0.95 * best_cost) : (!best_meets && fails < best_failure)) {
        best = {body, k, m};
        best_failure = fails;
        best_cost = cost;
        best_meets = meets;
      }
    }
    return best;
  }
  // Only frames of up to kCutFinerUpTo fragments are cut finer (their blocks are short against a run of
  // losses; above it the policy's parity fits the cap), into kFinestCut at most; body bytes at least
  // kMinFragmentBody (headers are 116 bytes a datagram with IP and UDP).
  static constexpr int kCutFinerUpTo = 12, kFinestCut = 32;
  static constexpr size_t kMinFragmentBody = wire::kMinFragmentBody;

 private:
  struct Chain {
    double start = 0;  // P(good -> bad)
    double stay = 0;   // P(bad -> bad)
    double loss = 0;   // stationary P(bad)
  };

  // The chain with the measured loss and a burst length (1 / (1 - stay)) at least the measured mean, whose
  // tail P(run > p90) = stay^p90 is at most 10 % (so that the measured 90th percentile holds), and at least
  // independent loss (stay >= loss).
  Chain fitted() const {
    Chain c;
    c.loss = std::clamp(loss, 1e-6, 0.5);
    double stay = std::max(c.loss, 1.0 - 1.0 / std::max(1.0, burst_mean));
    if (burst_p90 > 1.0) stay = std::max(stay, std::pow(0.1, 1.0 / burst_p90));
    c.stay = std::min(stay, 0.99);
    c.start = std::min(1.0, c.loss * (1.0 - c.stay) / (1.0 - c.loss));
    return c;
  }

  // P(more than m of n consecutive fragments lost), the first in the chain's stationary state.
  static double block_failure(const Chain& c, int n, int m) {
    // ok[s][j]: probability of being in state s (0 good, 1 bad) with j fragments lost so far (j <= m). Only
    // columns 0..m are used: the buffers are left uninitialised beyond them, and the two rows are swapped
    // by pointer (cut_for evaluates this a few hundred times a frame: zeroing and swapping all 256 columns
    // made a cut cost half a millisecond).
    using Rows = std::array<std::array<double, 256>, 2>;
    Rows first, second;
    Rows* ok = &first;
    Rows* next = &second;
    for (auto& row : *ok) std::fill(row.begin(), row.begin() + m + 1, 0.0);
    (*ok)[0][0] = 1.0 - c.loss;
    if (m >= 1) (*ok)[1][1] = c.loss;
    for (int i = 1; i < n; ++i) {
      for (auto& row : *next) std::fill(row.begin(), row.begin() + m + 1, 0.0);
      for (int j = 0; j <= m; ++j) {
        const double good = (*ok)[0][j], bad = (*ok)[1][j];
        if (good == 0.0 && bad == 0.0) continue;
        (*next)[0][j] += good * (1.0 - c.start) + bad * (1.0 - c.stay);
        if (j < m) (*next)[1][j + 1] += good * c.start + bad * c.stay;
      }
      std::swap(ok, next);
    }
    double survived = 0;
    for (int j = 0; j <= m; ++j) survived += (*ok)[0][j] + (*ok)[1][j];
    return std::max(0.0, 1.0 - survived);
  }
};

}  // namespace kairo
