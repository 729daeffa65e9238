#pragma once
// The control plane's JSON API: routing, authorisation by role, strict request parsing (unknown fields,
// wrong types and oversized values are 400s, never 500s), rate limits, and Prometheus metrics.
// Routes: docs/control-api.md.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control-plane/auth_service.hpp"
#include "control-plane/fleet_service.hpp"
#include "control-plane/http_server.hpp"
#include "control-plane/scene_catalogue.hpp"

namespace kairo::control {

// Token buckets: `burst` requests, refilled at `per_minute`. 0 per minute: no limit (benchmarks only).
struct RateLimits {
  double login_per_address_burst = 20, login_per_address_per_minute = 30;
  double login_per_user_burst = 5, login_per_user_per_minute = 10;
  double sessions_per_user_burst = 50, sessions_per_user_per_minute = 600;
  // Live (placed or running) sessions a user may hold at once, by role; 0: no limit. A client holds a node
  // slot from creation, so without a limit one user could hold a fleet's slots and never connect.
  int max_live_sessions_client = 4, max_live_sessions_operator = 64;
};

// Request ids (X-Request-Id): each request gets one, returned in the answer and carried in its log lines;
// one a caller sends is taken only from these addresses (the ingress or proxy in front, which sets it), or
// from a node (it relays the id of the session it acts for). Anyone else's is replaced: a client must not
// be able to forge the ids an operator follows.
struct ApiOptions {
  std::vector<std::string> trusted_proxies{};  // remote addresses, as the server sees them
  int feed_workers = 4;                        // threads that answer held node-feed requests
  CatalogueOptions scenes{};                   // the scene catalogue's budget and its sandboxed inspector
};

class ControlApi {
 public:
  ControlApi(Database& db, AuthService& auth, const AccessTokens& tokens, FleetService& fleet,
             std::string static_node_token = "", const RateLimits& limits = {},
             const ApiOptions& options = {});
  ~ControlApi();
  HttpResponse handle(const HttpRequest& request);
  // `options` with what serving this API takes: its body limits (body_limit_for) and its requests answered
  // on the network thread (try_without_blocking). The server's handler is handle().
  HttpServerOptions serving(HttpServerOptions options);
  // For HttpServerOptions::try_without_blocking: a node's feed request answered (or held) from memory, on
  // the network thread; nullopt for any other request, and for a feed request that needs the database (a
  // credential or version not cached), which then goes to handle() on a worker.
  std::optional<HttpResponse> try_handle_without_blocking(const HttpRequest& request);
  // The body a request may carry, from its head (HttpServerOptions::body_limit_for): a scene upload by an
  // operator up to the catalogue's file budget, anything else 64 KiB.
  size_t body_limit(const HttpRequest& head);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo::control
