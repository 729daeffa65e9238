// libFuzzer target: HTTP requests through the control plane's route table (control-plane/control_api.cpp)
// against a real, throwaway PostgreSQL (devdb/), the way an attacker or a buggy client reaches it: any
// method, any path, any credential, any body. Invariants: no request gets a 5xx other than 503 (a 500 is a
// bug: bad input must get a clear 4xx), and every JSON answer is JSON, an error one with its code.
//
// Input: one character choosing the credential (a admin, o operator, c client, n node, x forged, anything
// else none), then "METHOD PATH", a newline, and the body. In the path, {node}, {session} and {room} are
// replaced by a registered node's id, a live session's id and an existing room's name, so that mutations
// reach the handlers behind the lookups. Seeds: tests/fuzz/corpus/http_route (tests/fuzz/make_seeds.cpp).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include <sys/prctl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <csignal>

#include <stdexcept>

#include "control-plane/auth_service.hpp"
#include "control-plane/control_api.hpp"
#include "control-plane/credentials.hpp"
#include "control-plane/database.hpp"
#include "control-plane/fleet_service.hpp"
#include "devdb/dev_database.hpp"

using namespace kairo;
using namespace kairo::control;
using nlohmann::json;

namespace {

const std::string kNodeToken = "fuzz-node-token-0123456789abcdef";

struct World {
  DevDatabase pg;
  Database db{pg.url(), 2};
  AccessTokens tokens{std::string(48, 'k')};
  AuthService auth{db, tokens};
  FleetService fleet{db};
  // No login or session rate limits: the fuzzer sends thousands of requests a second from one address.
  ControlApi api{db,
                 auth,
                 tokens,
                 fleet,
                 kNodeToken,
                 RateLimits{.login_per_address_burst = 1e9,
                            .login_per_address_per_minute = 1e9,
                            .login_per_user_burst = 1e9,
                            .login_per_user_per_minute = 1e9,
                            .sessions_per_user_burst = 1e9,
                            .sessions_per_user_per_minute = 1e9,
                            .max_live_sessions_client = 0,
                            .max_live_sessions_operator = 0}};
  std::string admin, operator_token, client, node_id, session_id, room = "fuzz-room";

  World() {
    db.migrate();
    auth.bootstrap_admin("admin", "admin-password");
    auth.create_user("ops", "ops-password", Role::kOperator);
    auth.create_user("user", "user-password", Role::kClient);
    admin = login("admin", "admin-password");
    operator_token = login("ops", "ops-password");
    client = login("user", "user-password");
    const json node =
        call("POST", "/v1/nodes/register",
             R"({"name":"fuzz-node","address":"127.0.0.1:9","device":"fuzz","encoders":["x264:h264"],)"
             R"("scenes":["vr-room"],"max_sessions":10000})",
             kNodeToken);
    node_id = std::to_string(node.at("node_id").get<int64_t>());
    session_id =
        call("POST", "/v1/sessions",
             R"({"scene":"vr-room","eye_width":64,"eye_height":64,"fps":30,"room":"fuzz-room"})", client)
            .at("session_id");
  }
  HttpResponse request(const std::string& method, const std::string& path, const std::string& body,
                       const std::string& bearer) {
    return api.handle(HttpRequest{.method = method,
                                  .path = path,
                                  .query = {},
                                  .authorization = bearer.empty() ? "" : "Bearer " + bearer,
                                  .content_type = "application/json",
                                  .body = body,
                                  .remote_address = "127.0.0.1"});
  }
  std::string login(const std::string& user, const std::string& password) {
    return call("POST", "/v1/auth/login", json{{"username", user}, {"password", password}}.dump(), "")
        .at("access_token");
  }
  json call(const std::string& method, const std::string& path, const std::string& body,
            const std::string& bearer) {
    const HttpResponse r = request(method, path, body, bearer);
    if (r.status >= 300)  // thrown, so that the database server is stopped on the way out
      throw std::runtime_error("fuzzer set-up: " + method + " " + path + " answered " +
                               std::to_string(r.status) + " " + r.body);
    return json::parse(r.body);
  }
};

World* world = nullptr;

void replace_all(std::string& text, std::string_view from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  try {
    world = new World();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(1);
  }
  // The server is a process of its own: stop it when the fuzzer exits. Its time up, atexit does; a finding
  // ends the fuzzer with _Exit, which skips atexit, so a watchdog child that the kernel signals when this
  // process dies (PR_SET_PDEATHSIG) stops the server then.
  std::atexit([] {
    delete world;
    world = nullptr;
  });
  const pid_t fuzzer = getpid();
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  if (fork() == 0) {
    pthread_sigmask(SIG_BLOCK, &term, nullptr);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int signal = 0;
    if (getppid() == fuzzer) sigwait(&term, &signal);
    try {
      world->pg.stop();
    } catch (...) {  // already stopped by the fuzzer's own exit
    }
    _exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 64 * 1024) return 0;  // the server's body limit is 64 KiB
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const char who = input[0];
  const size_t line_end = input.find('\n');
  std::string line(
      input.substr(1, line_end == std::string_view::npos ? std::string_view::npos : line_end - 1));
  const std::string body(line_end == std::string_view::npos ? std::string_view()
                                                            : input.substr(line_end + 1));
  const size_t space = line.find(' ');
  if (space == std::string::npos) return 0;
  const std::string method = line.substr(0, space);
  std::string path = line.substr(space + 1);
  replace_all(path, "{node}", world->node_id);
  replace_all(path, "{session}", world->session_id);
  replace_all(path, "{room}", world->room);
  const std::string bearer = who == 'a'   ? world->admin
                             : who == 'o' ? world->operator_token
                             : who == 'c' ? world->client
                             : who == 'n' ? kNodeToken
                             : who == 'x' ? world->admin.substr(0, world->admin.size() - 2) + "AA"
                                          : "";
  const HttpResponse r = world->request(method, path, body, bearer);
  const bool known_status = r.status == 200 || r.status == 201 || r.status == 204 || r.status == 400 ||
                            r.status == 401 || r.status == 403 || r.status == 404 || r.status == 405 ||
                            r.status == 409 || r.status == 413 || r.status == 429 || r.status == 503;
  if (!known_status) {
    std::fprintf(stderr, "%s %s (as '%c') answered %d: %s\n", method.c_str(), path.c_str(), who, r.status,
                 r.body.c_str());
    __builtin_trap();
  }
  if (r.content_type == "application/json" && r.status != 204) {
    const json answer = json::parse(r.body, nullptr, false);
    if (answer.is_discarded()) __builtin_trap();
    if (r.status >= 400 && !(answer.contains("error") && answer["error"].contains("code") &&
                             answer["error"]["code"].is_string() && answer["error"].contains("message")))
      __builtin_trap();
  }
  return 0;
}
