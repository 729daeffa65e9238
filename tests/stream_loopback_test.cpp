// End-to-end transport over loopback UDP through Kairo's own netsim relay: authenticated datagrams, FEC,
// NACK, pacing, reports and bandwidth estimation together. Bounded in time; loopback only.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "streaming/netsim.hpp"
#include "streaming/stream_client.hpp"
#include "streaming/stream_server.hpp"
#include "streaming/uplink.hpp"
#include "tests/timing_under_sanitizers.hpp"

namespace kairo {
namespace {

using Clock = std::chrono::steady_clock;

using test::kTimingIsMeasured;  // tests/timing_under_sanitizers.hpp

struct SessionResult {
  uint64_t sent = 0, on_time = 0, late = 0, corrupt = 0;
  StreamServerStats server;
  StreamClientStats client;
  double overhead() const {
    return double(server.fec_bytes + server.retransmitted_bytes) / double(server.video_bytes);
  }
  double on_time_share() const { return double(on_time) / double(sent); }
};

struct Scenario {
  ImpairmentConfig impairment;
  double seconds = 8;
  int fps = 90;
  int64_t bitrate_bps = 16'000'000;
  bool follow_estimate = false;  // frame sizes follow the server's target bitrate, as the encoder would
  std::function<void(double t, Netsim&, StreamServer&)> during{};  // called every frame
};

SessionResult run_session(const Scenario& s) {
  const SessionKey key = SessionKey::random();
  StreamServer server(StreamServerConfig{.listen = "127.0.0.1:0",
                                         .session_id = 77,
                                         .key = key,
                                         .fps = s.fps,
                                         .initial_bitrate_bps = s.bitrate_bps,
                                         .max_bitrate_bps = s.bitrate_bps});
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(server.port()), s.impairment, 1234);
  relay.start();
  const int64_t interval = 1'000'000'000 / s.fps;
  const int64_t one_way = int64_t(s.impairment.delay_ms * 1e6);
  const int64_t deadline =
      interval + one_way + 10'000'000;  // the deadline, from the frame's send time

  std::mutex mutex;
  std::map<uint64_t, std::vector<uint8_t>> sent_frames;
  SessionResult result;
  StreamClient client(StreamClientConfig{.server = "127.0.0.1:" + std::to_string(relay.listen_port()),
                                         .session_id = 77,
                                         .key = key,
                                         .fps = s.fps,
                                         .initial_bitrate_bps = s.bitrate_bps},
                      [&](const AssembledFrame& f) {
                        std::lock_guard lock(mutex);
                        const auto it = sent_frames.find(f.frame_id);
                        if (it == sent_frames.end() ||
                            !std::equal(it->second.begin(), it->second.end(), f.data.begin(), f.data.end())) {
                          ++result.corrupt;
                          return;
                        }
                        // Same machine, same steady clock: no offset to apply.
                        if (f.complete_ns - f.first_send_ns <= deadline)
                          ++result.on_time;
                        else
                          ++result.late;
                      });
  // Say hello until the server has seen the client (its address is learned from authenticated traffic).
  for (int i = 0; i < 100 && !server.connected(); ++i) {
    client.send_pose(wire::PoseMessage{
        .pose_id = uint64_t(i), .sample_time_ns = steady_now_ns(), .display_time_ns = steady_now_ns()});
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(server.connected());

  std::mt19937 rng(9);
  std::vector<uint8_t> frame;
  const auto start = Clock::now();
  const uint64_t frames = uint64_t(s.seconds * s.fps);
  for (uint64_t id = 0; id < frames; ++id) {
    std::this_thread::sleep_until(start + std::chrono::nanoseconds(int64_t(id) * interval));
    const int64_t rate = s.follow_estimate ? server.target_bitrate_bps() : s.bitrate_bps;
    const size_t mean = size_t(rate / 8 / s.fps);
    frame.resize(std::max<size_t>(200, mean * (70 + rng() % 61) / 100));  // +-30 % around the mean
    for (auto& b : frame) b = uint8_t(rng());
    {
      std::lock_guard lock(mutex);
      sent_frames[id] = frame;
    }
    server.send_frame(FrameInfo{.frame_id = id, .pose_id = id, .capture_time_ns = steady_now_ns()}, frame);
    if (s.during) s.during(double(id) / s.fps, relay, server);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  result.sent = frames;
  result.server = server.stats();
  result.client = client.stats();
  relay.stop();
  return result;
}

TEST(StreamLoopback, a_clean_link_delivers_every_frame_on_time) {
  const SessionResult r = run_session({.impairment = {.delay_ms = 2}, .seconds = 3});
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_GE(r.on_time_share(),
            0.99);  // a clean link: only scheduling hiccups of a shared machine may make one late
  EXPECT_TRUE(r.client.clock_ready);
  EXPECT_LT(std::abs(r.client.clock_offset_ns), 2'000'000);  // one clock on loopback: offset near zero
  EXPECT_GT(r.server.reports, 40u);
}

TEST(StreamLoopbackPerf, five_percent_random_loss_at_40ms_rtt_keeps_99_5_percent_of_frames_on_time) {
  const SessionResult r = run_session({.impairment = {.loss_percent = 5, .delay_ms = 20}, .seconds = 8});
  std::printf(
      "perf: random 5%%: on time %.4f, late %llu, overhead %.3f (fec %llu B, retransmitted %llu B), loss "
      "seen "
      "%.3f\n",
      r.on_time_share(), (unsigned long long)r.late, r.overhead(), (unsigned long long)r.server.fec_bytes,
      (unsigned long long)r.server.retransmitted_bytes, r.server.loss);
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_GE(r.on_time_share(), 0.995);
  EXPECT_LE(r.overhead(), 0.30);
}

TEST(StreamLoopback, five_percent_loss_in_bursts_of_four) {
  const SessionResult r =
      run_session({.impairment = {.loss_percent = 5, .burst_mean = 4, .delay_ms = 20}, .seconds = 8});
  std::printf("bursty 5%% (mean 4): on time %.4f, late %llu, overhead %.3f, burst seen %.2f\n",
              r.on_time_share(), (unsigned long long)r.late, r.overhead(), r.server.burst_mean);
  EXPECT_EQ(r.corrupt, 0u);
  // Over real sockets, on a shared machine: that recovery works at all, with a margin a loaded machine holds.
  // Unloaded runs give 0.99 at 80 % overhead (0.97-0.98 at 50 % with parity capped at half the block);
  // twenty runs beside a sanitizer build and a browser test (three times the machine's two cores) went down
  // to 0.84. The recovery bar itself (99 % on time for ten seeds, exactly reproducible) is held by
  // SimulatedChannel in simulated_channel_test.cpp. The overhead bar: parity for two bursts past half the
  // block at most (streaming/fec_policy.hpp).
  EXPECT_GE(r.on_time_share(), 0.80);
  EXPECT_LE(r.overhead(), 1.20);
}

TEST(StreamLoopback, reordering_and_duplication_never_corrupt_a_frame) {
  const SessionResult r = run_session(
      {.impairment =
           {.loss_percent = 2, .delay_ms = 5, .jitter_ms = 3, .reorder_percent = 5, .duplicate_percent = 5},
       .seconds = 3});
  EXPECT_EQ(r.corrupt, 0u);
  if (kTimingIsMeasured) {
    EXPECT_GE(r.on_time_share(), 0.97);
  } else {  // under ThreadSanitizer (CI runs this test there for its races): what arrives, not when
    EXPECT_GE(double(r.on_time + r.late) / double(r.sent), 0.90);
  }
}

TEST(StreamLoopbackPerf, the_estimate_drops_below_a_rate_cap_within_2s_and_recovers_within_10s_after) {
  const int64_t initial = 16'000'000;
  const double cap_mbitps = 12.5;
  double capped_at = -1, below_at = -1, lifted_at = -1, recovered_at = -1;
  const SessionResult r =
      run_session({.impairment = {.delay_ms = 10},
                   .seconds = 22,
                   .bitrate_bps = initial,
                   .follow_estimate = true,
                   .during = [&](double t, Netsim& relay, StreamServer& server) {
                     const int64_t target = server.target_bitrate_bps();
                     if (std::getenv("KAIRO_TRACE_RATE") && int(t * 90) % 45 == 0) {
                       const auto st = server.stats();
                       std::printf("t=%.1f target=%.2f receiver=%.2f loss=%.3f wire/video=%.2f\n", t,
                                   double(target) / 1e6, double(st.receiver_estimate_bps) / 1e6, st.loss,
                                   st.wire_per_video);
                     }
                     if (capped_at < 0 && t >= 3.0) {
                       relay.set_rate_mbitps(cap_mbitps);
                       capped_at = t;
                     }
                     if (capped_at >= 0 && below_at < 0 && target < int64_t(cap_mbitps * 1e6)) below_at = t;
                     if (lifted_at < 0 && below_at >= 0 && t >= below_at + 3.0) {
                       relay.set_rate_mbitps(0);
                       lifted_at = t;
                     }
                     if (lifted_at >= 0 && recovered_at < 0 && target >= int64_t(0.9 * double(initial)))
                       recovered_at = t;
                   }});
  std::printf("perf: cap at %.2f s, below cap at %.2f s, lifted at %.2f s, recovered at %.2f s\n", capped_at,
              below_at, lifted_at, recovered_at);
  ASSERT_GE(below_at, 0.0) << "the target never went below the cap";
  EXPECT_LE(below_at - capped_at, 2.0);
  ASSERT_GE(recovered_at, 0.0) << "the target never climbed back";
  EXPECT_LE(recovered_at - lifted_at, 10.0);
  EXPECT_EQ(r.corrupt, 0u);
}

// The transport seam (streaming/uplink.hpp): every application message type the client sends arrives in the
// session's one mailbox, in order, intact; what is not an application message never reaches it.
class RecordingMailbox : public UplinkMailbox {
 public:
  void deliver(const UplinkMessage& message, int64_t received_ns) override {
    std::lock_guard lock(mutex);
    EXPECT_GT(received_ns, 0);
    messages.push_back(message);
  }
  std::mutex mutex;
  std::vector<UplinkMessage> messages;
};

TEST(StreamLoopback, every_application_message_type_reaches_the_sessions_mailbox_and_nothing_else_does) {
  const SessionKey key = SessionKey::random();
  RecordingMailbox mailbox;
  StreamServer server(
      StreamServerConfig{.listen = "127.0.0.1:0", .session_id = 6, .key = key, .mailbox = &mailbox});
  StreamClient client(
      StreamClientConfig{.server = "127.0.0.1:" + std::to_string(server.port()), .session_id = 6, .key = key},
      nullptr);
  wire::HandMessage hand{.time_ns = 5, .hand = wire::kRightHand, .tracked = true, .grip = 0.75f};
  hand.position[1] = 1.2f;
  hand.orientation[3] = 1;
  for (uint64_t i = 1; i <= 500; ++i) {  // 1000 Hz for half a second
    client.send_pose(wire::PoseMessage{.pose_id = i,
                                       .sample_time_ns = steady_now_ns(),
                                       .display_time_ns = steady_now_ns() + 30'000'000,
                                       .position = {0, 1.6f, 0},
                                       .orientation = {0, 0, 0, 1}});
    if (i % 50 == 0)
      client.send_input(
          wire::InputMessage{.time_ns = steady_now_ns(), .device = 2, .control = 7, .value = 1.0f});
    if (i % 100 == 0) client.send_hand(hand);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // What is not an application message from a client, sealed with the right key: the server's own kinds
  // sent back at it, and a pose the parser refuses (NaN position).
  // Sequences past the client's (about 600 so far), still inside the replay window of 4096.
  DatagramSealer raw(key, 6, wire::Direction::kClientToServer);
  std::array<uint8_t, 64> scratch{};
  for (int i = 0; i < 2000; ++i) raw.seal(wire::PacketType::kPing, {}, scratch);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::array<uint8_t, 256> datagram{};
  std::array<uint8_t, wire::PoseMessage::kSize> bad_pose{};
  wire::PoseMessage nan_pose{.pose_id = 9999};
  nan_pose.position[0] = std::numeric_limits<float>::quiet_NaN();
  nan_pose.orientation[3] = 1;
  wire::write(nan_pose, bad_pose);
  std::array<uint8_t, 16> zeros{};
  for (const auto& [type, payload] :
       {std::pair{wire::PacketType::kVideo, std::span<const uint8_t>(zeros)},
        std::pair{wire::PacketType::kRoomState, std::span<const uint8_t>(zeros)},
        std::pair{wire::PacketType::kPathChallenge, std::span<const uint8_t>(zeros)},
        std::pair{wire::PacketType::kPose, std::span<const uint8_t>(bad_pose)}}) {
    const size_t n = raw.seal(type, payload, datagram);
    sendto(fd, datagram.data(), n, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  // A type no Kairo version has: refused before authentication, as malformed.
  const size_t n = raw.seal(wire::PacketType::kPing, zeros, datagram);
  datagram[1] = 200;
  sendto(fd, datagram.data(), n, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  std::lock_guard lock(mailbox.mutex);
  size_t poses = 0, inputs = 0, hands = 0;
  uint64_t last_pose = 0;
  for (const UplinkMessage& m : mailbox.messages)
    std::visit(Overloaded{[&](const wire::PoseMessage& p) {
                            ++poses;
                            EXPECT_GT(p.pose_id, last_pose);  // in order on loopback
                            last_pose = p.pose_id;
                            EXPECT_FLOAT_EQ(p.position[1], 1.6f);
                          },
                          [&](const wire::InputMessage& i) {
                            ++inputs;
                            EXPECT_EQ(i.control, 7);
                          },
                          [&](const wire::HandMessage& h) {
                            ++hands;
                            EXPECT_EQ(h.hand, wire::kRightHand);
                            EXPECT_FLOAT_EQ(h.grip, 0.75f);
                            EXPECT_FLOAT_EQ(h.position[1], 1.2f);
                          }},
               m);
  EXPECT_EQ(poses, 500u);
  EXPECT_EQ(inputs, 10u);
  EXPECT_EQ(hands, 5u);
  const StreamServerStats stats = server.stats();
  EXPECT_EQ(stats.uplink[0], 500u);
  EXPECT_EQ(stats.unexpected, 4u);  // three server kinds and the refused pose: counted, not delivered
  EXPECT_GE(stats.rejected[size_t(OpenResult::kMalformed)], 1u);
  EXPECT_GT(stats.pings, 10u);  // clock sync runs beside
  EXPECT_TRUE(server.connected());
}

// Poses survive loss (wire::PoseBatch): through a relay losing a fifth of the datagrams, each sample rides in
// three datagrams, so the mailbox still gets nearly every sample, each once and in order, where one sample
// per datagram would lose a fifth of them.
TEST(StreamLoopback, pose_samples_survive_the_loss_of_the_datagrams_that_carry_them) {
  const SessionKey key = SessionKey::random();
  RecordingMailbox mailbox;
  StreamServer server(
      StreamServerConfig{.listen = "127.0.0.1:0", .session_id = 8, .key = key, .mailbox = &mailbox});
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(server.port()),
               ImpairmentConfig{.loss_percent = 20, .delay_ms = 1}, 42);
  relay.start();
  StreamClient client(
      StreamClientConfig{
          .server = "127.0.0.1:" + std::to_string(relay.listen_port()), .session_id = 8, .key = key},
      nullptr);
  constexpr uint64_t kPoses = 400;
  for (uint64_t i = 1; i <= kPoses; ++i) {
    client.send_pose(wire::PoseMessage{.pose_id = i,
                                       .sample_time_ns = steady_now_ns(),
                                       .display_time_ns = steady_now_ns() + 30'000'000,
                                       .position = {0, 1.6f, 0},
                                       .orientation = {0, 0, 0, 1}});
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The last two samples travel in fewer datagrams: a few more to carry them.
  for (uint64_t i = kPoses + 1; i <= kPoses + 3; ++i) {
    client.send_pose(wire::PoseMessage{.pose_id = i,
                                       .sample_time_ns = steady_now_ns(),
                                       .display_time_ns = steady_now_ns(),
                                       .position = {0, 1.6f, 0},
                                       .orientation = {0, 0, 0, 1}});
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  relay.stop();
  std::lock_guard lock(mailbox.mutex);
  uint64_t last = 0, delivered = 0;
  for (const UplinkMessage& m : mailbox.messages) {
    const auto* p = std::get_if<wire::PoseMessage>(&m);
    ASSERT_NE(p, nullptr);
    EXPECT_GT(p->pose_id, last);  // once each, in order
    last = p->pose_id;
    delivered += p->pose_id <= kPoses;
  }
  const NetsimCounters net = relay.counters(true);
  const double datagram_loss = double(net.lost) / double(std::max<uint64_t>(1, net.received));
  std::printf("datagrams lost %.1f %%, samples delivered %llu of %llu\n", 100 * datagram_loss,
              static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(kPoses));
  EXPECT_GT(datagram_loss, 0.12);           // the relay did lose about a fifth
  EXPECT_GE(delivered, kPoses * 97 / 100);  // P(all three lost) = 0.8 %
}

TEST(StreamLoopback, forged_and_garbage_datagrams_are_dropped_and_counted) {
  const SessionKey key = SessionKey::random();
  StreamServer server(StreamServerConfig{.listen = "127.0.0.1:0", .session_id = 5, .key = key});
  DatagramSealer stranger(SessionKey::random(), 5, wire::Direction::kClientToServer);
  std::array<uint8_t, 256> datagram{};
  std::array<uint8_t, wire::PingMessage::kSize> ping{};
  const size_t n = stranger.seal(wire::PacketType::kPing, ping, datagram);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server.port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 50; ++i) {
    sendto(fd, datagram.data(), n, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    sendto(fd, "garbage", 7, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  }
  close(fd);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const StreamServerStats stats = server.stats();
  EXPECT_FALSE(server.connected());  // nothing unauthenticated may set the peer address
  EXPECT_EQ(stats.pings, 0u);
  EXPECT_EQ(stats.rejected[size_t(OpenResult::kForged)], 50u);
  EXPECT_EQ(stats.rejected[size_t(OpenResult::kMalformed)], 50u);
}

// Several clients behind one relay (a room on one access point): each reply reaches the client it answers.
// The relay used to send every reply to whichever client spoke last, so two sessions through it lost each
// other's frames.
TEST(Netsim, replies_go_back_to_the_client_they_answer_when_clients_share_the_relay) {
  const auto udp_socket = [] {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any));
    timeval timeout{.tv_sec = 2, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return fd;
  };
  const auto port_of = [](int fd) {
    sockaddr_in address{};
    socklen_t length = sizeof(address);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    return ntohs(address.sin_port);
  };
  // The server echoes every datagram to whoever sent it (the relay's flow for that client).
  const int server = udp_socket();
  std::atomic<bool> stop{false};
  std::thread echo([&] {
    std::array<char, 64> buffer{};
    while (!stop) {
      sockaddr_in from{};
      socklen_t length = sizeof(from);
      const ssize_t n =
          recvfrom(server, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &length);
      if (n > 0) sendto(server, buffer.data(), size_t(n), 0, reinterpret_cast<sockaddr*>(&from), length);
    }
  });
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(port_of(server)), ImpairmentConfig{.delay_ms = 1},
               9);
  relay.start();
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(relay.listen_port());
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::array<int, 3> clients{udp_socket(), udp_socket(), udp_socket()};
  constexpr int kRounds = 40;
  std::array<int, 3> own{}, foreign{};
  for (int round = 0; round < kRounds; ++round) {
    for (size_t c = 0; c < clients.size(); ++c) {
      const char tag = char('a' + c);
      sendto(clients[c], &tag, 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    }
    for (size_t c = 0; c < clients.size(); ++c) {
      char reply = 0;
      if (recv(clients[c], &reply, 1, 0) == 1) ++(reply == char('a' + c) ? own[c] : foreign[c]);
    }
  }
  // Counted before the wake-up below, which goes through the relay too (counted after, it raced the stop:
  // 121 of 120 once under ThreadSanitizer).
  const uint64_t forwarded = relay.counters(true).forwarded;
  stop = true;
  sendto(server, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));  // wake the echo thread
  shutdown(server, SHUT_RDWR);
  echo.join();
  relay.stop();
  for (size_t c = 0; c < clients.size(); ++c) {
    EXPECT_EQ(own[c], kRounds) << "client " << c;
    EXPECT_EQ(foreign[c], 0) << "client " << c << " got another client's replies";
    close(clients[c]);
  }
  close(server);
  EXPECT_EQ(forwarded, uint64_t(clients.size() * kRounds));
}

}  // namespace
}  // namespace kairo
