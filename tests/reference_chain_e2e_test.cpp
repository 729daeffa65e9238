// A corrupted reference, end to end over Kairo's transport: one frame's datagrams are withheld (all of them,
// retransmissions too), real H.264 from x264 flows through StreamServer -> netsim (10 ms each way) ->
// StreamClient, and the client's gate (client/presentation.hpp) decides what is shown. No frame decoded from
// the broken chain is shown (each shown frame matches its source picture), and the chain is repaired, by a
// keyframe or by a repair frame (reference invalidation), within one round trip plus one frame (and the
// encode/decode time) of the loss being noticed; the repair frame, made when the client NACKs the frame it
// never saw, within two frames of the loss.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "client/presentation.hpp"
#include "core/clock.hpp"
#include "encoder/video_decoder.hpp"
#include "encoder/video_encoder.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/netsim.hpp"
#include "streaming/stream_client.hpp"
#include "streaming/stream_server.hpp"
#include "tests/panning_picture.hpp"
#include "tests/timing_under_sanitizers.hpp"

namespace kairo {
namespace {

// How the sender recovers from the client's loss: with a keyframe, or with a repair frame (x264's reference
// invalidation from the first lost frame: a P-frame predicted from the last frame the client has).
// Or by itself: continuous intra refresh, each wave's end marked (waves of 5 frames), nothing asked.
enum class Recovery { kKeyframe, kRepair, kRefresh };
constexpr int kWave = 5;

void withhold_one_frame_and_recover(Recovery recovery) {
  constexpr int kWidth = 256, kHeight = 128, kFps = 30, kFrames = 60;
  constexpr uint64_t kWithheld = 20;
  constexpr double kOneWayMs = 10;
  const SessionKey key = SessionKey::random();
  StreamServer server(StreamServerConfig{.listen = "127.0.0.1:0",
                                         .session_id = 31,
                                         .key = key,
                                         .fps = kFps,
                                         .initial_bitrate_bps = 4'000'000,
                                         .withhold_frame = kWithheld});
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(server.port()),
               ImpairmentConfig{.delay_ms = kOneWayMs}, 5);
  relay.start();

  std::mutex mutex;
  std::map<uint64_t, std::vector<uint8_t>> sources;  // frame id -> its luma
  VideoDecoder decoder(Codec::kH264);
  ReferenceChain chain;
  DecodedPicture picture;
  int repairs_seen = 0;
  std::vector<uint64_t> shown;
  double worst_shown_psnr = 1e9;
  int64_t broken_seen_ns = 0, repaired_ns = 0;
  StreamClient* client_ptr = nullptr;
  StreamClient client(StreamClientConfig{.server = "127.0.0.1:" + std::to_string(relay.listen_port()),
                                         .session_id = 31,
                                         .key = key,
                                         .fps = kFps},
                      [&](const AssembledFrame& f) {
                        // The node's frame metadata rides in front of the access unit: it says whether a
                        // frame is a repair.
                        const std::optional<FrameMetadata> m = read_frame_metadata(f.data);
                        ASSERT_TRUE(m);
                        bool decoded = false;
                        try {
                          decoded = decoder.decode(f.data.subspan(FrameMetadata::kSize), picture);
                        } catch (const std::exception&) {
                        }
                        const bool show = chain.on_frame(f.frame_id, m->keyframe, decoded, m->repairs_from,
                                                         m->refreshed_from) == ReferenceChain::Verdict::kShow;
                        std::lock_guard lock(mutex);
                        repairs_seen += m->repairs_from.has_value();
                        if (!show) {
                          if (broken_seen_ns == 0) broken_seen_ns = steady_now_ns();
                          if (client_ptr) client_ptr->request_keyframe(chain.first_broken());
                          return;
                        }
                        if (broken_seen_ns != 0 && repaired_ns == 0) repaired_ns = steady_now_ns();
                        shown.push_back(f.frame_id);
                        worst_shown_psnr =
                            std::min(worst_shown_psnr, plane_psnr(sources.at(f.frame_id), picture.y));
                      });
  client_ptr = &client;

  auto encoder =
      VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                       .backend = "x264",
                                       .width = kWidth,
                                       .height = kHeight,
                                       .fps = kFps,
                                       .bitrate_bps = 4'000'000,
                                       .threads = 1,
                                       .intra_refresh_frames = recovery == Recovery::kRefresh ? kWave : 0});
  const std::vector<uint8_t> uv(size_t(kWidth) * kHeight / 2, 128);
  // Wait for the path to be validated before the first (key)frame.
  for (int i = 0; i < 200 && !server.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(server.connected());
  int keyframes_after_loss = 0, repairs_sent = 0, repairs_of_the_loss = 0;
  FrameMetadata metadata;
  metadata.eye_width = metadata.coded_width = kWidth / 2;
  metadata.eye_height = metadata.coded_height = kHeight;
  std::array<uint8_t, FrameMetadata::kSize> metadata_bytes{};
  for (int f = 0; f < kFrames; ++f) {
    const std::vector<uint8_t> y = test::panning_luma(kWidth, kHeight, f);
    {
      std::lock_guard lock(mutex);
      sources[uint64_t(f)] = y;
    }
    bool speculative = false;
    const std::optional<uint64_t> lost = server.take_recovery_request(&speculative);
    // As the node's frame stage decides (node/frame_stage.cpp): a speculative recovery (the client NACKed the
    // frame) is a repair where the encoder can invalidate, never a keyframe.
    const bool can_invalidate = lost && recovery == Recovery::kRepair && encoder->invalidate_from(*lost);
    const bool keyframe = lost && !encoder->refreshes_continuously() && !can_invalidate && !speculative;
    const AccessUnit& unit = encoder->encode(EncodeRequest{.frame_id = uint64_t(f),
                                                           .pose_id = 0,
                                                           .eye = -1,
                                                           .picture = Nv12View{y, uv, kWidth, kHeight, 0, 0},
                                                           .keyframe = keyframe});
    keyframes_after_loss += unit.keyframe && f > int(kWithheld);
    repairs_sent += unit.repairs_from.has_value();
    repairs_of_the_loss += unit.repairs_from && *unit.repairs_from <= kWithheld;
    metadata.frame_id = uint64_t(f);
    metadata.keyframe = unit.keyframe;
    metadata.repairs_from = unit.repairs_from;
    metadata.refreshed_from = unit.refreshed_from;
    write(metadata, metadata_bytes);
    server.send_frame(FrameInfo{.frame_id = uint64_t(f),
                                .pose_id = 0,
                                .pose_time_ns = 0,
                                .capture_time_ns = 0,
                                .stream = 0,
                                .keyframe = unit.keyframe,
                                .repairs_from = unit.repairs_from},
                      metadata_bytes, unit.data);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 / kFps));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  relay.stop();

  std::lock_guard lock(mutex);
  // Every shown frame is the picture it claims to be: nothing from the broken chain got through.
  EXPECT_GT(worst_shown_psnr, 30.0);
  EXPECT_GE(chain.frames_refused(), 1u);
  for (uint64_t id : shown) EXPECT_NE(id, kWithheld);
  // One keyframe or one repair frame repaired it (a storm would be several), within an RTT and a frame of
  // the break being seen; 40 ms more for encoding and decoding and scheduling on a shared 2-core machine.
  // A loaded machine may add a repair or two of later frames: a frame whose tail the relay's thread held
  // up looks lost to the client for a moment, and its NACK makes a speculative repair (a false alarm, one
  // P-frame); under ThreadSanitizer a datagram may even be lost between the relay's sockets. Not a storm.
  EXPECT_EQ(keyframes_after_loss, recovery == Recovery::kKeyframe ? 1 : 0);
  // A client's request for the loss may cross the speculative repair while that is still being encoded
  // (more often under the sanitizers' slowness): the repair answers it when it goes out
  // (KeyframeRequests::on_frame_sent), so still one repair.
  EXPECT_EQ(repairs_of_the_loss, recovery == Recovery::kRepair ? 1 : 0);
  EXPECT_LE(repairs_sent, repairs_of_the_loss + 2);
  EXPECT_EQ(repairs_seen, repairs_sent);
  if (test::kTimingIsMeasured) {
    EXPECT_EQ(chain.repairs(), recovery == Recovery::kKeyframe ? 0u : 1u);
  }
  ASSERT_NE(broken_seen_ns, 0);
  ASSERT_NE(repaired_ns, 0) << "the chain was never repaired";
  const double recovery_ms = double(repaired_ns - broken_seen_ns) * 1e-6;
  std::printf(
      "recovery %.1f ms after the break was seen (RTT %.0f ms, frame %.1f ms); %zu frames shown, %llu "
      "refused\n",
      recovery_ms, 2 * kOneWayMs, 1000.0 / kFps, shown.size(),
      static_cast<unsigned long long>(chain.frames_refused()));
  // A refresh needs no round trip, but up to two waves: the one under way when the frame was lost, and the
  // next. (Under ThreadSanitizer, which CI runs this test in for its races: that it recovers, not when.)
  // How many frames that leaves unshown is timing too.
  if (test::kTimingIsMeasured) {
    EXPECT_LE(recovery_ms, recovery == Recovery::kRefresh ? 2 * kWave * 1000.0 / kFps + 40.0
                                                          : 2 * kOneWayMs + 1000.0 / kFps + 40.0);
    EXPECT_GE(shown.size(), size_t(kFrames) - (recovery == Recovery::kRefresh ? 2 * kWave + 1 : 5));
  }
  EXPECT_GE(shown.size(), size_t(kFrames) / 2);
  // Nothing of the withheld frame arrived while later frames did: the client asked for all of it at once (a
  // NACK naming no fragment), and the sender made that a speculative recovery. With reference invalidation
  // it is the repair: the frame after the one in flight when the NACK came, delivered as it arrives rather
  // than after the withheld frame's deadline, so at most two frames are decoded from the broken chain.
  const StreamServerStats sent = server.stats();
  EXPECT_GE(sent.whole_frame_nacks, 1u);
  EXPECT_GE(sent.recoveries_at_risk, 1u);
  EXPECT_GE(client.stats().whole_frame_nacks_sent, 1u);
  if (recovery == Recovery::kRepair) {
    EXPECT_GE(client.stats().frames.gave_up_for_standalone, 1u);
    if (test::kTimingIsMeasured) {
      EXPECT_LE(chain.frames_refused(), 2u);
    }
  }
}

TEST(ReferenceChainEndToEnd,
     a_withheld_frame_is_never_shown_broken_and_a_keyframe_repairs_it_within_an_rtt_and_a_frame) {
  withhold_one_frame_and_recover(Recovery::kKeyframe);
}

TEST(ReferenceChainEndToEnd,
     a_withheld_frame_is_repaired_by_a_p_frame_from_before_the_loss_within_an_rtt_and_a_frame) {
  withhold_one_frame_and_recover(Recovery::kRepair);
}

TEST(ReferenceChainEndToEnd, a_withheld_frame_is_repaired_unasked_by_the_end_of_the_next_intra_refresh_wave) {
  withhold_one_frame_and_recover(Recovery::kRefresh);
}

}  // namespace
}  // namespace kairo
