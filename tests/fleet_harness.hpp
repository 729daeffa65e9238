#pragma once
// A whole fleet in one process for tests and benchmarks: the control plane on a real PostgreSQL (heartbeat
// interval 2 s as in production) and nodes serving until destroyed.
#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "control-plane/control_api.hpp"
#include "control-plane/http_client.hpp"
#include "node/node_agent.hpp"

namespace kairo::test {

inline const std::string kNodeToken = "node-e2e-test-token-0123456789abcdef";

// The control plane in this process, on a real PostgreSQL, heartbeats every 2 s as in production.
struct ControlPlane {
  explicit ControlPlane(const std::string& db_url)
      : db(db_url, 8),
        migrated(db.migrate()),
        tokens(std::string(48, 'k')),
        auth(db, tokens),
        fleet(db, 2.0),
        sweeper(fleet, 1.0),
        api(db, auth, tokens, fleet, kNodeToken, {},
            control::ApiOptions{.scenes = {.budget = {}, .inspection = {.inspector = KAIRO_BINARY}}}),
        server(api.serving(control::HttpServerOptions{.listen = "127.0.0.1:0", .threads = 2}),
               [this](const control::HttpRequest& r) { return api.handle(r); }) {
    auth.bootstrap_admin("admin", "admin-password");
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()); }
  // One login per test: logins are rate limited (5 in a burst per user), as they should be.
  std::string admin_token() {
    if (token.empty()) {
      const auto r = control::http_request(server.port(), "POST", "/v1/auth/login",
                                           R"({"username":"admin","password":"admin-password"})");
      token = nlohmann::json::parse(r.body).at("access_token").get<std::string>();
    }
    return token;
  }
  std::string token;
  nlohmann::json session(const std::string& id) {
    return nlohmann::json::parse(
        control::http_request(server.port(), "GET", "/v1/sessions/" + id, "", admin_token()).body);
  }
  control::Database db;
  int migrated;
  control::AccessTokens tokens;
  control::AuthService auth;
  control::FleetService fleet;
  control::DownNodeSweeper sweeper;
  control::ControlApi api;
  control::HttpServer server;
};

// A node in this process, serving until destroyed.
struct InProcessNode {
  explicit InProcessNode(const std::string& control_url, const std::string& metrics = "",
                         int max_sessions = 2, float fixed_foveation = 0, const std::string& record_dir = "",
                         double picture_ceiling_bpp = kDefaultPictureCeilingBpp)
      : agent(NodeOptions{.control_url = control_url,
                          .node_token = kNodeToken,
                          .listen_udp = "127.0.0.1:0",
                          .scenes_dir = KAIRO_SCENE_DIR,
                          .max_sessions = max_sessions,
                          .metrics_listen = metrics,
                          .name = "e2e-node",
                          .fixed_foveation = fixed_foveation,
                          .picture_ceiling_bpp = picture_ceiling_bpp,
                          .record_dir = record_dir}) {
    thread = std::thread([this] { agent.run(stop); });
  }
  ~InProcessNode() {
    stop = true;
    thread.join();
  }
  std::atomic<bool> stop{false};
  NodeAgent agent;
  std::thread thread;
};

}  // namespace kairo::test
