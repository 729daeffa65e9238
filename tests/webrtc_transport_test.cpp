// The browser transport's pieces that do not need a browser (web/test/browser_test.mjs drives the rest in
// headless Chromium): the one-session credential, ICE server parsing, the transport before and at a
// browser's hello, and the signalling socket's refusal to listen beyond loopback.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.hpp"
#include "node/signalling_server.hpp"
#include "node/webrtc_transport.hpp"
#include "streaming/frame_metadata.hpp"
#include "streaming/session_credential.hpp"

namespace kairo {
namespace {

TEST(SessionCredential, opens_its_own_session_only) {
  const SessionKey mine = SessionKey::random(), other = SessionKey::random();
  const std::string credential = signalling_credential(mine);
  EXPECT_EQ(credential.size(), 64u);
  EXPECT_EQ(credential.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(credential, signalling_credential(mine)) << "derived, so the node and control plane agree";
  EXPECT_TRUE(signalling_credential_matches(mine, credential));
  EXPECT_FALSE(signalling_credential_matches(other, credential));
  EXPECT_FALSE(signalling_credential_matches(mine, credential.substr(0, 63)));
  EXPECT_FALSE(signalling_credential_matches(mine, ""));
  EXPECT_FALSE(signalling_credential_matches(mine, mine.to_hex()))
      << "the datagram key is not the credential";
  std::string flipped = credential;
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  EXPECT_FALSE(signalling_credential_matches(mine, flipped));
}

TEST(IceServers, stun_and_turn_in_the_forms_browsers_take) {
  const IceServer stun = parse_ice_server("stun:stun.example:3478");
  EXPECT_EQ(stun.url, "stun:stun.example:3478");
  EXPECT_TRUE(stun.username.empty());
  const IceServer turn = parse_ice_server("turn:alice:s3cret@turn.example:3478");
  EXPECT_EQ(turn.url, "turn:turn.example:3478");
  EXPECT_EQ(turn.username, "alice");
  EXPECT_EQ(turn.credential, "s3cret");
  for (const char* bad : {"", "http://x", "turn:nouser.example:3478", "stun:a b", "stun:\"x\""})
    EXPECT_THROW(parse_ice_server(bad), Error) << bad;
}

// Collects what the transport delivers to the session.
struct Mailbox : UplinkMailbox {
  std::vector<UplinkMessage> messages;
  void deliver(const UplinkMessage& m, int64_t) override { messages.push_back(m); }
};

struct Channel : SignallingChannel {
  std::vector<std::string> sent;
  void send(std::string text) override { sent.push_back(std::move(text)); }
};

TEST(WebRtcTransport, waits_for_a_browser_then_takes_its_first_pose_and_one_browser_only) {
  Mailbox mailbox;
  const auto transport = WebRtcTransport::create(TransportSetup{.session_id = 7,
                                                                .key = SessionKey::random(),
                                                                .fps = 30,
                                                                .initial_bitrate_bps = 3'000'000,
                                                                .mailbox = &mailbox,
                                                                .max_picture_bytes = 3 * 64 * 64},
                                                 WebRtcSettings{});
  // Nobody connected: no liveness, the initial rate, and a frame handed over goes nowhere (counted).
  EXPECT_EQ(transport->feedback().last_client_ns, 0);
  EXPECT_EQ(transport->feedback().target_bitrate_bps, 3'000'000);
  FrameMetadata m;
  m.eye_width = m.eye_height = m.coded_width = m.coded_height = 64;
  std::array<uint8_t, FrameMetadata::kSize> metadata{};
  write(m, metadata);
  const std::array<uint8_t, 8> access_unit{0, 0, 0, 1, 0x65, 0x88, 0x80, 0x00};
  transport->send_frame(FrameInfo{.frame_id = 0, .keyframe = true}, metadata, access_unit);
  EXPECT_EQ(transport->counters().frames_dropped, 1u);
  EXPECT_FALSE(transport->connected());

  // A browser says hello: its pose reaches the session, it counts as alive, and a keyframe is wanted (the
  // offer's caps come from the next keyframe).
  const auto channel = std::make_shared<Channel>();
  wire::PoseMessage pose;
  pose.pose_id = 1;
  pose.position[1] = 1.6f;
  EXPECT_TRUE(transport->attach(channel, pose));
  ASSERT_EQ(mailbox.messages.size(), 1u);
  EXPECT_EQ(std::get<wire::PoseMessage>(mailbox.messages[0]).pose_id, 1u);
  EXPECT_GT(transport->feedback().last_client_ns, 0);
  EXPECT_TRUE(transport->take_recovery_request());
  EXPECT_FALSE(transport->attach(std::make_shared<Channel>(), pose)) << "a second browser on one session";
  // Out-of-order signalling is refused with a reason, not acted on.
  EXPECT_TRUE(transport->remote_candidate(0, "candidate:1 1 udp 1 127.0.0.1 9 typ host").has_value());
  transport->detach(channel.get());
}

TEST(SignallingServer, listens_beyond_loopback_only_with_tls) {
  EXPECT_THROW(SignallingServer(SignallingOptions{.listen = "0.0.0.0:0"}), Error);
  EXPECT_THROW(SignallingServer(SignallingOptions{.listen = "127.0.0.1:0", .tls_cert_file = "/nonexistent"}),
               Error);
  SignallingServer server(SignallingOptions{.listen = "127.0.0.1:0"});
  EXPECT_FALSE(server.tls());
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.counters().connections, 0u);
}

}  // namespace
}  // namespace kairo
