// Kairo's transport against SRT in live mode (Debian's libsrt) through the same netsim impairments, on an
// identical stream of frames: the share of frames complete by their deadline (one frame interval + one-way
// delay + 10 ms), for Kairo also the share on time and from an intact reference chain (what a client
// shows), and the bytes each spent beyond the video itself.
//   build/bench/kairo_srt_compare [SECONDS]     prints a markdown table for bench/RESULTS.md
// SRT live mode carries messages of at most 1316 bytes, so each frame goes as consecutive messages with a
// 12-byte frame/chunk header; its latency window is set to the same deadline (TSBPD delivers a packet at
// send time + latency or drops it), and a frame counts when all its chunks are delivered.
#include <srt/srt.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "client/presentation.hpp"
#include "streaming/netsim.hpp"
#include "streaming/stream_client.hpp"
#include "streaming/stream_server.hpp"

namespace {

using namespace kairo;
using Clock = std::chrono::steady_clock;

constexpr int kFps = 90;
constexpr int64_t kBitrate = 16'000'000;
constexpr double kOneWayMs = 20;

std::vector<std::vector<uint8_t>> make_frames(int count) {
  std::mt19937 rng(9);
  std::vector<std::vector<uint8_t>> frames;
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> f(size_t(kBitrate / 8 / kFps) * (70 + rng() % 61) / 100);
    for (auto& b : f) b = uint8_t(rng());
    frames.push_back(std::move(f));
  }
  return frames;
}

int64_t deadline_ns() {
  return 1'000'000'000 / kFps + int64_t(kOneWayMs * 1e6) + 10'000'000;
}

struct Outcome {
  double on_time = 0, overhead = 0;
  double displayed_correct = -1;  // Kairo: on time and from an intact reference chain (-1: not measured)
};

Outcome run_kairo(const ImpairmentConfig& impairment, const std::vector<std::vector<uint8_t>>& frames) {
  const SessionKey key = SessionKey::random();
  StreamServer server(StreamServerConfig{.listen = "127.0.0.1:0",
                                         .session_id = 9,
                                         .key = key,
                                         .fps = kFps,
                                         .initial_bitrate_bps = kBitrate,
                                         .max_bitrate_bps = kBitrate});
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(server.port()), impairment, 77);
  relay.start();
  std::atomic<uint64_t> on_time{0}, displayed_correct{0};
  // The stream as a decoder would see it (client/presentation.hpp): a lost frame breaks the reference
  // chain until a keyframe, which the sender makes when the transport asks (as a node's encoder does). The
  // frames are random bytes of a video's sizes, so a keyframe here costs no more than another frame.
  ReferenceChain chain;
  StreamClient* client_ptr = nullptr;
  int64_t last_request_ns = 0;
  StreamClient client(StreamClientConfig{.server = "127.0.0.1:" + std::to_string(relay.listen_port()),
                                         .session_id = 9,
                                         .key = key,
                                         .fps = kFps},
                      [&](const AssembledFrame& f) {
                        const bool in_time = f.complete_ns - f.first_send_ns <= deadline_ns();
                        if (in_time) ++on_time;
                        const bool intact =
                            chain.on_frame(f.frame_id, f.keyframe, true) == ReferenceChain::Verdict::kShow;
                        if (in_time && intact) ++displayed_correct;
                        if (!intact && client_ptr && f.complete_ns - last_request_ns > 40'000'000) {
                          last_request_ns = f.complete_ns;
                          client_ptr->request_keyframe(f.frame_id);
                        }
                      });
  client_ptr = &client;
  for (int i = 0; i < 100 && !server.connected(); ++i) {
    client.send_pose(wire::PoseMessage{.pose_id = uint64_t(i)});
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto start = Clock::now();
  for (size_t id = 0; id < frames.size(); ++id) {
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(int64_t(id) * 1'000'000'000 / kFps));
    server.send_frame(FrameInfo{.frame_id = id,
                                .pose_id = id,
                                .pose_time_ns = 0,
                                .capture_time_ns = 0,
                                .stream = 0,
                                .keyframe = id == 0 || server.take_keyframe_request()},
                      frames[id]);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const StreamServerStats s = server.stats();
  relay.stop();
  return {double(on_time) / double(frames.size()),
          double(s.fec_bytes + s.retransmitted_bytes) / double(s.video_bytes),
          double(displayed_correct) / double(frames.size())};
}

Outcome run_srt(const ImpairmentConfig& impairment, const std::vector<std::vector<uint8_t>>& frames) {
  srt_startup();
  const int latency_ms = int(deadline_ns() / 1'000'000);
  const int live = SRTT_LIVE;
  auto configure = [&](SRTSOCKET s) {
    srt_setsockflag(s, SRTO_TRANSTYPE, &live, sizeof(live));
    srt_setsockflag(s, SRTO_RCVLATENCY, &latency_ms, sizeof(latency_ms));
    srt_setsockflag(s, SRTO_PEERLATENCY, &latency_ms, sizeof(latency_ms));
  };
  SRTSOCKET listener = srt_create_socket();
  configure(listener);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  at.sin_port = 0;
  srt_bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof(at));
  int length = sizeof(at);
  srt_getsockname(listener, reinterpret_cast<sockaddr*>(&at), &length);
  srt_listen(listener, 1);
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(ntohs(at.sin_port)), impairment, 77);
  relay.start();

  SRTSOCKET caller = srt_create_socket();
  configure(caller);
  sockaddr_in to = at;
  to.sin_port = htons(relay.listen_port());
  std::thread connect([&] { srt_connect(caller, reinterpret_cast<sockaddr*>(&to), sizeof(to)); });
  sockaddr_storage peer{};
  int peer_length = sizeof(peer);
  SRTSOCKET receiver = srt_accept(listener, reinterpret_cast<sockaddr*>(&peer), &peer_length);
  connect.join();

  // Receiver: chunks carry (frame id, index, count, send time); a frame is on time when all chunks arrive.
  std::map<uint64_t, int> chunks_seen;
  std::atomic<bool> done{false};
  uint64_t complete = 0;
  std::thread receive([&] {
    std::vector<char> buffer(1500);
    const int timeout_ms = 100;
    srt_setsockflag(receiver, SRTO_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
    while (!done) {
      const int n = srt_recvmsg2(receiver, buffer.data(), int(buffer.size()), nullptr);
      if (n < 12) continue;
      uint64_t id;
      uint16_t index, count;
      std::memcpy(&id, buffer.data(), 8);
      std::memcpy(&index, buffer.data() + 8, 2);
      std::memcpy(&count, buffer.data() + 10, 2);
      if (++chunks_seen[id] == count) ++complete;  // TSBPD delivered it by send time + latency = the deadline
    }
  });
  const auto start = Clock::now();
  std::vector<char> message(1316);
  uint64_t video = 0;
  for (size_t id = 0; id < frames.size(); ++id) {
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(int64_t(id) * 1'000'000'000 / kFps));
    const auto& f = frames[id];
    const size_t body = message.size() - 12;
    const uint16_t count = uint16_t((f.size() + body - 1) / body);
    for (uint16_t i = 0; i < count; ++i) {
      const size_t n = std::min(body, f.size() - i * body);
      std::memcpy(message.data(), &id, 8);
      std::memcpy(message.data() + 8, &i, 2);
      std::memcpy(message.data() + 10, &count, 2);
      std::memcpy(message.data() + 12, f.data() + i * body, n);
      srt_sendmsg2(caller, message.data(), int(12 + n), nullptr);
      video += 12 + n;
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  SRT_TRACEBSTATS stats{};
  srt_bstats(caller, &stats, 0);
  done = true;
  receive.join();
  srt_close(caller);
  srt_close(receiver);
  srt_close(listener);
  relay.stop();
  srt_cleanup();
  return {double(complete) / double(frames.size()), double(stats.byteRetransTotal) / double(video)};
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 8.0;
  const auto frames = make_frames(int(seconds * kFps));
  std::printf(
      "| impairment (both directions) | Kairo on time | Kairo displayed correct | Kairo overhead | SRT live "
      "on "
      "time | SRT overhead |\n|---|---|---|---|---|---|\n");
  const std::pair<const char*, ImpairmentConfig> cases[] = {
      {"5 % random loss, 40 ms RTT", ImpairmentConfig{.loss_percent = 5, .delay_ms = kOneWayMs}},
      {"5 % loss in bursts of 4, 40 ms RTT",
       ImpairmentConfig{.loss_percent = 5, .burst_mean = 4, .delay_ms = kOneWayMs}},
      {"1 % random loss, 40 ms RTT", ImpairmentConfig{.loss_percent = 1, .delay_ms = kOneWayMs}},
  };
  for (const auto& [name, impairment] : cases) {
    const Outcome k = run_kairo(impairment, frames);
    const Outcome s = run_srt(impairment, frames);
    std::printf("| %s | %.4f | %.4f | %.3f | %.4f | %.3f |\n", name, k.on_time, k.displayed_correct,
                k.overhead, s.on_time, s.overhead);
    std::fflush(stdout);
  }
  return 0;
}
