#include "streaming/stream_server.hpp"

#include "streaming/keyframe_requests.hpp"
#include "streaming/link_capacity.hpp"
#include "streaming/uplink_loss.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <sys/socket.h>
#include <boost/asio.hpp>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include <sodium.h>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "streaming/fec_policy.hpp"
#include "streaming/udp_address.hpp"

namespace kairo {

using boost::asio::ip::udp;

struct StreamServer::Impl {
  StreamServerConfig config;
  boost::asio::io_context io;
  udp::socket socket{io};
  udp::endpoint peer, from;            // peer: the validated client address, the only one the stream goes to
  std::atomic<bool> connected{false};  // a client address has been validated
  // Addresses that sent authenticated datagrams but have not yet echoed a path challenge. A few at once, so
  // that an on-path attacker re-sending the client's datagrams from elsewhere cannot crowd out the client's
  // own validation. Until validated, an address gets challenges only, at most 3x the bytes it sent.
  struct Candidate {
    udp::endpoint address;
    std::array<uint8_t, wire::PathMessage::kSize> token{};
    uint64_t bytes_received = 0, bytes_sent = 0;
    int64_t challenge_sent_ns = 0, last_seen_ns = 0;
    bool in_use = false;
  };
  static constexpr uint64_t kAmplificationLimit = 3;
  static constexpr int64_t kChallengeIntervalNs = 50'000'000;
  std::array<Candidate, 4> candidates{};
  // Retransmissions: each fragment at most kMaxRetransmissions times and not twice within ~an RTT, and all
  // of them within a byte budget per second (half the link estimate): NACKs cannot multiply the stream.
  static constexpr int kMaxRetransmissions = 3;
  double retransmit_tokens = 0;
  int64_t retransmit_refilled_ns = 0;
  std::atomic<int64_t> last_client_datagram_ns{0};  // written per datagram: an atomic, not the stats lock
  UplinkLossMeter uplink_loss;                      // the receiving thread's alone
  boost::asio::steady_timer pace_timer{io};
  DatagramSealer sealer;
  DatagramOpener opener;
  FramePacketizer packetizer;
  FecPolicy fec;
  LossBasedController rate;
  uint64_t last_delivered_pose_id = 0;  // network thread only
  uint64_t sending_frame_id = 0;
  PacingRate pacing;  // from the link capacity the client's packet trains show (streaming/link_capacity.hpp)
  std::array<uint8_t, wire::kMaxDatagram> receive_buffer{}, plain{}, out{};
  // Hand-off from send_frame(): the newest frame waits here (older unsent ones are replaced: drop policy).
  std::mutex pending_mutex;
  std::vector<uint8_t> pending, working;
  FrameInfo pending_info{};
  bool has_pending = false;
  std::array<uint8_t, wire::RoomStateMessage::kMaxSize> room_pending{}, room_working{};
  size_t room_pending_size = 0;  // 0: nothing to send
  // Pacing state of the frame being sent.
  int fragments = 0, next_fragment = 0, data_fragments = 0;
  int64_t pace_start_ns = 0, pace_spacing_ns = 0;
  // Report bookkeeping.
  uint64_t last_received = 0, last_expected = 0;
  // Wire bytes per video byte (parity, retransmissions, headers), averaged: the estimate is a wire rate,
  // the encoder's target a video rate. Without this, FEC answering congestion loss would add to the
  // congestion it answers.
  double wire_per_video = 1.1;
  // Parity per data fragment a block may carry. The loss model alone asks up to 13x for a small frame under
  // a bottleneck's overflow (bursts of 20 lost fragments): the wire then carried ten times the video, the
  // overflow it answered grew, and the rate controller's cuts moved nothing. So parity keeps within the
  // split the target assumes (wire up to kMaxWirePerVideo x the video), and within the target itself once
  // the encoder sits at its least bitrate and cannot give parity room. 3x, not 4x: at 4x the video came back
  // 1.2-1.6x (and once not at all) 8-13 s after a bandwidth cap was lifted, against 2.2-2.6x at 3x, for a
  // gain at 5 % bursty loss (12 parity fragments for a 4-fragment frame, not 8) within the runs' spread.
  static constexpr double kMaxWirePerVideo = 3.0;
  double parity_ratio_cap = kMaxWirePerVideo - 1.0;
  uint64_t last_wire_bytes = 0, last_video_payload = 0;
  uint64_t wire_bytes = 0, video_payload = 0;
  mutable std::mutex state_mutex;
  StreamServerStats stats;
  KeyframeRequests keyframe_requests;  // guarded by state_mutex
  std::thread thread;
  // Shared-socket mode: the inbox deliver() fills (a ring of fixed slots, no allocation per datagram).
  static constexpr size_t kInboxSlots = 64;
  std::mutex inbox_mutex;
  std::array<std::array<uint8_t, wire::kMaxDatagram>, kInboxSlots> inbox{};
  std::array<size_t, kInboxSlots> inbox_sizes{};
  std::array<udp::endpoint, kInboxSlots> inbox_from{};
  size_t inbox_head = 0, inbox_count = 0;
  bool drain_posted = false;

  explicit Impl(const StreamServerConfig& c)
      : config(c),
        sealer(c.key, c.session_id, wire::Direction::kServerToClient),
        opener(c.key, c.session_id, wire::Direction::kClientToServer),
        packetizer(c.mtu, 16),
        // The controller works on wire rates: up to kMaxWirePerVideo x the video rate to leave room for
        // parity.
        rate(c.initial_bitrate_bps, c.min_bitrate_bps, int64_t(kMaxWirePerVideo) * c.max_bitrate_bps) {
    fec.loss = c.assumed_loss;
    stats.target_bitrate_bps = c.initial_bitrate_bps;
  }

  void send_datagram(wire::PacketType type, std::span<const uint8_t> payload) {
    if (!connected) return;
    wire_bytes += send_sealed(type, payload, peer);
  }

  size_t send_sealed(wire::PacketType type, std::span<const uint8_t> payload, const udp::endpoint& to) {
    const size_t n = sealer.seal(type, payload, out);
    if (config.shared_socket_fd >= 0) {
      // sendto(2) on a shared socket is safe from any thread; Asio's socket object would not be.
      (void)::sendto(config.shared_socket_fd, out.data(), n, MSG_DONTWAIT, to.data(), socklen_t(to.size()));
      return n;
    }
    boost::system::error_code ignored;
    socket.send_to(boost::asio::buffer(out.data(), n), to, 0, ignored);
    return n;
  }

  Candidate& candidate_for(const udp::endpoint& address, int64_t now) {
    Candidate* oldest = &candidates[0];
    for (Candidate& c : candidates) {
      if (c.in_use && c.address == address) return c;
      if (!c.in_use || (oldest->in_use && c.last_seen_ns < oldest->last_seen_ns)) oldest = &c;
    }
    *oldest = Candidate{.address = address, .last_seen_ns = now, .in_use = true};
    randombytes_buf(oldest->token.data(), oldest->token.size());
    return *oldest;
  }

  // An authenticated datagram from an address that is not the validated peer: challenge it (within the
  // amplification limit), or validate it when this is the echo of its challenge. True when it became the
  // peer.
  bool check_path(const wire::Header& header, std::span<const uint8_t> payload, size_t datagram_bytes,
                  int64_t now) {
    Candidate& c = candidate_for(from, now);
    c.bytes_received += datagram_bytes;
    c.last_seen_ns = now;
    if (header.type == wire::PacketType::kPathResponse) {
      const auto echo = wire::read_path(payload);
      if (echo && c.challenge_sent_ns != 0 &&
          sodium_memcmp(echo->token.data(), c.token.data(), c.token.size()) == 0) {
        peer = from;
        connected = true;
        c.in_use = false;
        std::lock_guard lock(state_mutex);
        ++stats.paths_validated;
        return true;
      }
      return false;
    }
    if (c.challenge_sent_ns != 0 && now - c.challenge_sent_ns < kChallengeIntervalNs) return false;
    const size_t challenge_bytes = wire::kHeaderSize + wire::PathMessage::kSize + wire::kTagSize;
    if (c.bytes_sent + challenge_bytes > kAmplificationLimit * c.bytes_received) {
      std::lock_guard lock(state_mutex);
      ++stats.amplification_limited;
      return false;
    }
    std::array<uint8_t, wire::PathMessage::kSize> token = c.token;
    c.bytes_sent += send_sealed(wire::PacketType::kPathChallenge, token, c.address);
    c.challenge_sent_ns = now;
    std::lock_guard lock(state_mutex);
    ++stats.path_challenges;
    return false;
  }

  // Shared-socket mode, on the session's thread: handle what deliver() queued, one datagram at a time.
  void drain_inbox() {
    for (;;) {
      size_t slot = 0, n = 0;
      {
        std::lock_guard lock(inbox_mutex);
        if (inbox_count == 0) {
          drain_posted = false;
          return;
        }
        slot = inbox_head;
        n = inbox_sizes[slot];
        from = inbox_from[slot];
      }
      // Handled in place: deliver() writes only behind the head, and the head slot stays counted (so not
      // reused) until it is handled.
      handle(std::span(inbox[slot].data(), n));
      std::lock_guard lock(inbox_mutex);
      inbox_head = (inbox_head + 1) % kInboxSlots;
      --inbox_count;
    }
  }

  void receive() {
    socket.async_receive_from(boost::asio::buffer(receive_buffer), from, [this](auto error, size_t n) {
      if (error == boost::asio::error::operation_aborted) return;
      if (!error) handle(std::span(receive_buffer.data(), n));
      receive();
    });
  }

  void handle(std::span<const uint8_t> datagram) {
    const int64_t received_ns = steady_now_ns();
    wire::Header header;
    size_t size = 0;
    const OpenResult r = opener.open(datagram, header, plain, size);
    if (r != OpenResult::kOk) {
      std::lock_guard lock(state_mutex);
      ++stats.rejected[size_t(r)];
      return;
    }
    last_client_datagram_ns = received_ns;
    uplink_loss.on_sequence(header.sequence);
    const std::span<const uint8_t> payload(plain.data(), size);
    // The stream follows the client to a new address (NAT rebinding) only once that address has echoed a
    // challenge: an authenticated datagram proves the sender knew the key once, not where the client is now.
    if (!(connected && from == peer)) check_path(header, payload, datagram.size(), received_ns);
    // Transport messages are handled here; application messages go to the session's mailbox. Exhaustive on
    // purpose (no default): a new packet type must say which it is, or this does not compile.
    switch (header.type) {
      case wire::PacketType::kPing:
        if (const auto ping = wire::read_ping(payload)) {
          std::array<uint8_t, wire::PongMessage::kSize> reply{};
          wire::write(
              wire::PongMessage{.client_send_ns = ping->client_send_ns,
                                .server_receive_ns = received_ns,
                                .server_send_ns = steady_now_ns(),
                                .uplink_loss_ppm = uint32_t(uplink_loss.loss() * 1e6),
                                .uplink_burst_mean_x100 =
                                    uplink_loss.measured() ? uint32_t(uplink_loss.burst_mean() * 100) : 0u},
              reply);
          send_datagram(wire::PacketType::kPong, reply);
          std::lock_guard lock(state_mutex);
          ++stats.pings;
        }
        return;
      case wire::PacketType::kNack:
        if (const auto nack = wire::read_nack(payload)) on_nack(*nack);
        return;
      case wire::PacketType::kReport:
        if (const auto report = wire::read_report(payload)) on_report(*report);
        return;
      case wire::PacketType::kKeyframeRequest:
        if (const auto request = wire::read_keyframe_request(payload)) {
          std::lock_guard lock(state_mutex);
          keyframe_requests.on_request(request->lost_frame_id);
          stats.keyframe_requests = keyframe_requests.received();
          stats.keyframe_requests_answered = keyframe_requests.answered_already();
        }
        return;
      case wire::PacketType::kPathResponse:
        return;  // handled by check_path
      case wire::PacketType::kPose:
      case wire::PacketType::kHand:
      case wire::PacketType::kInput:
        return deliver_uplink(header.type, payload, received_ns);
      case wire::PacketType::kVideo:
      case wire::PacketType::kPong:
      case wire::PacketType::kRoomState:
      case wire::PacketType::kPathChallenge:
        break;  // the server's own kinds, sent back at it: counted below, never acted on
    }
    std::lock_guard lock(state_mutex);
    ++stats.unexpected;
  }

  void deliver_uplink(wire::PacketType type, std::span<const uint8_t> payload, int64_t received_ns) {
    if (type == wire::PacketType::kPose) {
      // A batch of the newest samples: each, oldest first (the mailbox keeps the newest by id).
      const auto batch = wire::read_pose_batch(payload);
      {
        std::lock_guard lock(state_mutex);
        if (!batch) {
          ++stats.unexpected;
          return;
        }
        ++stats.uplink[size_t(UplinkMessage(wire::PoseMessage{}).index())];
      }
      // Each sample once: those the earlier datagrams already delivered are skipped, those they lost are not.
      for (size_t i = 0; i < batch->count; ++i) {
        if (batch->poses[i].pose_id <= last_delivered_pose_id) continue;
        last_delivered_pose_id = batch->poses[i].pose_id;
        if (config.mailbox) config.mailbox->deliver(batch->poses[i], received_ns);
      }
      return;
    }
    const auto message = read_uplink(type, payload);
    {
      std::lock_guard lock(state_mutex);
      if (!message) {
        ++stats.unexpected;  // authenticated, but a payload the parser refuses
        return;
      }
      ++stats.uplink[size_t(message->index())];
    }
    if (config.mailbox) config.mailbox->deliver(*message, received_ns);
  }

  void on_nack(const wire::NackMessage& asked) {
    const int64_t now = steady_now_ns();
    // No fragment listed: none of the frame arrived (the client has seen later frames), so all its data.
    wire::NackMessage whole_frame;
    if (asked.count == 0) {
      whole_frame.frame_id = asked.frame_id;
      whole_frame.stream = asked.stream;
      whole_frame.count =
          uint8_t(packetizer.data_fragments(asked.frame_id, asked.stream, whole_frame.fragments));
    }
    const wire::NackMessage& nack = asked.count == 0 ? whole_frame : asked;
    // Budget: half the link estimate per second, at least 64 kB/s, a second's worth at most in the bucket.
    const double budget_per_s = std::max(0.5 * double(rate.target_bps()) / 8.0, 64'000.0);
    if (retransmit_refilled_ns != 0)
      retransmit_tokens = std::min(
          budget_per_s, retransmit_tokens + budget_per_s * double(now - retransmit_refilled_ns) * 1e-9);
    else
      retransmit_tokens = budget_per_s;
    retransmit_refilled_ns = now;
    // The client NACKs again at most once an RTT: anything sooner is a duplicate (or a replay).
    int64_t rtt_ns;
    {
      std::lock_guard lock(state_mutex);
      rtt_ns = int64_t(stats.rtt_ms * 1e6);
    }
    const int64_t min_interval = std::max<int64_t>(3 * rtt_ns / 4, config.retransmit_min_interval_ns);
    uint64_t sent = 0, bytes = 0, suppressed = 0;
    for (size_t i = 0; i < nack.count; ++i) {
      if (retransmit_tokens < double(packetizer.payload_bytes())) {
        suppressed += nack.count - i;
        break;
      }
      bool duplicate = false;
      const auto payload = packetizer.retransmission(nack.frame_id, nack.stream, nack.fragments[i].first,
                                                     nack.fragments[i].second, now, min_interval,
                                                     kMaxRetransmissions, &duplicate);
      suppressed += duplicate;
      if (payload.empty()) continue;  // no longer kept (the frame is past saving), or a duplicate
      if (config.withhold_frame == nack.frame_id) continue;
      send_datagram(wire::PacketType::kVideo, payload);
      retransmit_tokens -= double(payload.size());
      ++sent;
      bytes += payload.size();
    }
    // The frame may yet arrive, or not: the encoder stops predicting from it now where it can (a speculative
    // recovery, streaming/keyframe_requests.hpp). A retransmission takes a round trip and a frame lost for
    // good a round trip more to be asked for; this way the frames from the repair on are intact either way.
    // Only for a NACK that left the client after all of the frame could have reached it (a round trip, less
    // 2 ms of jitter, after its last fragment left here): one sent sooner, while the pacer or the machine
    // paused mid-frame, is mostly answered by the parity still on its way, and a repair for it would be a
    // false alarm (the README demo at 1 % loss: 39 repairs in 454 frames, no retransmission used).
    const std::optional<int64_t> sent_completely = packetizer.sent_completely_at(nack.frame_id, nack.stream);
    const bool informed = sent_completely && now - *sent_completely >= rtt_ns - 2'000'000;
    std::lock_guard lock(state_mutex);
    if (nack.stream == 0 && informed) keyframe_requests.on_at_risk(nack.frame_id);
    stats.recoveries_at_risk = keyframe_requests.at_risk();
    ++stats.nacks;
    stats.whole_frame_nacks += asked.count == 0;
    stats.retransmitted += sent;
    stats.retransmitted_bytes += bytes;
    stats.retransmissions_suppressed += suppressed;
  }

  void on_report(const wire::ReportMessage& r) {
    const uint64_t received = r.fragments_received - std::min(r.fragments_received, last_received);
    const uint64_t expected = r.fragments_expected - std::min(r.fragments_expected, last_expected);
    last_received = r.fragments_received;
    last_expected = r.fragments_expected;
    if (expected >= 10) {
      // Exponential average over about ten reports (half a second): FEC follows a change within a second
      // without flapping on single reports.
      const double loss = 1.0 - double(received) / double(expected);
      fec.loss = std::max(0.9 * fec.loss + 0.1 * loss, config.assumed_loss * 0.25);
      fec.burst_mean = 0.9 * fec.burst_mean + 0.1 * (double(r.loss_burst_mean_x100) / 100.0);
      fec.burst_p90 =
          std::clamp(double(r.loss_burst_p90), 1.0, 32.0);  // the client's histogram, halved every 5 s
    }
    rate.on_report(received, expected, int64_t(r.estimated_bitrate_bps), steady_now_ns(),
                   int64_t(r.received_bitrate_bps), r.link_capacity_bps > 0);
    pacing.on_report(r.link_capacity_bps, double(rate.target_bps()));
    if (video_payload - last_video_payload > 10'000) {
      const double ratio = double(wire_bytes - last_wire_bytes) / double(video_payload - last_video_payload);
      wire_per_video = 0.8 * wire_per_video + 0.2 * std::clamp(ratio, 1.0, kMaxWirePerVideo);
      last_wire_bytes = wire_bytes;
      last_video_payload = video_payload;
    }
    // The encoder's target, and the parity that fits beside it (read by start_frame on this same io
    // thread, like the FEC policy): at the encoder's floor, only what the wire target leaves over it.
    const double video_target_bps = double(rate.target_bps()) / wire_per_video;
    const double video_floor = double(config.min_bitrate_bps);
    parity_ratio_cap =
        video_target_bps >= video_floor
            ? kMaxWirePerVideo - 1.0
            : std::clamp(double(rate.target_bps()) / video_floor - 1.0, 0.0, kMaxWirePerVideo - 1.0);
    std::lock_guard lock(state_mutex);
    ++stats.reports;
    stats.loss = fec.loss;
    stats.burst_mean = fec.burst_mean;
    stats.receiver_estimate_bps = int64_t(r.estimated_bitrate_bps);
    stats.target_bitrate_bps =
        std::clamp(int64_t(video_target_bps), config.min_bitrate_bps, config.max_bitrate_bps);
    stats.wire_per_video = wire_per_video;
    stats.client_decode_ms = r.decode_ms;
    stats.link_capacity_bps = int64_t(r.link_capacity_bps);
    stats.display_phase_error_ns = int64_t(r.display_phase_error_us) * 1000;
    stats.rtt_ms = double(r.rtt_us) / 1000.0;
    stats.client_frames_lost = r.frames_lost;
    stats.client_frames_recovered = r.frames_recovered;
    stats.client_fragments_lost = r.fragments_expected - r.fragments_received;
  }

  void start_frame() {
    FrameInfo info;
    {
      std::lock_guard lock(pending_mutex);  // the frame and its info together: a newer one may arrive next
      if (!has_pending) return;
      std::swap(pending, working);
      info = pending_info;
      has_pending = false;
    }
    // A frame still being paced when the next one is ready: finish it now rather than fall behind.
    while (next_fragment < fragments) send_fragment(next_fragment++);
    const auto parity_for = [this](int k) { return std::min(fec.parity_for(k), int(parity_ratio_cap * k)); };
    // Every frame cut balanced, and a small one under loss finer where that meets the FEC target for fewer
    // wire bytes or the parity cap leaves its coarse cut short of it (FecPolicy::cut_for).
    const FecPolicy::Cut cut =
        fec.cut_for(working.size(), packetizer.fragment_body_bytes(), wire::kVideoDatagramOverhead,
                    [this](int k) { return parity_ratio_cap * k; });
    fragments = packetizer.packetize_with(
        info, working, [&](int k) { return k == cut.data ? cut.parity : parity_for(k); }, cut.body);
    sending_frame_id = info.frame_id;
    video_payload += working.size();
    data_fragments = 0;
    next_fragment = 0;
    pace_start_ns = steady_now_ns();
    const int64_t interval = 1'000'000'000 / std::max(1, config.fps);
    // Pace at the rate the link has shown it carries (streaming/link_capacity.hpp): a frame leaves as fast
    // as the bottleneck takes it, no faster (its queue stays short) and no slower (no self-inflicted
    // latency). Never longer than pacing_fraction of the interval.
    const double frame_bits = 8.0 * double(fragments) * double(packetizer.payload_bytes());
    const double pacing_bps = pacing.rate_bps(double(rate.target_bps()));
    const double at_rate_ns = frame_bits / pacing_bps * 1e9;
    const double spread_ns = std::min(config.pacing_fraction * double(interval), at_rate_ns);
    pace_spacing_ns = fragments > 1 ? int64_t(spread_ns) / (fragments - 1) : 0;
    {
      std::lock_guard lock(state_mutex);
      keyframe_requests.on_frame_sent(info.frame_id, info.keyframe, info.repairs_from);
      stats.keyframe_requests_answered = keyframe_requests.answered_already();
      ++stats.frames;
      stats.pacing_bps = int64_t(pacing_bps);
    }
    pace();
  }

  void send_room_state() {
    size_t n = 0;
    {
      std::lock_guard lock(pending_mutex);
      n = std::exchange(room_pending_size, 0);
      std::copy_n(room_pending.begin(), n, room_working.begin());
    }
    if (n == 0) return;
    send_datagram(wire::PacketType::kRoomState, std::span(room_working.data(), n));
    std::lock_guard lock(state_mutex);
    ++stats.room_states;
  }

  void send_fragment(int index) {
    const auto payload = packetizer.fragment(index, steady_now_ns());
    if (config.withhold_frame != sending_frame_id) send_datagram(wire::PacketType::kVideo, payload);
    const bool parity =
        packetizer.is_parity(index);  // known from the layout: no need to parse our own header
    std::lock_guard lock(state_mutex);
    ++stats.datagrams;
    if (parity) {
      ++stats.fec_datagrams;
      stats.fec_bytes += payload.size();
    } else {
      stats.video_bytes += payload.size();
    }
  }

  void pace() {
    const int64_t now = steady_now_ns();
    while (next_fragment < fragments && pace_start_ns + int64_t(next_fragment) * pace_spacing_ns <= now)
      send_fragment(next_fragment++);
    if (next_fragment >= fragments) return;
    pace_timer.expires_after(
        std::chrono::nanoseconds(pace_start_ns + int64_t(next_fragment) * pace_spacing_ns - now));
    pace_timer.async_wait([this](auto error) {
      if (!error) pace();
    });
  }
};

StreamServer::StreamServer(const StreamServerConfig& config) : impl_(std::make_unique<Impl>(config)) {
  if (config.shared_socket_fd >= 0) {
    impl_->thread = std::thread([this] {
      auto guard = boost::asio::make_work_guard(impl_->io);
      impl_->io.run();
    });
    return;
  }
  const udp::endpoint at = resolve_udp(config.listen, "stream listen address");
  boost::system::error_code error;
  impl_->socket.open(at.protocol());
  impl_->socket.bind(at, error);
  if (error) throw_runtime("cannot bind UDP " + config.listen + ": " + error.message());
  impl_->socket.set_option(boost::asio::socket_base::send_buffer_size(4 << 20), error);
  impl_->socket.set_option(boost::asio::socket_base::receive_buffer_size(1 << 20), error);
  impl_->receive();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

StreamServer::~StreamServer() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t StreamServer::port() const {
  if (impl_->config.shared_socket_fd >= 0) return 0;
  return impl_->socket.local_endpoint().port();
}

void StreamServer::deliver(std::span<const uint8_t> datagram, const void* from, size_t from_length) {
  if (datagram.size() > wire::kMaxDatagram || from_length > sizeof(sockaddr_storage)) return;
  Impl& s = *impl_;
  std::lock_guard lock(s.inbox_mutex);
  if (s.inbox_count == Impl::kInboxSlots) {
    std::lock_guard state_lock(s.state_mutex);
    ++s.stats.inbox_dropped;
    return;
  }
  const size_t slot = (s.inbox_head + s.inbox_count) % Impl::kInboxSlots;
  std::memcpy(s.inbox[slot].data(), datagram.data(), datagram.size());
  s.inbox_sizes[slot] = datagram.size();
  udp::endpoint& endpoint = s.inbox_from[slot];
  std::memcpy(endpoint.data(), from, from_length);
  endpoint.resize(from_length);
  ++s.inbox_count;
  if (!s.drain_posted) {
    s.drain_posted = true;
    boost::asio::post(s.io, [&s] { s.drain_inbox(); });
  }
}
bool StreamServer::connected() const {
  return impl_->connected;
}

void StreamServer::send_frame(const FrameInfo& info, std::span<const uint8_t> au) {
  send_frame(info, {}, au);
}

void StreamServer::send_frame(const FrameInfo& info, std::span<const uint8_t> prefix,
                              std::span<const uint8_t> au) {
  std::optional<uint64_t> replaced;
  {
    std::lock_guard lock(impl_->pending_mutex);
    if (impl_->has_pending) replaced = impl_->pending_info.frame_id;
    // One copy into the pending buffer, whose capacity is reused after the first frames.
    impl_->pending.resize(prefix.size() + au.size());
    std::copy(prefix.begin(), prefix.end(), impl_->pending.begin());
    std::copy(au.begin(), au.end(), impl_->pending.begin() + std::ptrdiff_t(prefix.size()));
    impl_->pending_info = info;
    impl_->has_pending = true;
  }
  if (replaced) {
    // The replaced frame never reaches the client, and this one was predicted from it: recover at once
    // rather than a round trip later when the client notices.
    std::lock_guard lock(impl_->state_mutex);
    impl_->keyframe_requests.on_frame_dropped(*replaced);
  }
  boost::asio::post(impl_->io, [this] { impl_->start_frame(); });
}

void StreamServer::send_room_state(std::span<const uint8_t> message) {
  if (message.empty() || message.size() > wire::RoomStateMessage::kMaxSize)
    throw std::invalid_argument("room state message of " + std::to_string(message.size()) + " bytes");
  bool post = false;
  {
    std::lock_guard lock(impl_->pending_mutex);
    post = impl_->room_pending_size == 0;
    std::copy(message.begin(), message.end(), impl_->room_pending.begin());
    impl_->room_pending_size = message.size();
  }
  if (post) boost::asio::post(impl_->io, [this] { impl_->send_room_state(); });
}

int64_t StreamServer::target_bitrate_bps() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->stats.target_bitrate_bps;
}

std::optional<uint64_t> StreamServer::take_recovery_request(bool* speculative) {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->keyframe_requests.take(speculative);
}

StreamServerStats StreamServer::stats() const {
  std::lock_guard lock(impl_->state_mutex);
  StreamServerStats out = impl_->stats;
  out.last_client_datagram_ns = impl_->last_client_datagram_ns;
  return out;
}

}  // namespace kairo
