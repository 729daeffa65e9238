#pragma once
// The control plane's JSON API: routing, authorisation by role, strict request parsing (unknown fields,
// wrong types and oversized values are 400s, never 500s), rate limits, and Prometheus metrics.
// Routes: docs/control-api.md.
#include <memory>
#include <string>

#include "control-plane/auth_service.hpp"
#include "control-plane/fleet_service.hpp"
#include "control-plane/http_server.hpp"

namespace kairo::control {

class ControlApi {
 public:
  ControlApi(Database& db, AuthService& auth, const AccessTokens& tokens, FleetService& fleet,
             std::string static_node_token = "");
  ~ControlApi();
  HttpResponse handle(const HttpRequest& request);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo::control
