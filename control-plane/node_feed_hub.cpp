#include "control-plane/node_feed_hub.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <spdlog/spdlog.h>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>

namespace kairo::control {

namespace asio = boost::asio;

namespace {
constexpr std::array<double, 8> kLagBoundsS{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25};

int64_t system_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

struct NodeFeedHub::Impl {
  struct Waiter {
    int64_t node = 0;
    std::function<void(bool)> wake;
    std::unique_ptr<asio::steady_timer> timer;
  };

  std::string url;
  // Timers run on `timers` (one thread); wake-ups on `workers` (they read the database).
  asio::io_context timers;
  asio::executor_work_guard<asio::io_context::executor_type> keep{timers.get_executor()};
  asio::thread_pool workers;
  std::thread timer_thread, listener_thread;
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;  // the waiters and the stats; held for map updates only, never while waking
  std::multimap<int64_t, std::shared_ptr<Waiter>> by_node;
  NodeFeedHubStats counters;
  // Versions known for sure while listening; cleared (and the epoch moved) whenever listening starts or
  // stops, since announcements may have been missed around it.
  bool listening = false;
  uint64_t version_epoch = 0;
  std::map<int64_t, int64_t> versions;

  // By Announcement: called on every announcement on its channel, and whenever listening starts or stops
  // (announcements may have been missed around it).
  static constexpr std::array<const char*, 2> kChannels{"kairo_credentials", "kairo_placement_inputs"};
  std::array<std::function<void(bool listening)>, kChannels.size()> announced;

  void set_listening(bool now_listening) {
    {
      std::lock_guard lock(mutex);
      listening = now_listening;
      ++version_epoch;
      versions.clear();
    }
    for (size_t kind = 0; kind < kChannels.size(); ++kind) announce(kind);
  }

  void announce(size_t kind) {
    std::function<void(bool)> callback;
    bool now_listening = false;
    {
      std::lock_guard lock(mutex);
      callback = announced[kind];
      now_listening = listening;
    }
    if (callback) callback(now_listening);
  }

  Impl(std::string u, int worker_count) : url(std::move(u)), workers(size_t(std::max(1, worker_count))) {}

  // Takes the waiter out (once: whoever finds it first wakes it) and runs its wake-up on a worker.
  void fire(const std::shared_ptr<Waiter>& waiter, bool timed_out) {
    {
      std::lock_guard lock(mutex);
      bool found = false;
      const auto [first, last] = by_node.equal_range(waiter->node);
      for (auto it = first; it != last; ++it)
        if (it->second == waiter) {
          by_node.erase(it);
          found = true;
          break;
        }
      if (!found) return;
      counters.waiting = by_node.size();
    }
    asio::post(timers, [waiter] { waiter->timer->cancel(); });
    asio::post(workers, [waiter, timed_out] { waiter->wake(timed_out); });
  }

  void wake_node(int64_t node) {
    std::vector<std::shared_ptr<Waiter>> woken;
    {
      std::lock_guard lock(mutex);
      const auto [first, last] = by_node.equal_range(node);
      for (auto it = first; it != last; ++it) woken.push_back(it->second);
    }
    for (const auto& w : woken) fire(w, false);
  }

  void wake_all() {
    std::vector<std::shared_ptr<Waiter>> woken;
    {
      std::lock_guard lock(mutex);
      for (const auto& [node, w] : by_node) woken.push_back(w);
    }
    for (const auto& w : woken) fire(w, false);
  }

  // "<node id>:<microseconds since the epoch at the change>" (the time is optional).
  // "<node id>:<microseconds since the epoch at the change>:<the feed version it made>".
  void on_notification(const std::string& payload) {
    const size_t colon = payload.find(':');
    const size_t second = colon == std::string::npos ? colon : payload.find(':', colon + 1);
    int64_t node = 0;
    try {
      node = std::stoll(payload.substr(0, colon));
    } catch (const std::exception&) {
      return;  // not ours
    }
    {
      std::lock_guard lock(mutex);
      ++counters.notifications;
      if (second != std::string::npos && listening) {
        try {
          int64_t& known = versions[node];
          known = std::max<int64_t>(known, std::stoll(payload.substr(second + 1)));
        } catch (const std::exception&) {
          versions.erase(node);  // not sure any more: read it next time
        }
      }
      if (colon != std::string::npos) {
        try {
          const int64_t at_us = std::stoll(payload.substr(colon + 1, second - colon - 1));
          const double lag_s = std::max(0.0, double(system_now_us() - at_us) * 1e-6);
          ++counters.lag_count;
          counters.lag_sum_s += lag_s;
          for (size_t i = 0; i < kLagBoundsS.size(); ++i)
            if (lag_s <= kLagBoundsS[i]) ++counters.lag_buckets[i];
        } catch (const std::exception&) {
        }
      }
    }
    wake_node(node);
  }

  struct Receiver : pqxx::notification_receiver {
    Receiver(pqxx::connection_base& c, Impl& hub) : notification_receiver(c, "kairo_node_feed"), hub_(hub) {}
    void operator()(const std::string& payload, int) override { hub_.on_notification(payload); }
    Impl& hub_;
  };
  struct AnnouncementReceiver : pqxx::notification_receiver {
    AnnouncementReceiver(pqxx::connection_base& c, Impl& hub, size_t kind)
        : notification_receiver(c, kChannels[kind]), hub_(hub), kind_(kind) {}
    void operator()(const std::string&, int) override { hub_.announce(kind_); }
    Impl& hub_;
    size_t kind_;
  };

  // One connection LISTENing; reopened when it breaks (then every waiter reads again: a change announced
  // while it was down is not lost).
  void listen() {
    bool first = true;
    while (!stopping) {
      try {
        pqxx::connection connection(url);
        Receiver receiver(connection, *this);
        AnnouncementReceiver credentials(connection, *this, 0), placement_inputs(connection, *this, 1);
        set_listening(true);
        if (!first) {
          {
            std::lock_guard lock(mutex);
            ++counters.listener_reconnects;
          }
          wake_all();
        }
        first = false;
        while (!stopping) connection.await_notification(0, 200'000);
      } catch (const std::exception& e) {
        set_listening(false);
        if (stopping) return;
        spdlog::warn("node feed: listening connection lost ({}); reopening", e.what());
        first = false;
        wake_all();  // nothing will be heard until it is back: let the waiters read for themselves
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    }
  }
};

NodeFeedHub::NodeFeedHub(std::string database_url, int workers)
    : impl_(std::make_unique<Impl>(std::move(database_url), workers)) {
  impl_->timer_thread = std::thread([this] { impl_->timers.run(); });
  impl_->listener_thread = std::thread([this] { impl_->listen(); });
}

NodeFeedHub::~NodeFeedHub() {
  impl_->stopping = true;
  impl_->listener_thread.join();
  impl_->wake_all();  // held requests are answered (with what is there) rather than dropped
  impl_->keep.reset();
  impl_->timers.stop();
  impl_->timer_thread.join();
  impl_->workers.join();
}

void NodeFeedHub::wait(int64_t node_id, double wait_s, std::function<void(bool)> wake) {
  auto waiter = std::make_shared<Impl::Waiter>();
  waiter->node = node_id;
  waiter->wake = std::move(wake);
  waiter->timer = std::make_unique<asio::steady_timer>(impl_->timers);
  {
    std::lock_guard lock(impl_->mutex);
    impl_->by_node.emplace(node_id, waiter);
    impl_->counters.waiting = impl_->by_node.size();
  }
  asio::post(impl_->timers, [this, waiter, wait_s] {
    waiter->timer->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(wait_s)));
    waiter->timer->async_wait([this, waiter](const boost::system::error_code& error) {
      if (!error) impl_->fire(waiter, true);
    });
  });
}

void NodeFeedHub::on_announcement(Announcement kind, std::function<void(bool listening)> callback) {
  const auto index = size_t(kind);
  {
    std::lock_guard lock(impl_->mutex);
    impl_->announced.at(index) = std::move(callback);
  }
  impl_->announce(index);  // listening may have started before this was set
}

void NodeFeedHub::post(std::function<void()> work) {
  asio::post(impl_->workers, std::move(work));
}

std::optional<int64_t> NodeFeedHub::known_version(int64_t node_id) const {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->listening) return std::nullopt;
  const auto it = impl_->versions.find(node_id);
  return it == impl_->versions.end() ? std::nullopt : std::optional<int64_t>(it->second);
}

uint64_t NodeFeedHub::epoch() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->version_epoch;
}

void NodeFeedHub::learn_version(int64_t node_id, int64_t version, uint64_t epoch) {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->listening || impl_->version_epoch != epoch) return;
  int64_t& known = impl_->versions[node_id];
  known = std::max(known, version);
}

NodeFeedHubStats NodeFeedHub::stats() const {
  std::lock_guard lock(impl_->mutex);
  NodeFeedHubStats out = impl_->counters;
  out.listening = impl_->listening;
  return out;
}

std::string NodeFeedHub::metrics_text() const {
  const NodeFeedHubStats s = stats();
  std::string out;
  out +=
      "# HELP kairo_node_feed_waiting Node feed requests held open now (nodes attached to this replica).\n";
  out += "# TYPE kairo_node_feed_waiting gauge\nkairo_node_feed_waiting " + std::to_string(s.waiting) + "\n";
  out +=
      "# HELP kairo_node_feed_notification_lag_seconds From a change's commit to this replica hearing of "
      "it.\n";
  out += "# TYPE kairo_node_feed_notification_lag_seconds histogram\n";
  for (size_t i = 0; i < kLagBoundsS.size(); ++i)
    out += "kairo_node_feed_notification_lag_seconds_bucket{le=\"" + std::to_string(kLagBoundsS[i]) + "\"} " +
           std::to_string(s.lag_buckets[i]) + "\n";
  out += "kairo_node_feed_notification_lag_seconds_bucket{le=\"+Inf\"} " + std::to_string(s.lag_count) + "\n";
  out += "kairo_node_feed_notification_lag_seconds_sum " + std::to_string(s.lag_sum_s) + "\n";
  out += "kairo_node_feed_notification_lag_seconds_count " + std::to_string(s.lag_count) + "\n";
  out += "# HELP kairo_node_feed_listener_reconnects_total Times the LISTEN connection was reopened.\n";
  out +=
      "# TYPE kairo_node_feed_listener_reconnects_total counter\nkairo_node_feed_listener_reconnects_total " +
      std::to_string(s.listener_reconnects) + "\n";
  out +=
      "# HELP kairo_node_feed_listening 1 while this replica hears changes made through the others (its "
      "LISTEN connection is up); 0: held feed requests are answered only when their wait ends.\n";
  out += "# TYPE kairo_node_feed_listening gauge\nkairo_node_feed_listening " +
         std::to_string(s.listening ? 1 : 0) + "\n";
  return out;
}

}  // namespace kairo::control
