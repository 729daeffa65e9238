#pragma once
// The control plane's JSON API: routing, authorisation by role, strict request parsing (unknown fields,
// wrong types and oversized values are 400s, never 500s), rate limits, and Prometheus metrics.
// Routes so far: auth (login, refresh, logout), users, /healthz, /readyz, /metrics. Sessions and nodes are
// the next step (issue 5 is open).
#include <memory>
#include <string>

#include "control-plane/auth_service.hpp"
#include "control-plane/http_server.hpp"

namespace kairo::control {

class ControlApi {
 public:
  ControlApi(Database& db, AuthService& auth, const AccessTokens& tokens);
  ~ControlApi();
  HttpResponse handle(const HttpRequest& request);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo::control
