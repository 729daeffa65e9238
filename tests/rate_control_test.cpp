// Rate control as pure logic, replayed offline and deterministic: the picture ceiling, keyframe requests
// under a loss burst, and the estimate's recovery after one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "node/quality_controller.hpp"
#include "streaming/bandwidth_estimator.hpp"
#include "streaming/keyframe_requests.hpp"

namespace kairo {
namespace {

QualityInputs link(int64_t t_ms, int64_t transport_bps) {
  return QualityInputs{.now_ns = t_ms * 1'000'000,
                       .transport_target_bps = transport_bps,
                       .client_decode_ms = 2,
                       .slowest_stage_ms = 5};
}

TEST(RateControl, the_target_is_the_least_of_link_picture_ceiling_and_cap_and_says_which) {
  // 2 x 256^2 at 30 fps: 0.5 bit per pixel is 1.97 Mbit/s.
  QualityController q(
      QualityCaps{
          .max_bitrate_bps = std::nullopt, .max_fps = 30, .min_fps = 30, .foveation_available = false},
      256, 256, 8'000'000);
  EXPECT_EQ(q.settings().bitrate_bps, 1'966'080);  // the initial rate already under the ceiling
  EXPECT_EQ(q.settings().limited_by, BitrateLimit::kPicture);
  q.update(link(0, 200'000'000));  // an idle loopback link: the estimate says 200 Mbit/s
  EXPECT_EQ(q.settings().bitrate_bps, 1'966'080);
  EXPECT_EQ(q.settings().limited_by, BitrateLimit::kPicture);
  const auto& d = q.update(link(100, 1'000'000));  // the link falls under the ceiling
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].reason, "bandwidth_estimate");
  EXPECT_EQ(q.settings().bitrate_bps, 1'000'000);
  EXPECT_EQ(q.settings().limited_by, BitrateLimit::kLink);
  q.set_caps(
      QualityCaps{.max_bitrate_bps = 500'000, .max_fps = 30, .min_fps = 30, .foveation_available = false});
  q.update(link(200, 200'000'000));
  EXPECT_EQ(q.settings().bitrate_bps, 500'000);
  EXPECT_EQ(q.settings().limited_by, BitrateLimit::kCap);
  // No ceiling configured: the link alone (the old behaviour, for a test of the estimator's reach).
  QualityController open(QualityCaps{.max_bitrate_bps = std::nullopt,
                                     .max_fps = 30,
                                     .min_fps = 30,
                                     .foveation_available = true,
                                     .picture_ceiling_bpp = 0},
                         256, 256, 8'000'000);
  open.update(link(0, 200'000'000));
  EXPECT_EQ(open.settings().bitrate_bps, 200'000'000);
}

TEST(RateControl, the_ceiling_counts_the_coded_pixels_so_foveation_lowers_it) {
  QualityController q(QualityCaps{.max_bitrate_bps = std::nullopt, .max_fps = 30, .min_fps = 20}, 1024, 1024,
                      500'000);
  // Starved at 0.5 Mbit/s: foveation comes on (fewer coded pixels), and the ceiling follows the picture.
  for (int t = 0; t < 3000; t += 100) q.update(link(t, 500'000));
  ASSERT_GT(q.settings().foveation, 0.0f);
  for (int t = 3000; t < 3500; t += 100) q.update(link(t, 500'000'000));
  EXPECT_EQ(q.settings().limited_by, BitrateLimit::kPicture);
  EXPECT_LT(q.settings().bitrate_bps, int64_t(0.5 * 2 * 1024 * 1024 * 30));
}

// A loss burst as the node saw it in the two-session spiral: the client loses frames 100-104 (one request
// each, sent as each loss is found), the node encodes a keyframe at 106 meanwhile, and requests for the
// burst's later frames cross it in flight. Each request used to force a keyframe of its own.
TEST(RateControl, one_loss_burst_costs_one_keyframe_however_many_frames_it_took) {
  KeyframeRequests policy;
  int keyframes = 0;
  uint64_t next_frame = 100;
  const auto encode_and_send = [&] {
    const bool keyframe = policy.take().has_value();
    keyframes += keyframe ? 1 : 0;
    policy.on_frame_sent(next_frame++, keyframe);
  };
  policy.on_frame_sent(0, true);  // the session's first frame
  for (int i = 0; i < 100; ++i) policy.on_frame_sent(uint64_t(i + 1), false);
  next_frame = 105;
  EXPECT_TRUE(policy.on_request(100));
  EXPECT_FALSE(policy.on_request(101));  // merged: a keyframe is due already
  encode_and_send();                     // 105: the keyframe
  EXPECT_FALSE(policy.on_request(102));  // crossed it in flight
  EXPECT_FALSE(policy.on_request(103));
  EXPECT_FALSE(policy.on_request(104));
  for (int i = 0; i < 10; ++i) encode_and_send();
  EXPECT_EQ(keyframes, 1);
  EXPECT_EQ(policy.received(), 5u);
  EXPECT_EQ(policy.answered_already(), 3u);
  // A later, separate loss (after the keyframe) is a new one: honoured.
  EXPECT_TRUE(policy.on_request(110));
  encode_and_send();
  EXPECT_EQ(keyframes, 2);
  // The keyframe itself lost: the request names it, and it is honoured.
  EXPECT_TRUE(policy.on_request(116));
}

TEST(RateControl, requests_while_the_keyframe_is_encoded_merge_and_a_replaced_keyframe_answers_nothing) {
  KeyframeRequests policy;
  policy.on_frame_sent(0, true);
  EXPECT_TRUE(policy.on_request(5));
  EXPECT_TRUE(policy.take());          // the encoder makes frame 8 a keyframe...
  EXPECT_FALSE(policy.on_request(6));  // ...which answers a loss of frame 6
  EXPECT_FALSE(policy.take());
  policy.on_frame_sent(9, false);     // frame 8 was replaced by 9 before it went out
  EXPECT_TRUE(policy.on_request(7));  // so the loss is still unanswered
  EXPECT_TRUE(policy.take());
}

// With reference invalidation the recovery is a repair frame: it answers the losses from the frame it was
// asked from up to itself, not those before (a keyframe answers everything before it).
TEST(RateControl, a_repair_frame_answers_the_losses_it_covers_and_merged_requests_start_at_the_earliest) {
  KeyframeRequests policy;
  policy.on_frame_sent(0, true);
  EXPECT_TRUE(policy.on_request(102));
  EXPECT_FALSE(policy.on_request(100));  // merged, and the recovery now starts at 100
  EXPECT_EQ(policy.take(), std::optional<uint64_t>(100));
  EXPECT_FALSE(policy.on_request(103));  // in flight: the repair covers it
  policy.on_frame_sent(106, false, 100);
  for (uint64_t lost : {100u, 101u, 104u, 105u}) EXPECT_FALSE(policy.on_request(lost)) << lost;
  EXPECT_FALSE(policy.take());
  EXPECT_TRUE(policy.on_request(99));  // before what the repair covers: a recovery of its own
  EXPECT_EQ(policy.take(), std::optional<uint64_t>(99));
  policy.on_frame_sent(107, true);
  EXPECT_TRUE(policy.on_request(107));  // the keyframe itself lost
  EXPECT_EQ(policy.answered_already(), 5u);
}

// A frame the sender replaced before it went out is a loss the node knows of first: recover from it at once.
TEST(RateControl, a_frame_dropped_before_sending_makes_a_recovery_due_from_it) {
  KeyframeRequests policy;
  policy.on_frame_sent(0, true);
  policy.on_frame_dropped(5);
  EXPECT_EQ(policy.take(), std::optional<uint64_t>(5));
  policy.on_frame_sent(7, false, 5);
  EXPECT_TRUE(policy.on_request(9));
  EXPECT_EQ(policy.take(), std::optional<uint64_t>(9));
  policy.on_frame_dropped(11);  // the repair from 9 itself was replaced: due again from 9
  EXPECT_EQ(policy.take(), std::optional<uint64_t>(9));
  EXPECT_EQ(policy.dropped(), 2u);
  EXPECT_EQ(policy.received(), 1u);  // drops are not the client's requests
}

// A NACKed frame may yet arrive: the sender makes a speculative recovery of it (KeyframeRequests::
// on_at_risk), a repair where the encoder can and nothing where it cannot. A repair sent answers the later
// request for the same loss; a speculative one taken but not answered by a repair leaves the request
// honoured; a request merged into a due speculative one makes it a real one.
TEST(RateControl, a_nacked_frame_makes_a_speculative_recovery_that_a_later_request_finds_answered) {
  KeyframeRequests policy;
  policy.on_frame_sent(0, true);
  EXPECT_TRUE(policy.on_at_risk(20));
  EXPECT_FALSE(policy.on_at_risk(20));  // the NACK again (or for another fragment): already due
  bool speculative = false;
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(20));
  EXPECT_TRUE(speculative);
  policy.on_frame_sent(22, false, 20);  // the repair: predicts from frames before 20
  EXPECT_FALSE(policy.on_request(20));  // the retransmission failed too: answered already
  EXPECT_FALSE(policy.on_at_risk(21));
  EXPECT_FALSE(policy.take());
  // The encoder could not invalidate: the speculative recovery answered nothing.
  EXPECT_TRUE(policy.on_at_risk(30));
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(30));
  EXPECT_TRUE(speculative);
  EXPECT_TRUE(policy.on_request(30));  // crossed it while it was encoded: not answered by it
  policy.on_frame_sent(32, false);
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(30));
  EXPECT_FALSE(speculative);
  policy.on_frame_sent(33, true);
  // A request merged into a due speculative recovery makes it a real one (a keyframe where needed).
  EXPECT_TRUE(policy.on_at_risk(40));
  EXPECT_FALSE(policy.on_request(39));
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(39));
  EXPECT_FALSE(speculative);
  EXPECT_EQ(policy.at_risk(), 2u + 1u);
}

// The client's own request for a NACKed frame can cross the speculative repair of it while the repair is
// encoded (slow encoders, the sanitizers): the request makes a recovery due, and when the repair then goes
// out it answers that recovery. Taking it anyway made a second repair of the same loss (seen in the
// reference-chain end-to-end test under ThreadSanitizer). A request for an earlier loss, which the repair
// does not cover, stays due.
TEST(RateControl, a_request_crossing_a_speculative_repair_is_answered_when_the_repair_goes_out) {
  KeyframeRequests policy;
  policy.on_frame_sent(0, true);
  EXPECT_TRUE(policy.on_at_risk(50));
  bool speculative = false;
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(50));
  EXPECT_TRUE(speculative);
  EXPECT_TRUE(policy.on_request(50));   // crossed the repair while it was encoded: due
  policy.on_frame_sent(52, false, 50);  // the repair went out: it answers the loss of 50
  EXPECT_FALSE(policy.take());          // so no second repair
  EXPECT_FALSE(policy.on_request(51));  // and later requests of the burst find it answered
  EXPECT_EQ(policy.answered_when_sent(), 1u);
  EXPECT_EQ(policy.answered_already(), 2u)
      << "the crossing request and the later one: neither made a recovery";

  EXPECT_TRUE(policy.on_at_risk(60));
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(60));
  EXPECT_TRUE(policy.on_request(61));
  EXPECT_FALSE(policy.on_request(58));  // merged: the due recovery now starts at 58
  policy.on_frame_sent(62, false, 60);  // repairs [60, 62): not 58
  EXPECT_EQ(policy.take(&speculative), std::optional<uint64_t>(58));
  EXPECT_FALSE(speculative);
  policy.on_frame_sent(63, true);

  // A keyframe going out answers every due recovery before it.
  EXPECT_TRUE(policy.on_request(70));
  policy.on_frame_sent(71, true);  // a keyframe for another reason (the encoder's interval)
  EXPECT_FALSE(policy.take());
  EXPECT_EQ(policy.answered_when_sent(), 2u);
  EXPECT_LE(policy.answered_already(), policy.received());
}

// The loss-based controller after a burst of loss: back to the rate it had within 2 s once the loss ends
// (random loss does not move the delay-based estimate, which the controller returns to at once).
TEST(RateControl, the_estimate_recovers_to_its_pre_loss_level_within_two_seconds_after_a_burst) {
  LossBasedController rate(2'000'000, 100'000, 50'000'000);
  const int64_t delay_based = 6'000'000;
  int64_t t = 0;
  const auto reports = [&](double seconds, double loss) {
    for (const int64_t end = t + int64_t(seconds * 1e9); t < end; t += 50'000'000)
      rate.on_report(uint64_t(100 * (1 - loss)), 100, delay_based, t);
  };
  reports(20, 0);
  const int64_t before = rate.target_bps();
  EXPECT_EQ(before, delay_based);
  reports(1, 0.25);  // a burst: a quarter of the packets lost for a second
  const int64_t during = rate.target_bps();
  EXPECT_LT(during, before * 9 / 10);
  reports(2, 0);
  EXPECT_GE(rate.target_bps(), before * 95 / 100) << "during " << during;
}

// Behind a full drop-tail bottleneck the delay-based estimate stays where it filled the queue: after the
// overflow the controller climbs back from 0.85 x what the receiver got, 5 % a window up to that rate and
// 25 % past it, instead of returning to that estimate at once and refilling the queue (two sessions through 6
// Mbit/s: wire full, 2 % of frames lost, 120 ms queued). Random loss without a bottleneck still returns at
// once (the test above).
TEST(RateControl, overflow_at_a_bottleneck_climbs_back_from_what_the_receiver_got_not_at_once) {
  LossBasedController rate(2'000'000, 100'000, 50'000'000);
  const int64_t delay_based = 5'000'000, bottleneck = 3'000'000;
  int64_t t = 0;
  const auto reports = [&](double seconds, double loss, bool limited) {
    for (const int64_t end = t + int64_t(seconds * 1e9); t < end; t += 50'000'000)
      rate.on_report(uint64_t(100 * (1 - loss)), 100, delay_based, t, bottleneck, limited);
  };
  reports(10, 0, false);
  EXPECT_EQ(rate.target_bps(), delay_based);
  reports(1, 0.4, true);  // the queue overflows: 40 % lost, the receiver gets the bottleneck's 3 Mbit/s
  EXPECT_LE(rate.target_bps(), int64_t(0.85 * bottleneck) + 1);
  reports(0.5, 0, true);  // one loss-free window: back to the ceiling, not to 5 Mbit/s
  EXPECT_LE(rate.target_bps(), int64_t(0.85 * bottleneck) + 1);
  reports(1.5, 0, true);  // more: 5 % a window near the rate that overflowed
  EXPECT_LE(rate.target_bps(), bottleneck);
  EXPECT_GT(rate.target_bps(), int64_t(0.85 * bottleneck * 1.05));
  reports(2.5, 0, true);  // past it, 25 % a window (the bottleneck may have moved): on to the estimate
  EXPECT_GT(rate.target_bps(), int64_t(1.5 * bottleneck));
  reports(10, 0, false);  // no more overflow: back to the delay-based estimate
  EXPECT_EQ(rate.target_bps(), delay_based);
}

}  // namespace
}  // namespace kairo
