#include "replay/replay_transport.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "streaming/stream_client.hpp"
#include "streaming/stream_server.hpp"

namespace kairo {

struct ReplayTransport::Impl {
  std::unique_ptr<StreamServer> server;
  std::unique_ptr<Netsim> relay;
  std::unique_ptr<StreamClient> client;
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<uint8_t> received;    // the last frame the client completed (capacity reused)
  std::vector<uint8_t> handed_out;  // what send() returns, stable until the next send()
  uint64_t received_id = UINT64_MAX;
  int64_t received_ns = 0;
  int fec_recovered = 0, retransmitted = 0;
  TransportTotals totals;
  int64_t frame_deadline_ns = 0;
};

ReplayTransport::ReplayTransport(const ImpairmentConfig& impairment, uint64_t seed, int fps)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  // A fresh key per run: the transport is authenticated as in production, nothing about it is replayed.
  const SessionKey key = SessionKey::random();
  d.server =
      std::make_unique<StreamServer>(StreamServerConfig{.listen = "127.0.0.1:0", .key = key, .fps = fps});
  d.relay = std::make_unique<Netsim>("127.0.0.1:0", "127.0.0.1:" + std::to_string(d.server->port()),
                                     impairment, seed);
  d.relay->start();
  const int64_t interval = 1'000'000'000LL / std::max(1, fps);
  // Time for the frame to be paced out, cross the relay twice (a NACK and its answer) and be given up.
  d.frame_deadline_ns =
      2 * interval + 4 * int64_t((impairment.delay_ms + impairment.jitter_ms) * 1e6) + 500'000'000LL;
  d.client = std::make_unique<StreamClient>(
      StreamClientConfig{
          .server = "127.0.0.1:" + std::to_string(d.relay->listen_port()), .key = key, .fps = fps},
      [&d](const AssembledFrame& f) {
        std::lock_guard lock(d.mutex);
        d.received.assign(f.data.begin(), f.data.end());
        d.received_id = f.frame_id;
        d.received_ns = steady_now_ns();
        d.fec_recovered = f.fec_recovered;
        d.retransmitted = f.retransmitted;
        d.arrived.notify_all();
      });
  // The server answers only a client it has heard from: the client's pings and reports connect it.
  const int64_t give_up = steady_now_ns() + 10'000'000'000LL;
  while (!d.server->connected()) {
    d.client->send_pose(wire::PoseMessage{.pose_id = 1});
    if (steady_now_ns() > give_up)
      throw_runtime("replay transport: the client never reached the server through the relay");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ReplayTransport::~ReplayTransport() {
  impl_->client.reset();
  impl_->relay->stop();
}

TransportOutcome ReplayTransport::send(uint64_t frame_id, bool keyframe, std::span<const uint8_t> au) {
  Impl& d = *impl_;
  const uint64_t lost_before = d.client->stats().frames.frames_lost;
  const int64_t sent = steady_now_ns();
  d.server->send_frame(FrameInfo{.frame_id = frame_id, .capture_time_ns = sent, .keyframe = keyframe}, au);
  std::unique_lock lock(d.mutex);
  // Delivered, or given up by the client's assembler (its deadline passed): never wait past the bound.
  for (;;) {
    if (d.received_id == frame_id) break;
    if (steady_now_ns() - sent > d.frame_deadline_ns) break;
    lock.unlock();
    const bool lost = d.client->stats().frames.frames_lost > lost_before;
    lock.lock();
    if (lost && d.received_id != frame_id) break;
    d.arrived.wait_for(lock, std::chrono::milliseconds(5));
  }
  TransportOutcome out;
  if (d.received_id == frame_id) {
    out.delivered = true;
    d.handed_out.swap(d.received);  // the buffers trade places: no copy of the frame
    out.data = d.handed_out;
    out.transport_ms = double(d.received_ns - sent) * 1e-6;
    out.fec_recovered = d.fec_recovered;
    out.retransmitted = d.retransmitted;
    ++d.totals.frames_delivered;
    d.totals.fec_recovered_fragments += uint64_t(d.fec_recovered);
    d.totals.retransmitted_fragments += uint64_t(d.retransmitted);
  } else {
    ++d.totals.frames_lost;
  }
  return out;
}

bool ReplayTransport::take_keyframe_request() {
  const bool requested = impl_->server->take_keyframe_request();
  if (requested) ++impl_->totals.keyframe_requests;
  return requested;
}

TransportTotals ReplayTransport::totals() const {
  TransportTotals t = impl_->totals;
  t.datagrams_lost_by_netsim = impl_->relay->counters(false).lost + impl_->relay->counters(true).lost;
  return t;
}

}  // namespace kairo
