// How much parity FecPolicy gives (streaming/fec_policy.hpp), checked against a Monte Carlo run of the same
// Gilbert-Elliott channel the loss model describes: the parity it picks leaves at most `target` of blocks
// unrecoverable, and one fragment less would not.
#include "streaming/fec_policy.hpp"

#include <gtest/gtest.h>

#include <random>

namespace kairo {
namespace {

// Share of blocks of n consecutive fragments that lose more than m, on a two-state channel with the loss
// rate and burst tail the policy was told (the same fit as FecPolicy's: bursts of the mean, 90th
// percentile p90).
double simulated_failure(double loss, double mean, double p90, int n, int m, int blocks) {
  double stay = std::max(loss, 1.0 - 1.0 / mean);
  if (p90 > 1.0) stay = std::max(stay, std::pow(0.1, 1.0 / p90));
  const double start = loss * (1.0 - stay) / (1.0 - loss);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  bool bad = u(rng) < loss;
  int failed = 0;
  for (int b = 0; b < blocks; ++b) {
    int lost = 0;
    for (int i = 0; i < n; ++i) {
      lost += bad;
      bad = u(rng) < (bad ? stay : start);
    }
    failed += lost > m;
  }
  return double(failed) / blocks;
}

TEST(FecPolicy, no_loss_no_parity) {
  EXPECT_EQ((FecPolicy{.loss = 0.0}.parity_for(20)), 0);
}

TEST(FecPolicy, independent_loss_stays_within_the_ratio_cap_and_grows_with_the_loss) {
  const FecPolicy light{.loss = 0.01}, heavy{.loss = 0.05};
  EXPECT_GE(light.parity_for(20), 1);
  EXPECT_LT(light.parity_for(20), heavy.parity_for(20));
  EXPECT_LE(heavy.parity_for(20), 10);  // 50 % of 20
  EXPECT_LE(FecPolicy{.loss = 0.4}.parity_for(20), 10);
}

TEST(FecPolicy, the_parity_chosen_meets_the_target_on_the_modelled_channel_and_one_less_would_not) {
  struct Case {
    double loss, mean, p90;
    int k;
  };
  for (const Case c :
       {Case{0.05, 4, 9, 10}, Case{0.05, 4, 9, 40}, Case{0.02, 1, 1, 30}, Case{0.05, 2, 4, 20}}) {
    const FecPolicy policy{.loss = c.loss, .burst_mean = c.mean, .burst_p90 = c.p90};
    const int m = policy.parity_for(c.k);
    SCOPED_TRACE(testing::Message() << "loss " << c.loss << " bursts " << c.mean << " p90 " << c.p90 << " k "
                                    << c.k << ": parity " << m);
    ASSERT_GT(m, 0);
    // Monte Carlo with 200,000 blocks: a failure share of 0.005 is about 1,000 blocks, +-3 % noise.
    EXPECT_LE(simulated_failure(c.loss, c.mean, c.p90, c.k + m, m, 200'000), policy.target * 1.15);
    EXPECT_GT(simulated_failure(c.loss, c.mean, c.p90, c.k + m - 1, m - 1, 200'000), policy.target * 0.85);
  }
}

TEST(FecPolicy, a_long_burst_tail_takes_parity_past_the_ratio_cap_for_small_blocks_but_not_without_end) {
  const FecPolicy mean_only{.loss = 0.05, .burst_mean = 4, .burst_p90 = 1},
      tail{.loss = 0.05, .burst_mean = 4, .burst_p90 = 9};
  EXPECT_GT(tail.parity_for(6), 3);  // past 50 % of 6
  EXPECT_GT(tail.parity_for(6), mean_only.parity_for(6));
  EXPECT_LE(tail.parity_for(6), 3 + 18);  // at most 50 % and two bursts of the 90th percentile
  EXPECT_EQ((FecPolicy{.loss = 0.3, .burst_mean = 4, .burst_p90 = 9}.parity_for(6)), 3 + 18);
  EXPECT_LE(tail.parity_for(250), 5);  // never past 255 fragments a block
}

// How a frame is cut: as few fragments as the MTU allows, balanced (no fragment mostly padding), with the
// policy's parity, without loss, under random loss and for frames already in many fragments; finer for a
// small frame under bursty loss whose parity the server's cap of two per data fragment keeps short of the
// target: the cut that meets it for the fewest wire bytes. Never below kMinFragmentBody.
TEST(FecPolicy, small_frames_under_bursty_loss_are_cut_finer_and_others_at_the_mtu) {
  constexpr size_t kMtuBody = 1112, kOverhead = wire::kVideoDatagramOverhead;  // 116
  const auto server_cap = [](int k) { return 2.0 * k; };
  const FecPolicy clean{.loss = 0}, random{.loss = 0.01},
      bursty{.loss = 0.05, .burst_mean = 4, .burst_p90 = 9};
  const auto cut = [&](const FecPolicy& p, size_t bytes) {
    return p.cut_for(bytes, kMtuBody, kOverhead, server_cap);
  };
  EXPECT_EQ(cut(clean, 5'800).body, 967u);  // 6 fragments
  EXPECT_EQ(cut(clean, 5'800).parity, 0);
  EXPECT_EQ(cut(random, 5'800).body, 967u);
  EXPECT_EQ(cut(random, 5'800).parity, random.parity_for(6));
  EXPECT_EQ(cut(bursty, 38'000).body, 1'086u);  // 35 fragments: the policy's parity, block by block
  EXPECT_EQ(cut(bursty, 38'000).data, 0);
  EXPECT_EQ(cut(clean, 100).body, FecPolicy::kMinFragmentBody);
  EXPECT_EQ(cut(clean, 1'112 * 3).body, kMtuBody);

  // 5.8 kB under bursty loss: 6 fragments of 967 would carry 12 parity (the cap), short of 1 in 200.
  EXPECT_EQ(server_cap(6), 12);
  EXPECT_GT(bursty.failure(6, 12), bursty.target);
  const FecPolicy::Cut fine = cut(bursty, 5'800);
  EXPECT_GT(fine.data, 6);
  EXPECT_EQ(size_t(fine.data), (5'800 + fine.body - 1) / fine.body);
  EXPECT_GE(fine.body, FecPolicy::kMinFragmentBody);
  EXPECT_LE(fine.parity, server_cap(fine.data));
  EXPECT_LE(bursty.failure(fine.data, fine.parity), bursty.target);
  EXPECT_LT(double(fine.data + fine.parity) * double(fine.body + kOverhead), 0.9 * 18.0 * (967 + kOverhead));
  // A frame too small to cut finer than the least body: one fragment per 256 bytes at most.
  EXPECT_GE(cut(bursty, 600).body, FecPolicy::kMinFragmentBody);
  EXPECT_GE(cut(bursty, 100).body, FecPolicy::kMinFragmentBody);
}

}  // namespace
}  // namespace kairo
