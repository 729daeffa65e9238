#include "streaming/netsim.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <algorithm>
#include <boost/asio.hpp>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "streaming/loss_model.hpp"
#include "streaming/stamped_receive.hpp"
#include "streaming/udp_address.hpp"

namespace kairo {

using boost::asio::ip::udp;
using Clock = std::chrono::steady_clock;

namespace {

// One client's path through the relay, as a NAT keeps it: the client's address and an upstream socket of its
// own, so that what the server sends back to that socket goes to that client. Several clients behind one
// relay are several flows sharing one impaired link (one queue, one rate) in each direction.
struct Flow {
  explicit Flow(boost::asio::io_context& io) : upstream(io) {}
  udp::endpoint client;
  udp::socket upstream;
  std::array<uint8_t, 2048> buffer{};
  Clock::time_point last_seen{};
};

struct Scheduled {
  Clock::time_point at;
  uint64_t order;  // ties keep arrival order
  bool upstream;
  std::shared_ptr<Flow> flow;  // whose packet (kept alive while queued, even if the flow is dropped)
  std::array<uint8_t, 2048> data;
  size_t size;
  bool operator>(const Scheduled& other) const {
    return at != other.at ? at > other.at : order > other.order;
  }
};

// One direction's impairment state: its own random stream so the two directions stay independent.
struct Link {
  std::mt19937_64 rng;
  BurstLoss loss;  // Gilbert-Elliott (streaming/loss_model.hpp)
  Clock::time_point free_at{};
  NetsimCounters counters;
};

}  // namespace

struct Netsim::Impl {
  boost::asio::io_context io;
  udp::socket client_side{io};  // bound to --listen
  udp::endpoint forward_to;
  // At most kMaxFlows clients at once; a new one beyond that replaces the longest idle.
  static constexpr size_t kMaxFlows = 64;
  std::vector<std::shared_ptr<Flow>> flows;
  boost::asio::steady_timer timer{io};
  ImpairmentConfig config;
  std::atomic<double> rate{0};
  Link up, down;
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> queue;
  uint64_t order = 0;
  std::array<uint8_t, 2048> buffer_up{};
  mutable std::mutex counters_mutex;
  static constexpr size_t kMaxQueued = 20000;

  // Datagrams are delayed from when the kernel received them (streaming/stamped_receive.hpp), not from when
  // this thread got round to them: on a busy machine the relay's own wake-ups would otherwise spread a
  // packet train as a slow link does. Each wake takes what is waiting, at most 64.
  void receive_up() {
    client_side.async_wait(udp::socket::wait_read, [this](auto error) {
      if (error == boost::asio::error::operation_aborted) return;
      for (int i = 0; i < 64 && !error; ++i) {
        sockaddr_storage from{};
        const StampedDatagram d = receive_stamped(client_side.native_handle(), buffer_up, &from);
        if (!d.ok) break;
        udp::endpoint sender;
        if (d.from_size > sender.capacity()) continue;
        std::memcpy(sender.data(), &from, d.from_size);
        sender.resize(d.from_size);
        if (const std::shared_ptr<Flow> flow = flow_of(sender))
          impair(true, flow, buffer_up.data(), d.size, arrival_time(d));
      }
      receive_up();
    });
  }

  static Clock::time_point arrival_time(const StampedDatagram& d) {
    return Clock::time_point(std::chrono::nanoseconds(d.arrival_ns));
  }

  // Whatever the clients' socket holds now, received and impaired like the rest (synchronously, on the io
  // thread, before it stops).
  void drain_up() {
    boost::system::error_code error;
    client_side.non_blocking(true, error);
    for (int i = 0; i < 100'000 && !error; ++i) {
      udp::endpoint from;
      const size_t n = client_side.receive_from(boost::asio::buffer(buffer_up), from, 0, error);
      if (!error)
        if (const std::shared_ptr<Flow> flow = flow_of(from))
          impair(true, flow, buffer_up.data(), n, Clock::now());
    }
  }

  // The client's flow; a new client gets one (its own upstream socket), at the cost of the longest idle
  // flow when all are taken. Null only when no socket can be opened.
  std::shared_ptr<Flow> flow_of(const udp::endpoint& client) {
    const auto now = Clock::now();
    for (const auto& flow : flows)
      if (flow->client == client) {
        flow->last_seen = now;
        return flow;
      }
    auto flow = std::make_shared<Flow>(io);
    boost::system::error_code error;
    flow->upstream.open(forward_to.protocol(), error);
    if (!error) flow->upstream.bind(udp::endpoint(forward_to.protocol(), 0), error);
    if (error) return nullptr;
    flow->upstream.set_option(boost::asio::socket_base::receive_buffer_size(4 << 20), error);
    enable_receive_timestamps(flow->upstream.native_handle());
    flow->client = client;
    flow->last_seen = now;
    if (flows.size() >= kMaxFlows) {
      auto idle = std::min_element(flows.begin(), flows.end(),
                                   [](const auto& a, const auto& b) { return a->last_seen < b->last_seen; });
      (*idle)->upstream.close(error);
      *idle = flow;
    } else {
      flows.push_back(flow);
    }
    receive_down(flow);
    return flow;
  }

  void receive_down(const std::shared_ptr<Flow>& flow) {
    flow->upstream.async_wait(udp::socket::wait_read, [this, flow](auto error) {
      if (error == boost::asio::error::operation_aborted || !flow->upstream.is_open()) return;
      for (int i = 0; i < 64 && !error; ++i) {
        sockaddr_storage from{};
        const StampedDatagram d = receive_stamped(flow->upstream.native_handle(), flow->buffer, &from);
        if (!d.ok) break;
        udp::endpoint sender;
        if (d.from_size > sender.capacity()) continue;
        std::memcpy(sender.data(), &from, d.from_size);
        sender.resize(d.from_size);
        if (sender == forward_to) impair(false, flow, flow->buffer.data(), d.size, arrival_time(d));
      }
      receive_down(flow);
    });
  }

  // `arrived`: when the datagram reached the relay; its delay and its place on a rate-capped link count from
  // then.
  void impair(bool upstream, const std::shared_ptr<Flow>& flow, const uint8_t* data, size_t size,
              Clock::time_point arrived) {
    Link& link = upstream ? up : down;
    std::lock_guard lock(counters_mutex);
    ++link.counters.received;
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    link.loss.loss_percent = config.loss_percent;
    link.loss.burst_mean = config.burst_mean;
    if (link.loss.lose(link.rng)) {
      ++link.counters.lost;
      return;
    }
    const int copies = uniform(link.rng) < config.duplicate_percent / 100.0 ? 2 : 1;
    if (copies == 2) ++link.counters.duplicated;
    for (int copy = 0; copy < copies; ++copy) {
      double delay =
          config.delay_ms + (config.jitter_ms > 0 ? (uniform(link.rng) * 2 - 1) * config.jitter_ms : 0.0);
      if (uniform(link.rng) < config.reorder_percent / 100.0) {
        delay += 1.0 + 4.0 * uniform(link.rng);
        ++link.counters.reordered;
      }
      auto at = arrived + std::chrono::microseconds(int64_t(std::max(0.0, delay) * 1000));
      const double mbitps = rate.load();
      if (mbitps > 0) {
        // Serialisation on a link of that rate; the queue in front of it holds at most queue_ms.
        const auto now = arrived;
        if (link.free_at < now) link.free_at = now;
        if (link.free_at - now > std::chrono::microseconds(int64_t(config.queue_ms * 1000)) ||
            queue.size() >= kMaxQueued) {
          ++link.counters.queue_dropped;
          return;
        }
        link.free_at += std::chrono::nanoseconds(int64_t(double(size) * 8.0 / mbitps * 1000.0));
        at = std::max(at, link.free_at);
      }
      if (queue.size() >= kMaxQueued) {
        ++link.counters.queue_dropped;
        return;
      }
      Scheduled s{.at = at,
                  .order = order++,
                  .upstream = upstream,
                  .flow = flow,
                  .data = {},
                  .size = std::min(size, size_t(2048))};
      std::memcpy(s.data.data(), data, s.size);
      queue.push(s);
    }
    arm_timer();
  }

  void arm_timer() {
    if (queue.empty()) return;
    timer.expires_at(queue.top().at);
    timer.async_wait([this](auto error) {
      if (error == boost::asio::error::operation_aborted) return;
      release_due();
    });
  }

  void release_due() {
    std::lock_guard lock(counters_mutex);
    const auto now = Clock::now();
    while (!queue.empty() && queue.top().at <= now) {
      const Scheduled& s = queue.top();
      boost::system::error_code ignored;
      if (s.upstream) {
        if (s.flow->upstream.is_open())
          s.flow->upstream.send_to(boost::asio::buffer(s.data.data(), s.size), forward_to, 0, ignored);
        ++up.counters.forwarded;
        up.counters.bytes += s.size;
      } else {
        client_side.send_to(boost::asio::buffer(s.data.data(), s.size), s.flow->client, 0, ignored);
        ++down.counters.forwarded;
        down.counters.bytes += s.size;
      }
      queue.pop();
    }
    arm_timer();
  }
};

Netsim::Netsim(const std::string& listen, const std::string& forward, const ImpairmentConfig& config,
               uint64_t seed)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->rate = config.rate_mbitps;
  impl_->up.rng.seed(seed);
  impl_->down.rng.seed(seed ^ 0x9e3779b97f4a7c15ull);
  const udp::endpoint listen_at = resolve_udp(listen, "--listen");
  impl_->forward_to = resolve_udp(forward, "--forward");
  boost::system::error_code error;
  impl_->client_side.open(listen_at.protocol());
  impl_->client_side.bind(listen_at, error);
  if (error) throw_runtime("netsim: cannot listen on " + listen + ": " + error.message());
  const int buffer = 4 << 20;  // absorb bursts of a frame's fragments
  impl_->client_side.set_option(boost::asio::socket_base::receive_buffer_size(buffer), error);
  enable_receive_timestamps(impl_->client_side.native_handle());
}

Netsim::~Netsim() {
  stop();
}

uint16_t Netsim::listen_port() const {
  return impl_->client_side.local_endpoint().port();
}

void Netsim::run() {
  impl_->receive_up();
  impl_->io.run();
}

void Netsim::start() {
  thread_ = std::thread([this] { run(); });
}

void Netsim::stop() {
  if (!thread_.joinable()) {
    impl_->io.stop();
    return;
  }
  // What reached the relay before the stop is counted like the rest: a datagram sent on loopback is in the
  // socket buffer when sendto returns, so whoever sends and then stops the relay sees every one counted,
  // with no sleep in between.
  // Twice: a datagram the reactor read while the first drain was queued completes its receive after it
  // (ahead of the second), which then finds the socket empty.
  boost::asio::post(impl_->io, [this] {
    impl_->drain_up();
    boost::asio::post(impl_->io, [this] {
      impl_->drain_up();
      impl_->io.stop();
    });
  });
  thread_.join();
}

void Netsim::set_rate_mbitps(double rate) {
  impl_->rate = rate;
}

NetsimCounters Netsim::counters(bool upstream) const {
  std::lock_guard lock(impl_->counters_mutex);
  return upstream ? impl_->up.counters : impl_->down.counters;
}

std::string Netsim::counters_json() const {
  auto json = [](const NetsimCounters& c) {
    return nlohmann::json{{"received", c.received},
                          {"forwarded", c.forwarded},
                          {"lost", c.lost},
                          {"queue_dropped", c.queue_dropped},
                          {"duplicated", c.duplicated},
                          {"reordered", c.reordered},
                          {"bytes", c.bytes}};
  };
  return nlohmann::json{{"upstream", json(counters(true))}, {"downstream", json(counters(false))}}.dump();
}

}  // namespace kairo
