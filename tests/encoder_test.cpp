#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <tuple>

#include "core/error.hpp"
#include "core/synthetic_trace.hpp"
#include "encoder/video_decoder.hpp"
#include "encoder/video_encoder.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

// Rendered VR-room frames (NV12) along a synthetic head trace, kept in memory for the encoder tests.
struct RenderedClip {
  int eye_width = 0, eye_height = 0;
  std::vector<std::vector<uint8_t>> sbs_y, sbs_uv;                 // side by side
  std::vector<std::array<std::vector<uint8_t>, 2>> eye_y, eye_uv;  // per eye

  Nv12View side_by_side(size_t i) const {
    return {.y = sbs_y[i], .uv = sbs_uv[i], .width = 2 * eye_width, .height = eye_height};
  }
  std::array<Nv12View, 2> per_eye(size_t i) const {
    return {Nv12View{.y = eye_y[i][0], .uv = eye_uv[i][0], .width = eye_width, .height = eye_height},
            Nv12View{.y = eye_y[i][1], .uv = eye_uv[i][1], .width = eye_width, .height = eye_height}};
  }
};

const RenderedClip& clip() {
  static const RenderedClip c = [] {
    RenderedClip clip;
    clip.eye_width = 192;
    clip.eye_height = 128;
    auto scene = GpuScene::upload(test::vulkan(), load_scene(test::scene_path("vr-room.glb")));
    StereoRenderer sbs(
        scene,
        RendererConfig{
            .eye_width = 192, .eye_height = 128, .frames_in_flight = 1, .nv12 = Nv12Layout::kSideBySide});
    StereoRenderer eyes(
        scene, RendererConfig{
                   .eye_width = 192, .eye_height = 128, .frames_in_flight = 1, .nv12 = Nv12Layout::kPerEye});
    const auto trace = synthetic_trace({.duration_s = 3.0, .rate_hz = 30, .seed = 9});
    for (size_t i = 0; i < 90; ++i) {
      const StereoView view = test::head_view(trace[i].head);
      sbs.submit(FrameRequest{.frame_id = i, .view = view});
      eyes.submit(FrameRequest{.frame_id = i, .view = view});
      const RenderedFrame& a = sbs.collect();
      clip.sbs_y.emplace_back(a.nv12[0].y.begin(), a.nv12[0].y.end());
      clip.sbs_uv.emplace_back(a.nv12[0].uv.begin(), a.nv12[0].uv.end());
      sbs.release(a);
      const RenderedFrame& b = eyes.collect();
      clip.eye_y.push_back({std::vector<uint8_t>(b.nv12[0].y.begin(), b.nv12[0].y.end()),
                            std::vector<uint8_t>(b.nv12[1].y.begin(), b.nv12[1].y.end())});
      clip.eye_uv.push_back({std::vector<uint8_t>(b.nv12[0].uv.begin(), b.nv12[0].uv.end()),
                             std::vector<uint8_t>(b.nv12[1].uv.begin(), b.nv12[1].uv.end())});
      eyes.release(b);
    }
    return clip;
  }();
  return c;
}

struct CodecCase {
  Codec codec;
  const char* backend;
};

class EncoderRoundTrip : public ::testing::TestWithParam<CodecCase> {};

TEST_P(EncoderRoundTrip, decoded_side_by_side_frames_keep_38_db_psnr_and_carry_their_ids) {
  const RenderedClip& c = clip();
  auto encoder = VideoEncoder::open(EncoderConfig{.codec = GetParam().codec,
                                                  .backend = GetParam().backend,
                                                  .width = 2 * c.eye_width,
                                                  .height = c.eye_height,
                                                  .fps = 30,
                                                  .bitrate_bps = 8'000'000});
  VideoDecoder decoder(GetParam().codec);
  double worst = 1e9;
  for (size_t i = 0; i < 30; ++i) {
    const Nv12View picture = c.side_by_side(i);
    const AccessUnit& unit = encoder->encode(
        EncodeRequest{.frame_id = i, .pose_id = 1000 + i, .eye = -1, .picture = picture, .keyframe = false});
    EXPECT_EQ(unit.frame_id, i);
    EXPECT_EQ(unit.pose_id, 1000 + i);
    DecodedPicture decoded;
    // Zero delay end to end: every access unit decodes to its own picture immediately.
    ASSERT_TRUE(decoder.decode(unit.data, decoded)) << "frame " << i;
    worst = std::min(worst, plane_psnr(decoded.y, picture.y));
    EXPECT_GT(plane_psnr(decoded.uv, picture.uv), 38.0);
  }
  EXPECT_GE(worst, 38.0);
}

INSTANTIATE_TEST_SUITE_P(Codecs, EncoderRoundTrip,
                         ::testing::Values(CodecCase{Codec::kH264, "x264"}, CodecCase{Codec::kHevc, "x265"}),
                         [](const ::testing::TestParamInfo<CodecCase>& param_info) {
                           return std::string(param_info.param.backend);
                         });

TEST(Encoder, a_keyframe_requested_at_frame_n_is_frame_n_and_no_other_frame_is_one) {
  const RenderedClip& c = clip();
  for (const char* backend : {"x264", "x265"}) {
    SCOPED_TRACE(backend);
    auto encoder = VideoEncoder::open(
        EncoderConfig{.codec = std::string(backend) == "x264" ? Codec::kH264 : Codec::kHevc,
                      .backend = backend,
                      .width = 2 * c.eye_width,
                      .height = c.eye_height,
                      .fps = 30,
                      .bitrate_bps = 2'000'000});
    for (uint64_t i = 0; i < 40; ++i) {
      const bool request = i == 17 || i == 31;
      const AccessUnit& au =
          encoder->encode(EncodeRequest{.frame_id = i, .picture = c.side_by_side(i), .keyframe = request});
      EXPECT_EQ(au.frame_id, i);  // zero frames of delay: the unit out is the picture in
      EXPECT_EQ(au.keyframe, i == 0 || request) << "frame " << i;
      EXPECT_GE(au.encode_end_ns, au.encode_start_ns);
    }
  }
}

// Recovery from a lost frame is a keyframe on request (issue 15): it must not burst the link. The VBV of 1.5
// frames squeezes the keyframe into about one frame's bits at the target (measured 0.9-1.1; a VBV of 8
// frames let it grow to 3.2 and fails here), and the 250 ms from it stay under the target: the spike after a
// loss is under 2x the target without intra refresh (the picture's quality dips for a frame instead).
TEST(Encoder, a_keyframe_asked_for_after_a_loss_stays_under_twice_the_target_over_its_interval) {
  const RenderedClip& c = clip();
  constexpr int64_t kTarget = 300'000;  // low enough that every frame spends its budget
  constexpr int kFps = 30;
  auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                  .backend = "x264",
                                                  .width = 2 * c.eye_width,
                                                  .height = c.eye_height,
                                                  .fps = kFps,
                                                  .bitrate_bps = kTarget,
                                                  .slices = 4,
                                                  .threads = 0,
                                                  .intra_refresh_frames = 0,
                                                  .constant_bitrate = false});
  std::vector<size_t> bytes;
  for (uint64_t frame = 0; frame < 150; ++frame) {
    const bool loss = frame == 60 || frame == 100;
    const AccessUnit& au = encoder->encode(
        EncodeRequest{.frame_id = frame, .picture = c.side_by_side(frame % 90), .keyframe = loss});
    bytes.push_back(au.data.size());
  }
  const double frame_budget = double(kTarget) / 8.0 / kFps;
  for (size_t keyframe : {60u, 100u}) {
    // The keyframe alone, and the 250 ms around it, against the target.
    double window = 0;
    for (size_t i = keyframe; i < keyframe + kFps / 4; ++i) window += double(bytes[i]);
    const double window_rate = window * 8.0 / 0.25;
    std::printf("keyframe at %zu: %zu bytes (%.2f frame budgets); the 250 ms from it at %.2fx the target\n",
                keyframe, bytes[keyframe], double(bytes[keyframe]) / frame_budget, window_rate / kTarget);
    EXPECT_LT(double(bytes[keyframe]), 2.0 * frame_budget);
    EXPECT_LT(window_rate, 2.0 * kTarget);
  }
}

// x264 at 300 kbit/s and 30 fps on one thread (deterministic), for the recovery tests below; `wave` > 0:
// continuous intra refresh.
std::unique_ptr<VideoEncoder> low_rate_x264(const RenderedClip& c, int wave) {
  return VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                          .backend = "x264",
                                          .width = 2 * c.eye_width,
                                          .height = c.eye_height,
                                          .fps = 30,
                                          .bitrate_bps = 300'000,
                                          .slices = 4,
                                          .threads = 1,
                                          .intra_refresh_frames = wave});
}

// Recovery without a keyframe (x264's reference invalidation, the default for x264): told the client lost
// frame n-3, the encoder predicts frame n from n-4. On the same clip and target as a keyframe recovery, the
// repair is a P-frame of about one frame budget, and since it need not squeeze a whole picture into that
// budget, it is decoded at least as well as the keyframe the VBV squeezes, and far better where the picture
// moves little (measured: 35.3 vs 35.0 dB in a fast pan, 41.5 vs 37.1 dB in a calm stretch; deterministic,
// one encoder thread).
TEST(Encoder, a_repair_after_a_loss_costs_one_frame_budget_and_keeps_the_picture_a_keyframe_squeezes) {
  const RenderedClip& c = clip();
  constexpr int64_t kTarget = 300'000;
  constexpr int kFps = 30;
  constexpr uint64_t kLosses[] = {60, 100};
  struct Run {
    std::vector<size_t> bytes;
    std::vector<double> psnr;
  };
  auto run = [&](bool repair) {
    auto encoder = low_rate_x264(c, 0);
    VideoDecoder decoder(Codec::kH264);
    DecodedPicture picture;
    Run out;
    for (uint64_t frame = 0; frame < 130; ++frame) {
      const bool loss = frame == kLosses[0] || frame == kLosses[1];
      if (loss && repair) {
        EXPECT_TRUE(encoder->invalidate_from(frame - 3));
      }
      const Nv12View source = c.side_by_side(frame % 90);
      const AccessUnit& au =
          encoder->encode(EncodeRequest{.frame_id = frame, .picture = source, .keyframe = loss && !repair});
      EXPECT_EQ(au.keyframe, frame == 0 || (loss && !repair)) << frame;
      EXPECT_EQ(au.repairs_from.has_value(), loss && repair) << frame;
      out.bytes.push_back(au.data.size());
      // The decoder of a client that lost frame n-3 (the repair does not predict from it; the keyframe
      // predicts from nothing), so every frame's quality is what the client shows.
      if (repair && (frame == kLosses[0] - 3 || frame == kLosses[1] - 3)) {
        out.psnr.push_back(0);
        continue;
      }
      EXPECT_TRUE(decoder.decode(au.data, picture)) << frame;
      out.psnr.push_back(plane_psnr(source.y, picture.y));
    }
    return out;
  };
  const Run keyframes = run(false), repairs = run(true);
  const double frame_budget = double(kTarget) / 8.0 / kFps;
  for (uint64_t at : kLosses) {
    double window = 0, repair_db = 0, keyframe_db = 0;  // the 250 ms from the recovery
    for (size_t i = at; i < at + kFps / 4; ++i) {
      window += double(repairs.bytes[i]);
      repair_db += repairs.psnr[i] / (kFps / 4);
      keyframe_db += keyframes.psnr[i] / (kFps / 4);
    }
    const double window_rate = window * 8.0 / 0.25;
    std::printf(
        "loss before %llu: repair %zu bytes (%.2f frame budgets) at %.1f dB; keyframe %zu bytes (%.2f) at "
        "%.1f "
        "dB; the frame before at %.1f dB; the 250 ms from it at %.2fx the target, %.1f dB (keyframe's "
        "%.1f)\n",
        static_cast<unsigned long long>(at), repairs.bytes[at], double(repairs.bytes[at]) / frame_budget,
        repairs.psnr[at], keyframes.bytes[at], double(keyframes.bytes[at]) / frame_budget, keyframes.psnr[at],
        keyframes.psnr[at - 1], window_rate / kTarget, repair_db, keyframe_db);
    EXPECT_LT(double(repairs.bytes[at]), 1.5 * frame_budget);
    EXPECT_LT(window_rate, 1.3 * kTarget);
    EXPECT_GT(repairs.psnr[at], keyframes.psnr[at] - 0.5);
    EXPECT_GT(repair_db, keyframe_db);
  }
}

// Continuous intra refresh instead (waves of 5 frames at 30 fps): no frame is ever much bigger than another,
// so the rate never spikes, at the price of quality everywhere (part of every picture is intra-coded). On
// the same clip and target as the test above.
TEST(Encoder, continuous_intra_refresh_never_spikes_and_costs_quality_everywhere) {
  const RenderedClip& c = clip();
  constexpr int64_t kTarget = 300'000;
  constexpr int kFps = 30;
  auto measure = [&](int wave) {
    auto encoder = low_rate_x264(c, wave);
    VideoDecoder decoder(Codec::kH264);
    DecodedPicture picture;
    size_t largest = 0, wave_ends = 0;
    double db = 0;
    for (uint64_t frame = 0; frame < 120; ++frame) {
      const Nv12View source = c.side_by_side(frame % 90);
      const AccessUnit& au = encoder->encode(EncodeRequest{.frame_id = frame, .picture = source});
      EXPECT_EQ(au.keyframe, frame == 0) << frame;
      wave_ends += au.refreshed_from.has_value();
      EXPECT_TRUE(decoder.decode(au.data, picture));
      if (frame >= 30) {
        largest = std::max(largest, au.data.size());
        db += plane_psnr(source.y, picture.y) / 90.0;
      }
    }
    return std::tuple{largest, db, wave_ends};
  };
  const double frame_budget = double(kTarget) / 8.0 / kFps;
  const auto [refresh_largest, refresh_db, waves] = measure(5);
  const auto [plain_largest, plain_db, no_waves] = measure(0);
  std::printf("intra refresh: largest frame %.2f frame budgets, %.1f dB, %zu waves; without: %.2f, %.1f dB\n",
              double(refresh_largest) / frame_budget, refresh_db, waves, double(plain_largest) / frame_budget,
              plain_db);
  EXPECT_LT(double(refresh_largest), 2.0 * frame_budget);
  EXPECT_GE(waves, 20u);
  EXPECT_EQ(no_waves, 0u);
  EXPECT_LT(refresh_db, plain_db);
}

TEST(Encoder, invalidation_reaches_back_only_to_frames_it_remembers_after_the_last_idr) {
  const RenderedClip& c = clip();
  auto encoder = VideoEncoder::open(EncoderConfig{
      .codec = Codec::kH264, .backend = "x264", .width = 2 * c.eye_width, .height = c.eye_height});
  for (uint64_t frame = 0; frame < 80; ++frame)
    encoder->encode(EncodeRequest{.frame_id = frame, .picture = c.side_by_side(frame % 90)});
  EXPECT_FALSE(encoder->invalidate_from(0));     // the IDR itself: a keyframe
  EXPECT_FALSE(encoder->invalidate_from(10));    // older than the 64 frames it remembers
  EXPECT_FALSE(encoder->invalidate_from(1000));  // a frame not encoded yet
  EXPECT_TRUE(encoder->invalidate_from(75));
  const AccessUnit& au = encoder->encode(EncodeRequest{.frame_id = 80, .picture = c.side_by_side(80)});
  EXPECT_EQ(au.repairs_from, std::optional<uint64_t>(75));
  // Browsers' sessions and other backends recover with keyframes only.
  auto keyframes_only = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                         .backend = "x264",
                                                         .width = 2 * c.eye_width,
                                                         .height = c.eye_height,
                                                         .reference_invalidation = false});
  keyframes_only->encode(EncodeRequest{.frame_id = 0, .picture = c.side_by_side(0)});
  keyframes_only->encode(EncodeRequest{.frame_id = 1, .picture = c.side_by_side(1)});
  EXPECT_FALSE(keyframes_only->invalidate_from(1));
  auto x265 = VideoEncoder::open(EncoderConfig{
      .codec = Codec::kHevc, .backend = "x265", .width = 2 * c.eye_width, .height = c.eye_height});
  x265->encode(EncodeRequest{.frame_id = 0, .picture = c.side_by_side(0)});
  x265->encode(EncodeRequest{.frame_id = 1, .picture = c.side_by_side(1)});
  EXPECT_FALSE(x265->invalidate_from(1));
}

TEST(Encoder, bitrate_changes_land_within_15_percent_without_a_keyframe) {
  const RenderedClip& c = clip();
  auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                  .backend = "x264",
                                                  .width = 2 * c.eye_width,
                                                  .height = c.eye_height,
                                                  .fps = 30,
                                                  .bitrate_bps = 400'000,
                                                  .slices = 4,
                                                  .threads = 0,
                                                  .intra_refresh_frames = 0,
                                                  .constant_bitrate = true});
  ASSERT_TRUE(encoder->reconfigures_in_place());
  uint64_t frame = 0;
  for (int64_t target : {400'000, 1'200'000, 250'000}) {
    SCOPED_TRACE(target);
    encoder->set_bitrate(target);
    uint64_t bytes = 0;
    for (size_t i = 0; i < 90; ++i, ++frame) {  // 3 s at 30 fps, over changing views
      const AccessUnit& au =
          encoder->encode(EncodeRequest{.frame_id = frame, .picture = c.side_by_side(frame % 90)});
      if (frame > 0) {
        EXPECT_FALSE(au.keyframe) << "frame " << frame;
      }
      bytes += au.data.size();
    }
    const double measured = double(bytes) * 8.0 / 3.0;
    EXPECT_NEAR(measured / double(target), 1.0, 0.15) << "measured " << measured;
  }
}

TEST(Encoder, backends_without_in_place_reconfiguration_reopen_at_a_keyframe) {
  const RenderedClip& c = clip();
  auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kHevc,
                                                  .backend = "x265",
                                                  .width = 2 * c.eye_width,
                                                  .height = c.eye_height,
                                                  .fps = 30,
                                                  .bitrate_bps = 500'000});
  EXPECT_FALSE(encoder->reconfigures_in_place());
  encoder->encode(EncodeRequest{.frame_id = 0, .picture = c.side_by_side(0)});
  encoder->encode(EncodeRequest{.frame_id = 1, .picture = c.side_by_side(1)});
  encoder->set_bitrate(1'000'000);
  EXPECT_TRUE(encoder->encode(EncodeRequest{.frame_id = 2, .picture = c.side_by_side(2)}).keyframe);
  encoder->set_resolution(c.eye_width, c.eye_height);
  const AccessUnit& au = encoder->encode(EncodeRequest{.frame_id = 3, .picture = c.per_eye(3)[0]});
  EXPECT_TRUE(au.keyframe);
  VideoDecoder decoder(Codec::kHevc);
  DecodedPicture picture;
  ASSERT_TRUE(decoder.decode(au.data, picture));
  EXPECT_EQ(picture.width, c.eye_width);
}

bool has_nvidia_or_dri() {
  return std::filesystem::exists("/dev/nvidia0") || std::filesystem::exists("/dev/dri");
}

TEST(Encoder, hardware_backends_absent_fail_the_probe_with_reasons_and_auto_falls_back_to_software) {
  if (has_nvidia_or_dri()) GTEST_SKIP() << "this machine has a GPU device node";
  for (Codec codec : {Codec::kH264, Codec::kHevc}) {
    const auto statuses = probe_encoders(codec);
    ASSERT_GE(statuses.size(), 3u);
    EXPECT_EQ(statuses[0].backend, "nvenc");
    EXPECT_FALSE(statuses[0].available);
    EXPECT_NE(statuses[0].reason.find("not found"), std::string::npos) << statuses[0].reason;
    EXPECT_EQ(statuses[1].backend, "vaapi");
    EXPECT_FALSE(statuses[1].available);
    EXPECT_NE(statuses[1].reason.find("/dev/dri"), std::string::npos) << statuses[1].reason;
    EXPECT_TRUE(statuses[2].available) << statuses[2].reason;
  }
  auto encoder =
      VideoEncoder::open(EncoderConfig{.codec = Codec::kH264, .width = 64, .height = 64, .fps = 30});
  EXPECT_EQ(encoder->backend(), "x264");
  try {
    VideoEncoder::open(EncoderConfig{.codec = Codec::kH264, .backend = "nvenc", .width = 64, .height = 64});
    ADD_FAILURE() << "a forced absent backend opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nvenc"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("unavailable"), std::string::npos);
  }
  EXPECT_THROW(VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                .backend = "vaapi",
                                                .width = 64,
                                                .height = 64,
                                                .vaapi_device = "/dev/dri/renderD200"}),
               Error);
}

TEST(Encoder, a_picture_of_the_wrong_size_or_format_is_refused) {
  auto encoder = VideoEncoder::open(
      EncoderConfig{.codec = Codec::kH264, .backend = "x264", .width = 64, .height = 32, .fps = 30});
  std::vector<uint8_t> y(64 * 32, 100), uv(64 * 16, 128), small(10);
  EXPECT_THROW(encoder->encode(EncodeRequest{.picture = {.y = y, .uv = uv, .width = 32, .height = 32}}),
               Error);
  EXPECT_THROW(encoder->encode(EncodeRequest{.picture = {.y = small, .uv = uv, .width = 64, .height = 32}}),
               Error);
  EXPECT_THROW(encoder->encode(EncodeRequest{.picture = {.y = y, .uv = small, .width = 64, .height = 32}}),
               Error);
  EXPECT_NO_THROW(encoder->encode(EncodeRequest{.picture = {.y = y, .uv = uv, .width = 64, .height = 32}}));
  EXPECT_THROW(
      VideoEncoder::open(EncoderConfig{.codec = Codec::kH264, .backend = "x264", .width = 63, .height = 32}),
      Error);
  EXPECT_THROW(
      VideoEncoder::open(EncoderConfig{.codec = Codec::kH264, .backend = "bogus", .width = 64, .height = 32}),
      Error);
  EXPECT_THROW(
      VideoEncoder::open(EncoderConfig{.codec = Codec::kH264, .backend = "x265", .width = 64, .height = 32}),
      Error);
}

// The default: the target is a ceiling. A picture that needs fewer bits sends fewer, and none ever more than
// the VBV lets through; with constant_bitrate the same clip is padded up to the target.
TEST(Encoder, without_filler_the_target_is_a_ceiling_not_a_quota) {
  const RenderedClip& c = clip();
  const auto encoded_mbits = [&](bool constant) {
    auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                    .backend = "x264",
                                                    .width = 2 * c.eye_width,
                                                    .height = c.eye_height,
                                                    .fps = 30,
                                                    .bitrate_bps = 20'000'000,
                                                    .slices = 4,
                                                    .threads = 0,
                                                    .intra_refresh_frames = 0,
                                                    .constant_bitrate = constant});
    uint64_t bytes = 0;
    for (uint64_t frame = 0; frame < 90; ++frame)
      bytes += encoder->encode(EncodeRequest{.frame_id = frame, .picture = c.side_by_side(frame % 90)})
                   .data.size();
    return double(bytes) * 8.0 / 3.0 * 1e-6;
  };
  const double vbv = encoded_mbits(false), padded = encoded_mbits(true);
  std::printf("20 Mbit/s target: %.2f Mbit/s without filler, %.2f with\n", vbv, padded);
  EXPECT_LT(vbv, 0.5 * padded);
  EXPECT_LT(vbv, 20.0 * 1.15);
  EXPECT_NEAR(padded / 20.0, 1.0, 0.15);
}

TEST(Encoder, lends_a_bounded_pool_of_aligned_host_pictures_and_takes_back_only_its_own) {
  auto encoder = VideoEncoder::open(
      EncoderConfig{.codec = Codec::kH264, .backend = "x264", .width = 100, .height = 32, .fps = 30});
  std::vector<HostPicture> lent;
  while (auto picture = encoder->acquire_host_picture(4096)) {
    ASSERT_LT(lent.size(), 16u) << "the pool is not bounded";
    EXPECT_EQ(reinterpret_cast<uintptr_t>(picture->data) % 4096, 0u);
    EXPECT_EQ(picture->size % 4096, 0u);
    EXPECT_GE(picture->y_pitch, 100u);
    EXPECT_GE(picture->uv_offset, picture->y_pitch * 32);
    EXPECT_GE(picture->size, uint64_t(picture->uv_offset) + picture->uv_pitch * 16);
    lent.push_back(*picture);
  }
  ASSERT_GE(lent.size(), 3u) << "fewer pictures than frames in flight";
  encoder->release_host_picture(lent.back());
  const auto again = encoder->acquire_host_picture(4096);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->data, lent.back().data);
  // A picture the encoder did not lend (or lent and took back) is refused, not encoded.
  HostPicture foreign = lent.front();
  foreign.data = nullptr;
  const EncodeRequest request{.picture = {.y = {}, .uv = {}, .width = 100, .height = 32}, .keyframe = true};
  EXPECT_THROW(encoder->encode_host_picture(foreign, request), Error);
  encoder->release_host_picture(lent.front());
  EXPECT_THROW(encoder->encode_host_picture(lent.front(), request), Error);
  // A lent picture encodes (grey, written in place) and comes back to the pool.
  std::memset(lent[1].data + lent[1].y_offset, 128, size_t(lent[1].y_pitch) * 32);
  std::memset(lent[1].data + lent[1].uv_offset, 128, size_t(lent[1].uv_pitch) * 16);
  const AccessUnit& au = encoder->encode_host_picture(lent[1], request);
  EXPECT_TRUE(au.keyframe);
  EXPECT_FALSE(au.data.empty());
  EXPECT_EQ(encoder->counters().pictures_in_place, 1u);
  EXPECT_EQ(encoder->counters().pictures_copied, 0u);
  EXPECT_TRUE(encoder->acquire_host_picture(4096).has_value());
}

TEST(Encoder, backends_that_do_not_take_nv12_lend_no_pictures_so_the_stage_copies) {
  auto encoder = VideoEncoder::open(
      EncoderConfig{.codec = Codec::kHevc, .backend = "x265", .width = 64, .height = 32, .fps = 30});
  EXPECT_FALSE(encoder->acquire_host_picture(4096).has_value());
}

TEST(Decoder, garbage_is_refused_without_a_crash_and_the_decoder_still_decodes_a_real_stream_after) {
  VideoDecoder decoder(Codec::kH264);
  std::vector<uint8_t> garbage(4096);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t(i * 131 + 7);
  DecodedPicture picture;
  int pictures_from_garbage = 0;
  for (int i = 0; i < 5; ++i) {
    try {
      pictures_from_garbage += decoder.decode(garbage, picture) ? 1 : 0;
    } catch (const Error&) {
    }
  }
  EXPECT_EQ(pictures_from_garbage, 0) << "garbage decoded to a picture";
  // The same decoder takes a real keyframe afterwards: garbage left no state that breaks it.
  auto encoder = VideoEncoder::open(
      EncoderConfig{.codec = Codec::kH264, .backend = "x264", .width = 64, .height = 32, .fps = 30});
  std::vector<uint8_t> y(64 * 32, 100), uv(64 * 16, 128);
  const AccessUnit& au = encoder->encode(EncodeRequest{
      .frame_id = 1, .picture = {.y = y, .uv = uv, .width = 64, .height = 32}, .keyframe = true});
  ASSERT_TRUE(decoder.decode(au.data, picture));
  EXPECT_EQ(picture.width, 64);
  EXPECT_EQ(picture.height, 32);
  EXPECT_NEAR(picture.y[picture.y.size() / 2], 100, 2);
}

}  // namespace
}  // namespace kairo
