// A corrupted reference, end to end over Kairo's transport: one frame's datagrams are withheld (all of them,
// retransmissions too), real H.264 from x264 flows through StreamServer -> netsim (10 ms each way) ->
// StreamClient, and the client's gate (client/presentation.hpp) decides what is shown. No frame decoded from
// the broken chain is shown (each shown frame matches its source picture), and the chain is repaired by a
// keyframe within one round trip plus one frame (and the encode/decode time) of the loss being noticed.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "client/presentation.hpp"
#include "core/clock.hpp"
#include "encoder/video_decoder.hpp"
#include "encoder/video_encoder.hpp"
#include "streaming/netsim.hpp"
#include "streaming/stream_client.hpp"
#include "streaming/stream_server.hpp"
#include "tests/panning_picture.hpp"

namespace kairo {
namespace {

TEST(ReferenceChainEndToEnd,
     a_withheld_frame_is_never_shown_broken_and_a_keyframe_repairs_it_within_an_rtt_and_a_frame) {
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
  std::vector<uint64_t> shown;
  double worst_shown_psnr = 1e9;
  int64_t broken_seen_ns = 0, repaired_ns = 0;
  StreamClient* client_ptr = nullptr;
  StreamClient client(
      StreamClientConfig{.server = "127.0.0.1:" + std::to_string(relay.listen_port()),
                         .session_id = 31,
                         .key = key,
                         .fps = kFps},
      [&](const AssembledFrame& f) {
        bool decoded = false;
        try {
          decoded = decoder.decode(f.data, picture);
        } catch (const std::exception&) {
        }
        const bool show = chain.on_frame(f.frame_id, f.keyframe, decoded) == ReferenceChain::Verdict::kShow;
        std::lock_guard lock(mutex);
        if (!show) {
          if (broken_seen_ns == 0) broken_seen_ns = steady_now_ns();
          if (client_ptr) client_ptr->request_keyframe(f.frame_id);
          return;
        }
        if (broken_seen_ns != 0 && repaired_ns == 0) repaired_ns = steady_now_ns();
        shown.push_back(f.frame_id);
        worst_shown_psnr = std::min(worst_shown_psnr, plane_psnr(sources.at(f.frame_id), picture.y));
      });
  client_ptr = &client;

  auto encoder = VideoEncoder::open(EncoderConfig{.codec = Codec::kH264,
                                                  .backend = "x264",
                                                  .width = kWidth,
                                                  .height = kHeight,
                                                  .fps = kFps,
                                                  .bitrate_bps = 4'000'000,
                                                  .threads = 1});
  const std::vector<uint8_t> uv(size_t(kWidth) * kHeight / 2, 128);
  // Wait for the path to be validated before the first (key)frame.
  for (int i = 0; i < 200 && !server.connected(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(server.connected());
  int keyframes_after_loss = 0;
  for (int f = 0; f < kFrames; ++f) {
    const std::vector<uint8_t> y = test::panning_luma(kWidth, kHeight, f);
    {
      std::lock_guard lock(mutex);
      sources[uint64_t(f)] = y;
    }
    const bool keyframe = server.take_keyframe_request();
    const AccessUnit& unit = encoder->encode(EncodeRequest{.frame_id = uint64_t(f),
                                                           .pose_id = 0,
                                                           .eye = -1,
                                                           .picture = Nv12View{y, uv, kWidth, kHeight, 0, 0},
                                                           .keyframe = keyframe});
    keyframes_after_loss += unit.keyframe && f > int(kWithheld);
    server.send_frame(FrameInfo{.frame_id = uint64_t(f),
                                .pose_id = 0,
                                .pose_time_ns = 0,
                                .capture_time_ns = 0,
                                .stream = 0,
                                .keyframe = unit.keyframe},
                      unit.data);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 / kFps));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  relay.stop();

  std::lock_guard lock(mutex);
  // Every shown frame is the picture it claims to be: nothing from the broken chain got through.
  EXPECT_GT(worst_shown_psnr, 30.0);
  EXPECT_GE(chain.frames_refused(), 1u);
  for (uint64_t id : shown) EXPECT_NE(id, kWithheld);
  // One keyframe repaired it (a storm would be several), within an RTT and a frame of the break being seen;
  // 40 ms more for encoding and decoding the keyframe and scheduling on a shared 2-core machine.
  EXPECT_EQ(keyframes_after_loss, 1);
  ASSERT_NE(broken_seen_ns, 0);
  ASSERT_NE(repaired_ns, 0) << "the chain was never repaired";
  const double recovery_ms = double(repaired_ns - broken_seen_ns) * 1e-6;
  std::printf(
      "recovery %.1f ms after the break was seen (RTT %.0f ms, frame %.1f ms); %zu frames shown, %llu "
      "refused\n",
      recovery_ms, 2 * kOneWayMs, 1000.0 / kFps, shown.size(),
      static_cast<unsigned long long>(chain.frames_refused()));
  EXPECT_LE(recovery_ms, 2 * kOneWayMs + 1000.0 / kFps + 40.0);
  EXPECT_GE(shown.size(), size_t(kFrames) - 5);
}

}  // namespace
}  // namespace kairo
