#include "control-plane/node_feed_hub.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <spdlog/spdlog.h>
#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <queue>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control-plane/feed_announcement.hpp"
#include "control-plane/feed_content.hpp"
#include "core/clock.hpp"

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
  };

  std::string url;
  FeedAnnouncementCodec codec;  // changes carried in announcements
  // Waits' ends: one thread sleeping until the earliest (a wait is added without waking it unless it ends
  // first: waits are about as long as each other, so almost never). A waiter that was woken earlier stays in
  // the heap until its time (bounded by the requests of one wait's length) and is skipped then. Ends run
  // their wake-ups on this thread; changes on `workers` (they read the database).
  using Deadline = std::pair<int64_t, std::shared_ptr<Waiter>>;  // steady ns
  struct LaterFirst {
    bool operator()(const Deadline& a, const Deadline& b) const { return a.first > b.first; }
  };
  std::mutex timer_mutex;  // never held with `mutex`
  std::condition_variable timer_ready;
  std::priority_queue<Deadline, std::vector<Deadline>, LaterFirst> deadlines;
  bool timers_stopping = false;
  asio::thread_pool workers;
  std::thread timer_thread, listener_thread;
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;  // the waiters and the stats; held for map updates only, never while waking
  std::multimap<int64_t, std::shared_ptr<Waiter>> by_node;
  NodeFeedHubStats counters;
  // Versions known for sure while listening; cleared (and the epoch moved) whenever listening starts or
  // stops, since announcements may have been missed around it. A change without its version makes the
  // node's unknown (-1) and moves its generation, so a read that straddled it is not learned.
  struct Known {
    int64_t version = -1;
    uint64_t generation = 0;
    int64_t at_ns = 0;  // when last learned or announced
    // The whole feed at `version`, if this replica has it (none when a change it could not follow came).
    // Owned here alone and edited in place, under `mutex`.
    std::optional<FeedContent> content;
  };
  bool listening = false;
  uint64_t version_epoch = 0;
  std::unordered_map<int64_t, Known> versions;

  // This replica's changes, for the other replicas (announce_loop). Bounded: past kMaxPending (the database
  // unreachable for long) they are dropped and "everything changed" is announced instead.
  static constexpr size_t kMaxPending = 100'000;
  std::mutex announce_mutex;
  std::condition_variable announce_ready;
  std::vector<std::string> pending;
  bool everything_changed = false;
  std::atomic<int> announcer_pid{0};  // its backend: the listener skips what this replica said itself
  std::thread announcer_thread;

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

  Impl(std::string u, int worker_count, const std::string& announcement_key)
      : url(std::move(u)), codec(announcement_key), workers(size_t(std::max(1, worker_count))) {}

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
    waiter->wake(timed_out);  // on this thread: it must not block (wait())
  }

  void run_timers() {
    std::unique_lock lock(timer_mutex);
    while (!timers_stopping) {
      if (deadlines.empty()) {
        timer_ready.wait(lock);
        continue;
      }
      const int64_t now = steady_now_ns();
      if (deadlines.top().first > now) {
        timer_ready.wait_for(lock, std::chrono::nanoseconds(deadlines.top().first - now));
        continue;
      }
      const std::shared_ptr<Waiter> waiter = deadlines.top().second;
      deadlines.pop();
      lock.unlock();
      try {
        fire(waiter, true);
      } catch (const std::exception& e) {
        spdlog::error("node feed: a held request's wake-up failed: {}", e.what());
      }
      lock.lock();
    }
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

  // A change to the node's feed: `version` the one it made, 0 unknown; `change`, if any, what it did to the
  // whole feed. Called with `mutex` held.
  void note_change(int64_t node, int64_t version, const FeedChange* change = nullptr) {
    Known& known = versions[node];
    if (version > 0 && known.version >= 0) {
      // Versions move by one per change (the nodes row's counter, under its lock): the feed known at the
      // version before, changed, is the feed at this one. A later version that skipped one (a change this
      // replica did not hear, or heard without its content) makes the known feed stale; an earlier one is in
      // it already. A change that does not fit the feed kept (announcements heard out of order) too.
      if (version == known.version + 1 && known.content && change && known.content->apply(*change)) {
        known.content->version = version;
        known.content->feed.set_cursor(std::to_string(version));
        ++counters.followed;
      } else if (version > known.version) {
        known.content.reset();
      }
      known.version = std::max(known.version, version);
      known.at_ns = steady_now_ns();
    } else {
      known.content.reset();
      // Unknown, or known no longer: a change without its version came before this one, and announcements
      // from several replicas arrive in any order, so only a read can tell the version again.
      known.version = -1;
      ++known.generation;
    }
  }

  // A change that moved no version (a session reported running), made here or heard: applied to the node's
  // kept feed, or the feed forgotten when it does not fit. Called with `mutex` held.
  void note_edit(int64_t node, const FeedChange* change) {
    const auto it = versions.find(node);
    if (it == versions.end()) return;
    Known& known = it->second;
    ++known.generation;  // a read that straddled the edit is not learned (it may not have it)
    if (!known.content) return;
    if (change && change->kind == FeedChange::Kind::kRunning && known.content->apply(*change))
      ++counters.followed;
    else
      known.content.reset();
  }

  // Every node may have changed: announcements were lost.
  void forget_everything() {
    {
      std::lock_guard lock(mutex);
      ++version_epoch;
      versions.clear();
    }
    wake_all();
  }

  // A list of "<node id>:<microseconds since the epoch at the change>:<the feed version it made, 0 if
  // unknown>[:<the change, FeedAnnouncementCodec>][:s]", comma-separated (one entry per change; the time and
  // version are optional; ":s": a change that moved no version), or "*": every node may have changed.
  void on_notification(const std::string& payload) {
    if (payload == "*") {
      forget_everything();
      return;
    }
    std::vector<int64_t> nodes;
    size_t start = 0;
    while (start < payload.size()) {
      const size_t end = std::min(payload.find(',', start), payload.size());
      const std::string_view entry(payload.data() + start, end - start);
      start = end + 1;
      int64_t fields[3] = {0, 0, 0};
      size_t count = 0, at = 0;
      for (; at <= entry.size() && count < 3; ++count) {
        const size_t colon = std::min(entry.find(':', at), entry.size());
        const auto [ptr, error] = std::from_chars(entry.data() + at, entry.data() + colon, fields[count]);
        if (error != std::errc() || ptr != entry.data() + colon) break;
        at = colon + 1;
      }
      if (count == 0) continue;  // not ours
      const bool same_version = count == 3 && entry.ends_with(":s");
      // What the change did, when carried: read before the lock (opening a sealed session).
      std::optional<FeedChange> change;
      if (count == 3) {
        std::string_view text = entry.substr(std::min(at, entry.size()));
        if (same_version) text = text.size() >= 2 ? text.substr(0, text.size() - 2) : std::string_view();
        if (!text.empty()) change = codec.decode(fields[0], fields[2], text);
      }
      if (!same_version) nodes.push_back(fields[0]);
      std::lock_guard lock(mutex);
      ++counters.notifications;
      if (same_version) {
        note_edit(fields[0], change ? &*change : nullptr);
      } else if (listening) {
        note_change(fields[0], count == 3 ? fields[2] : 0, change ? &*change : nullptr);
      }
      if (count >= 2 && fields[1] > 0) {
        const double lag_s = std::max(0.0, double(system_now_us() - fields[1]) * 1e-6);
        ++counters.lag_count;
        counters.lag_sum_s += lag_s;
        for (size_t i = 0; i < kLagBoundsS.size(); ++i)
          if (lag_s <= kLagBoundsS[i]) ++counters.lag_buckets[i];
      }
    }
    for (int64_t node : nodes) wake_node(node);
  }

  // Tells the other replicas of this one's changes: whatever gathered in 2 ms (or while the last batch was
  // sent) in one NOTIFY transaction of its own, which asks for no WAL flush (synchronous_commit off: an
  // announcement is no data; one lost with a crash is covered by kTrustNs and the waits' ends). A batch that
  // may not have left is sent again (an announcement heard twice only wakes twice).
  void announce_loop() {
    std::vector<std::string> batch;
    while (!stopping) {
      try {
        pqxx::connection connection(url);
        pqxx::nontransaction(connection).exec0("SET synchronous_commit = off");
        announcer_pid = connection.backendpid();
        while (!stopping) {
          if (batch.empty()) {
            std::unique_lock lock(announce_mutex);
            announce_ready.wait_for(lock, std::chrono::milliseconds(200),
                                    [&] { return stopping || everything_changed || !pending.empty(); });
            if (pending.empty() && !everything_changed) continue;
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let a batch gather
            lock.lock();
            if (everything_changed) {
              batch.assign(1, "*");
              pending.clear();
              everything_changed = false;
            } else {
              batch.swap(pending);
            }
          }
          // Payloads under PostgreSQL's 8000-byte limit, all in one statement (one transaction).
          std::vector<std::string> payloads(1);
          for (const std::string& entry : batch) {
            if (payloads.back().size() + entry.size() + 1 > 7900) payloads.emplace_back();
            if (!payloads.back().empty()) payloads.back() += ',';
            payloads.back() += entry;
          }
          // As an array literal: each payload double-quoted (digits, ':', ',' and '*' need no escaping).
          std::string array = "{";
          for (const std::string& payload : payloads)
            array += (array.size() > 1 ? ",\"" : "\"") + payload + '"';
          array += '}';
          pqxx::nontransaction(connection)
              .exec_params("SELECT pg_notify('kairo_node_feed', p) FROM unnest($1::text[]) AS p", array);
          std::lock_guard lock(mutex);
          counters.announced += batch.size();
          ++counters.announcement_batches;
          batch.clear();
        }
      } catch (const std::exception& e) {
        if (stopping) return;
        spdlog::warn("node feed: announcing connection lost ({}); reopening", e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
      }
    }
  }

  // `carried`: the change (FeedAnnouncementCodec::encode), if any, for the others to apply to the feed
  // they keep. `same_version`: a change that moved no version (a session reported running), ":s" at the
  // entry's end: the others apply it to the feed they keep (or forget that feed, when they cannot), without
  // waking its requests. A replica that does not know a suffix takes the entry as a change of unknown
  // version, or of a version it cannot follow: it reads again, which is safe.
  void queue_announcement(int64_t node, int64_t version, const std::string& carried,
                          bool same_version = false) {
    std::string entry = std::to_string(node) + ':' + std::to_string(system_now_us()) + ':' +
                        std::to_string(std::max<int64_t>(version, 0));
    if (!carried.empty()) entry += ':' + carried;
    if (same_version) entry += ":s";
    {
      std::lock_guard lock(announce_mutex);
      if (pending.size() >= kMaxPending) {
        pending.clear();
        everything_changed = true;
        std::lock_guard stats_lock(mutex);
        ++counters.announcements_lost;
      } else if (!everything_changed) {
        pending.push_back(std::move(entry));
      }
    }
    announce_ready.notify_one();
  }

  struct Receiver : pqxx::notification_receiver {
    Receiver(pqxx::connection_base& c, Impl& hub) : notification_receiver(c, "kairo_node_feed"), hub_(hub) {}
    void operator()(const std::string& payload, int backend_pid) override {
      if (backend_pid != hub_.announcer_pid) hub_.on_notification(payload);  // not this replica's own
    }
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

NodeFeedHub::NodeFeedHub(std::string database_url, int workers, const std::string& announcement_key)
    : impl_(std::make_unique<Impl>(std::move(database_url), workers, announcement_key)) {
  impl_->timer_thread = std::thread([this] { impl_->run_timers(); });
  impl_->listener_thread = std::thread([this] { impl_->listen(); });
  impl_->announcer_thread = std::thread([this] { impl_->announce_loop(); });
}

NodeFeedHub::~NodeFeedHub() {
  {
    std::lock_guard lock(impl_->announce_mutex);
    impl_->stopping = true;
  }
  impl_->announce_ready.notify_all();
  impl_->announcer_thread.join();
  impl_->listener_thread.join();
  impl_->wake_all();  // held requests are answered (with what is there) rather than dropped
  {
    std::lock_guard lock(impl_->timer_mutex);
    impl_->timers_stopping = true;
  }
  impl_->timer_ready.notify_all();
  impl_->timer_thread.join();
  impl_->workers.join();
}

void NodeFeedHub::wait(int64_t node_id, double wait_s, std::function<void(bool)> wake) {
  auto waiter = std::make_shared<Impl::Waiter>();
  waiter->node = node_id;
  waiter->wake = std::move(wake);
  {
    std::lock_guard lock(impl_->mutex);
    impl_->by_node.emplace(node_id, waiter);
    impl_->counters.waiting = impl_->by_node.size();
  }
  const int64_t due = steady_now_ns() + int64_t(std::max(0.0, wait_s) * 1e9);
  bool earliest = false;
  {
    std::lock_guard lock(impl_->timer_mutex);
    earliest = impl_->deadlines.empty() || due < impl_->deadlines.top().first;
    impl_->deadlines.emplace(due, std::move(waiter));
  }
  if (earliest) impl_->timer_ready.notify_one();
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

void NodeFeedHub::changed(int64_t node_id, int64_t version, const FeedChange* change) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->note_change(node_id, version, change);
  }
  impl_->wake_node(node_id);
  impl_->queue_announcement(node_id, version,
                            change && version > 0 ? impl_->codec.encode(node_id, version, *change) : "");
}

std::optional<int64_t> NodeFeedHub::known_version(int64_t node_id) const {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->listening) return std::nullopt;
  const auto it = impl_->versions.find(node_id);
  if (it == impl_->versions.end() || it->second.version < 0 || steady_now_ns() - it->second.at_ns > kTrustNs)
    return std::nullopt;
  return it->second.version;
}

NodeFeedHub::ReadToken NodeFeedHub::read_token(int64_t node_id) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->versions.find(node_id);
  return {impl_->version_epoch, it == impl_->versions.end() ? 0 : it->second.generation};
}

void NodeFeedHub::edited(int64_t node_id, const FeedChange& change) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->note_edit(node_id, &change);
  }
  // The other replicas' kept feeds lack it.
  impl_->queue_announcement(node_id, 0, impl_->codec.encode(node_id, 0, change), true);
}

bool NodeFeedHub::with_known_feed(int64_t node_id, const std::function<void(const FeedContent&)>& use) const {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->listening) return false;
  const auto it = impl_->versions.find(node_id);
  if (it == impl_->versions.end() || it->second.version < 0 || !it->second.content ||
      steady_now_ns() - it->second.at_ns > kTrustNs)
    return false;
  use(*it->second.content);
  return true;
}

void NodeFeedHub::learn_feed(int64_t node_id, const FeedContent& content, ReadToken token) {
  const int64_t version = content.version;
  std::lock_guard lock(impl_->mutex);
  if (!impl_->listening || impl_->version_epoch != token.epoch) return;
  Impl::Known& known = impl_->versions[node_id];
  if (known.generation != token.generation || version < known.version) return;
  if (version > known.version || !known.content) known.content = content;
  known.version = version;
  known.at_ns = steady_now_ns();
}

void NodeFeedHub::learn_version(int64_t node_id, int64_t version, ReadToken token) {
  std::lock_guard lock(impl_->mutex);
  if (!impl_->listening || impl_->version_epoch != token.epoch) return;
  Impl::Known& known = impl_->versions[node_id];
  if (known.generation != token.generation) return;  // changed while it was read
  if (version > known.version) known.content.reset();
  known.version = std::max(known.version, version);
  known.at_ns = steady_now_ns();
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
  out +=
      "# HELP kairo_node_feed_changes_followed_total Changes applied to a node's feed kept in memory (made "
      "through this replica, or carried in another's announcement) instead of the feed being read again.\n";
  out += "# TYPE kairo_node_feed_changes_followed_total counter\nkairo_node_feed_changes_followed_total " +
         std::to_string(s.followed) + "\n";
  out += "# HELP kairo_node_feed_listener_reconnects_total Times the LISTEN connection was reopened.\n";
  out +=
      "# TYPE kairo_node_feed_listener_reconnects_total counter\nkairo_node_feed_listener_reconnects_total " +
      std::to_string(s.listener_reconnects) + "\n";
  out +=
      "# HELP kairo_node_feed_announced_total Changes made through this replica told to the others, and the "
      "NOTIFY transactions that carried them (batches).\n";
  out += "# TYPE kairo_node_feed_announced_total counter\nkairo_node_feed_announced_total " +
         std::to_string(s.announced) + "\n";
  out +=
      "# TYPE kairo_node_feed_announcement_batches_total "
      "counter\nkairo_node_feed_announcement_batches_total " +
      std::to_string(s.announcement_batches) + "\n";
  out +=
      "# HELP kairo_node_feed_announcements_lost_total Times changes piled up past the bound while the "
      "database was unreachable (\"every node may have changed\" was announced instead).\n";
  out +=
      "# TYPE kairo_node_feed_announcements_lost_total counter\nkairo_node_feed_announcements_lost_total " +
      std::to_string(s.announcements_lost) + "\n";
  out +=
      "# HELP kairo_node_feed_listening 1 while this replica hears changes made through the others (its "
      "LISTEN connection is up); 0: held feed requests are answered only when their wait ends.\n";
  out += "# TYPE kairo_node_feed_listening gauge\nkairo_node_feed_listening " +
         std::to_string(s.listening ? 1 : 0) + "\n";
  return out;
}

}  // namespace kairo::control
