#pragma once
// GPU nodes and the sessions placed on them, on the database. Placement is safe across replicas: a session
// takes a slot by one conditional update of its node's counter (active_sessions < max_sessions), so
// replicas placing at once can never exceed a node's capacity; which node to try comes from the replica's
// picture of the fleet (placement_snapshot.hpp), else from the database (docs/control-api.md "Placement").
// Nodes that miss three heartbeats are marked down by whichever replica looks first, and their sessions fail
// with a reason the client can read.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "control-plane/credentials.hpp"
#include "control-plane/database.hpp"
#include "control-plane/heartbeat_writer.hpp"
#include "control-plane/placement_snapshot.hpp"

// The API's messages (control-plane/proto/control.proto): declared here, defined by the generated header,
// which only the .cpp files that build or read them include.
namespace kairo::v1 {
class Node;
class Capacity;
class Session;
class Room;
class NodeSession;
class NodeFeed;
class NodeRegistration;
class RoomRequest;
class SessionRequest;
}  // namespace kairo::v1

namespace kairo::control {

struct FeedContent;  // control-plane/feed_content.hpp
struct FeedChange;

// Who a node request comes from: the static fleet-wide token of `kairo control --node-token` (it acts for
// every node registered with it, and only those), or a minted token, bound to the one node that first
// registered with it.
struct NodeCredential {
  std::optional<int64_t> token_id;  // nullopt: the static fleet token
  std::optional<int64_t> node_id;   // the node a minted token is bound to; nullopt until it registers
};

// The user asking for a session, and what they may do.
struct SessionCaller {
  int64_t user_id = 0;
  bool privileged = false;    // operator or admin: joins any room, opens rooms
  int max_live_sessions = 0;  // placed or running at once; 0: no limit
  std::string request_id{};   // the creating request's id: stored with the session, logged by its node
};

// One page of a list: at most `limit` items after `cursor` (opaque: the `next_cursor` of the page before;
// empty: from the start). Keyset paging, so items created or removed meanwhile never shift the others: each
// item present throughout is listed exactly once.
struct PageRequest {
  std::string cursor{};
  int limit = 1000;
};

class FleetService {
 public:
  // The one place the heartbeat interval is set: nodes are told it (registration and heartbeat answers) and
  // are marked down after three missed; the sweeper runs at the same period.
  static constexpr double kDefaultHeartbeatIntervalS = 2.0;
  // How old the replica's picture of the fleet may grow before placements stop choosing from it (slot counts
  // and load a little behind only order the candidates a little differently; changes to eligibility drop it
  // at once); it is read again from half that age: every 100 ms under load, 50 placements at 500 a second
  // between reads.
  static constexpr int64_t kSnapshotMaxAgeNs = 200'000'000;
  FleetService(Database& db, double heartbeat_interval_s = kDefaultHeartbeatIntervalS,
               int64_t snapshot_max_age_ns = kSnapshotMaxAgeNs);
  double heartbeat_interval_s() const { return heartbeat_interval_s_; }

  // Node tokens: minted by operators (returned once, stored hashed), revocable.
  // With `for_node` (a registered node's name), the token is bound to that node and the node answers to it
  // from then on (rotation); ApiError 404 when there is no such node.
  std::pair<int64_t, std::string> mint_node_token(int64_t created_by,
                                                  const std::optional<std::string>& for_node = std::nullopt);
  bool revoke_node_token(int64_t id);
  // The credential a token stands for, or nullopt when it is unknown or revoked.
  std::optional<NodeCredential> node_credential(const std::string& token);
  // Throws ApiError 403 when the credential may not act for the node (another token's node), 404 when there
  // is no such node.
  void authorise_node(const NodeCredential& credential, int64_t node_id);

  // Registers a new node or updates one of the credential's own; a name held by another token is never taken
  // over (ApiError 403). A minted token is bound to the node it first registers.
  int64_t register_node(const v1::NodeRegistration& node, const NodeCredential& credential);
  // Written at most every half heartbeat interval per node by this replica (a node that heartbeats more
  // often, as one following its feed does, costs no more writes), in batches (HeartbeatWriter); false when
  // there is no such node.
  bool heartbeat(int64_t node_id, double load);
  // What the node's scene cache holds (SHA-256s): placement prefers holders. False: no such node.
  bool set_cached_scenes(int64_t node_id, const std::vector<std::string>& sha256);
  bool set_drained(int64_t node_id, bool drained);
  // Pages (PageRequest); `next_cursor` is set empty on the last page. ApiError 400 for a malformed cursor.
  std::vector<v1::Node> list_nodes(const PageRequest& page, std::string& next_cursor);
  v1::Capacity capacity();
  // Prometheus gauges: sessions by state, nodes by state (up, down, drained). No ids as labels.
  std::string metrics_text();
  // Marks nodes silent for 3 heartbeat intervals down and fails their sessions. Returns how many went down.
  int sweep_down_nodes();

  // Throws ApiError 503 no_capacity when no live, undrained node with the scene has room.
  // Throws ApiError 429 session_limit when the caller already has max_live_sessions, 403 room_forbidden
  // for a room of another user that the caller is not a member of.
  v1::Session create_session(const SessionCaller& caller, const v1::SessionRequest& request);
  // Rooms: created by their owner (open only by an operator); 409 when the name is taken.
  v1::Room create_room(const SessionCaller& owner, const v1::RoomRequest& request);
  // The owner or an operator; false when no such room (or not theirs).
  bool delete_room(const SessionCaller& caller, const std::string& name);
  std::vector<v1::Session> list_sessions(std::optional<int64_t> user_id, const PageRequest& page,
                                         std::string& next_cursor);
  // nullopt when absent or (for a user id) not theirs.
  std::optional<v1::Session> get_session(const std::string& id, std::optional<int64_t> user_id);
  bool end_session(const std::string& id, std::optional<int64_t> user_id);
  // Each cap given replaces the session's; absent ones stay. False when no such active session (of the user).
  bool set_quality(const std::string& id, std::optional<int64_t> user_id,
                   std::optional<int64_t> max_bitrate_bps, std::optional<int> max_fps,
                   std::optional<bool> foveation);

  // The node's view: its placed and running sessions with their key material and quality caps (polled by the
  // node agent), and the node's reports of what became of them. `state` is running, ended or failed; a
  // session already ended or failed stays so. Returns false when the session is not on this node.
  std::vector<v1::NodeSession> node_sessions(int64_t node_id, const PageRequest& page,
                                             std::string& next_cursor);
  // The node's feed (docs/control-api.md "Node feed"): its version (bumped by every change the node must act
  // on), and the whole state at or after that version. -1: no such node.
  int64_t feed_version(int64_t node_id);
  FeedContent node_feed(int64_t node_id);

  // Since start: sessions placed by this replica, and placements that found every free candidate held by
  // another placement and waited for one.
  uint64_t placements() const { return placements_; }
  uint64_t placement_conflicts() const { return placement_conflicts_; }
  bool report_session_state(int64_t node_id, const std::string& session_id, const std::string& state,
                            const std::string& reason);

  // Called after each change to a node's feed commits through this service (a session placed on it, ended,
  // failed, reported, given new caps; a drain order), with the node and the feed version the change made (0:
  // not known; -1: the change moved no version, a session reported running), and, where this service knows
  // it, what the change did to the node's whole feed (else null). ControlApi hands it to
  // NodeFeedHub::changed (or edited). Null: nobody listens.
  using FeedListener = std::function<void(int64_t node, int64_t version, const FeedChange* change)>;
  void on_feed_changed(FeedListener listener);

  // Node credentials changed somewhere (NodeFeedHub::Announcement::kCredentials): the cached ones are
  // dropped. While `pushed` (this replica hears every change), cached credentials are kept a minute instead
  // of a second: a revocation through any replica takes effect at once either way.
  void credentials_changed(bool pushed);
  // What placement chooses from changed somewhere (NodeFeedHub::Announcement::kPlacementInputs): the
  // replica's picture of the fleet is dropped. Only while `pushed` (this replica hears every such change) is
  // a placement chosen from that picture; otherwise PostgreSQL chooses, as before.
  void placement_inputs_changed(bool pushed);
  // Since start: sessions placed on the node the picture chose (one single-row update), and reads of it.
  uint64_t placements_from_snapshot() const { return placements_from_snapshot_; }
  uint64_t snapshot_reads() const { return snapshot_reads_; }

 private:
  // The picture of the fleet, read again if due (by one request at a time: the others meanwhile choose from
  // the picture they have while it is usable, else let the database choose). False: not to be used now.
  bool snapshot_ready();
  void forget_cached_credentials();
  void feed_changed(int64_t node, int64_t version, const FeedChange* change = nullptr);
  int64_t credential_cache_ns() const;

  Database& db_;
  double heartbeat_interval_s_;
  // Node credentials and the static token's ownership of nodes, each read at most once a second.
  static constexpr int64_t kCredentialCacheNs = 1'000'000'000, kPushedCredentialCacheNs = 60'000'000'000;
  std::atomic<bool> credentials_pushed_{false};
  std::mutex cache_mutex_;
  std::unordered_map<std::string, std::pair<std::optional<NodeCredential>, int64_t>> credentials_;
  std::unordered_map<int64_t, std::pair<std::optional<bool>, int64_t>> static_own_;
  HeartbeatWriter heartbeats_;
  std::mutex feed_listener_mutex_;  // held only to copy the pointer
  std::shared_ptr<const FeedListener> feed_listener_;
  std::atomic<uint64_t> placements_{0}, placement_conflicts_{0};
  PlacementSnapshot snapshot_;
  std::atomic<bool> snapshot_pushed_{false}, snapshot_reading_{false};
  std::atomic<uint64_t> placements_from_snapshot_{0}, snapshot_reads_{0};
};

// Runs FleetService::sweep_down_nodes every heartbeat interval on a thread of its own (every replica runs
// one; the sweep is idempotent).
class DownNodeSweeper {
 public:
  DownNodeSweeper(FleetService& fleet, double interval_s);
  ~DownNodeSweeper();

 private:
  FleetService& fleet_;
  double interval_s_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kairo::control
