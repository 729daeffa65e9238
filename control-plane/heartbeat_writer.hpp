#pragma once
// Node heartbeats, written in batches. Every node's feed request is a heartbeat (1,000 nodes: 1,000 a
// second); written one transaction each, they were PostgreSQL's largest load and held node rows that
// placements wanted. Here each heartbeat is recorded in memory and whoever records one after the flush
// period writes all pending ones in one statement (no thread of its own). A node is written at most every
// half heartbeat interval; a written time is at most a flush period late, against three intervals of
// grace before a node is marked down (flush() before sweeping, so the sweep never misses a recorded one).

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kairo::control {

class Database;

class HeartbeatWriter {
 public:
  HeartbeatWriter(Database& db, double interval_s);
  // Records the node's heartbeat and load; writes the batch when the flush period has passed (the caller's
  // thread). False when a write found no such node.
  bool record(int64_t node_id, double load);
  // Writes every pending heartbeat now.
  void flush();

 private:
  // Returns the nodes the statement did not find.
  std::vector<int64_t> write(const std::vector<std::pair<int64_t, double>>& batch);

  Database& db_;
  const int64_t write_every_ns_, flush_period_ns_;
  std::mutex mutex_;
  std::unordered_map<int64_t, double> pending_;      // node -> load, under mutex_
  std::unordered_map<int64_t, int64_t> written_ns_;  // node -> when last recorded for writing, under mutex_
  int64_t last_flush_ns_ = 0;                        // under mutex_
};

}  // namespace kairo::control
