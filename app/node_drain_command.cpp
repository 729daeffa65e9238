// `kairo node-drain`: the GPU pod's preStop hook. Asks the node on this host (its metrics listener, from
// loopback) to drain, then waits until its sessions have ended or the wait is over.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "app/commands.hpp"
#include "control-plane/http_client.hpp"
#include "core/error.hpp"

namespace kairo::app {

Runner add_node_drain_command(CLI::App& app) {
  struct Options {
    std::string node = "127.0.0.1:9100";
    double wait_s = 600;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--node", o->node, "the node's metrics listener (HOST:PORT)")->capture_default_str();
  app.add_option("--wait", o->wait_s, "seconds to wait for running sessions to end")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
  return [o] {
    const auto url = control::parse_control_url("http://" + o->node);
    const auto drained =
        control::http_request(url, "POST", "/drain", "", "", {.timeout_s = 5, .ca_file = {}});
    if (drained.status != 200)
      throw_runtime("the node refused to drain: HTTP " + std::to_string(drained.status) + " " + drained.body);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o->wait_s);
    for (;;) {
      const auto status =
          control::http_request(url, "GET", "/healthz", "", "", {.timeout_s = 5, .ca_file = {}});
      const auto body = nlohmann::json::parse(status.body, nullptr, false);
      const int active = body.is_object() ? body.value("active_sessions", -1) : -1;
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
