#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "streaming/datagram_crypto.hpp"
#include "streaming/link_capacity.hpp"
#include "streaming/messages.hpp"
#include "streaming/reed_solomon.hpp"
#include "streaming/stamped_receive.hpp"
#include "streaming/uplink.hpp"
#include "streaming/wire.hpp"

namespace kairo {
namespace {

using wire::Direction;
using wire::PacketType;

std::vector<uint8_t> seal(DatagramSealer& sealer, std::span<const uint8_t> payload,
                          PacketType type = PacketType::kVideo) {
  std::vector<uint8_t> out(wire::kHeaderSize + payload.size() + wire::kTagSize);
  out.resize(sealer.seal(type, payload, out));
  return out;
}

struct Opened {
  OpenResult result;
  std::vector<uint8_t> payload;
};

Opened open(DatagramOpener& opener, std::span<const uint8_t> datagram) {
  std::vector<uint8_t> plain(wire::kMaxDatagram);
  wire::Header header;
  size_t size = 0;
  const OpenResult r = opener.open(datagram, header, plain, size);
  plain.resize(r == OpenResult::kOk ? size : 0);
  return {r, plain};
}

TEST(DatagramCrypto, a_sealed_datagram_opens_to_its_payload) {
  const SessionKey key = SessionKey::random();
  DatagramSealer sealer(key, 42, Direction::kServerToClient);
  DatagramOpener opener(key, 42, Direction::kServerToClient);
  const std::vector<uint8_t> payload{1, 2, 3, 4, 5};
  const auto datagram = seal(sealer, payload);
  EXPECT_EQ(datagram.size(), wire::kHeaderSize + 5 + wire::kTagSize);
  const Opened o = open(opener, datagram);
  ASSERT_EQ(o.result, OpenResult::kOk);
  EXPECT_EQ(o.payload, payload);
}

TEST(DatagramCrypto, tampered_forged_truncated_replayed_and_misdirected_datagrams_are_rejected) {
  const SessionKey key = SessionKey::random();
  DatagramSealer sealer(key, 7, Direction::kServerToClient);
  DatagramOpener opener(key, 7, Direction::kServerToClient);
  const std::vector<uint8_t> payload(100, 0xab);
  const auto good = seal(sealer, payload);

  for (size_t i = 0; i < good.size(); ++i) {  // every single-bit flip, header included
    auto bad = good;
    bad[i] ^= 0x10;
    const OpenResult r = open(opener, bad).result;
    EXPECT_NE(r, OpenResult::kOk) << "flip at byte " << i;
  }
  EXPECT_EQ(open(opener, std::span(good).first(good.size() - 1)).result, OpenResult::kForged);  // truncated
  EXPECT_EQ(open(opener, std::span(good).first(10)).result, OpenResult::kMalformed);
  DatagramSealer forger(SessionKey::random(), 7, Direction::kServerToClient);  // wrong key
  EXPECT_EQ(open(opener, seal(forger, payload)).result, OpenResult::kForged);
  DatagramSealer other_session(key, 8, Direction::kServerToClient);
  EXPECT_EQ(open(opener, seal(other_session, payload)).result, OpenResult::kWrongSession);
  DatagramSealer reflected(key, 7, Direction::kClientToServer);  // our own traffic sent back at us
  EXPECT_EQ(open(opener, seal(reflected, payload)).result, OpenResult::kMalformed);

  EXPECT_EQ(open(opener, good).result, OpenResult::kOk);
  EXPECT_EQ(open(opener, good).result, OpenResult::kReplayed);
  EXPECT_EQ(opener.count(OpenResult::kReplayed), 1u);
}

TEST(DatagramCrypto, reordering_within_the_window_is_accepted_once_and_stale_datagrams_are_not) {
  const SessionKey key = SessionKey::random();
  DatagramSealer sealer(key, 1, Direction::kClientToServer);
  DatagramOpener opener(key, 1, Direction::kClientToServer);
  std::vector<std::vector<uint8_t>> datagrams;
  for (int i = 0; i < 6000; ++i) datagrams.push_back(seal(sealer, std::vector<uint8_t>{uint8_t(i)}));
  EXPECT_EQ(open(opener, datagrams[100]).result, OpenResult::kOk);
  EXPECT_EQ(open(opener, datagrams[50]).result, OpenResult::kOk);  // late but within the window
  EXPECT_EQ(open(opener, datagrams[50]).result, OpenResult::kReplayed);
  EXPECT_EQ(open(opener, datagrams[5999]).result, OpenResult::kOk);
  EXPECT_EQ(open(opener, datagrams[101]).result, OpenResult::kStale);  // 5898 behind: older than the window
  EXPECT_EQ(open(opener, datagrams[5000]).result, OpenResult::kOk);
}

TEST(DatagramCrypto, nonces_never_repeat_across_a_session) {
  const SessionKey key = SessionKey::random();
  DatagramSealer sealer(key, 3, Direction::kServerToClient);
  std::set<uint64_t> sequences;
  for (int i = 0; i < 100000; ++i) {
    const auto d = seal(sealer, std::vector<uint8_t>{1});
    EXPECT_TRUE(sequences.insert(wire::read_header(d)->sequence).second);
  }
  // The two directions use disjoint nonces even at equal sequence numbers: opening one as the other fails.
  DatagramSealer up(key, 3, Direction::kClientToServer);
  DatagramOpener down_opener(key, 3, Direction::kServerToClient);
  auto d = seal(up, std::vector<uint8_t>{9});
  d[2] = 0;  // relabel as server->client: the nonce no longer matches
  EXPECT_EQ(open(down_opener, d).result, OpenResult::kForged);
}

TEST(DatagramCrypto, keys_round_trip_through_hex_and_bad_hex_is_refused) {
  const SessionKey key = SessionKey::random();
  EXPECT_EQ(SessionKey::from_hex(key.to_hex()).bytes, key.bytes);
  EXPECT_THROW(SessionKey::from_hex("abc"), Error);
  EXPECT_THROW(SessionKey::from_hex(std::string(64, 'z')), Error);
}

TEST(ReedSolomon, recovers_the_data_from_any_k_of_n_shards) {
  std::mt19937 rng(5);
  for (auto [k, m] :
       std::vector<std::pair<int, int>>{{1, 1}, {4, 2}, {10, 5}, {20, 10}, {100, 50}, {200, 55}}) {
    SCOPED_TRACE(std::to_string(k) + "+" + std::to_string(m));
    const size_t bytes = 64;
    std::vector<std::vector<uint8_t>> shards(size_t(k + m), std::vector<uint8_t>(bytes));
    for (int i = 0; i < k; ++i)
      for (auto& b : shards[size_t(i)]) b = uint8_t(rng());
    std::vector<const uint8_t*> data;
    std::vector<uint8_t*> parity;
    for (int i = 0; i < k; ++i) data.push_back(shards[size_t(i)].data());
    for (int i = k; i < k + m; ++i) parity.push_back(shards[size_t(i)].data());
    rs_encode(k, m, bytes, data.data(), parity.data());
    const auto original = shards;
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<int> order(size_t(k + m));
      for (int i = 0; i < k + m; ++i) order[size_t(i)] = i;
      std::shuffle(order.begin(), order.end(), rng);
      const int lose = std::uniform_int_distribution<int>(0, m)(rng);
      std::vector<uint8_t> present_bytes(size_t(k + m), 1);
      auto received = original;
      for (int i = 0; i < lose; ++i) {
        present_bytes[size_t(order[size_t(i)])] = 0;
        std::fill(received[size_t(order[size_t(i)])].begin(), received[size_t(order[size_t(i)])].end(), 0);
      }
      std::vector<uint8_t*> pointers;
      for (auto& s : received) pointers.push_back(s.data());
      bool present[kMaxShards];
      for (int i = 0; i < k + m; ++i) present[i] = present_bytes[size_t(i)];
      ASSERT_TRUE(rs_reconstruct(k, m, bytes, pointers.data(), present));
      for (int i = 0; i < k; ++i) ASSERT_EQ(received[size_t(i)], original[size_t(i)]) << "shard " << i;
    }
    // One loss too many: refused, nothing invented.
    if (m < k) {
      std::vector<uint8_t*> pointers;
      auto received = original;
      for (auto& s : received) pointers.push_back(s.data());
      bool present[kMaxShards];
      for (int i = 0; i < k + m; ++i) present[i] = i > m;
      EXPECT_FALSE(rs_reconstruct(k, m, bytes, pointers.data(), present));
    }
  }
}

TEST(Wire, video_fragment_headers_round_trip_and_inconsistent_ones_are_refused) {
  const wire::VideoFragment f{.frame_id = 99,
                              .pose_id = 12,
                              .pose_time_ns = -5,
                              .capture_time_ns = 7,
                              .send_time_ns = 8,
                              .frame_bytes = 2500,
                              .fragment_index = 3,
                              .data_count = 3,
                              .parity_count = 2,
                              .fragment_bytes = 1000,
                              .stream = 1,
                              .flags = wire::VideoFragment::kKeyframe};
  std::vector<uint8_t> payload(wire::VideoFragment::kSize + 1000);
  wire::write_video_fragment(
      f, std::span<uint8_t, wire::VideoFragment::kSize>(payload.data(), wire::VideoFragment::kSize));
  const auto back = wire::read_video_fragment(payload);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->frame_id, 99u);
  EXPECT_EQ(back->pose_time_ns, -5);
  EXPECT_EQ(back->parity_count, 2);
  EXPECT_FALSE(
      wire::read_video_fragment(std::span(payload).first(payload.size() - 1)));  // body size mismatch
  auto bad = f;
  bad.fragment_index = 5;  // beyond k + m
  wire::write_video_fragment(
      bad, std::span<uint8_t, wire::VideoFragment::kSize>(payload.data(), wire::VideoFragment::kSize));
  EXPECT_FALSE(wire::read_video_fragment(payload));
  bad = f;
  bad.block = 1;  // beyond the block count
  wire::write_video_fragment(
      bad, std::span<uint8_t, wire::VideoFragment::kSize>(payload.data(), wire::VideoFragment::kSize));
  EXPECT_FALSE(wire::read_video_fragment(payload));
}

}  // namespace
}  // namespace kairo

namespace kairo {
namespace {

wire::PoseMessage pose_with_id(uint64_t id) {
  return wire::PoseMessage{.pose_id = id,
                           .sample_time_ns = int64_t(id) * 11'111'111,
                           .display_time_ns = int64_t(id) * 11'111'111 + 50'000'000,
                           .position = {0.1f * float(id), 1.6f, 0},
                           .orientation = {0, 0, 0, 1}};
}

// A pose datagram carries the newest samples oldest first: each survives until all datagrams carrying it
// are lost. One pose alone is a batch of one (what older clients and the browser send).
TEST(Wire, clock_sync_replies_carry_the_uplink_loss_the_server_counts) {
  const wire::PongMessage pong{.client_send_ns = 1,
                               .server_receive_ns = 2,
                               .server_send_ns = 3,
                               .uplink_loss_ppm = 50'000,
                               .uplink_burst_mean_x100 = 400};
  std::array<uint8_t, wire::PongMessage::kSize> buffer{};
  ASSERT_EQ(wire::write(pong, buffer), wire::PongMessage::kSize);
  const auto back = wire::read_pong(buffer);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->server_send_ns, 3);
  EXPECT_EQ(back->uplink_loss_ppm, 50'000u);
  EXPECT_EQ(back->uplink_burst_mean_x100, 400u);
  EXPECT_FALSE(wire::read_pong(std::span(buffer).first(24)));  // the old, shorter reply
}

TEST(Wire, pose_batches_round_trip_and_malformed_ones_are_refused) {
  wire::PoseBatch batch;
  for (uint64_t id = 7; id < 10; ++id) batch.poses[batch.count++] = pose_with_id(id);
  std::array<uint8_t, wire::PoseBatch::kMaxPoses * wire::PoseMessage::kSize> buffer{};
  const size_t n = wire::write(batch, buffer);
  ASSERT_EQ(n, 3 * wire::PoseMessage::kSize);
  const auto read = wire::read_pose_batch(std::span<const uint8_t>(buffer.data(), n));
  ASSERT_TRUE(read);
  ASSERT_EQ(read->count, 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(read->poses[i].pose_id, 7 + i);
    EXPECT_FLOAT_EQ(read->poses[i].position[0], 0.1f * float(7 + i));
  }
  // The generic reader gives the newest.
  const auto newest = read_uplink(wire::PacketType::kPose, std::span<const uint8_t>(buffer.data(), n));
  ASSERT_TRUE(newest);
  EXPECT_EQ(std::get<wire::PoseMessage>(*newest).pose_id, 9u);
  // One pose.
  EXPECT_TRUE(wire::read_pose_batch(std::span<const uint8_t>(buffer.data(), wire::PoseMessage::kSize)));
  // Not a whole number of poses, empty, or more than four.
  EXPECT_FALSE(wire::read_pose_batch(std::span<const uint8_t>(buffer.data(), n - 1)));
  EXPECT_FALSE(wire::read_pose_batch(std::span<const uint8_t>()));
  std::vector<uint8_t> five(5 * wire::PoseMessage::kSize);
  for (uint64_t i = 0; i < 5; ++i)
    wire::write(pose_with_id(i + 1), std::span(five).subspan(i * wire::PoseMessage::kSize));
  EXPECT_FALSE(wire::read_pose_batch(five));
  // Ids not strictly increasing (a replayed or reordered sample inside one datagram).
  batch.poses[2] = pose_with_id(8);
  wire::write(batch, buffer);
  EXPECT_FALSE(wire::read_pose_batch(std::span<const uint8_t>(buffer.data(), n)));
  // A bad pose anywhere refuses the batch.
  batch.poses[2] = pose_with_id(10);
  batch.poses[1].orientation[3] = std::nanf("");
  wire::write(batch, buffer);
  EXPECT_FALSE(wire::read_pose_batch(std::span<const uint8_t>(buffer.data(), n)));
}

}  // namespace
}  // namespace kairo

namespace kairo {
namespace {

// A frame's fragments as a packet train: sent back to back, they arrive spaced by the bottleneck, and the
// train measures it; arriving as they were sent, they show no limit.
TEST(LinkCapacity, a_train_spread_by_a_bottleneck_measures_it_and_one_that_is_not_reports_no_limit) {
  TrainDispersion trains;
  // 20 fragments of 1200 bytes sent within 50 us, arriving 960 us apart: a 10 Mbit/s bottleneck.
  int64_t t = 0;
  for (uint64_t frame = 0; frame < 6; ++frame) {
    for (int i = 0; i < 20; ++i) trains.on_fragment(frame, t + i * 2'500, t + 20'000'000 + i * 960'000, 1200);
    t += 33'000'000;
  }
  EXPECT_NEAR(double(trains.capacity_bps()), 10e6, 0.2e6);
  // Trains that arrive as paced (1 ms apart, sent 1 ms apart): the link kept up; after a window of them the
  // limit is forgotten.
  TrainDispersion kept_up;
  for (uint64_t frame = 0; frame < 10; ++frame) {
    for (int i = 0; i < 20; ++i)
      kept_up.on_fragment(frame, t + i * 1'000'000, t + 20'000'000 + i * 1'000'000, 1200);
    t += 33'000'000;
  }
  EXPECT_EQ(kept_up.capacity_bps(), 0u);
  // Trains of three fragments measure the receiver's timer, not the link.
  TrainDispersion short_trains;
  for (uint64_t frame = 0; frame < 10; ++frame)
    for (int i = 0; i < 3; ++i) short_trains.on_fragment(frame, t, t + i * 5'000'000, 1200);
  EXPECT_EQ(short_trains.capacity_bps(), 0u);
}

// A stall of the receiving machine spreads one train of a fast link: the trains after it that kept up at a
// higher rate disprove it as a limit. A real bottleneck spreads every train sent above it: confirmed by a
// second, it stays the limit while frames paced under it keep up.
TEST(LinkCapacity, a_train_spread_by_a_stall_does_not_hide_the_faster_trains_that_kept_up) {
  TrainDispersion trains;
  int64_t t = 0;
  auto train = [&](uint64_t frame, int64_t send_gap_ns, int64_t arrival_gap_ns) {
    for (int i = 0; i < 20; ++i)
      trains.on_fragment(frame, t + i * send_gap_ns, t + 20'000'000 + i * arrival_gap_ns, 1200);
    t += 33'000'000;
  };
  // Sent at 100 Mbit/s (96 us apart) and kept up, but for frame 3, whose arrival a 3 ms stall spread.
  for (uint64_t frame = 0; frame < 8; ++frame) train(frame, 96'000, frame == 3 ? 250'000 : 96'000);
  train(8, 96'000, 96'000);  // closes frame 7's train
  EXPECT_EQ(trains.capacity_bps(), 0u);
  // A 10 Mbit/s bottleneck spreads a train sent at 100 Mbit/s: one such train could be a stall...
  train(9, 96'000, 960'000);
  train(10, 96'000, 960'000);  // closes frame 9's
  EXPECT_EQ(trains.capacity_bps(), 0u);
  // ... the second confirms it, and the next ones, paced at 9 Mbit/s, keep up under it.
  for (uint64_t frame = 11; frame < 14; ++frame) train(frame, 1'067'000, 1'067'000);
  EXPECT_NEAR(double(trains.capacity_bps()), 10e6, 0.2e6);
  // Once the spread train has left the window, the link kept up with everything recent: no limit.
  for (uint64_t frame = 14; frame < 24; ++frame) train(frame, 1'067'000, 1'067'000);
  EXPECT_EQ(trains.capacity_bps(), 0u);
}

TEST(LinkCapacity, pacing_probes_up_while_the_link_keeps_up_and_settles_under_a_limit) {
  PacingRate pacing;
  const double target = 8e6;
  EXPECT_DOUBLE_EQ(pacing.rate_bps(target), 2.5 * target);  // libwebrtc's factor before any report
  for (int report = 0; report < 40; ++report) pacing.on_report(0, target);
  EXPECT_DOUBLE_EQ(pacing.rate_bps(target), PacingRate::kMaxMultiplier * target);  // a fast link
  pacing.on_report(20'000'000, target);  // a 20 Mbit/s bottleneck: 0.9x of it (under 2.5x the target)
  EXPECT_DOUBLE_EQ(pacing.rate_bps(target), 18e6);
  pacing.on_report(200'000'000, target);  // ample headroom: as fast as the probe has reached
  EXPECT_DOUBLE_EQ(pacing.rate_bps(target), PacingRate::kMaxMultiplier * target);
  pacing.on_report(30'000'000, target);  // 3.4x the target: 2.5x
  EXPECT_DOUBLE_EQ(pacing.rate_bps(target), 2.5 * target);
  pacing.on_report(5'000'000, target);  // below the target: never slower than the video itself
  EXPECT_DOUBLE_EQ(pacing.rate_bps(target), 1.1 * target);
}

}  // namespace
}  // namespace kairo

namespace kairo {
namespace {

// Datagrams read late still carry when they arrived: three sent back to back and read 30 ms later come out in
// order, stamped before the reading began. (On loopback the kernel stamps a datagram when its receive softirq
// runs, which a loaded machine can delay too: so "before the read", not "at the send".)
TEST(StampedReceive, a_datagram_read_late_carries_the_time_the_kernel_received_it) {
  const int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(rx, 0);
  ASSERT_GE(tx, 0);
  ASSERT_TRUE(enable_receive_timestamps(rx));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  socklen_t length = sizeof(at);
  ASSERT_EQ(getsockname(rx, reinterpret_cast<sockaddr*>(&at), &length), 0);
  std::array<uint8_t, 64> buffer{};
  EXPECT_FALSE(receive_stamped(rx, buffer).ok);  // nothing waiting: no block
  // The kernel turns receive stamping on for the whole machine from deferred work: datagrams in the first
  // moments after the first socket asks can come unstamped (then stamped on reading).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int64_t sent_ns = steady_now_ns();
  for (uint8_t i = 0; i < 3; ++i)
    ASSERT_EQ(sendto(tx, &i, 1, 0, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const int64_t read_ns = steady_now_ns();
  int64_t previous = 0;
  for (uint8_t i = 0; i < 3; ++i) {
    sockaddr_storage from{};
    const StampedDatagram d = receive_stamped(rx, buffer, &from);
    ASSERT_TRUE(d.ok);
    EXPECT_EQ(d.size, 1u);
    EXPECT_EQ(buffer[0], i);
    EXPECT_EQ(d.from_size, socklen_t(sizeof(sockaddr_in)));
    EXPECT_GE(d.arrival_ns, sent_ns - 1'000'000);  // two clocks read apart: a millisecond of slack
    EXPECT_LT(d.arrival_ns, read_ns);              // the kernel's time, not the reading's
    if (previous != 0) {
      EXPECT_GE(d.arrival_ns, previous);
    }
    previous = d.arrival_ns;
  }
  close(rx);
  close(tx);
}

}  // namespace
}  // namespace kairo
