#include "control-plane/control_api.hpp"

#include <array>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "control-plane/api_error.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"

namespace kairo::control {

using nlohmann::json;

namespace {

HttpResponse json_response(int status, const json& body) {
  return {status, body.dump(), "application/json"};
}

HttpResponse error_response(const ApiError& e) {
  return json_response(e.status(), json{{"error", {{"code", e.code()}, {"message", e.what()}}}});
}

// Parses a JSON object body and checks it holds only `allowed` fields: unknown fields are refused so that a
// typo in a request is an error, not a silently ignored setting.
json parse_object(const HttpRequest& request, const std::set<std::string>& allowed) {
  const json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded()) throw ApiError(400, "malformed_json", "request body is not valid JSON");
  if (!body.is_object()) throw ApiError(400, "malformed_json", "request body must be a JSON object");
  for (const auto& [key, value] : body.items())
    if (!allowed.count(key))
      throw ApiError(400, "unknown_field", "unknown field \"" + key.substr(0, 64) + "\"");
  return body;
}

std::string string_field(const json& body, const char* name, size_t max_length = 1024) {
  const auto it = body.find(name);
  if (it == body.end() || !it->is_string())
    throw ApiError(400, "invalid_field", std::string("\"") + name + "\" must be a string");
  const std::string value = it->get<std::string>();
  if (value.size() > max_length)
    throw ApiError(400, "invalid_field", std::string("\"") + name + "\" is too long");
  return value;
}

// Token buckets per key (address or user name): `burst` requests, refilled at `per_minute`.
class RateLimiter {
 public:
  RateLimiter(double burst, double per_minute) : burst_(burst), rate_(per_minute / 60.0) {}
  bool allow(const std::string& key) {
    std::lock_guard lock(mutex_);
    const double now = double(steady_now_ns()) * 1e-9;
    if (buckets_.size() > 100'000) buckets_.clear();  // bounded memory under a flood of distinct keys
    auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst_, now});
    Bucket& b = it->second;
    b.tokens = std::min(burst_, b.tokens + (now - b.updated) * rate_);
    b.updated = now;
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
  }

 private:
  struct Bucket {
    double tokens, updated;
  };
  std::mutex mutex_;
  std::map<std::string, Bucket> buckets_;
  double burst_, rate_;
};

// Prometheus text format, written by hand: a counter per (route, code) and one latency histogram per route.
class Metrics {
 public:
  void observe(const std::string& route, int code, double seconds) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, code}];
    auto& h = latency_[route];
    for (size_t i = 0; i < kBounds.size(); ++i)
      if (seconds <= kBounds[i]) ++h.buckets[i];
    ++h.count;
    h.sum += seconds;
  }
  std::string render() {
    std::lock_guard lock(mutex_);
    std::string out =
        "# HELP kairo_http_requests_total API requests by route and status code.\n# TYPE "
        "kairo_http_requests_total counter\n";
    for (const auto& [key, n] : requests_)
      out += "kairo_http_requests_total{route=\"" + key.first + "\",code=\"" + std::to_string(key.second) +
             "\"} " + std::to_string(n) + "\n";
    out +=
        "# HELP kairo_http_request_duration_seconds API request latency.\n# TYPE "
        "kairo_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
      for (size_t i = 0; i < kBounds.size(); ++i)
        out += "kairo_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"" +
               json(kBounds[i]).dump() + "\"} " + std::to_string(h.buckets[i]) + "\n";
      out += "kairo_http_request_duration_seconds_bucket{route=\"" + route + "\",le=\"+Inf\"} " +
             std::to_string(h.count) + "\n";
      out += "kairo_http_request_duration_seconds_sum{route=\"" + route + "\"} " + json(h.sum).dump() + "\n";
      out += "kairo_http_request_duration_seconds_count{route=\"" + route + "\"} " + std::to_string(h.count) +
             "\n";
    }
    return out;
  }

 private:
  static constexpr std::array<double, 10> kBounds{0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,  0.1,    0.25,  0.5,  1.0};
  struct Histogram {
    std::array<uint64_t, 10> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;
};

}  // namespace

struct ControlApi::Impl {
  Impl(Database& d, AuthService& a, const AccessTokens& t) : db(d), auth(a), tokens(t) {}
  Database& db;
  AuthService& auth;
  const AccessTokens& tokens;
  RateLimiter login_by_address{20, 30}, login_by_user{5, 10};
  Metrics metrics;

  AccessClaims authenticate(const HttpRequest& r) {
    const std::string prefix = "Bearer ";
    if (r.authorization.rfind(prefix, 0) != 0) throw ApiError(401, "unauthenticated", "missing bearer token");
    const auto claims = tokens.verify(
        r.authorization.substr(prefix.size()),
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (!claims) throw ApiError(401, "unauthenticated", "invalid or expired token");
    return *claims;
  }

  static void require(const AccessClaims& who, std::initializer_list<Role> roles) {
    for (Role r : roles)
      if (who.role == r) return;
    throw ApiError(403, "forbidden", "this route needs another role");
  }

  static json tokens_json(const TokenPair& p) {
    return {
        {"access_token", p.access_token}, {"refresh_token", p.refresh_token}, {"expires_in", p.expires_in}};
  }

  HttpResponse route(const HttpRequest& r, std::string& route_name) {
    auto is = [&](const char* method, const char* path) {
      if (r.method != method || r.path != path) return false;
      route_name = std::string(method) + " " + path;
      return true;
    };
    if (is("GET", "/healthz")) return json_response(200, {{"status", "ok"}});
    if (is("GET", "/readyz")) {
      const bool ready = db.ready();
      return json_response(ready ? 200 : 503,
                           {{"status", ready ? "ready" : "database unavailable or schema not current"}});
    }
    if (is("GET", "/metrics")) return {200, metrics.render(), "text/plain; version=0.0.4"};
    if (is("POST", "/v1/auth/login")) {
      const json body = parse_object(r, {"username", "password"});
      const std::string username = string_field(body, "username", 64),
                        password = string_field(body, "password");
      if (!login_by_address.allow(r.remote_address) || !login_by_user.allow(username)) {
        auth.audit("login_rate_limited", username, r.remote_address, "");
        throw ApiError(429, "rate_limited", "too many login attempts; try again later");
      }
      const auto pair = auth.login(username, password, r.remote_address);
      if (!pair) throw ApiError(401, "invalid_credentials", "wrong user name or password");
      return json_response(200, tokens_json(*pair));
    }
    if (is("POST", "/v1/auth/refresh")) {
      const json body = parse_object(r, {"refresh_token"});
      const auto pair = auth.refresh(string_field(body, "refresh_token", 256), r.remote_address);
      if (!pair) throw ApiError(401, "invalid_refresh_token", "refresh token invalid, expired or revoked");
      return json_response(200, tokens_json(*pair));
    }
    if (is("POST", "/v1/auth/logout")) {
      const json body = parse_object(r, {"refresh_token"});
      auth.logout(string_field(body, "refresh_token", 256), r.remote_address);
      return {204, "", "application/json"};
    }
    if (is("POST", "/v1/users")) {
      const AccessClaims who = authenticate(r);
      require(who, {Role::kAdmin});
      const json body = parse_object(r, {"username", "password", "role"});
      const auto role = parse_role(string_field(body, "role", 16));
      if (!role) throw ApiError(400, "invalid_role", "role must be client, operator or admin");
      const int64_t id =
          auth.create_user(string_field(body, "username", 64), string_field(body, "password"), *role);
      auth.audit("user_created", who.username, r.remote_address, "id " + std::to_string(id));
      return json_response(201, {{"id", id}});
    }
    route_name = "unknown";
    throw ApiError(404, "not_found", "no such route");
  }
};

ControlApi::ControlApi(Database& db, AuthService& auth, const AccessTokens& tokens)
    : impl_(std::make_unique<Impl>(db, auth, tokens)) {}
ControlApi::~ControlApi() = default;

HttpResponse ControlApi::handle(const HttpRequest& request) {
  const int64_t start = steady_now_ns();
  std::string route_name = "unknown";
  HttpResponse response;
  try {
    response = impl_->route(request, route_name);
  } catch (const ApiError& e) {
    response = error_response(e);
  } catch (const kairo::Error&) {
    // The database is down or similar: the client may retry; nothing was acknowledged.
    response = error_response(ApiError(503, "unavailable", "service temporarily unavailable"));
  }
  impl_->metrics.observe(route_name, response.status, double(steady_now_ns() - start) * 1e-9);
  return response;
}

}  // namespace kairo::control
