// The UDP stream under an on-path attacker (docs/security.md, finding 2): datagrams captured from the client
// and re-sent from another address must not move the stream there, a new address gets at most 3x the bytes
// it sent until it answers a path challenge, and repeated NACKs draw one retransmission each, not one per
// NACK. The test plays the client with raw sockets and the session key, so it sees every byte.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "streaming/datagram_crypto.hpp"
#include "streaming/messages.hpp"
#include "streaming/stream_server.hpp"

namespace kairo {
namespace {

constexpr uint32_t kSession = 77;

// A UDP socket on loopback that counts what it receives, by packet type, and its bytes.
class Endpoint {
 public:
  Endpoint() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  }
  ~Endpoint() { ::close(fd_); }
  void send_to(uint16_t port, std::span<const uint8_t> datagram) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        ::sendto(fd_, datagram.data(), datagram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
        ssize_t(datagram.size()));
    bytes_sent += datagram.size();
  }
  // Reads for `ms` (or until `until` says stop), opening each datagram with `opener`.
  void receive(DatagramOpener& opener, int ms, const std::function<bool()>& until = {}) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    std::array<uint8_t, wire::kMaxDatagram> buffer{}, plain{};
    while (std::chrono::steady_clock::now() < deadline && !(until && until())) {
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n <= 0) continue;
      bytes_received += size_t(n);
      wire::Header header;
      size_t size = 0;
      if (opener.open(std::span(buffer.data(), size_t(n)), header, plain, size) != OpenResult::kOk) continue;
      ++received[header.type];
      if (header.type == wire::PacketType::kPathChallenge)
        challenge = wire::read_path(std::span(plain.data(), size));
    }
  }
  size_t bytes_sent = 0, bytes_received = 0;
  std::map<wire::PacketType, int> received;
  std::optional<wire::PathMessage> challenge;

 private:
  int fd_ = -1;
};

class PathValidation : public ::testing::Test {
 protected:
  PathValidation()
      : key(SessionKey::random()),
        // A long retransmission interval, so that a loaded machine cannot space the duplicates beyond it.
        server(StreamServerConfig{.listen = "127.0.0.1:0",
                                  .session_id = kSession,
                                  .key = key,
                                  .fps = 30,
                                  .retransmit_min_interval_ns = 200'000'000}),
        sealer(key, kSession, wire::Direction::kClientToServer),
        client_opener(key, kSession, wire::Direction::kServerToClient),
        attacker_opener(key, kSession, wire::Direction::kServerToClient) {}

  // The client's next datagram, sealed: what an on-path attacker captures.
  std::vector<uint8_t> seal(wire::PacketType type, std::span<const uint8_t> payload) {
    std::vector<uint8_t> out(wire::kMaxDatagram);
    out.resize(sealer.seal(type, payload, out));
    return out;
  }
  std::vector<uint8_t> pose(uint64_t id) {
    wire::PoseMessage p{.pose_id = id, .sample_time_ns = 1, .display_time_ns = 2};
    p.orientation[3] = 1;
    std::array<uint8_t, wire::PoseMessage::kSize> bytes{};
    return seal(wire::PacketType::kPose, std::span(bytes.data(), wire::write(p, bytes)));
  }
  std::vector<uint8_t> nack_all(uint64_t frame, int fragments) {
    wire::NackMessage n{.frame_id = frame, .stream = 0, .count = uint8_t(fragments)};
    for (int i = 0; i < fragments; ++i) n.fragments[size_t(i)] = {0, uint8_t(i)};
    std::array<uint8_t, 10 + 2 * 64> bytes{};
    return seal(wire::PacketType::kNack, std::span(bytes.data(), wire::write(n, bytes)));
  }
  void validate(Endpoint& client) {
    client.send_to(server.port(), pose(1));
    client.receive(client_opener, 2000, [&] { return client.challenge.has_value(); });
    ASSERT_TRUE(client.challenge) << "no path challenge arrived";
    std::array<uint8_t, wire::PathMessage::kSize> echo{};
    client.send_to(server.port(), seal(wire::PacketType::kPathResponse,
                                       std::span(echo.data(), wire::write(*client.challenge, echo))));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!server.connected() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(server.connected());
  }
  void send_frame(uint64_t id, size_t bytes) {
    std::vector<uint8_t> au(bytes, uint8_t(id));
    server.send_frame(FrameInfo{.frame_id = id, .keyframe = id == 1}, au);
  }

  SessionKey key;
  StreamServer server;
  DatagramSealer sealer;
  DatagramOpener client_opener, attacker_opener;
};

TEST_F(PathValidation, a_new_address_gets_no_stream_until_it_answers_a_challenge) {
  Endpoint client;
  client.send_to(server.port(), pose(1));
  send_frame(1, 20'000);
  client.receive(client_opener, 300);
  EXPECT_EQ(client.received[wire::PacketType::kVideo], 0) << "video before the address was validated";
  EXPECT_GE(client.received[wire::PacketType::kPathChallenge], 1);
  EXPECT_FALSE(server.connected());
  EXPECT_LE(client.bytes_received, 3 * client.bytes_sent);
  validate(client);
  send_frame(2, 20'000);
  client.receive(client_opener, 500, [&] { return client.received[wire::PacketType::kVideo] >= 17; });
  EXPECT_GE(client.received[wire::PacketType::kVideo], 17);  // 20 kB in 1,112-byte fragments, plus parity
  EXPECT_EQ(server.stats().paths_validated, 1u);
}

TEST_F(PathValidation, datagrams_re_sent_from_another_address_do_not_move_the_stream_or_amplify) {
  Endpoint client, attacker;
  validate(client);
  send_frame(1, 60'000);
  client.receive(client_opener, 500, [&] { return client.received[wire::PacketType::kVideo] >= 54; });
  ASSERT_GE(client.received[wire::PacketType::kVideo], 54);
  // The attacker re-sends the client's next datagrams (captured in flight) from its own address before the
  // originals arrive: poses, and NACKs asking for the whole 60 kB frame again.
  for (int i = 0; i < 5; ++i) {
    attacker.send_to(server.port(), pose(10 + uint64_t(i)));
    attacker.send_to(server.port(), nack_all(1, 54));
  }
  send_frame(2, 60'000);
  attacker.receive(attacker_opener, 500);
  client.receive(client_opener, 500);
  EXPECT_EQ(attacker.received[wire::PacketType::kVideo], 0) << "the stream followed the attacker";
  EXPECT_GE(attacker.received[wire::PacketType::kPathChallenge], 1);
  EXPECT_LE(attacker.bytes_received, 3 * attacker.bytes_sent)
      << "amplification: " << attacker.bytes_received << " bytes for " << attacker.bytes_sent;
  std::printf("attacker sent %zu bytes, received %zu (%.2fx); the client got %d video datagrams\n",
              attacker.bytes_sent, attacker.bytes_received,
              double(attacker.bytes_received) / double(attacker.bytes_sent),
              client.received[wire::PacketType::kVideo]);
  // The client still gets the stream (frame 2 after frame 1).
  EXPECT_GE(client.received[wire::PacketType::kVideo], 54 + 54);
  EXPECT_GE(server.stats().path_challenges, 2u);  // the client's and the attacker's
}

TEST_F(PathValidation, a_nack_repeated_many_times_draws_each_fragment_once) {
  Endpoint client;
  validate(client);
  send_frame(1, 40'000);
  client.receive(client_opener, 400);  // the whole frame, parity included
  ASSERT_GE(client.received[wire::PacketType::kVideo], 36);
  const int before = client.received[wire::PacketType::kVideo];
  // The same NACK five times in a row (a duplicating network, or a replay of captured NACKs): one round of
  // retransmissions, not five.
  for (int i = 0; i < 5; ++i) client.send_to(server.port(), nack_all(1, 36));
  client.receive(client_opener, 300);
  const int retransmitted = client.received[wire::PacketType::kVideo] - before;
  EXPECT_EQ(retransmitted, 36);
  EXPECT_EQ(server.stats().retransmitted, 36u);
  EXPECT_EQ(server.stats().retransmissions_suppressed, 4u * 36u);
  // After the interval a fragment may go again, at most three times in all.
  for (int round = 0; round < 4; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    client.send_to(server.port(), nack_all(1, 1));
  }
  client.receive(client_opener, 200);
  EXPECT_EQ(server.stats().retransmitted, 36u + 2u);  // fragment 0: 3 times in all
}

}  // namespace
}  // namespace kairo
