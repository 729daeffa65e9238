// Packetizer + assembler without sockets: property tests under random loss, reordering and duplication.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "streaming/frame_assembler.hpp"
#include "streaming/frame_packetizer.hpp"

namespace kairo {
namespace {

std::vector<uint8_t> random_frame(std::mt19937& rng, size_t bytes) {
  std::vector<uint8_t> f(bytes);
  for (auto& b : f) b = uint8_t(rng());
  return f;
}

struct Datagram {
  int64_t at_ns;
  std::vector<uint8_t> payload;
};

TEST(FrameTransport, fragments_reassemble_to_the_identical_frame_in_order) {
  std::mt19937 rng(1);
  FramePacketizer packetizer;
  FrameAssembler assembler(packetizer.fragment_body_bytes(), 50'000'000);
  for (uint64_t id = 0; id < 20; ++id) {
    const auto frame = random_frame(rng, 1 + rng() % 400'000);  // up to multi-block keyframes
    const int n =
        packetizer.packetize(FrameInfo{.frame_id = id, .pose_id = id * 3, .keyframe = id == 0}, frame, 0.1);
    for (int i = 0; i < n; ++i) ASSERT_TRUE(assembler.add(packetizer.fragment(i, 1000), 1000));
    const AssembledFrame* out = assembler.pop();
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(out->frame_id, id);
    EXPECT_EQ(out->pose_id, id * 3);
    EXPECT_EQ(out->keyframe, id == 0);
    ASSERT_EQ(std::vector<uint8_t>(out->data.begin(), out->data.end()), frame);
  }
}

// A small frame cut finer than the MTU (FecPolicy::fragment_body_for) reassembles the same, parity and all;
// a fragment whose body size differs from its frame's, or below the least cut, is refused.
TEST(FrameTransport, frames_cut_finer_than_the_mtu_reassemble_and_a_mixed_cut_is_refused) {
  std::mt19937 rng(3);
  FramePacketizer packetizer;
  FrameAssembler assembler(packetizer.fragment_body_bytes(), 50'000'000);
  const auto frame = random_frame(rng, 5'800);
  const auto parity = [](int k) { return 2 * k; };
  const int n = packetizer.packetize_with(FrameInfo{.frame_id = 0, .keyframe = true}, frame, parity, 264);
  EXPECT_EQ(n, 22 * 3);
  EXPECT_EQ(packetizer.payload_bytes(), 264 + wire::VideoFragment::kSize);
  // Every data fragment lost: 22 of the 44 parity fragments rebuild them all.
  for (int i = 0; i < n; ++i) {
    if (!packetizer.is_parity(i)) continue;
    ASSERT_TRUE(assembler.add(packetizer.fragment(i, 1000), 1000));
  }
  const AssembledFrame* out = assembler.pop();
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(out->fec_recovered, 22);
  EXPECT_EQ(std::vector<uint8_t>(out->data.begin(), out->data.end()), frame);

  // Frame 1 begins cut at 264 bytes; a fragment of it cut at 300 is refused, and so is a frame cut at 200.
  packetizer.packetize_with(FrameInfo{.frame_id = 1}, frame, parity, 300);
  const std::vector<uint8_t> at_300(packetizer.fragment(0, 0).begin(), packetizer.fragment(0, 0).end());
  packetizer.packetize_with(FrameInfo{.frame_id = 1}, frame, parity, 264);
  EXPECT_TRUE(assembler.add(packetizer.fragment(0, 0), 0));
  const uint64_t invalid = assembler.stats().invalid;
  EXPECT_FALSE(assembler.add(at_300, 0));
  EXPECT_EQ(assembler.stats().invalid, invalid + 1);
  EXPECT_THROW(packetizer.packetize_with(FrameInfo{.frame_id = 2}, frame, parity, 200),
               std::invalid_argument);
  EXPECT_THROW(packetizer.packetize_with(FrameInfo{.frame_id = 2}, frame, parity, 5'000),
               std::invalid_argument);
}

class LossyChannel : public ::testing::TestWithParam<uint32_t> {};

// Property: whatever the channel does (loss up to 30 %, reordering, duplication), every frame handed out is
// byte-identical to the one sent, in increasing order, and every other frame is reported lost. NACKs are
// served from the packetizer's kept frames as a real sender would.
TEST_P(LossyChannel, every_delivered_frame_is_identical_or_reported_lost) {
  std::mt19937 rng(GetParam());
  const double loss = std::uniform_real_distribution<double>(0.0, 0.3)(rng);
  const double duplicate = std::uniform_real_distribution<double>(0.0, 0.1)(rng);
  const double redundancy = std::uniform_real_distribution<double>(0.0, 0.5)(rng);
  FramePacketizer packetizer(1200, 16);
  FrameAssembler assembler(packetizer.fragment_body_bytes(), 30'000'000, 16);
  std::map<uint64_t, std::vector<uint8_t>> sent;
  std::vector<Datagram> in_flight;
  std::bernoulli_distribution lose(loss), dup(duplicate);
  std::uniform_int_distribution<int64_t> jitter(0, 8'000'000);
  std::vector<uint64_t> delivered, lost;
  int64_t now = 0;
  auto deliver_due = [&](int64_t until) {
    std::stable_sort(in_flight.begin(), in_flight.end(),
                     [](const Datagram& a, const Datagram& b) { return a.at_ns < b.at_ns; });
    size_t i = 0;
    for (; i < in_flight.size() && in_flight[i].at_ns <= until; ++i)
      assembler.add(in_flight[i].payload, in_flight[i].at_ns);
    in_flight.erase(in_flight.begin(), in_flight.begin() + std::ptrdiff_t(i));
  };
  auto send = [&](std::span<const uint8_t> payload) {
    if (lose(rng)) return;
    in_flight.push_back({now + 5'000'000 + jitter(rng), {payload.begin(), payload.end()}});
    if (dup(rng)) in_flight.push_back({now + 5'000'000 + jitter(rng), {payload.begin(), payload.end()}});
  };
  for (uint64_t id = 0; id < 200; ++id, now += 11'111'111) {
    sent[id] = random_frame(rng, 500 + rng() % 30'000);
    const int n = packetizer.packetize(FrameInfo{.frame_id = id, .pose_id = id}, sent[id], redundancy);
    for (int i = 0; i < n; ++i) send(packetizer.fragment(i, now));
    for (int step = 0; step < 4; ++step) {
      const int64_t t = now + step * 2'777'777;
      deliver_due(t);
      assembler.missing(t, 2'000'000, 10'000'000, [&](uint64_t frame, int block, int index) {
        const auto again = packetizer.retransmission(frame, 0, block, index, t);
        if (!again.empty()) send(again);
      });
      assembler.expire(t);
      while (const AssembledFrame* f = assembler.pop()) {
        ASSERT_EQ(std::vector<uint8_t>(f->data.begin(), f->data.end()), sent.at(f->frame_id))
            << "frame " << f->frame_id;
        if (!delivered.empty()) {
          ASSERT_GT(f->frame_id, delivered.back());
        }
        delivered.push_back(f->frame_id);
      }
      for (uint64_t id_lost : assembler.take_lost()) lost.push_back(id_lost);
    }
  }
  deliver_due(now + 100'000'000);
  assembler.expire(now + 200'000'000);
  while (const AssembledFrame* f = assembler.pop()) {
    ASSERT_EQ(std::vector<uint8_t>(f->data.begin(), f->data.end()), sent.at(f->frame_id));
    delivered.push_back(f->frame_id);
  }
  for (uint64_t id_lost : assembler.take_lost()) lost.push_back(id_lost);
  std::sort(lost.begin(), lost.end());
  for (uint64_t d : delivered)
    EXPECT_FALSE(std::binary_search(lost.begin(), lost.end(), d)) << d << " both delivered and lost";
  // Nothing accepted is silently dropped: every frame sent (up to the last, which may still be in progress)
  // is delivered or reported lost.
  for (uint64_t id = 0; id + 1 < 200; ++id)
    EXPECT_TRUE(std::find(delivered.begin(), delivered.end(), id) != delivered.end() ||
                std::binary_search(lost.begin(), lost.end(), id))
        << "frame " << id << " vanished (loss " << loss << ")";
  if (loss < 0.05) {
    EXPECT_GT(delivered.size(), 180u)
        << "loss " << loss << " redundancy " << redundancy << " lost " << lost.size() << " first lost "
        << (lost.empty() ? 0 : lost[0]) << " invalid " << assembler.stats().invalid << " late "
        << assembler.stats().late_fragments << " next " << assembler.next_frame_id();
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, LossyChannel, ::testing::Range(1u, 25u));

TEST(FrameTransport, malformed_and_inconsistent_fragments_are_refused) {
  FramePacketizer packetizer;
  FrameAssembler assembler(packetizer.fragment_body_bytes(), 50'000'000);
  std::vector<uint8_t> frame(5000, 7);
  packetizer.packetize(FrameInfo{.frame_id = 4}, frame, 0.2);
  auto payload = std::vector<uint8_t>(packetizer.fragment(0, 0).begin(), packetizer.fragment(0, 0).end());
  EXPECT_TRUE(assembler.add(payload, 0));
  auto liar = payload;
  wire::put_u32(&liar[40], 9000);  // same frame, different size
  EXPECT_FALSE(assembler.add(liar, 0));
  EXPECT_FALSE(assembler.add(std::span(payload).first(30), 0));
  std::vector<uint8_t> noise(payload.size());
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = uint8_t(i * 31);
  EXPECT_FALSE(assembler.add(noise, 0));
  EXPECT_GE(assembler.stats().invalid, 3u);
}

}  // namespace
}  // namespace kairo
