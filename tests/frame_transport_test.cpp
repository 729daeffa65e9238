// Packetizer + assembler without sockets: property tests under random loss, reordering and duplication.
#include <gtest/gtest.h>

#include <array>
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

// Sends every fragment of frame `id` (or none) to `assembler` at `at_ns`.
void deliver(FramePacketizer& packetizer, FrameAssembler& assembler, const FrameInfo& info, size_t bytes,
             int64_t at_ns, bool arrives = true) {
  std::mt19937 rng(uint32_t(info.frame_id));
  const int n = packetizer.packetize(info, random_frame(rng, bytes), 0.0);
  for (int i = 0; i < n && arrives; ++i) ASSERT_TRUE(assembler.add(packetizer.fragment(i, at_ns), at_ns));
}

// A frame of which nothing arrived, though a later one did, is named once the later one has been quiet a
// moment, and again only after the re-NACK interval; one whose fragments arrived, or that was given up,
// never is.
TEST(FrameTransport, a_frame_of_which_nothing_arrived_is_named_for_a_whole_frame_nack_once_an_interval) {
  FramePacketizer packetizer;
  FrameAssembler assembler(packetizer.fragment_body_bytes(), 100'000'000);
  constexpr int64_t kMs = 1'000'000;
  deliver(packetizer, assembler, {.frame_id = 0, .keyframe = true}, 3'000, 0);
  ASSERT_NE(assembler.pop(), nullptr);
  deliver(packetizer, assembler, {.frame_id = 1}, 3'000, 33 * kMs, false);  // all of it lost
  deliver(packetizer, assembler, {.frame_id = 2}, 3'000, 66 * kMs, false);  // this too
  deliver(packetizer, assembler, {.frame_id = 3}, 3'000, 100 * kMs);
  EXPECT_TRUE(assembler.unseen(101 * kMs, 3 * kMs, 40 * kMs).empty());  // frame 3 arrived just now
  const auto named = assembler.unseen(103 * kMs, 3 * kMs, 40 * kMs);
  EXPECT_EQ(std::vector<uint64_t>(named.begin(), named.end()), (std::vector<uint64_t>{1, 2}));
  EXPECT_TRUE(assembler.unseen(120 * kMs, 3 * kMs, 40 * kMs).empty());   // asked already
  EXPECT_EQ(assembler.unseen(143 * kMs, 3 * kMs, 40 * kMs).size(), 2u);  // again after the interval
  EXPECT_EQ(assembler.pop(), nullptr);  // frame 3 waits for them (it is no keyframe, no repair)
  // Frame 1 is retransmitted whole: only frame 2 is still unseen.
  deliver(packetizer, assembler, {.frame_id = 1}, 3'000, 150 * kMs);
  const auto still = assembler.unseen(190 * kMs, 3 * kMs, 40 * kMs);
  EXPECT_EQ(std::vector<uint64_t>(still.begin(), still.end()), (std::vector<uint64_t>{2}));
}

// A complete repair frame that predicts only from frames delivered already is delivered at once: the
// frames before it still missing are given up (reported lost) rather than waited for until their deadline,
// and complete ones between still go first, in order. A repair reaching back past a frame not delivered
// yet waits, as an ordinary frame does; a keyframe never does.
TEST(FrameTransport, a_repair_frame_or_keyframe_past_missing_frames_is_delivered_at_once) {
  FramePacketizer packetizer;
  FrameAssembler assembler(packetizer.fragment_body_bytes(), 1'000'000'000);
  deliver(packetizer, assembler, {.frame_id = 10, .keyframe = true}, 3'000, 0);
  ASSERT_NE(assembler.pop(), nullptr);
  deliver(packetizer, assembler, {.frame_id = 11}, 3'000, 1, false);  // lost
  deliver(packetizer, assembler, {.frame_id = 12}, 3'000, 2);         // complete, predicted from 11
  // A repair from 12 predicts from frames before 12, 11 among them: it waits.
  deliver(packetizer, assembler, {.frame_id = 13, .repairs_from = 12}, 3'000, 3);
  EXPECT_EQ(assembler.pop(), nullptr);
  EXPECT_TRUE(assembler.take_lost().empty());
  deliver(packetizer, assembler, {.frame_id = 14, .repairs_from = 11}, 3'000, 4);  // from before 11: at once
  std::vector<uint64_t> delivered;
  while (const AssembledFrame* f = assembler.pop()) delivered.push_back(f->frame_id);
  EXPECT_EQ(delivered, (std::vector<uint64_t>{12, 13, 14}));
  const auto lost = assembler.take_lost();
  EXPECT_EQ(std::vector<uint64_t>(lost.begin(), lost.end()), (std::vector<uint64_t>{11}));
  EXPECT_EQ(assembler.stats().gave_up_for_standalone, 1u);
  // Late fragments of the frame given up are dropped, never played.
  deliver(packetizer, assembler, {.frame_id = 11}, 3'000, 5);
  EXPECT_EQ(assembler.pop(), nullptr);
  // A keyframe past an incomplete frame: the same.
  std::mt19937 rng(7);
  const int n = packetizer.packetize(FrameInfo{.frame_id = 15}, random_frame(rng, 3'000), 0.0);
  ASSERT_TRUE(assembler.add(packetizer.fragment(n - 1, 6), 6));  // one fragment of three
  deliver(packetizer, assembler, {.frame_id = 16, .keyframe = true}, 3'000, 7);
  const AssembledFrame* key = assembler.pop();
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(key->frame_id, 16u);
  const auto lost_again = assembler.take_lost();
  EXPECT_EQ(std::vector<uint64_t>(lost_again.begin(), lost_again.end()), (std::vector<uint64_t>{15}));
}

// A NACK naming no fragment asks for the whole frame: the packetizer lists every data fragment of a kept
// frame, block by block, and nothing for one it no longer keeps. A repair frame says on the wire how far
// back its first unused reference is. And the packetizer knows when a frame's last fragment first left (a
// NACK sooner than a round trip after it is not yet a loss: StreamServer's speculative repair).
TEST(FrameTransport, the_data_fragments_of_a_kept_frame_are_listed_and_a_repair_says_how_far_back) {
  std::mt19937 rng(5);
  FramePacketizer packetizer(wire::kDefaultMtu, 2);
  const int n = packetizer.packetize(FrameInfo{.frame_id = 40, .repairs_from = 37}, random_frame(rng, 90'000),
                                     0.25);  // two blocks
  std::array<std::pair<uint8_t, uint8_t>, 128> listed{};
  const size_t data = packetizer.data_fragments(40, 0, listed);
  int parity = 0;
  for (int i = 0; i < n; ++i) parity += packetizer.is_parity(i);
  EXPECT_EQ(int(data), n - parity);
  EXPECT_EQ(listed[0], (std::pair<uint8_t, uint8_t>{0, 0}));
  EXPECT_EQ(listed[data - 1].first, 1);
  EXPECT_EQ(packetizer.sent_completely_at(40, 0), std::nullopt);  // nothing sent yet
  const auto f = wire::read_video_fragment(packetizer.fragment(0, 1));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->repairs_back, 3);
  for (int i = 1; i < n - 1; ++i) packetizer.fragment(i, 100 + i);
  EXPECT_EQ(packetizer.sent_completely_at(40, 0), std::nullopt);  // one to go
  packetizer.fragment(n - 1, 500);
  packetizer.retransmission(40, 0, 0, 0, 900);
  EXPECT_EQ(packetizer.sent_completely_at(40, 0), std::optional<int64_t>(500));  // not moved by a resend
  EXPECT_EQ(packetizer.data_fragments(40, 1, listed), 0u);  // the other stream has no such frame
  packetizer.packetize(FrameInfo{.frame_id = 41}, random_frame(rng, 100), 0.0);
  packetizer.packetize(FrameInfo{.frame_id = 42}, random_frame(rng, 100), 0.0);
  EXPECT_EQ(packetizer.data_fragments(40, 0, listed), 0u);  // no longer kept (two frames are)
  EXPECT_EQ(wire::read_video_fragment(packetizer.fragment(0, 1))->repairs_back, 0);
}

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
