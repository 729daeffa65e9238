#pragma once
// GPU nodes and the sessions placed on them, on the database. Placement is safe across replicas: the
// candidate nodes' rows are locked (SELECT ... FOR UPDATE, in id order) while their active sessions are
// counted and the new one inserted, so two replicas placing at once can never exceed a node's capacity. Nodes
// that miss three heartbeats are marked down by whichever replica looks first, and their sessions fail with a
// reason the client can read.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control-plane/credentials.hpp"
#include "control-plane/database.hpp"

namespace kairo::control {

struct NodeRegistration {
  std::string name, address, device;
  std::vector<std::string> encoders, scenes;
  int max_sessions = 0;
};

struct SessionRequest {
  std::string scene;
  int eye_width = 0, eye_height = 0, fps = 0;
  std::string codec = "h264";
  std::optional<std::string> room;
};

class FleetService {
 public:
  FleetService(Database& db, double heartbeat_interval_s = 2.0);

  // Node tokens: minted by operators (returned once, stored hashed), revocable.
  std::pair<int64_t, std::string> mint_node_token(int64_t created_by);
  bool revoke_node_token(int64_t id);
  bool node_token_valid(const std::string& token);

  int64_t register_node(const NodeRegistration& node);
  bool heartbeat(int64_t node_id, double load);
  bool set_drained(int64_t node_id, bool drained);
  nlohmann::json list_nodes();
  nlohmann::json capacity();
  // Prometheus gauges: sessions by state, nodes by state (up, down, drained). No ids as labels.
  std::string metrics_text();
  // Marks nodes silent for 3 heartbeat intervals down and fails their sessions. Returns how many went down.
  int sweep_down_nodes();

  // Throws ApiError 503 no_capacity when no live, undrained node with the scene has room.
  nlohmann::json create_session(int64_t user_id, const SessionRequest& request);
  nlohmann::json list_sessions(std::optional<int64_t> user_id);
  // nullopt when absent or (for a user id) not theirs.
  std::optional<nlohmann::json> get_session(const std::string& id, std::optional<int64_t> user_id);
  bool end_session(const std::string& id, std::optional<int64_t> user_id);
  // Each cap given replaces the session's; absent ones stay. False when no such active session (of the user).
  bool set_quality(const std::string& id, std::optional<int64_t> user_id,
                   std::optional<int64_t> max_bitrate_bps, std::optional<int> max_fps,
                   std::optional<bool> foveation);

  // The node's view: its placed and running sessions with their key material and quality caps (polled by the
  // node agent), and the node's reports of what became of them. `state` is running, ended or failed; a
  // session already ended or failed stays so. Returns false when the session is not on this node.
  nlohmann::json node_sessions(int64_t node_id);
  bool report_session_state(int64_t node_id, const std::string& session_id, const std::string& state,
                            const std::string& reason);

 private:
  Database& db_;
  double heartbeat_interval_s_;
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
