// `kairo node-drain`: the GPU pod's preStop hook. Asks the node on this host (its admin socket, a unix socket
// only the node's own user can use) to drain, then waits until its sessions have ended or the wait is over.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "node/admin_socket.hpp"
#include "node/node_agent.hpp"

namespace kairo::app {

Runner add_node_drain_command(CLI::App& app) {
  struct Options {
    std::string socket = default_admin_socket(7000);
    double wait_s = 600;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--socket", o->socket, "the node's admin socket (kairo node --admin-socket)")
      ->envname("KAIRO_ADMIN_SOCKET")
      ->capture_default_str();
  app.add_option("--wait", o->wait_s, "seconds to wait for running sessions to end")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  return [o] {
    const auto active_sessions = [](const std::string& answer) {
      const auto body = nlohmann::json::parse(answer, nullptr, false);
      if (!body.is_object() || !body.contains("active_sessions"))
        throw_runtime("the node answered the drain unexpectedly: " + answer);
      return body.value("active_sessions", -1);
    };
    active_sessions(admin_request(o->socket, "drain"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o->wait_s);
    for (;;) {
      const int active = active_sessions(admin_request(o->socket, "status"));
      if (active == 0) {
        std::fprintf(stderr, "kairo node-drain: drained, no sessions left\n");
        return 0;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        std::fprintf(stderr, "kairo node-drain: %d sessions still running after %.0f s\n", active, o->wait_s);
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  };
}

}  // namespace kairo::app
