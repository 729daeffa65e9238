#pragma once
// Node heartbeats, written in batches. Every node's feed request is a heartbeat (1,000 nodes: 1,000 a
// second); written one transaction each, they were PostgreSQL's largest load and held node rows that
// placements wanted. Here each heartbeat is recorded in memory, and a thread of the writer's own writes all
// pending ones in one statement every flush period: recording never waits on the database, so a feed
// request is served from memory on the network thread (control_api.cpp). A node is written at most every
// half heartbeat interval; a written time is at most a flush period late, against three intervals of
// grace before a node is marked down (flush() before sweeping, so the sweep never misses a recorded one).

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace kairo::control {

class Database;

class HeartbeatWriter {
 public:
  HeartbeatWriter(Database& db, double interval_s);
  ~HeartbeatWriter();
  HeartbeatWriter(const HeartbeatWriter&) = delete;
  HeartbeatWriter& operator=(const HeartbeatWriter&) = delete;
  // Records the node's heartbeat and load, in memory (never waits on the database). False when an earlier
  // write found no such node: a node that is not there learns it at its first heartbeat after a write.
  bool record(int64_t node_id, double load);
  // Writes every pending heartbeat now (the caller's thread).
  void flush();

 private:
  // Returns the nodes the statement did not find.
  std::vector<int64_t> write(const std::vector<std::pair<int64_t, double>>& batch);
  void flush_every_period();

  Database& db_;
  const int64_t write_every_ns_, flush_period_ns_;
  std::mutex write_mutex_;  // held through a flush; taken before mutex_, never while holding it
  std::mutex mutex_;
  std::unordered_map<int64_t, double> pending_;      // node -> load, under mutex_
  std::unordered_map<int64_t, int64_t> written_ns_;  // node -> when last recorded for writing, under mutex_
  std::unordered_set<int64_t> missing_;              // nodes a write did not find, under mutex_
  bool stopping_ = false;                            // under mutex_
  std::condition_variable stop_;
  std::thread flusher_;
};

}  // namespace kairo::control
