// The client shows only frames from an intact reference chain (client/presentation.hpp): with the real
// encoder and decoder, the frames decoded after a lost one are corrupted, and exactly those are refused until
// the keyframe that repairs the chain; the display accounts held slots and freezes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <vector>

#include "client/presentation.hpp"
#include "encoder/video_decoder.hpp"
#include "encoder/video_encoder.hpp"
#include "streaming/messages.hpp"
#include "tests/panning_picture.hpp"

namespace kairo {
namespace {

// x264 as the node runs it, on one thread (deterministic), for the panning test picture.
std::unique_ptr<VideoEncoder> panning_encoder(int width, int height) {
  return VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                          .backend = "x264",
                                          .width = width,
                                          .height = height,
                                          .fps = 30,
                                          .bitrate_bps = 4'000'000,
                                          .threads = 1});
}

TEST(ReferenceChain, frames_decoded_after_a_lost_one_are_corrupted_and_exactly_those_are_not_shown) {
  constexpr int kWidth = 256, kHeight = 128, kLost = 10, kKeyframe = 20, kFrames = 30;
  auto encoder = panning_encoder(kWidth, kHeight);
  VideoDecoder decoder(Codec::kH264);
  ReferenceChain chain;
  const std::vector<uint8_t> uv(size_t(kWidth) * kHeight / 2, 128);
  DecodedPicture picture;
  std::vector<double> shown_psnr, refused_psnr;
  for (int f = 0; f < kFrames; ++f) {
    const std::vector<uint8_t> y = test::panning_luma(kWidth, kHeight, f);
    const AccessUnit& unit = encoder->encode(EncodeRequest{.frame_id = uint64_t(f),
                                                           .pose_id = 0,
                                                           .eye = -1,
                                                           .picture = Nv12View{y, uv, kWidth, kHeight, 0, 0},
                                                           .keyframe = f == kKeyframe});
    EXPECT_EQ(unit.keyframe, f == 0 || f == kKeyframe) << f;
    if (f == kLost) continue;  // the transport gave this frame up: the decoder never sees it
    bool decoded = false;
    try {
      decoded = decoder.decode(unit.data, picture);
    } catch (const std::exception&) {
    }
    const auto verdict = chain.on_frame(uint64_t(f), unit.keyframe, decoded);
    const bool expect_shown = f < kLost || f >= kKeyframe;
    EXPECT_EQ(verdict == ReferenceChain::Verdict::kShow, expect_shown) << "frame " << f;
    if (f == kLost + 1) {
      EXPECT_EQ(chain.reason(), "frame 10 never arrived");
    }
    if (decoded) (expect_shown ? shown_psnr : refused_psnr).push_back(plane_psnr(y, picture.y));
  }
  EXPECT_EQ(chain.frames_refused(), uint64_t(kKeyframe - kLost - 1));
  EXPECT_EQ(chain.breaks(), 1u);
  EXPECT_FALSE(chain.broken());
  // What the gate keeps off the display is really broken: every refused frame is worse than every shown one.
  ASSERT_FALSE(refused_psnr.empty());
  double worst_shown = 1e9, best_refused = 0;
  for (double p : shown_psnr) worst_shown = std::min(worst_shown, p);
  for (double p : refused_psnr) best_refused = std::max(best_refused, p);
  EXPECT_GT(worst_shown, best_refused + 3.0)
      << "shown >= " << worst_shown << " dB, refused <= " << best_refused;
}

// Recovery without a keyframe (x264's reference invalidation): told the client lost frame 10, the encoder
// predicts frame 14 only from frame 9, which the decoder still holds. Frame 14 is a small P-frame, marked as
// a repair from 10; it and every frame after it decode to their source pictures, the broken 11-13 are
// refused.
TEST(ReferenceChain, a_repair_frame_predicted_from_before_the_loss_repairs_the_chain_without_a_keyframe) {
  constexpr int kWidth = 256, kHeight = 128, kLost = 10, kRepair = 14, kFrames = 30;
  auto encoder = panning_encoder(kWidth, kHeight);
  VideoDecoder decoder(Codec::kH264);
  ReferenceChain chain;
  const std::vector<uint8_t> uv(size_t(kWidth) * kHeight / 2, 128);
  DecodedPicture picture;
  std::vector<double> shown_psnr, refused_psnr;
  size_t repair_bytes = 0, p_bytes = 0, keyframe_bytes = 0;
  for (int f = 0; f < kFrames; ++f) {
    const std::vector<uint8_t> y = test::panning_luma(kWidth, kHeight, f);
    if (f == kRepair) {
      ASSERT_TRUE(encoder->invalidate_from(uint64_t(kLost)));
    }
    const AccessUnit& unit = encoder->encode(EncodeRequest{
        .frame_id = uint64_t(f), .pose_id = 0, .eye = -1, .picture = Nv12View{y, uv, kWidth, kHeight, 0, 0}});
    EXPECT_EQ(unit.keyframe, f == 0) << f;
    EXPECT_EQ(unit.repairs_from, f == kRepair ? std::optional<uint64_t>(kLost) : std::nullopt) << f;
    (f == 0 ? keyframe_bytes : f == kRepair ? repair_bytes : p_bytes) += unit.data.size();
    if (f == kLost) continue;  // the transport gave this frame up: the decoder never sees it
    bool decoded = false;
    try {
      decoded = decoder.decode(unit.data, picture);
    } catch (const std::exception&) {
    }
    const auto verdict = chain.on_frame(uint64_t(f), unit.keyframe, decoded, unit.repairs_from);
    const bool expect_shown = f < kLost || f >= kRepair;
    EXPECT_EQ(verdict == ReferenceChain::Verdict::kShow, expect_shown) << "frame " << f;
    if (f == kLost + 1) {
      EXPECT_EQ(chain.first_broken(), uint64_t(kLost));
    }
    if (decoded) (expect_shown ? shown_psnr : refused_psnr).push_back(plane_psnr(y, picture.y));
  }
  EXPECT_EQ(chain.frames_refused(), uint64_t(kRepair - kLost - 1));
  EXPECT_EQ(chain.repairs(), 1u);
  EXPECT_FALSE(chain.broken());
  // What is shown is right: every shown frame, the repair and all after it included, is its source picture.
  ASSERT_FALSE(refused_psnr.empty());
  double worst_shown = 1e9, best_refused = 0;
  for (double p : shown_psnr) worst_shown = std::min(worst_shown, p);
  for (double p : refused_psnr) best_refused = std::max(best_refused, p);
  EXPECT_GT(worst_shown, 30.0);
  EXPECT_GT(worst_shown, best_refused + 3.0)
      << "shown >= " << worst_shown << " dB, refused <= " << best_refused;
  // The repair is a P-frame (predicted from five frames back), far smaller than the keyframe.
  const double mean_p = double(p_bytes) / (kFrames - 2);
  std::printf("repair %zu bytes, mean P-frame %.0f, keyframe %zu\n", repair_bytes, mean_p, keyframe_bytes);
  EXPECT_LT(double(repair_bytes), 0.5 * double(keyframe_bytes));
}

// Continuous intra refresh (x264, waves of 5 frames): nobody asks for anything. Frame 12 never reaches the
// decoder; the chain is repaired by the end of the first wave that began after it, and every frame shown,
// before and after, is its source picture. Every wave end is marked, 5 frames apart, and no frame after the
// first is a keyframe.
TEST(ReferenceChain, the_end_of_a_refresh_wave_begun_after_the_loss_repairs_the_chain_unasked) {
  constexpr int kWidth = 256, kHeight = 128, kLost = 12, kFrames = 40, kWave = 5;
  auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                  .backend = "x264",
                                                  .width = kWidth,
                                                  .height = kHeight,
                                                  .fps = 30,
                                                  .bitrate_bps = 4'000'000,
                                                  .threads = 1,
                                                  .intra_refresh_frames = kWave});
  ASSERT_TRUE(encoder->refreshes_continuously());
  EXPECT_FALSE(encoder->invalidate_from(3));  // x264 cannot do both
  VideoDecoder decoder(Codec::kH264);
  ReferenceChain chain;
  const std::vector<uint8_t> uv(size_t(kWidth) * kHeight / 2, 128);
  DecodedPicture picture;
  std::vector<uint64_t> wave_ends;
  std::optional<uint64_t> repaired_at;
  double worst_shown = 1e9;
  for (int f = 0; f < kFrames; ++f) {
    const std::vector<uint8_t> y = test::panning_luma(kWidth, kHeight, f);
    const AccessUnit& unit = encoder->encode(EncodeRequest{
        .frame_id = uint64_t(f), .pose_id = 0, .eye = -1, .picture = Nv12View{y, uv, kWidth, kHeight, 0, 0}});
    EXPECT_EQ(unit.keyframe, f == 0) << f;
    if (unit.refreshed_from) {
      EXPECT_EQ(*unit.refreshed_from + kWave - 1, uint64_t(f)) << "a wave of " << kWave << " frames";
      wave_ends.push_back(uint64_t(f));
    }
    if (f == kLost) continue;
    bool decoded = false;
    try {
      decoded = decoder.decode(unit.data, picture);
    } catch (const std::exception&) {
    }
    const bool was_broken = chain.broken();
    const auto verdict =
        chain.on_frame(uint64_t(f), unit.keyframe, decoded, std::nullopt, unit.refreshed_from);
    if (was_broken && f > kLost && verdict == ReferenceChain::Verdict::kShow && !repaired_at)
      repaired_at = uint64_t(f);
    if (verdict == ReferenceChain::Verdict::kShow)
      worst_shown = std::min(worst_shown, plane_psnr(y, picture.y));
  }
  ASSERT_GE(wave_ends.size(), 5u);
  for (size_t i = 1; i < wave_ends.size(); ++i) EXPECT_EQ(wave_ends[i] - wave_ends[i - 1], uint64_t(kWave));
  ASSERT_TRUE(repaired_at) << "the chain was never repaired";
  // The first wave end whose wave began after frame 12.
  uint64_t expected = 0;
  for (uint64_t end : wave_ends)
    if (end + 1 - kWave > uint64_t(kLost)) {
      expected = end;
      break;
    }
  EXPECT_EQ(*repaired_at, expected);
  EXPECT_LE(*repaired_at, uint64_t(kLost + 2 * kWave));
  EXPECT_GT(worst_shown, 30.0);
  std::printf("lost %d, repaired at %llu by the wave from %llu; worst shown %.1f dB\n", kLost,
              static_cast<unsigned long long>(*repaired_at),
              static_cast<unsigned long long>(*repaired_at + 1 - kWave), worst_shown);
}

TEST(ReferenceChain, a_repair_counts_only_when_it_predicts_from_before_the_break) {
  ReferenceChain chain;
  EXPECT_EQ(chain.on_frame(0, false, true, 0), ReferenceChain::Verdict::kBroken);  // no keyframe yet
  EXPECT_EQ(chain.on_frame(1, true, true), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.on_frame(4, false, true), ReferenceChain::Verdict::kBroken);  // 2-3 never arrived
  EXPECT_EQ(chain.first_broken(), 2u);
  EXPECT_EQ(chain.on_frame(5, false, true, 3), ReferenceChain::Verdict::kBroken);  // predicts from 2: broken
  EXPECT_EQ(chain.on_frame(6, false, false), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(chain.first_broken(), 2u);  // still the first frame of the same break
  EXPECT_EQ(chain.on_frame(7, false, true, 2), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.repairs(), 1u);
  // A gap right before a repair that reaches back past it is repaired too.
  EXPECT_EQ(chain.on_frame(9, false, true, 8), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.repairs(), 2u);
  EXPECT_EQ(chain.on_frame(12, false, true, 11), ReferenceChain::Verdict::kBroken);  // 10-11 missing
  EXPECT_EQ(chain.breaks(), 3u);
  // A refresh wave's end repairs only if its wave began after the last bad frame (11).
  EXPECT_EQ(chain.on_frame(13, false, true, std::nullopt, 11), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(chain.on_frame(14, false, true, std::nullopt, 12), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.repairs(), 3u);
  // A client whose first keyframe was lost (it sees frame 3 first) starts at the end of a wave that began
  // after what it missed, and never at a repair frame (nothing to predict from).
  ReferenceChain joined;
  EXPECT_EQ(joined.on_frame(3, false, false), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(joined.on_frame(4, false, true, 2), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(joined.on_frame(5, false, true, std::nullopt, 2), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(joined.on_frame(6, false, true, std::nullopt, 4), ReferenceChain::Verdict::kShow);
  ReferenceChain late;
  EXPECT_EQ(late.on_frame(3, false, true), ReferenceChain::Verdict::kBroken);  // 0-2 never arrived
  EXPECT_EQ(late.on_frame(4, false, true, std::nullopt, 2), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(late.on_frame(5, false, true, std::nullopt, 3), ReferenceChain::Verdict::kShow);
}

TEST(ReferenceChain, waits_for_the_first_keyframe_and_a_decode_failure_breaks_the_chain) {
  ReferenceChain chain;
  EXPECT_EQ(chain.on_frame(3, false, true), ReferenceChain::Verdict::kBroken);  // joined mid-stream
  EXPECT_EQ(chain.on_frame(4, true, true), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.on_frame(5, false, true), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.on_frame(6, false, false), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(chain.reason(), "frame 6 did not decode");
  EXPECT_EQ(chain.on_frame(7, false, true), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(chain.on_frame(8, true, true), ReferenceChain::Verdict::kShow);
  EXPECT_EQ(chain.on_frame(12, false, true), ReferenceChain::Verdict::kBroken);
  EXPECT_EQ(chain.reason(), "frame 9-11 never arrived");
  EXPECT_EQ(chain.frames_refused(), 3u);  // 3, 7, 12
  EXPECT_EQ(chain.breaks(), 2u);
}

TEST(DisplayClock, counts_new_and_held_slots_and_the_freezes) {
  constexpr int64_t kPeriod = 10'000'000;  // 100 Hz
  DisplayClock display(kPeriod, kPeriod / 2);
  // Frames every period for 10 slots, then none for 3 periods, then every period again.
  int64_t t = 1'000'000'000;
  for (int i = 0; i < 10; ++i, t += kPeriod) display.on_frame_ready(t);
  t += 3 * kPeriod;
  for (int i = 0; i < 5; ++i, t += kPeriod) display.on_frame_ready(t);
  display.advance(t - kPeriod + kPeriod / 2);  // the slot of the last frame has begun
  const DisplayTotals d = display.totals();
  EXPECT_EQ(d.slots_new_frame, 15u);
  EXPECT_EQ(d.slots_held, 3u);
  EXPECT_EQ(d.slots, 18u);
  EXPECT_DOUBLE_EQ(d.frozen_ms_longest, 30.0);
  EXPECT_DOUBLE_EQ(d.frozen_ms_total, 30.0);
  // Two frames in one slot: one shows, the next slot holds.
  DisplayClock jittery(kPeriod, kPeriod / 2);
  jittery.on_frame_ready(0);
  jittery.on_frame_ready(kPeriod * 3 / 10);           // early: the same slot as its predecessor
  jittery.on_frame_ready(2 * kPeriod + kPeriod / 4);  // on time
  jittery.advance(2 * kPeriod + kPeriod / 2);
  EXPECT_EQ(jittery.totals().slots_new_frame, 2u);
  EXPECT_EQ(jittery.totals().slots_held, 1u);
}

// Render on the client's clock: the display tells how far from where they should be in their slots frames
// become ready, the signal the node's render clock follows. Where they should be is early in the slot: the
// early spread measured and 3 ms after the previous slot began (never less than 12 ms, never more than
// half the slot), so that the late tail has the rest of the slot.
TEST(DisplayClock, reports_how_far_from_early_in_their_slots_frames_become_ready) {
  constexpr int64_t kPeriod = 30'000'000, kMs = 1'000'000;
  // Frames ready `margin(i)` before the boundary of their slot (boundaries at 15, 45, 75 ... ms).
  const auto error_with = [&](auto margin) {
    DisplayClock clock(kPeriod, kPeriod / 2);
    clock.on_frame_ready(0);
    EXPECT_EQ(clock.phase_error_ns(), 0);  // not enough frames yet
    for (int i = 1; i < 20; ++i) clock.on_frame_ready(int64_t(i) * kPeriod + kPeriod / 2 - margin(i));
    return clock.phase_error_ns();
  };
  // Steady frames in the middle of the slot are 3 ms late against 18 (the slot less the least early side,
  // 12 ms, when there is no spread).
  EXPECT_EQ(error_with([&](int) { return 15 * kMs; }), -3 * kMs);
  EXPECT_EQ(error_with([&](int) { return 25 * kMs; }), 7 * kMs);
  // Ready 16, 18, 20 or 22 ms before: median 20, upper quartile 22, early spread 4: the median should be
  // 23 ms before (30 - 3 - 4), and 18 is the most.
  EXPECT_EQ(error_with([&](int i) { return (16 + 2 * (i % 4)) * kMs; }), 2 * kMs);
  // Ready 8, 13, 18 or 23 ms before: early spread 10, the median (18) should be 17 ms before.
  EXPECT_EQ(error_with([&](int i) { return (8 + 5 * (i % 4)) * kMs; }), 1 * kMs);
  // A few frames that missed their slot read as ready early for the next (margin 29 where the rest have
  // 20): the quartile ignores them.
  EXPECT_EQ(error_with([&](int i) { return (i % 6 == 0 ? 29 : 20) * kMs; }), 2 * kMs);
  // A wide early spread (a quarter of the frames 14 ms early): never less than half the slot ahead.
  EXPECT_EQ(error_with([&](int i) { return (i % 4 == 0 ? 29 : 15) * kMs; }), 0);
}

// The receiver report carries the link capacity and the display's phase error both ways, bit for bit.
TEST(ReceiverReport, round_trips_the_capacity_and_the_display_phase_error) {
  const wire::ReportMessage report{.frames_delivered = 10,
                                   .frames_lost = 1,
                                   .frames_recovered = 2,
                                   .late_fragments = 3,
                                   .fragments_received = 90,
                                   .fragments_expected = 100,
                                   .jitter_us = 500,
                                   .delay_trend = 0.5f,
                                   .decode_ms = 2.5f,
                                   .estimated_bitrate_bps = 8'000'000,
                                   .received_bitrate_bps = 7'000'000,
                                   .loss_burst_mean_x100 = 400,
                                   .rtt_us = 40'000,
                                   .link_capacity_bps = 123'456'789,
                                   .display_phase_error_us = -4'321,
                                   .loss_burst_p90 = 9};
  std::array<uint8_t, wire::ReportMessage::kSize> buffer{};
  ASSERT_EQ(wire::write(report, buffer), wire::ReportMessage::kSize);
  const auto read = wire::read_report(buffer);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->link_capacity_bps, 123'456'789u);
  EXPECT_EQ(read->display_phase_error_us, -4'321);
  EXPECT_EQ(read->loss_burst_p90, 9u);
  EXPECT_EQ(read->rtt_us, 40'000u);
  EXPECT_FALSE(wire::read_report(std::span<const uint8_t>(buffer.data(), buffer.size() - 4)));  // old size
}

}  // namespace
}  // namespace kairo
