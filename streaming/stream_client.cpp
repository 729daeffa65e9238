#include "streaming/stream_client.hpp"

#include "streaming/link_capacity.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <sys/socket.h>
#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <chrono>
#include <mutex>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "streaming/bandwidth_estimator.hpp"
#include "streaming/stamped_receive.hpp"
#include "streaming/udp_address.hpp"

namespace kairo {

using boost::asio::ip::udp;

namespace {
constexpr int64_t kTickNs = 2'000'000;
constexpr int64_t kReportIntervalNs = 50'000'000;
}  // namespace

struct StreamClient::Impl {
  StreamClientConfig config;
  wire::PoseBatch recent_poses;  // the newest samples sent, oldest first (under pose_mutex)
  std::mutex pose_mutex;
  // Sealing and sending, from the network thread and from the thread that samples poses: a pose posted to
  // the network thread waited behind whatever video it was busy with.
  std::mutex send_mutex;
  TrainDispersion trains;  // each frame's fragments as a packet train: the link's capacity
  std::function<void(const AssembledFrame&)> on_frame;
  boost::asio::io_context io;
  udp::socket socket{io};
  boost::asio::steady_timer tick{io};
  DatagramSealer sealer;
  DatagramOpener opener;
  FrameAssembler assembler;
  DelayBasedEstimator estimator;
  ClockSync clock;
  std::array<uint8_t, wire::kMaxDatagram> receive_buffer{}, plain{}, out{};
  int64_t last_report_ns = 0, last_ping_ns = 0;
  std::atomic<float> decode_ms{0};
  std::atomic<int64_t> display_phase_error_ns{0};
  // Datagram sequence accounting for loss and burst length.
  uint64_t first_sequence = 0, highest_sequence = 0, received_datagrams = 0, loss_runs = 0, lost_in_runs = 0;
  std::array<uint64_t, 33> loss_run_lengths{};  // loss runs by length in datagrams (the last: 32 or more)
  // The histogram and the run counts halve every 5 s: the parity follows the loss as it is now. Over the
  // whole stream, a bottleneck's overflow at the start (runs of 20-30) kept every later block's parity sized
  // for it.
  static constexpr int64_t kLossRunHalfLifeNs = 5'000'000'000;
  int64_t loss_runs_aged_ns = 0;
  void age_loss_runs(int64_t now) {
    if (loss_runs_aged_ns == 0) loss_runs_aged_ns = now;
    if (now - loss_runs_aged_ns < kLossRunHalfLifeNs) return;
    loss_runs_aged_ns = now;
    loss_runs = lost_in_runs = 0;
    for (size_t length = 1; length < loss_run_lengths.size(); ++length) {
      loss_run_lengths[length] /= 2;
      loss_runs += loss_run_lengths[length];
      lost_in_runs += loss_run_lengths[length] * length;
    }
  }

  uint32_t loss_burst_p90() const {
    uint64_t seen = 0;
    for (size_t length = 1; length < loss_run_lengths.size(); ++length) {
      seen += loss_run_lengths[length];
      if (loss_runs > 0 && double(seen) >= 0.9 * double(loss_runs)) return uint32_t(length);
    }
    return loss_runs > 0 ? uint32_t(loss_run_lengths.size() - 1) : 1u;
  }
  // Interarrival jitter (RFC 3550 style) over video fragments.
  double jitter_ns = 0;
  uint64_t wire_bytes_since_group =
      0;  // everything the server sent us (parity, headers) since the last frame
  int64_t last_transit_ns = 0;
  mutable std::mutex mutex;
  StreamClientStats stats;
  std::thread thread;

  Impl(const StreamClientConfig& c, std::function<void(const AssembledFrame&)> handler)
      : config(c),
        on_frame(std::move(handler)),
        sealer(c.key, c.session_id, wire::Direction::kClientToServer),
        opener(c.key, c.session_id, wire::Direction::kServerToClient),
        assembler(c.mtu - wire::kHeaderSize - wire::kTagSize - wire::VideoFragment::kSize,
                  c.deadline_ns > 0 ? c.deadline_ns : 1'000'000'000 / std::max(1, c.fps) + 30'000'000, 64),
        estimator(c.initial_bitrate_bps) {}

  // The connected socket's descriptor directly: asio's socket object is the network thread's, and a
  // datagram the socket buffer has no room for is dropped as the network would (MSG_DONTWAIT).
  void send(wire::PacketType type, std::span<const uint8_t> payload) {
    std::lock_guard lock(send_mutex);
    const size_t n = sealer.seal(type, payload, out);
    [[maybe_unused]] const ssize_t sent = ::send(socket.native_handle(), out.data(), n, MSG_DONTWAIT);
  }

  void receive() {
    socket.async_wait(udp::socket::wait_read, [this](auto error) {
      if (error == boost::asio::error::operation_aborted) return;
      if (!error) drain();
      receive();
    });
  }

  // Every datagram waiting, each stamped with the time the kernel received it
  // (streaming/stamped_receive.hpp): the packet trains measure the link, not this thread's wake-ups. Bounded
  // per wake so the tick still runs; an error (ICMP port unreachable: the server not up yet) ends the batch
  // and listening goes on.
  void drain() {
    for (int i = 0; i < 64; ++i) {
      const StampedDatagram d = receive_stamped(socket.native_handle(), receive_buffer);
      if (!d.ok) return;
      handle(d.size, d.arrival_ns);
    }
  }

  void handle(size_t n, int64_t now) {
    wire::Header header;
    size_t size = 0;
    const OpenResult r = opener.open(std::span(receive_buffer.data(), n), header, plain, size);
    if (r != OpenResult::kOk) {
      std::lock_guard lock(mutex);
      ++stats.rejected[size_t(r)];
      return;
    }
    track_sequence(header.sequence);
    wire_bytes_since_group += n;
    const std::span<const uint8_t> payload(plain.data(), size);
    if (header.type == wire::PacketType::kVideo) {
      if (const auto f = wire::read_video_fragment(payload)) {
        if ((f->flags & wire::VideoFragment::kRetransmission) == 0)
          trains.on_fragment(f->frame_id, f->send_time_ns, now, n);
        const int64_t transit = now - f->send_time_ns;
        if (last_transit_ns != 0)
          jitter_ns += (double(std::abs(transit - last_transit_ns)) - jitter_ns) / 16.0;
        last_transit_ns = transit;
      }
      assembler.add(payload, now);
    } else if (header.type == wire::PacketType::kPathChallenge) {
      // Echo it from this socket: the server sends the stream to an address only after this answer.
      if (const auto challenge = wire::read_path(payload)) {
        std::array<uint8_t, wire::PathMessage::kSize> echo{};
        send(wire::PacketType::kPathResponse, std::span(echo.data(), wire::write(*challenge, echo)));
        std::lock_guard lock(mutex);
        ++stats.path_challenges_answered;
      }
    } else if (header.type == wire::PacketType::kPong) {
      if (const auto pong = wire::read_pong(payload)) {
        clock.add(*pong, now);
        std::lock_guard lock(mutex);
        stats.uplink_measured = pong->uplink_burst_mean_x100 > 0;
        stats.uplink_loss = std::min(1.0, double(pong->uplink_loss_ppm) * 1e-6);
        stats.uplink_burst_mean = std::max(1.0, double(pong->uplink_burst_mean_x100) * 0.01);
      }
    } else if (header.type == wire::PacketType::kRoomState) {
      if (const auto room = wire::read_room_state(payload)) {
        {
          std::lock_guard lock(mutex);
          ++stats.room_states;
        }
        if (config.on_room_state) config.on_room_state(*room);
      }
    }
  }

  void track_sequence(uint64_t s) {
    ++received_datagrams;
    if (first_sequence == 0) {
      first_sequence = highest_sequence = s;
      return;
    }
    if (s > highest_sequence + 1) {
      ++loss_runs;
      lost_in_runs += s - highest_sequence - 1;
      ++loss_run_lengths[std::min<uint64_t>(s - highest_sequence - 1, loss_run_lengths.size() - 1)];
    }
    highest_sequence = std::max(highest_sequence, s);
  }

  void on_tick() {
    const int64_t now = steady_now_ns();
    age_loss_runs(now);
    // NACK what is missing once a frame has been quiet for 3 ms; again at most every RTT.
    const int64_t rtt = clock.ready() ? std::max<int64_t>(clock.rtt_ns(), 5'000'000) : 20'000'000;
    wire::NackMessage nack;
    uint64_t nack_frame = UINT64_MAX;
    auto flush = [&] {
      if (nack.count == 0) return;
      std::array<uint8_t, 10 + 2 * 64> buffer{};
      send(wire::PacketType::kNack, std::span(buffer.data(), wire::write(nack, buffer)));
      std::lock_guard lock(mutex);
      ++stats.nacks_sent;
      nack.count = 0;
    };
    assembler.missing(now, 3'000'000, rtt, [&](uint64_t frame, int block, int index) {
      if (frame != nack_frame || nack.count == nack.fragments.size()) {
        flush();
        nack_frame = frame;
        nack.frame_id = frame;
      }
      nack.fragments[nack.count++] = {uint8_t(block), uint8_t(index)};
    });
    flush();
    // Frames of which nothing arrived, though later ones did: a NACK naming no fragment asks for all of it
    // (and tells the sender to stop predicting from it).
    for (const uint64_t frame : assembler.unseen(now, 3'000'000, rtt)) {
      const wire::NackMessage whole{.frame_id = frame};
      std::array<uint8_t, 10> buffer{};
      send(wire::PacketType::kNack, std::span(buffer.data(), wire::write(whole, buffer)));
      std::lock_guard lock(mutex);
      ++stats.nacks_sent;
      ++stats.whole_frame_nacks_sent;
    }
    assembler.expire(now);
    while (const AssembledFrame* frame = assembler.pop()) {
      // The estimate is of the wire rate (video, parity, retransmissions, headers): the sender divides it.
      estimator.on_group(frame->last_send_ns, frame->complete_ns, wire_bytes_since_group);
      wire_bytes_since_group = 0;
      if (on_frame) on_frame(*frame);
    }
    const auto lost = assembler.take_lost();
    if (!lost.empty()) {
      std::array<uint8_t, wire::KeyframeRequestMessage::kSize> buffer{};
      wire::write(wire::KeyframeRequestMessage{.lost_frame_id = lost.back()}, buffer);
      send(wire::PacketType::kKeyframeRequest, buffer);
      std::lock_guard lock(mutex);
      ++stats.keyframe_requests;
    }
    if (now - last_ping_ns >= clock.ping_interval_ns()) {
      last_ping_ns = now;
      std::array<uint8_t, wire::PingMessage::kSize> buffer{};
      wire::write(wire::PingMessage{.client_send_ns = now}, buffer);
      send(wire::PacketType::kPing, buffer);
    }
    if (now - last_report_ns >= kReportIntervalNs) {
      last_report_ns = now;
      send_report();
    }
    tick.expires_after(std::chrono::nanoseconds(kTickNs));
    tick.async_wait([this](auto error) {
      if (!error) on_tick();
    });
  }

  void send_report() {
    const AssemblerStats& a = assembler.stats();
    const uint64_t expected = first_sequence == 0 ? 0 : highest_sequence - first_sequence + 1;
    wire::ReportMessage report{
        .frames_delivered = a.frames_delivered,
        .frames_lost = a.frames_lost,
        .frames_recovered = a.frames_recovered,
        .late_fragments = a.late_fragments,
        .fragments_received = std::min(received_datagrams, expected),
        .fragments_expected = expected,
        .jitter_us = uint32_t(jitter_ns / 1000.0),
        .delay_trend = float(estimator.trend_ms_per_s() * 1000.0),
        .decode_ms = decode_ms.load(),
        .estimated_bitrate_bps = uint64_t(std::max<int64_t>(0, estimator.estimate_bps())),
        .received_bitrate_bps = uint64_t(std::max<int64_t>(0, estimator.received_bps())),
        .loss_burst_mean_x100 =
            loss_runs == 0 ? 100u : uint32_t(100.0 * double(lost_in_runs) / double(loss_runs)),
        .rtt_us = clock.ready() ? uint32_t(std::clamp<int64_t>(clock.rtt_ns() / 1000, 0, 10'000'000)) : 0u,
        .link_capacity_bps = trains.capacity_bps(),
        .display_phase_error_us =
            int32_t(std::clamp<int64_t>(display_phase_error_ns.load() / 1000, -1'000'000, 1'000'000)),
        .loss_burst_p90 = loss_burst_p90()};
    std::array<uint8_t, wire::ReportMessage::kSize> buffer{};
    wire::write(report, buffer);
    send(wire::PacketType::kReport, buffer);
    std::lock_guard lock(mutex);
    stats.frames = a;
    stats.datagrams = received_datagrams;
    stats.clock_offset_ns = clock.offset_ns();
    stats.rtt_ns = clock.rtt_ns();
    stats.clock_ready = clock.ready();
    stats.estimate_bps = estimator.estimate_bps();
    stats.received_bps = estimator.received_bps();
    stats.loss = expected == 0 ? 0.0 : 1.0 - double(report.fragments_received) / double(expected);
  }
};

StreamClient::StreamClient(const StreamClientConfig& config,
                           std::function<void(const AssembledFrame&)> on_frame)
    : impl_(std::make_unique<Impl>(config, std::move(on_frame))) {
  const udp::endpoint server = resolve_udp(config.server, "stream server address");
  boost::system::error_code error;
  impl_->socket.open(server.protocol());
  impl_->socket.set_option(boost::asio::socket_base::receive_buffer_size(4 << 20), error);
  impl_->socket.connect(server, error);  // a connected socket only receives from the server (or relay)
  if (error) throw_runtime("cannot reach " + config.server + ": " + error.message());
  enable_receive_timestamps(impl_->socket.native_handle());  // Impl::drain
  impl_->receive();
  boost::asio::post(impl_->io, [this] { impl_->on_tick(); });
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

StreamClient::~StreamClient() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

// Sent from the caller's thread, as it samples: posted to the network thread, a pose waited behind the
// video that thread was decrypting and repairing (2x512^2 on two loaded cores: one pose in five reached the
// node more than a millisecond after its due time, and the node rendered with the one before).
void StreamClient::send_pose(const wire::PoseMessage& pose) {
  std::lock_guard lock(impl_->pose_mutex);
  // The newest samples ride along in every datagram (wire::PoseBatch): a lost datagram loses no sample.
  wire::PoseBatch& recent = impl_->recent_poses;
  const size_t keep = std::clamp<size_t>(impl_->config.poses_per_datagram, 1, wire::PoseBatch::kMaxPoses);
  if (recent.count == keep) {
    std::move(recent.poses.begin() + 1, recent.poses.begin() + ptrdiff_t(recent.count), recent.poses.begin());
    --recent.count;
  }
  recent.poses[recent.count++] = pose;
  std::array<uint8_t, wire::PoseBatch::kMaxPoses * wire::PoseMessage::kSize> buffer{};
  const size_t n = wire::write(recent, buffer);
  impl_->send(wire::PacketType::kPose, std::span<const uint8_t>(buffer.data(), n));
}

void StreamClient::send_input(const wire::InputMessage& input) {
  boost::asio::post(impl_->io, [this, input] {
    std::array<uint8_t, wire::InputMessage::kSize> buffer{};
    wire::write(input, buffer);
    impl_->send(wire::PacketType::kInput, buffer);
  });
}

void StreamClient::send_hand(const wire::HandMessage& hand) {
  boost::asio::post(impl_->io, [this, hand] {
    std::array<uint8_t, wire::HandMessage::kSize> buffer{};
    wire::write(hand, buffer);
    impl_->send(wire::PacketType::kHand, buffer);
  });
}

void StreamClient::request_keyframe(uint64_t frame_id) {
  boost::asio::post(impl_->io, [this, frame_id] {
    std::array<uint8_t, wire::KeyframeRequestMessage::kSize> buffer{};
    wire::write(wire::KeyframeRequestMessage{.lost_frame_id = frame_id}, buffer);
    impl_->send(wire::PacketType::kKeyframeRequest, buffer);
    std::lock_guard lock(impl_->mutex);
    ++impl_->stats.keyframe_requests;
  });
}

void StreamClient::set_display_phase_error_ns(int64_t ns) {
  impl_->display_phase_error_ns = ns;
}

void StreamClient::set_decode_ms(float ms) {
  impl_->decode_ms = ms;
}

StreamClientStats StreamClient::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

int64_t StreamClient::server_to_client_ns(int64_t server_ns) const {
  std::lock_guard lock(impl_->mutex);
  return server_ns - impl_->stats.clock_offset_ns;
}

}  // namespace kairo
