#include "control-plane/control_api.hpp"

#include <sodium.h>
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
  Impl(Database& d, AuthService& a, const AccessTokens& t, FleetService& f, std::string node_token)
      : db(d), auth(a), tokens(t), fleet(f), static_node_token(std::move(node_token)) {}
  Database& db;
  AuthService& auth;
  const AccessTokens& tokens;
  FleetService& fleet;
  std::string static_node_token;
  RateLimiter login_by_address{20, 30}, login_by_user{5, 10}, sessions_by_user{50, 600};

  void authenticate_node(const HttpRequest& r) {
    const std::string prefix = "Bearer ";
    if (r.authorization.rfind(prefix, 0) != 0) throw ApiError(401, "unauthenticated", "missing node token");
    const std::string token = r.authorization.substr(prefix.size());
    if (token.empty() || token.size() > 256) throw ApiError(401, "unauthenticated", "invalid node token");
    const bool static_match = !static_node_token.empty() && token.size() == static_node_token.size() &&
                              sodium_memcmp(token.data(), static_node_token.data(), token.size()) == 0;
    if (!static_match && !fleet.node_token_valid(token))
      throw ApiError(401, "unauthenticated", "invalid node token");
  }

  static std::optional<int64_t> own_scope(const AccessClaims& who) {
    return who.role == Role::kClient ? std::optional<int64_t>(who.user_id) : std::nullopt;
  }

  static int64_t id_segment(const std::string& text) {
    if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos)
      throw ApiError(404, "not_found", "no such resource");
    return std::stoll(text);
  }

  static std::string session_segment(const std::string& text) {
    if (text.size() != 32 || text.find_first_not_of("0123456789abcdef") != std::string::npos)
      throw ApiError(404, "not_found", "no such session");
    return text;
  }

  static int int_field(const json& body, const char* name, bool required, int fallback) {
    const auto it = body.find(name);
    if (it == body.end()) {
      if (required) throw ApiError(400, "invalid_field", std::string("\"") + name + "\" is required");
      return fallback;
    }
    if (!it->is_number_integer())
      throw ApiError(400, "invalid_field", std::string("\"") + name + "\" must be an integer");
    const int64_t v = it->get<int64_t>();
    if (v < -1'000'000'000 || v > 1'000'000'000)
      throw ApiError(400, "invalid_field", std::string("\"") + name + "\" out of range");
    return int(v);
  }

  static std::vector<std::string> string_list(const json& body, const char* name) {
    std::vector<std::string> out;
    const auto it = body.find(name);
    if (it == body.end()) return out;
    if (!it->is_array() || it->size() > 256)
      throw ApiError(400, "invalid_field", std::string("\"") + name + "\" must be a list of strings");
    for (const auto& v : *it) {
      if (!v.is_string() || v.get<std::string>().size() > 256)
        throw ApiError(400, "invalid_field", std::string("\"") + name + "\" must be a list of strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }

  HttpResponse fleet_route(const HttpRequest& r, std::string& route_name,
                           const std::vector<std::string>& parts) {
    // parts: path split on '/', without the leading empty element: {"v1", "nodes", "7", "heartbeat"}.
    auto named = [&](const std::string& pattern) { route_name = r.method + " " + pattern; };
    const size_t n = parts.size();
    if (n == 2 && parts[1] == "node-tokens" && r.method == "POST") {
      named("/v1/node-tokens");
      const AccessClaims who = authenticate(r);
      require(who, {Role::kOperator, Role::kAdmin});
      if (!r.body.empty()) parse_object(r, {});
      const auto [id, token] = fleet.mint_node_token(who.user_id);
      auth.audit("node_token_minted", who.username, r.remote_address, "id " + std::to_string(id));
      return json_response(201, {{"id", id}, {"token", token}});
    }
    if (n == 3 && parts[1] == "node-tokens" && r.method == "DELETE") {
      named("/v1/node-tokens/{id}");
      const AccessClaims who = authenticate(r);
      require(who, {Role::kOperator, Role::kAdmin});
      if (!fleet.revoke_node_token(id_segment(parts[2])))
        throw ApiError(404, "not_found", "no such node token");
      auth.audit("node_token_revoked", who.username, r.remote_address, "id " + parts[2]);
      return {204, "", "application/json"};
    }
    if (n == 3 && parts[1] == "nodes" && parts[2] == "register" && r.method == "POST") {
      named("/v1/nodes/register");
      authenticate_node(r);
      const json body = parse_object(r, {"name", "address", "device", "encoders", "scenes", "max_sessions"});
      NodeRegistration node{.name = string_field(body, "name", 128),
                            .address = string_field(body, "address", 256),
                            .device = body.contains("device") ? string_field(body, "device", 256) : "",
                            .encoders = string_list(body, "encoders"),
                            .scenes = string_list(body, "scenes"),
                            .max_sessions = int_field(body, "max_sessions", true, 0)};
      return json_response(201, {{"node_id", fleet.register_node(node)}});
    }
    if (n == 4 && parts[1] == "nodes" && parts[3] == "heartbeat" && r.method == "POST") {
      named("/v1/nodes/{id}/heartbeat");
      authenticate_node(r);
      const json body = parse_object(r, {"load", "active_sessions"});
      double load = 0;
      if (const auto it = body.find("load"); it != body.end()) {
        if (!it->is_number()) throw ApiError(400, "invalid_field", "\"load\" must be a number");
        load = std::clamp(it->get<double>(), 0.0, 1e6);
      }
      if (!fleet.heartbeat(id_segment(parts[2]), load)) throw ApiError(404, "not_found", "no such node");
      return json_response(200, {{"heartbeat_interval_s", 2}});
    }
    if (n == 4 && parts[1] == "nodes" && parts[3] == "sessions" && r.method == "GET") {
      named("/v1/nodes/{id}/sessions");
      authenticate_node(r);
      return json_response(200, fleet.node_sessions(id_segment(parts[2])));
    }
    if (n == 5 && parts[1] == "nodes" && parts[3] == "sessions" && r.method == "POST") {
      named("/v1/nodes/{id}/sessions/{session_id}");
      authenticate_node(r);
      const json body = parse_object(r, {"state", "reason"});
      const std::string reason = body.contains("reason") ? string_field(body, "reason", 512) : "";
      if (!fleet.report_session_state(id_segment(parts[2]), session_segment(parts[4]),
                                      string_field(body, "state", 16), reason))
        throw ApiError(404, "not_found", "no such session on this node");
      return {204, "", "application/json"};
    }
    if (n == 2 && parts[1] == "nodes" && r.method == "GET") {
      named("/v1/nodes");
      require(authenticate(r), {Role::kOperator, Role::kAdmin});
      return json_response(200, fleet.list_nodes());
    }
    if (n == 4 && parts[1] == "nodes" && (parts[3] == "drain" || parts[3] == "undrain") &&
        r.method == "POST") {
      named("/v1/nodes/{id}/" + parts[3]);
      const AccessClaims who = authenticate(r);
      require(who, {Role::kOperator, Role::kAdmin});
      if (!fleet.set_drained(id_segment(parts[2]), parts[3] == "drain"))
        throw ApiError(404, "not_found", "no such node");
      auth.audit("node_" + parts[3], who.username, r.remote_address, "node " + parts[2]);
      return json_response(200, {{"node_id", id_segment(parts[2])}, {"drained", parts[3] == "drain"}});
    }
    if (n == 2 && parts[1] == "capacity" && r.method == "GET") {
      named("/v1/capacity");
      require(authenticate(r), {Role::kOperator, Role::kAdmin});
      return json_response(200, fleet.capacity());
    }
    if (n == 2 && parts[1] == "sessions" && r.method == "POST") {
      named("/v1/sessions");
      const AccessClaims who = authenticate(r);
      if (!sessions_by_user.allow(std::to_string(who.user_id)))
        throw ApiError(429, "rate_limited", "too many sessions created");
      const json body = parse_object(r, {"scene", "eye_width", "eye_height", "fps", "codec", "room"});
      SessionRequest q{.scene = string_field(body, "scene", 256),
                       .eye_width = int_field(body, "eye_width", true, 0),
                       .eye_height = int_field(body, "eye_height", true, 0),
                       .fps = int_field(body, "fps", true, 0),
                       .codec = body.contains("codec") ? string_field(body, "codec", 16) : "h264",
                       .room = std::nullopt};
      if (body.contains("room")) q.room = string_field(body, "room", 128);
      return json_response(201, fleet.create_session(who.user_id, q));
    }
    if (n == 2 && parts[1] == "sessions" && r.method == "GET") {
      named("/v1/sessions");
      return json_response(200, fleet.list_sessions(own_scope(authenticate(r))));
    }
    if (n == 3 && parts[1] == "sessions" && (r.method == "GET" || r.method == "DELETE")) {
      named("/v1/sessions/{id}");
      const AccessClaims who = authenticate(r);
      const std::string id = session_segment(parts[2]);
      if (r.method == "DELETE") {
        if (!fleet.end_session(id, own_scope(who))) throw ApiError(404, "not_found", "no such session");
        return {204, "", "application/json"};
      }
      const auto session = fleet.get_session(id, own_scope(who));
      if (!session) throw ApiError(404, "not_found", "no such session");
      return json_response(200, *session);
    }
    if (n == 4 && parts[1] == "sessions" && parts[3] == "quality" && r.method == "PATCH") {
      named("/v1/sessions/{id}/quality");
      const AccessClaims who = authenticate(r);
      const json body = parse_object(r, {"max_bitrate_bps"});
      const auto it = body.find("max_bitrate_bps");
      if (it == body.end() || !it->is_number_integer())
        throw ApiError(400, "invalid_field", "\"max_bitrate_bps\" must be an integer");
      if (!fleet.set_quality(session_segment(parts[2]), own_scope(who), it->get<int64_t>()))
        throw ApiError(404, "not_found", "no such active session");
      return json_response(200, {{"max_bitrate_bps", it->get<int64_t>()}});
    }
    route_name = "unknown";
    throw ApiError(404, "not_found", "no such route");
  }
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
    if (is("GET", "/metrics")) {
      std::string text = metrics.render();
      try {
        text += fleet.metrics_text();
      } catch (const std::exception&) {
        // database down: request metrics still answer, the fleet gauges come back with it
      }
      return {200, text, "text/plain; version=0.0.4"};
    }
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
    std::vector<std::string> parts;
    for (size_t start = 1; start <= r.path.size();) {
      const size_t slash = r.path.find('/', start);
      parts.push_back(r.path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos || parts.size() > 8) break;
      start = slash + 1;
    }
    if (parts.size() >= 2 && parts[0] == "v1") return fleet_route(r, route_name, parts);
    route_name = "unknown";
    throw ApiError(404, "not_found", "no such route");
  }
};

ControlApi::ControlApi(Database& db, AuthService& auth, const AccessTokens& tokens, FleetService& fleet,
                       std::string static_node_token)
    : impl_(std::make_unique<Impl>(db, auth, tokens, fleet, std::move(static_node_token))) {}
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
