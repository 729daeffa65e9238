#pragma once
// Where held node-feed requests wait (docs/control-api.md "Node feed"). A node's feed request that finds
// nothing new since its cursor waits here until a change to that node is announced, or until its wait ends.
// A change made through this replica is announced here at once (changed()) and to the other replicas on the
// kairo_node_feed channel (LISTEN/NOTIFY), in batches from one connection of its own: a NOTIFY inside the
// transaction that made the change held PostgreSQL's one notification lock through that transaction's
// commit, so every placement and end through every replica queued on it (the end p99 of issue 14). One
// listening connection per replica; when it breaks it is reopened and every waiter is woken to read again,
// so no change is missed across a database restart. What a replica believes of a node's version it trusts
// for a few seconds at most: a change whose announcement never left (its replica died between the commit
// and the NOTIFY) reaches the node within that.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kairo::control {

struct FeedContent;  // control-plane/feed_content.hpp
struct FeedChange;   // what a change did to a node's whole feed (control-plane/feed_content.hpp)

struct NodeFeedHubStats {
  uint64_t waiting = 0;        // held feed requests now
  uint64_t notifications = 0;  // announcements heard since start
  uint64_t lag_count = 0;      // of which carried a time: commit-to-heard lag below
  double lag_sum_s = 0;
  std::array<uint64_t, 8> lag_buckets{};  // <= 1, 2.5, 5, 10, 25, 50, 100, 250 ms (cumulative)
  uint64_t listener_reconnects = 0;
  uint64_t announced = 0, announcement_batches = 0;  // this replica's changes told to the others
  uint64_t followed = 0;  // changes applied to a kept feed in memory (this replica's and the others')
  uint64_t announcements_lost = 0;  // batches that could not be sent (then "everything changed" is sent)
  bool listening = false;           // the LISTEN connection is up: changes through other replicas are heard
};

class NodeFeedHub {
 public:
  // `database_url`: the listening connection's; `workers`: threads that run wake-ups (they read the
  // database); `announcement_key`: 32 bytes shared by every replica (AccessTokens::derived_key), under which
  // placed sessions travel sealed in announcements (FeedAnnouncementCodec); empty: they are not carried.
  NodeFeedHub(std::string database_url, int workers, const std::string& announcement_key = "");
  ~NodeFeedHub();

  // Runs `wake` once: when a change to `node_id` is announced, when the listener reconnected, or after
  // `wait_s`, whichever comes first (`timed_out` says which). It runs on the thread that found it (the hub's
  // timer thread, the thread that announced the change through changed(), or the listening thread), where
  // it must not block: with Database::NoWaitingHere, and post() what needs the database.
  void wait(int64_t node_id, double wait_s, std::function<void(bool timed_out)> wake);
  // Announcements besides the node feed's, each a channel of its own.
  enum class Announcement {
    kCredentials,      // node credentials: a token minted for a node, revoked, rotated (migration 009)
    kPlacementInputs,  // what placement chooses from: a node's eligibility, the catalogue (migration 011)
  };
  // `callback` runs on the listening thread on each such announcement, and whenever listening starts or stops
  // (changes may have been missed), with whether this replica now hears them.
  void on_announcement(Announcement kind, std::function<void(bool listening)> callback);
  // Runs `work` on a worker thread.
  void post(std::function<void()> work);

  // A change to the node's feed committed through this replica: its held requests are woken now, and the
  // other replicas told (batched, never blocking). `version`: the feed version the change made, or 0 when
  // the change does not know it (then what this replica believed of the version is forgotten).
  // `change`, if any, is what the change did to the node's whole feed at the version before: a known feed
  // (with_known_feed) then moves to the new version in memory, here and, carried in the announcement, on the
  // other replicas that keep it at the version before; without it, it is forgotten.
  void changed(int64_t node_id, int64_t version, const FeedChange* change = nullptr);
  // A change that moves no version (a session reported running): applied to the known feed, if any, here
  // and on the other replicas.
  void edited(int64_t node_id, const FeedChange& change);

  // The node's feed version as this replica knows it from announcements and reads: nullopt when not known
  // for sure (never read, changed since by a change that did not carry its version, last learned over
  // kTrustNs ago, or the listening connection is down or was reopened since: announcements may have been
  // missed). Saves a held request's database reads.
  static constexpr int64_t kTrustNs = 5'000'000'000;
  std::optional<int64_t> known_version(int64_t node_id) const;
  // Before a read of the node's version from the database: pass what this returns to learn_version() with
  // the result, so that a read that straddled a reconnection or a change to the node is not trusted.
  struct ReadToken {
    uint64_t epoch = 0, generation = 0;
  };
  ReadToken read_token(int64_t node_id) const;
  void learn_version(int64_t node_id, int64_t version, ReadToken token);
  // Calls `use` with the node's whole feed at the version known for sure (as known_version), when this
  // replica has it: read whole once (learn_feed), then moved along by the changes made through this replica.
  // False, without calling `use`, otherwise. `use` runs under the hub's lock and must be short (printing the
  // answer): the kept feed is edited in place by the changes that follow, so no copy of it leaves the hub.
  // (A copy per change, for answers that might still hold the one before, was 6 % of a replica's CPU at 500
  // placements and 500 ends a second.)
  bool with_known_feed(int64_t node_id, const std::function<void(const FeedContent&)>& use) const;
  // After a read of the whole feed (its version is its cursor): as learn_version, and the feed kept.
  void learn_feed(int64_t node_id, const FeedContent& content, ReadToken token);

  NodeFeedHubStats stats() const;
  std::string metrics_text() const;  // Prometheus text: nodes attached, notification lag, reconnects

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo::control
