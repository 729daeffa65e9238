// Sessions sharing one link, as the people of a room share one access point: two clients of one node behind
// one `kairo netsim` relay. Before the fixes these measured (issue #20): through a relay with 2 % loss, 24 %
// and 39 % of frames lost and over a thousand keyframes each in 5 minutes; through a 20 Mbit/s bottleneck,
// 27-29 % lost at under 10 % of the link. Reduced durations here, margins a loaded 2-core machine holds;
// bench/shared-link.sh measures the full 5 minutes (bench/RESULTS.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <tuple>

#include "client/reference_client.hpp"
#include "core/clock.hpp"
#include "streaming/netsim.hpp"
#include "tests/fleet_harness.hpp"
#include "tests/node_e2e_fixture.hpp"

namespace kairo {
namespace {

using test::InProcessNode;

struct SharedRun {
  std::array<ClientReport, 2> reports;
  std::array<Timeline, 2> timelines;
  int64_t start_ns = 0;
};

// Two clients at once through `relay_port`, each its own user (logins are rate limited per user).
void run_two(ControlPlane& control, uint16_t relay_port, double seconds, SharedRun& run) {
  std::array<ClientOptions, 2> options;
  for (int i = 0; i < 2; ++i) {
    const std::string user = "sharer" + std::to_string(i);
    control.auth.create_user(user, user + "-password", control::Role::kClient);
    options[size_t(i)] = ClientOptions{.control_url = control.url(),
                                       .user = user,
                                       .password = user + "-password",
                                       .scene = "vr-room",
                                       .eye_width = 256,
                                       .eye_height = 256,
                                       .fps = 30,
                                       .duration_s = seconds,
                                       .via = "127.0.0.1:" + std::to_string(relay_port)};
    Timeline* timeline = &run.timelines[size_t(i)];
    options[size_t(i)].on_decoded = [timeline](const FrameMetadata&, const DecodedPicture&, size_t bytes) {
      timeline->add(bytes);
    };
  }
  run.start_ns = steady_now_ns();
  std::tie(run.reports[0], run.reports[1]) = run_together(options[0], options[1]);
}

void print(const char* what, const ClientReport& r) {
  std::printf("perf: %s: %llu of %llu decoded, %llu lost, %llu keyframes, %.2f Mbit/s\n", what,
              static_cast<unsigned long long>(r.frames_decoded),
              static_cast<unsigned long long>(r.frames_sent), static_cast<unsigned long long>(r.frames_lost),
              static_cast<unsigned long long>(r.keyframes),
              8.0 * double(r.video_bytes) / r.duration_s * 1e-6);
}

TEST_F(NodeEndToEndPerf, two_sessions_behind_one_lossy_relay_lose_almost_nothing_and_need_no_keyframe_storm) {
  InProcessNode node(control->url());
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(node.agent.udp_port()),
               ImpairmentConfig{.loss_percent = 2, .delay_ms = 10}, 11);
  relay.start();
  SharedRun run;
  run_two(*control, relay.listen_port(), 20, run);
  EXPECT_GT(relay.counters(false).lost, 100u);  // the relay really dropped datagrams of both streams
  for (const ClientReport& r : run.reports) {
    print("2 % loss", r);
    ASSERT_GT(r.frames_sent, 400u);
    // Goal: <= 1 % lost; 2 % here for a loaded machine. Before: 24-39 %.
    EXPECT_LE(double(r.frames_lost), 0.02 * double(r.frames_sent));
    EXPECT_GE(double(r.frames_decoded), 0.97 * double(r.frames_sent));
    // Keyframes after the first: < 1 % of frames is the goal; before, one in six frames was one.
    EXPECT_LE(double(r.keyframes), 1.0 + 0.02 * double(r.frames_sent));
  }
}

TEST_F(NodeEndToEndPerf, two_sessions_share_a_bottleneck_about_equally_and_use_most_of_it) {
  // A ceiling high enough that each session wants more than the link can give both (x264 stops near
  // 10 Mbit/s on this picture), so the link, not the picture, decides.
  InProcessNode node(control->url(), "", 2, 0, "", 4.0);
  constexpr double kLinkMbitps = 6;
  Netsim relay("127.0.0.1:0", "127.0.0.1:" + std::to_string(node.agent.udp_port()),
               ImpairmentConfig{.delay_ms = 10, .rate_mbitps = kLinkMbitps, .queue_ms = 100}, 12);
  relay.start();
  SharedRun run;
  const uint64_t wire_before = relay.counters(false).bytes;
  run_two(*control, relay.listen_port(), 24, run);
  const double wire_mbitps = double(relay.counters(false).bytes - wire_before) * 8.0 / 24.0 * 1e-6;
  // Steady state: the second half.
  std::array<double, 2> mbitps{};
  for (int i = 0; i < 2; ++i) {
    mbitps[size_t(i)] = run.timelines[size_t(i)].rates(run.start_ns, 12, 24).first * 1e-6;
    print("shared bottleneck", run.reports[size_t(i)]);
  }
  const double equal = (mbitps[0] + mbitps[1]) / 2;
  std::printf("perf: video %.2f and %.2f Mbit/s (seconds 12-24); wire %.2f of %.0f Mbit/s\n", mbitps[0],
              mbitps[1], wire_mbitps, kLinkMbitps);
  for (int i = 0; i < 2; ++i) {
    // Goal: within 25 % of an equal share; 40 % here.
    EXPECT_NEAR(mbitps[size_t(i)], equal, 0.4 * equal) << "session " << i;
    const ClientReport& r = run.reports[size_t(i)];
    // Both start at 8 Mbit/s into 6: the first seconds lose a few percent while the estimates come down
    // (measured ~3 %); after that, almost nothing (goal: >= 99 % delivered over 5 minutes).
    EXPECT_GE(double(r.frames_decoded), 0.90 * double(r.frames_sent)) << "session " << i;
    ASSERT_GE(r.windows.size(), 2u);
    const ReportWindow& steady = r.windows[1];  // seconds 10-20
    EXPECT_LE(double(steady.frames_lost), 0.02 * double(steady.frames_decoded + steady.frames_lost))
        << "session " << i << " lost " << steady.frames_lost << " frames in seconds 10-20";
  }
  // Goal: >= 70 % of the link together; 55 % here (the wire count includes start-up, when little flows).
  EXPECT_GE(wire_mbitps, 0.55 * kLinkMbitps);
  // Parity within the split the rate target assumes (the wire up to 3x the video): when FEC answered the
  // queue's overflow as random loss, small frames carried 13x their size in parity and the video fell to a
  // seventh of the wire (0.4 Mbit/s each). Measured now: about a third.
  EXPECT_GE(mbitps[0] + mbitps[1], 0.2 * wire_mbitps);
  EXPECT_LE(wire_mbitps, 1.02 * kLinkMbitps);
}

}  // namespace
}  // namespace kairo
