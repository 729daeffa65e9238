#include "control-plane/heartbeat_writer.hpp"

#include <spdlog/spdlog.h>
#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>
#include <string>
#include <unordered_set>

#include "control-plane/database.hpp"
#include "core/clock.hpp"

namespace kairo::control {

HeartbeatWriter::HeartbeatWriter(Database& db, double interval_s)
    : db_(db),
      write_every_ns_(int64_t(interval_s * 0.5e9)),
      flush_period_ns_(std::min(int64_t(250'000'000), int64_t(interval_s / 8 * 1e9))),
      flusher_([this] { flush_every_period(); }) {}

HeartbeatWriter::~HeartbeatWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_.notify_all();
  flusher_.join();
}

bool HeartbeatWriter::record(int64_t node_id, double load) {
  const int64_t now = steady_now_ns();
  std::lock_guard lock(mutex_);
  if (missing_.count(node_id)) return false;
  const auto it = written_ns_.find(node_id);
  if (it != written_ns_.end() && now - it->second < write_every_ns_) return true;
  if (written_ns_.size() > 100'000) written_ns_.clear();  // bounded: the worst is one write too many
  written_ns_[node_id] = now;
  pending_[node_id] = load;
  return true;
}

void HeartbeatWriter::flush_every_period() {
  std::unique_lock lock(mutex_);
  while (!stop_.wait_for(lock, std::chrono::nanoseconds(flush_period_ns_), [this] { return stopping_; })) {
    if (pending_.empty()) continue;
    lock.unlock();
    try {
      flush();
    } catch (const std::exception& e) {
      // The database is away: the batch is recorded again at the nodes' next heartbeats (write()).
      spdlog::warn("heartbeats: batch not written ({})", e.what());
    }
    lock.lock();
  }
}

void HeartbeatWriter::flush() {
  // One write at a time: a flush that returns has seen every heartbeat recorded before it written (or
  // refused), including those a concurrent flush had taken.
  std::lock_guard writing(write_mutex_);
  std::vector<std::pair<int64_t, double>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.assign(pending_.begin(), pending_.end());
    pending_.clear();
  }
  if (!batch.empty()) write(batch);
}

std::vector<int64_t> HeartbeatWriter::write(const std::vector<std::pair<int64_t, double>>& batch) {
  std::string ids = "{", loads = "{";
  for (const auto& [node, load] : batch) {
    if (ids.size() > 1) ids += ',', loads += ',';
    ids += std::to_string(node);
    loads += std::to_string(std::clamp(load, 0.0, 1e6));
  }
  ids += '}', loads += '}';
  std::unordered_set<int64_t> found;
  std::vector<std::pair<int64_t, double>> held;
  // A row another transaction holds (a placement taking a slot on the node) is skipped, not waited for, and
  // written with the next batch: a batch never queues behind placements, nor holds rows they want while it
  // waits (with 3 replicas, waiting batches made most placements miss their best candidates). Every node of
  // the batch that exists comes back, with whether it was written.
  constexpr const char* kWrite =
      "WITH beat AS (SELECT * FROM unnest($1::bigint[], $2::float8[]) AS b(id, load)), "
      "free AS (SELECT n.id FROM nodes n JOIN beat USING (id) FOR UPDATE OF n SKIP LOCKED), "
      "done AS (UPDATE nodes n SET last_heartbeat = now(), load = beat.load, state = 'up' FROM beat "
      "WHERE n.id = beat.id AND n.id IN (SELECT id FROM free) RETURNING n.id) "
      "SELECT beat.id, beat.load, done.id IS NOT NULL FROM beat LEFT JOIN done USING (id) "
      "WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.id = beat.id)";
  try {
    db_.transact([&](pqxx::work& w) {
      found.clear(), held.clear();
      for (const auto& row : w.exec_params(kWrite, ids, loads)) {
        found.insert(row[0].as<int64_t>());
        if (!row[2].as<bool>()) held.emplace_back(row[0].as<int64_t>(), row[1].as<double>());
      }
    });
  } catch (...) {
    // Not written (the database is away): recorded again at the nodes' next heartbeats.
    std::lock_guard lock(mutex_);
    for (const auto& entry : batch) written_ns_.erase(entry.first);
    throw;
  }
  if (!held.empty()) {
    std::lock_guard lock(mutex_);
    for (const auto& [node, load] : held) pending_.try_emplace(node, load);  // a newer one may be there
  }
  std::vector<int64_t> missing;
  for (const auto& entry : batch)
    if (!found.count(entry.first)) missing.push_back(entry.first);
  if (!missing.empty()) {
    std::lock_guard lock(mutex_);
    if (missing_.size() > 100'000) missing_.clear();  // bounded: such a node's next write finds it again
    missing_.insert(missing.begin(), missing.end());
  }
  return missing;
}

}  // namespace kairo::control
