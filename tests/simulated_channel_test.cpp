// Loss recovery on a simulated channel: the sender's packetizer and FEC policy, the receiver's assembler and
// NACKs, and netsim's Gilbert-Elliott loss model (streaming/loss_model.hpp), run as a discrete-event
// simulation with its own clock: no sockets, no threads, no wall time. The same seed gives the same counts
// on every run and every machine, so these tests assert exact reproducibility and recovery thresholds
// without the noise of a loaded machine. (stream_loopback_test.cpp keeps the real-time end to end runs, for
// what they prove: that it works over real sockets at all.)
#include <gtest/gtest.h>

#include <algorithm>
#include <compare>
#include <cstdint>
#include <cstdio>
#include <queue>
#include <random>
#include <vector>

#include "streaming/fec_policy.hpp"
#include "streaming/frame_assembler.hpp"
#include "streaming/frame_packetizer.hpp"
#include "streaming/loss_model.hpp"

namespace kairo {
namespace {

struct ChannelConfig {
  double loss_percent = 0, burst_mean = 1;
  double one_way_ms = 20;
  int frames = 720;  // 8 s at 90 fps, as the loopback tests
  int fps = 90;
  bool nack = true;
  uint64_t seed = 1;
  double burst_p90 = 1;  // the burst-length tail the policy is told (1: the mean only)
  size_t frame_bytes_min = 8'000, frame_bytes_spread = 12'000;  // P-frames: min + [0, spread)
  bool fine_cut = true;  // small frames cut finer where the cap keeps their parity short (FecPolicy::cut_for)
  double parity_cap = 0;  // parity per data fragment at most (the server's: 2); 0: the policy's own
};

struct ChannelResult {
  uint64_t delivered = 0, lost = 0, corrupt = 0;     // frames
  uint64_t sent = 0, parity = 0, retransmitted = 0;  // datagrams, server -> client
  uint64_t dropped = 0, fec_recovered = 0,
           nacks = 0;  // datagrams lost; data fragments rebuilt; NACKed fragments
  // Frames complete later than one way plus half a frame interval after they were sent (too late for the
  // display slot a live client shows them in: a NACK's round trip at the least), and bytes on the wire
  // (with the datagram's headers and IPv4 and UDP).
  uint64_t late = 0, wire_bytes = 0;
  auto operator<=>(const ChannelResult&) const = default;
  ChannelResult& operator+=(const ChannelResult& o) {
    delivered += o.delivered, lost += o.lost, corrupt += o.corrupt;
    sent += o.sent, parity += o.parity, retransmitted += o.retransmitted;
    dropped += o.dropped, fec_recovered += o.fec_recovered, nacks += o.nacks;
    late += o.late, wire_bytes += o.wire_bytes;
    return *this;
  }
  double on_time_share() const { return double(delivered) / double(std::max<uint64_t>(1, delivered + lost)); }
  double overhead() const {
    return double(parity + retransmitted) / double(std::max<uint64_t>(1, sent - parity));
  }
};

// A frame's content, so that a wrongly assembled frame is caught: every byte a function of its id and offset.
uint8_t content(uint64_t frame, size_t offset) {
  return uint8_t(frame * 131 + offset * 7 + (offset >> 8));
}

ChannelResult simulate(const ChannelConfig& c) {
  struct Event {
    int64_t at = 0;
    uint64_t order = 0;
    enum Kind { kDatagram, kNack, kSendFrame, kTick } kind = kTick;
    std::vector<uint8_t> bytes{};
    uint64_t frame = 0;
    int block = 0, index = 0;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : order > o.order; }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  uint64_t order = 0;
  const auto schedule = [&](Event e) {
    e.order = order++;
    events.push(std::move(e));
  };
  std::mt19937_64 down_rng(c.seed), up_rng(c.seed ^ 0x9E3779B97F4A7C15ull), sizes(c.seed + 1);
  BurstLoss down{c.loss_percent, c.burst_mean}, up{c.loss_percent, c.burst_mean};
  FramePacketizer packetizer;
  // The real client's settings (streaming/stream_client.cpp): a frame may complete until one frame interval
  // plus 30 ms after its first fragment; NACKs after 3 ms of quiet, again after an RTT.
  const int64_t interval = 1'000'000'000LL / c.fps, one_way = int64_t(c.one_way_ms * 1e6), rtt = 2 * one_way;
  FrameAssembler assembler(packetizer.fragment_body_bytes(), interval + 30'000'000, 64);
  // The FEC policy as the server sets it from the receiver's reports: the loss and burst length it measures.
  const FecPolicy policy{
      .loss = c.loss_percent / 100.0, .burst_mean = c.burst_mean, .burst_p90 = c.burst_p90};
  ChannelResult r;
  std::vector<uint8_t> access_unit;

  const auto send_datagram = [&](std::span<const uint8_t> payload, int64_t at) {
    r.wire_bytes += payload.size() - wire::VideoFragment::kSize + wire::kVideoDatagramOverhead;
    if (down.lose(down_rng)) {
      ++r.dropped;
      return;
    }
    schedule({.at = at + one_way, .kind = Event::kDatagram, .bytes = {payload.begin(), payload.end()}});
  };
  for (int i = 0; i < c.frames; ++i)
    schedule({.at = i * interval, .kind = Event::kSendFrame, .frame = uint64_t(i)});
  const int64_t end = c.frames * interval + 500'000'000;
  for (int64_t t = 0; t < end; t += 2'000'000) schedule({.at = t, .kind = Event::kTick});

  while (!events.empty()) {
    const Event e = events.top();
    events.pop();
    switch (e.kind) {
      case Event::kSendFrame: {
        // A keyframe first, then 8-20 kB frames: 7-17 data fragments each.
        access_unit.resize(e.frame == 0 ? 60'000 : c.frame_bytes_min + sizes() % c.frame_bytes_spread);
        for (size_t k = 0; k < access_unit.size(); ++k) access_unit[k] = content(e.frame, k);
        const auto parity_for = [&](int k) {
          return c.parity_cap > 0 ? std::min(policy.parity_for(k), int(c.parity_cap * k))
                                  : policy.parity_for(k);
        };
        const FecPolicy::Cut cut =
            c.fine_cut ? policy.cut_for(access_unit.size(), packetizer.fragment_body_bytes(),
                                        wire::kVideoDatagramOverhead,
                                        [&](int k) { return c.parity_cap > 0 ? c.parity_cap * k : 255.0; })
                       : FecPolicy::Cut{};
        const int n = packetizer.packetize_with(
            FrameInfo{.frame_id = e.frame, .keyframe = e.frame == 0}, access_unit,
            [&](int k) { return k == cut.data ? cut.parity : parity_for(k); }, cut.body);
        for (int j = 0; j < n; ++j) {
          const int64_t at = e.at + j * 100'000;  // paced: 0.1 ms apart
          r.parity += packetizer.is_parity(j);
          ++r.sent;
          send_datagram(packetizer.fragment(j, at), at);
        }
        break;
      }
      case Event::kDatagram:
        assembler.add(e.bytes, e.at);
        break;
      case Event::kNack: {
        bool suppressed = false;
        const auto payload =
            packetizer.retransmission(e.frame, 0, e.block, e.index, e.at, 3 * rtt / 4, 3, &suppressed);
        if (payload.empty()) break;
        ++r.retransmitted;
        ++r.sent;
        send_datagram(payload, e.at);
        break;
      }
      case Event::kTick:
        assembler.expire(e.at);
        while (const AssembledFrame* f = assembler.pop()) {
          ++r.delivered;
          r.late += f->complete_ns - f->first_send_ns > one_way + interval / 2;
          r.fec_recovered += uint64_t(f->fec_recovered);
          for (size_t k = 0; k < f->data.size(); ++k)
            if (f->data[k] != content(f->frame_id, k)) {
              ++r.corrupt;
              break;
            }
        }
        r.lost += assembler.take_lost().size();
        if (c.nack)
          assembler.missing(e.at, 3'000'000, rtt, [&](uint64_t frame, int block, int index) {
            ++r.nacks;
            if (!up.lose(up_rng))
              schedule({.at = e.at + one_way,
                        .kind = Event::kNack,
                        .frame = frame,
                        .block = block,
                        .index = index});
          });
        break;
    }
  }
  return r;
}

void print(const char* what, const ChannelResult& r) {
  std::printf(
      "%s: %llu delivered, %llu lost (on time %.4f), %llu corrupt; %llu datagrams sent (%llu parity, %llu "
      "retransmitted, overhead %.3f), %llu dropped, %llu rebuilt by FEC, %llu NACKed\n",
      what, (unsigned long long)r.delivered, (unsigned long long)r.lost, r.on_time_share(),
      (unsigned long long)r.corrupt, (unsigned long long)r.sent, (unsigned long long)r.parity,
      (unsigned long long)r.retransmitted, r.overhead(), (unsigned long long)r.dropped,
      (unsigned long long)r.fec_recovered, (unsigned long long)r.nacks);
}

// 2x256^2 at 30 fps (4-7 kB frames: 4-7 data fragments at the MTU's cut), 5 % loss in runs of 4 whose 90th
// percentile the policy is told (9), 20 ms each way, 600 frames.
ChannelConfig small_frames_at_bursty_loss() {
  return {.loss_percent = 5,
          .burst_mean = 4,
          .frames = 600,
          .fps = 30,
          .burst_p90 = 9,
          .frame_bytes_min = 4'000,
          .frame_bytes_spread = 3'000};
}

// The counts of seeds 1 to `seeds`, added up.
ChannelResult over_seeds(ChannelConfig c, uint64_t seeds) {
  ChannelResult total;
  for (c.seed = 1; c.seed <= seeds; ++c.seed) total += simulate(c);
  return total;
}

// Small frames are cut finer under bursty loss (FecPolicy::cut_for): loss comes in runs of datagrams, so a
// 4-7 kB frame in 4-7 fragments needs parity for most of a run, more than the server's cap of two parity per
// data fragment allows; cut finer, fewer wire bytes meet the target. 2x256^2 at 30 fps, 5 %
// loss in runs of 4 (90th percentile 9), 20 ms each way, 20 seeds of 600 frames, the server's parity cap, the
// same losses both ways.
TEST(SimulatedChannel, small_frames_cut_finer_under_bursty_loss_are_late_less_often_for_fewer_bytes) {
  const auto run = [](bool fine) {
    ChannelConfig c = small_frames_at_bursty_loss();
    c.fine_cut = fine;
    c.parity_cap = 2;
    return over_seeds(c, 20);
  };
  const ChannelResult coarse = run(false), fine = run(true);
  const auto show = [](const char* what, const ChannelResult& r) {
    std::printf("%s: %llu late, %llu lost of %llu; %.2f MB on the wire in %llu datagrams\n", what,
                (unsigned long long)r.late, (unsigned long long)r.lost,
                (unsigned long long)(r.delivered + r.lost), double(r.wire_bytes) / 1e6,
                (unsigned long long)r.sent);
  };
  show("MTU fragments", coarse);
  show("cut finer    ", fine);
  EXPECT_EQ(fine.corrupt, 0u);
  EXPECT_LT(fine.late + fine.lost, coarse.late + coarse.lost);
  EXPECT_LT(fine.wire_bytes, coarse.wire_bytes);
}

// The loss model gives the loss it is asked for, in bursts of the mean asked for, at every loss rate (above
// 50 % it once gave 50 %: the good -> bad rate was clamped at 1).
TEST(SimulatedChannel, the_loss_model_gives_the_loss_and_burst_length_asked_for) {
  for (double percent : {1.0, 5.0, 30.0, 60.0, 90.0, 100.0})
    for (double burst : {1.0, 4.0}) {
      BurstLoss model{percent, burst};
      std::mt19937_64 rng(42);
      int lost = 0, bursts = 0;
      bool previous = false;
      constexpr int kPackets = 200'000;
      for (int i = 0; i < kPackets; ++i) {
        const bool now = model.lose(rng);
        lost += now;
        bursts += now && !previous;
        previous = now;
      }
      EXPECT_NEAR(100.0 * lost / kPackets, percent, 0.02 * percent + 0.1)
          << percent << " % in bursts of " << burst;
      // The mean burst: as asked, or as long as the loss needs above 50 % (p / (1 - p)).
      if (percent < 100) {
        const double expected = std::max(burst, percent / (100.0 - percent));
        EXPECT_NEAR(double(lost) / bursts, expected, 0.05 * expected)
            << percent << " % in bursts of " << burst;
      }
    }
  BurstLoss none{0, 4};
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(none.lose(rng));
}

TEST(SimulatedChannel, the_same_seed_gives_the_same_counts_and_another_seed_others) {
  const ChannelConfig c{.loss_percent = 5, .burst_mean = 4, .seed = 11};
  const ChannelResult a = simulate(c), b = simulate(c);
  ChannelConfig other = c;
  other.seed = 12;
  const ChannelResult d = simulate(other);
  print("seed 11", a);
  print("seed 12", d);
  EXPECT_EQ(a, b) << "a simulation is a function of its seed";
  EXPECT_NE(a, d) << "and the seed matters";
  EXPECT_GT(a.dropped, 0u);
}

TEST(SimulatedChannel, a_clean_channel_delivers_every_frame_with_no_overhead) {
  const ChannelResult r = simulate({.loss_percent = 0, .seed = 1});
  EXPECT_EQ(r.delivered, 720u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.parity + r.retransmitted + r.dropped + r.nacks, 0u);
}

// The bursty-loss case of stream_loopback_test.cpp, without the machine's noise: 5 % loss in bursts of 4,
// 20 ms each way, 720 frames, the policy told the mean burst only (its model then has geometric bursts, 10 %
// of them 8 or longer). Seeds 1-10 give 0.9917-0.9972 on time at 108-110 % overhead (a 40 ms RTT leaves NACKs
// little time before the deadline: FEC does most of it; parity sized for the mean alone and capped at 50 %
// gave 0.9625-0.9722 at 52 %); the ten seeds together must hold 99 %, every one 98.5 %, and nothing is
// ever assembled wrong. (A bar of 99 % for every seed held by the luck of the sequence: at 0.5 % of 720
// frames lost, 3.6 on average, a seed loses 8 or more about 1 time in 40; with the 8-9 kB frames cut finer,
// which changes every later datagram's draw, seed 5 did, where 40 seeds lost 128 frames against 136 cut at
// the MTU.) Broken recovery would show at once: with no FEC a frame of ~15 datagrams escapes every burst only
// about 83 % of the time.
TEST(SimulatedChannel, five_percent_loss_in_bursts_of_four_keeps_99_percent_of_frames_on_time) {
  ChannelResult total;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const ChannelResult r = simulate({.loss_percent = 5, .burst_mean = 4, .seed = seed});
    char label[32];
    std::snprintf(label, sizeof(label), "seed %llu", (unsigned long long)seed);
    print(label, r);
    EXPECT_EQ(r.corrupt, 0u);
    EXPECT_EQ(r.delivered + r.lost, 720u) << "every frame is either delivered or declared lost";
    EXPECT_GE(r.on_time_share(), 0.985) << label;
    EXPECT_LE(r.overhead(), 1.15) << label;
    total += r;
  }
  EXPECT_GE(total.on_time_share(), 0.99);
}

// FEC shaped to the loss pattern: bursts of mean 4 (geometric) leave about 10 % of them 9 or longer, and
// parity sized for the mean sends every frame one of those hits to a NACK's round trip (late, for the
// display). Told the tail (90th percentile: 9), the policy's loss model has bursts that long, and a block
// gets the parity that leaves it to a NACK with probability 1 in 200 (1 in 500 since session 33). Seeds 1-10,
// the same losses both ways: what the extra overhead buys. Issue 15's bar is 99 % of frames in time for the
// display; measured: 29 of 7,200 late (99.6 % on time) at 119 % overhead, told the mean only 37 at 109 %; the
// 90th-percentile floor on a 50 % cap the policy had before: 143 at 69 %. With the frames of up to 12
// fragments cut finer where that meets the target for fewer bytes (datagrams, not bytes, are what overhead
// counts here): 25 at 94 %, 40 at 90 %; at 1 in 500, 9 lost at 107 %, 16 at 91 %.
TEST(SimulatedChannel,
     parity_sized_by_the_burst_tail_leaves_fewer_frames_to_retransmission_than_by_the_mean) {
  ChannelResult mean_total, tail_total;
  double mean_overhead = 0, tail_overhead = 0;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const ChannelResult mean = simulate({.loss_percent = 5, .burst_mean = 4, .seed = seed});
    const ChannelResult tail = simulate({.loss_percent = 5, .burst_mean = 4, .seed = seed, .burst_p90 = 9});
    EXPECT_EQ(tail.corrupt, 0u);
    EXPECT_EQ(tail.dropped > 0, true);
    mean_total += mean;
    tail_total += tail;
    mean_overhead += mean.overhead() / 10;
    tail_overhead += tail.overhead() / 10;
  }
  std::printf(
      "by the mean: %llu frames lost, %llu fragments NACKed, overhead %.3f; by the tail: %llu lost, %llu "
      "NACKed, overhead %.3f\n",
      (unsigned long long)mean_total.lost, (unsigned long long)mean_total.nacks, mean_overhead,
      (unsigned long long)tail_total.lost, (unsigned long long)tail_total.nacks, tail_overhead);
  EXPECT_LT(tail_total.nacks, mean_total.nacks) << "fewer fragments left to a round trip";
  EXPECT_LE(tail_total.lost, mean_total.lost);
  EXPECT_LE(tail_total.lost, 7200u / 100u) << "at least 99 % of frames on time";
  EXPECT_GT(tail_overhead, mean_overhead);  // it is not free
}

TEST(SimulatedChannel, five_percent_random_loss_keeps_99_5_percent_on_time) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const ChannelResult r = simulate({.loss_percent = 5, .burst_mean = 1, .seed = seed});
    EXPECT_EQ(r.corrupt, 0u);
    EXPECT_GE(r.on_time_share(), 0.995) << "seed " << seed;
  }
}

// What each mechanism buys, same seed: FEC alone recovers most bursts; NACKs add what deadlines allow.
// Frames in MTU-sized fragments: cut finer, FEC alone recovers every frame of this run.
TEST(SimulatedChannel, fec_and_nacks_each_recover_frames_the_other_would_lose) {
  const ChannelConfig c{.loss_percent = 5, .burst_mean = 4, .one_way_ms = 5, .seed = 3, .fine_cut = false};
  ChannelConfig without_nack = c;
  without_nack.nack = false;
  const ChannelResult with = simulate(c), fec_only = simulate(without_nack);
  print("FEC + NACK, 5 ms each way", with);
  print("FEC only,   5 ms each way", fec_only);
  EXPECT_GT(with.fec_recovered, 0u);
  EXPECT_GT(with.retransmitted, 0u);
  EXPECT_LT(with.lost, fec_only.lost) << "at 10 ms RTT a NACK beats the deadline";
}

}  // namespace
}  // namespace kairo
