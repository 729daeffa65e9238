#include "control-plane/control_api.hpp"

#include <sodium.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "control-plane/api_error.hpp"
#include "control-plane/api_json.hpp"
#include "control-plane/feed_content.hpp"
#include "control-plane/node_feed_hub.hpp"
#include "control-plane/web_assets.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/log_format.hpp"
#include "core/names.hpp"

namespace kairo::control {

using nlohmann::json;

namespace {

HttpResponse respond(int status, const google::protobuf::Message& body) {
  return {status, to_json(body), "application/json"};
}

// A JSON array of messages, each through the JSON mapping.
template <typename Message>
HttpResponse respond_array(int status, const std::vector<Message>& messages) {
  std::string body = "[";
  for (const Message& m : messages) {
    if (body.size() > 1) body += ",";
    body += to_json(m);
  }
  return {status, body + "]", "application/json"};
}

// One page of a list: the array, and where the next page starts (X-Next-Cursor, and a Link header as in
// RFC 8288) unless this is the last.
template <typename Message>
HttpResponse respond_page(const std::vector<Message>& messages, const std::string& path,
                          const std::string& next_cursor, int limit) {
  HttpResponse r = respond_array(200, messages);
  if (!next_cursor.empty()) {
    r.headers.emplace_back("X-Next-Cursor", next_cursor);
    r.headers.emplace_back("Link", "<" + path + "?limit=" + std::to_string(limit) + "&cursor=" + next_cursor +
                                       ">; rel=\"next\"");
  }
  return r;
}

// A query parameter's value as sent (the values Kairo reads are digits, base64url or a decimal number:
// nothing to percent-decode); nullopt when absent.
std::optional<std::string> query_parameter(const std::string& query, std::string_view name) {
  size_t at = 0;
  while (at <= query.size()) {
    const size_t end = std::min(query.find('&', at), query.size());
    const std::string_view pair(query.data() + at, end - at);
    const size_t equals = pair.find('=');
    if (pair.substr(0, equals) == name)
      return std::string(equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1));
    at = end + 1;
  }
  return std::nullopt;
}

PageRequest page_request(const HttpRequest& r) {
  PageRequest page;
  if (const auto limit = query_parameter(r.query, "limit")) {
    if (limit->empty() || limit->size() > 4 || limit->find_first_not_of("0123456789") != std::string::npos)
      throw ApiError(400, "invalid_limit", "limit must be 1 to 1000");
    page.limit = std::stoi(*limit);
  }
  if (const auto cursor = query_parameter(r.query, "cursor")) page.cursor = *cursor;
  return page;
}

// A request id: not guessable and as unlikely to repeat as 64 random bits, but no secret (it is returned and
// logged). SipHash (libsodium's short hash, a keyed pseudo-random function) of a process-wide counter under a
// key drawn once: no system call per request (getrandom for each one had been 4,500 system calls a second
// at a fleet's churn, issue 14).
std::string new_request_id() {
  static const auto key = [] {
    std::array<unsigned char, crypto_shorthash_KEYBYTES> k{};
    randombytes_buf(k.data(), k.size());
    return k;
  }();
  static std::atomic<uint64_t> counter{0};
  const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  unsigned char bytes[crypto_shorthash_BYTES];
  crypto_shorthash(bytes, reinterpret_cast<const unsigned char*>(&n), sizeof(n), key.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

HttpResponse error_response(const ApiError& e) {
  v1::ErrorResponse body;
  body.mutable_error()->set_code(e.code());
  body.mutable_error()->set_message(e.what());
  return respond(e.status(), body);
}

v1::Status status_message(const std::string& text) {
  v1::Status s;
  s.set_status(text);
  return s;
}

// A field a request must carry, checked for presence and length (the schema says the type).
const std::string& required_string(bool present, const std::string& value, const char* name,
                                   size_t max_length = 1024) {
  if (!present) throw ApiError(400, "invalid_field", std::string("\"") + name + "\" is required");
  if (value.size() > max_length)
    throw ApiError(400, "invalid_field", std::string("\"") + name + "\" is too long");
  return value;
}

// A free-text field stored as PostgreSQL text (a node's address, its device): JSON may carry "\u0000", text
// cannot (the database refused it and the API answered 500; found by tests/fuzz/http_route_fuzzer.cpp).
// Names have their own, stricter rule (core/names.hpp).
const std::string& stored_text(const std::string& value, const char* name) {
  if (value.find('\0') != std::string::npos)
    throw ApiError(400, "invalid_field", std::string("\"") + name + "\" contains a NUL character");
  return value;
}

void check_list(const google::protobuf::RepeatedPtrField<std::string>& list, const char* name) {
  if (list.size() > 256)
    throw ApiError(400, "invalid_field", std::string("\"") + name + "\" has too many entries");
  // Every list holds names (scenes, encoders, room members): the one rule for names (core/names.hpp), which
  // also keeps out the NUL bytes PostgreSQL's text cannot hold (found by tests/fuzz/http_route_fuzzer.cpp).
  for (const std::string& v : list)
    if (const auto problem = name_problem(v, 256))
      throw ApiError(400, "invalid_field", std::string("an entry of \"") + name + "\" " + *problem);
}

// SHA-256s (the scenes a node's cache holds): 64 lower-case hex digits each, at most 1000.
void check_hashes(const google::protobuf::RepeatedPtrField<std::string>& list, const char* name) {
  if (list.size() > 1000)
    throw ApiError(400, "invalid_field", std::string("\"") + name + "\" has too many entries");
  for (const std::string& hash : list)
    if (!is_sha256_hex(hash))
      throw ApiError(400, "invalid_field", std::string("an entry of \"") + name + "\" is no SHA-256");
}

// Token buckets per key (address or user name): `burst` requests, refilled at `per_minute`.
class RateLimiter {
 public:
  RateLimiter(double burst, double per_minute) : burst_(burst), rate_(per_minute / 60.0) {}
  bool allow(const std::string& key) {
    if (rate_ <= 0) return true;
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
  Impl(Database& d, AuthService& a, const AccessTokens& t, FleetService& f, std::string node_token,
       const RateLimits& l, const ApiOptions& o)
      : options(o),
        db(d),
        auth(a),
        tokens(t),
        fleet(f),
        static_node_token(std::move(node_token)),
        limits(l),
        login_by_address(l.login_per_address_burst, l.login_per_address_per_minute),
        login_by_user(l.login_per_user_burst, l.login_per_user_per_minute),
        sessions_by_user(l.sessions_per_user_burst, l.sessions_per_user_per_minute),
        scenes(d, o.scenes),
        hub(d.url(), o.feed_workers, t.derived_key("kairo node feed announcements")) {}
  ApiOptions options;
  Database& db;
  AuthService& auth;
  const AccessTokens& tokens;
  FleetService& fleet;
  std::string static_node_token;
  // Node feed requests answered or held on the network thread, and those that needed the database there
  // (sent on to a worker): the second stays a small share in the steady state.
  std::atomic<uint64_t> feed_requests_without_waiting{0}, feed_requests_to_workers{0};
  // Changed feeds answered: from the feed known in memory, or read from the database.
  std::atomic<uint64_t> feeds_from_memory{0}, feeds_read{0};
  RateLimits limits;
  RateLimiter login_by_address, login_by_user, sessions_by_user;
  SceneCatalogue scenes;

  std::optional<NodeCredential> node_credential_of(const HttpRequest& r) {
    try {
      return authenticate_node(r);
    } catch (const ApiError&) {
      return std::nullopt;
    }
  }

  NodeCredential authenticate_node(const HttpRequest& r) {
    const std::string prefix = "Bearer ";
    if (r.authorization.rfind(prefix, 0) != 0) throw ApiError(401, "unauthenticated", "missing node token");
    const std::string token = r.authorization.substr(prefix.size());
    if (token.empty() || token.size() > 256) throw ApiError(401, "unauthenticated", "invalid node token");
    const bool static_match = !static_node_token.empty() && token.size() == static_node_token.size() &&
                              sodium_memcmp(token.data(), static_node_token.data(), token.size()) == 0;
    if (static_match) return NodeCredential{};
    const auto credential = fleet.node_credential(token);
    if (!credential) throw ApiError(401, "unauthenticated", "invalid node token");
    return *credential;
  }

  static std::string credential_name(const NodeCredential& c) {
    return c.token_id ? "node token " + std::to_string(*c.token_id) : std::string("static node token");
  }

  // The node the path names must be the credential's own; a refusal is audited (a node acting for another
  // is a compromised node or a misconfiguration, and either is worth an operator's look).
  int64_t authorised_node(const NodeCredential& credential, const std::string& segment,
                          const HttpRequest& r) {
    const int64_t node = id_segment(segment);
    try {
      fleet.authorise_node(credential, node);
    } catch (const ApiError& e) {
      if (e.status() == 403)
        auth.audit("node_token_refused", credential_name(credential), r.remote_address,
                   r.method + " for node " + std::to_string(node));
      throw;
    }
    return node;
  }

  SessionCaller caller_of(const AccessClaims& who) const {
    const bool privileged = who.role != Role::kClient;
    return SessionCaller{.user_id = who.user_id,
                         .privileged = privileged,
                         .max_live_sessions = privileged ? limits.max_live_sessions_operator
                                                         : limits.max_live_sessions_client};
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

  Metrics metrics;

  AccessClaims authenticate(const HttpRequest& r) {
    const std::string prefix = "Bearer ";
    if (r.authorization.rfind(prefix, 0) != 0) throw ApiError(401, "unauthenticated", "missing bearer token");
    const auto claims = tokens.verify(
        r.authorization.substr(prefix.size()),
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    if (!claims) throw ApiError(401, "unauthenticated", "invalid or expired token");
    if (auth.access_revoked(*claims))
      throw ApiError(401, "unauthenticated", "this login has ended (revoked)");
    return *claims;
  }

  static void require(const AccessClaims& who, std::initializer_list<Role> roles) {
    for (Role r : roles)
      if (who.role == r) return;
    throw ApiError(403, "forbidden", "this route needs another role");
  }

  static v1::TokenPair tokens_message(const TokenPair& p) {
    v1::TokenPair m;
    m.set_access_token(p.access_token);
    m.set_refresh_token(p.refresh_token);
    m.set_expires_in(int32_t(p.expires_in));
    return m;
  }

  // A request's path parameters and its authenticated caller, as the route table's entry says.
  struct Call {
    const HttpRequest& request;
    std::vector<std::string> params;  // the pattern's {...} segments, in order
    std::optional<AccessClaims> user;
    std::optional<NodeCredential> node;
    std::string route;       // "GET /v1/..." as in the table
    std::string request_id;  // this request's (X-Request-Id)
    int64_t start_ns = 0;    // when it arrived (steady clock)
    const AccessClaims& who() const { return *user; }
  };

  HttpResponse healthz(const Call&) { return respond(200, status_message("ok")); }

  // The browser client (web/, built in). A strict Content-Security-Policy: the page's own scripts and styles
  // only, no inline code, connections to this origin (the API) and to nodes' signalling sockets.
  static HttpResponse web_file(const std::string& name) {
    const auto& assets = web_assets();
    const auto it = assets.find(name);
    if (it == assets.end()) throw ApiError(404, "not_found", "no such file");
    HttpResponse r{200, it->second.body, it->second.content_type};
    r.headers = {{"Content-Security-Policy",
                  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                  "media-src 'self' blob:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; "
                  "frame-ancestors 'none'"},
                 {"X-Content-Type-Options", "nosniff"},
                 {"Referrer-Policy", "no-referrer"},
                 {"Cross-Origin-Opener-Policy", "same-origin"}};
    return r;
  }
  HttpResponse web_index(const Call&) { return web_file("index.html"); }
  HttpResponse web_asset(const Call& c) { return web_file(c.params[0]); }

  HttpResponse readyz(const Call&) {
    const bool ready = db.ready();
    return respond(ready ? 200 : 503,
                   status_message(ready ? "ready" : "database unavailable or schema not current"));
  }

  HttpResponse prometheus(const Call&) {
    std::string text = metrics.render();
    try {
      text += fleet.metrics_text();
    } catch (const std::exception&) {
      // database down: request metrics still answer, the fleet gauges come back with it
    }
    text += hub.metrics_text();
    text +=
        "# HELP kairo_node_feed_requests_total Node feed requests by where they were served: from memory on "
        "the network thread (\"network\"), or on a worker because they needed the database (\"worker\": a "
        "credential or feed version not cached).\n";
    text +=
        "# TYPE kairo_node_feed_requests_total counter\nkairo_node_feed_requests_total{served=\"network\"} " +
        std::to_string(feed_requests_without_waiting.load()) +
        "\nkairo_node_feed_requests_total{served=\"worker\"} " +
        std::to_string(feed_requests_to_workers.load()) + "\n";
    text +=
        "# HELP kairo_node_feed_answers_total Changed node feeds answered, by where the feed came from: kept "
        "in "
        "memory and moved along by this replica's own changes (\"memory\"), or read (\"database\").\n";
    text += "# TYPE kairo_node_feed_answers_total counter\nkairo_node_feed_answers_total{from=\"memory\"} " +
            std::to_string(feeds_from_memory.load()) + "\nkairo_node_feed_answers_total{from=\"database\"} " +
            std::to_string(feeds_read.load()) + "\n";
    text += "# HELP kairo_placements_total Sessions placed by this replica.\n";
    text += "# TYPE kairo_placements_total counter\nkairo_placements_total " +
            std::to_string(fleet.placements()) + "\n";
    text +=
        "# HELP kairo_placement_conflicts_total Candidate nodes a placement found held by another placement "
        "or "
        "taken meanwhile (it moved on to the next).\n";
    text += "# TYPE kairo_placement_conflicts_total counter\nkairo_placement_conflicts_total " +
            std::to_string(fleet.placement_conflicts()) + "\n";
    text +=
        "# HELP kairo_placements_from_snapshot_total Sessions placed on the node this replica's picture of "
        "the fleet chose (one single-row update; the others PostgreSQL chose by scanning the candidates).\n";
    text += "# TYPE kairo_placements_from_snapshot_total counter\nkairo_placements_from_snapshot_total " +
            std::to_string(fleet.placements_from_snapshot()) + "\n";
    text += "# HELP kairo_placement_snapshot_reads_total Reads of the fleet into this replica's picture.\n";
    text += "# TYPE kairo_placement_snapshot_reads_total counter\nkairo_placement_snapshot_reads_total " +
            std::to_string(fleet.snapshot_reads()) + "\n";
    return {200, text, "text/plain; version=0.0.4"};
  }

  HttpResponse login(const Call& c) {
    const HttpRequest& r = c.request;
    v1::LoginRequest body;
    parse_request(r.body, body);
    const std::string username = required_string(body.has_username(), body.username(), "username", 64),
                      password = required_string(body.has_password(), body.password(), "password");
    // One spelling per name: a NUL or control character would be cut or ignored further down (PostgreSQL
    // ends a text at a NUL) and give the same user a fresh rate-limit bucket.
    if (const auto problem = name_problem(username, 64))
      throw ApiError(400, "invalid_username", "username " + *problem);
    if (!login_by_address.allow(r.remote_address) || !login_by_user.allow(username)) {
      auth.audit("login_rate_limited", username, r.remote_address, "");
      throw ApiError(429, "rate_limited", "too many login attempts; try again later");
    }
    const auto pair = auth.login(username, password, r.remote_address);
    if (!pair) throw ApiError(401, "invalid_credentials", "wrong user name or password");
    return respond(200, tokens_message(*pair));
  }

  HttpResponse refresh(const Call& c) {
    v1::RefreshRequest body;
    parse_request(c.request.body, body);
    const auto pair =
        auth.refresh(required_string(body.has_refresh_token(), body.refresh_token(), "refresh_token", 256),
                     c.request.remote_address);
    if (!pair) throw ApiError(401, "invalid_refresh_token", "refresh token invalid, expired or revoked");
    return respond(200, tokens_message(*pair));
  }

  HttpResponse logout(const Call& c) {
    v1::RefreshRequest body;
    parse_request(c.request.body, body);
    auth.logout(required_string(body.has_refresh_token(), body.refresh_token(), "refresh_token", 256),
                c.request.remote_address);
    return {204, "", "application/json"};
  }

  HttpResponse create_user(const Call& c) {
    v1::CreateUserRequest body;
    parse_request(c.request.body, body);
    const auto role = parse_role(required_string(body.has_role(), body.role(), "role", 16));
    if (!role) throw ApiError(400, "invalid_role", "role must be client, operator or admin");
    const int64_t id =
        auth.create_user(required_string(body.has_username(), body.username(), "username", 64),
                         required_string(body.has_password(), body.password(), "password"), *role);
    auth.audit("user_created", c.who().username, c.request.remote_address, "id " + std::to_string(id));
    v1::Created created;
    created.set_id(int32_t(id));
    return respond(201, created);
  }

  HttpResponse mint_node_token(const Call& c) {
    v1::NodeTokenRequest body;
    parse_request(c.request.body, body);
    const std::optional<std::string> for_node =
        body.has_node() ? std::optional<std::string>(required_string(true, body.node(), "node", 128))
                        : std::nullopt;
    const auto [id, token] = fleet.mint_node_token(c.who().user_id, for_node);
    auth.audit(
        "node_token_minted", c.who().username, c.request.remote_address,
        "id " + std::to_string(id) + (for_node ? " for node \"" + escape_for_log(*for_node) + "\"" : ""));
    v1::NodeTokenCreated created;
    created.set_id(int32_t(id));
    created.set_token(token);
    return respond(201, created);
  }

  HttpResponse revoke_node_token(const Call& c) {
    if (!fleet.revoke_node_token(id_segment(c.params[0])))
      throw ApiError(404, "not_found", "no such node token");
    auth.audit("node_token_revoked", c.who().username, c.request.remote_address, "id " + c.params[0]);
    return {204, "", "application/json"};
  }

  HttpResponse register_node(const Call& c) {
    const HttpRequest& r = c.request;
    const NodeCredential& credential = *c.node;
    v1::NodeRegistration body;
    parse_request(r.body, body);
    check_list(body.encoders(), "encoders");
    check_list(body.scenes(), "scenes");
    check_hashes(body.cached_scenes(), "cached_scenes");
    if (!body.has_max_sessions()) throw ApiError(400, "invalid_field", "\"max_sessions\" is required");
    required_string(body.has_name(), body.name(), "name", 128);
    stored_text(required_string(body.has_address(), body.address(), "address", 256), "address");
    stored_text(required_string(true, body.device(), "device", 256), "device");
    int64_t id = 0;
    try {
      id = fleet.register_node(body, credential);
    } catch (const ApiError& e) {
      if (e.status() == 403)
        auth.audit("node_registration_refused", credential_name(credential), r.remote_address,
                   std::string("name \"") + escape_for_log(body.name()) + "\": " + e.what());
      throw;
    }
    auth.audit("node_registered", credential_name(credential), r.remote_address,
               "node " + std::to_string(id) + " \"" + escape_for_log(body.name()) + "\" at " +
                   escape_for_log(body.address()));
    v1::NodeRegistered registered;
    registered.set_node_id(int32_t(id));
    registered.set_heartbeat_interval_ms(int32_t(std::lround(fleet.heartbeat_interval_s() * 1000.0)));
    return respond(201, registered);
  }

  HttpResponse heartbeat(const Call& c) {
    const int64_t node = authorised_node(*c.node, c.params[0], c.request);
    v1::Heartbeat body;
    parse_request(c.request.body, body);
    const double load = std::isfinite(body.load()) ? std::clamp(body.load(), 0.0, 1e6) : 0.0;
    if (!fleet.heartbeat(node, load)) throw ApiError(404, "not_found", "no such node");
    v1::HeartbeatResponse answer;
    const int interval_ms = int(std::lround(fleet.heartbeat_interval_s() * 1000.0));
    answer.set_heartbeat_interval_s(std::max(1, interval_ms / 1000));
    answer.set_heartbeat_interval_ms(interval_ms);
    return respond(200, answer);
  }

  HttpResponse node_sessions(const Call& c) {
    const int64_t node = authorised_node(*c.node, c.params[0], c.request);
    const PageRequest page = page_request(c.request);
    std::string next;
    const auto sessions = fleet.node_sessions(node, page, next);
    return respond_page(sessions, c.request.path, next, page.limit);
  }

  // The node's feed (docs/control-api.md "Node feed"): a long poll with a version cursor, which is also the
  // node's heartbeat. Answered at once when the node's state moved past the cursor; else held until a
  // change to the node is announced (from any replica: LISTEN/NOTIFY) or the wait ends (then answered with
  // changed = false). The wait is at most the heartbeat interval, so a node asks again at least that often.
  HttpResponse node_feed(const Call& c) {
    const int64_t node = authorised_node(*c.node, c.params[0], c.request);
    int64_t cursor = 0;
    if (const auto text = query_parameter(c.request.query, "cursor")) {
      if (text->empty() || text->size() > 18 || text->find_first_not_of("0123456789") != std::string::npos)
        throw ApiError(400, "invalid_cursor", "cursor: pass back the cursor of the last answer");
      cursor = std::stoll(*text);
    }
    double wait_s = fleet.heartbeat_interval_s();
    if (const auto text = query_parameter(c.request.query, "wait_ms")) {
      if (text->empty() || text->size() > 6 || text->find_first_not_of("0123456789") != std::string::npos)
        throw ApiError(400, "invalid_field", "wait_ms must be 0 to the heartbeat interval");
      wait_s = std::min(wait_s, double(std::stoi(*text)) * 1e-3);
    }
    double load = 0;
    if (const auto text = query_parameter(c.request.query, "load")) {
      char* end = nullptr;
      load = std::strtod(text->c_str(), &end);
      if (text->empty() || end != text->c_str() + text->size() || !std::isfinite(load))
        throw ApiError(400, "invalid_field", "load must be a number");
      load = std::clamp(load, 0.0, 1e6);
    }
    // The request is the node's heartbeat.
    if (!fleet.heartbeat(node, load)) throw ApiError(404, "not_found", "no such node");
    // The feed known in memory when there is one (no database call). Else: woken by a change whose version
    // this replica does not know (one through another replica), the feed is read at once, with its version,
    // instead of the version first. A feed read whole is kept for the changes that follow.
    const auto answer_now = [this, node, cursor](bool changed = false) -> HttpResponse {
      const auto read_whole = [&] {
        const auto token = hub.read_token(node);
        FeedContent content = fleet.node_feed(node);
        feeds_read.fetch_add(1, std::memory_order_relaxed);
        hub.learn_feed(node, content, token);
        return content;
      };
      std::optional<HttpResponse> known_answer;
      const bool known = hub.with_known_feed(node, [&](const FeedContent& feed) {
        if (feed.version > cursor) known_answer = respond(200, feed.feed);
      });
      if (known_answer) {
        feeds_from_memory.fetch_add(1, std::memory_order_relaxed);
        return std::move(*known_answer);
      }
      if (!known) {  // (known and not past the cursor: unchanged)
        if (changed && !hub.known_version(node)) {
          const FeedContent content = read_whole();
          if (content.version > cursor) return respond(200, content.feed);
        } else if (feed_version(node) > cursor) {
          return respond(200, read_whole().feed);
        }
      }
      v1::NodeFeed unchanged;
      unchanged.set_cursor(std::to_string(cursor));
      unchanged.set_changed(false);
      unchanged.set_heartbeat_interval_ms(int32_t(std::lround(fleet.heartbeat_interval_s() * 1000.0)));
      return respond(200, unchanged);
    };
    if (wait_s <= 0 || feed_version(node) > cursor) return answer_now();
    // Up to a quarter of the wait shorter, at random (as Consul spreads its blocking queries): nodes that
    // attached together (after a replica restart, a fleet start) drift apart within a few waits instead of
    // being answered in the same instant every interval, a burst that made the answers' tail late. (Consul's
    // 1/16 left 1,000 nodes bunched for a minute: answers past their wait p99 150 ms at 300 placements a
    // second, 44 ms with a quarter, for ~11 % more feed requests.)
    thread_local std::minstd_rand jitter(std::random_device{}());
    wait_s *= 1.0 - std::uniform_real_distribution<double>(0.0, 1.0 / 4.0)(jitter);
    // Held: the waiter is registered before the version is looked at again, so a change committed in between
    // is either seen then or announced to the waiter. Whichever answers first answers; the other does
    // nothing.
    auto deferred = std::make_shared<DeferredResponse>();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    // Builds the answer (may read the database) and gives it, unless another wake-up gave one already.
    const auto give = [this, deferred, answered, answer_now, route = c.route, id = c.request_id,
                       method = c.request.method, start = c.start_ns](bool changed) {
      if (answered->load()) return;
      ScopedLogContext scope({.request_id = id});
      HttpResponse r;
      try {
        r = answer_now(changed);
      } catch (const ApiError& e) {
        r = error_response(e);
      } catch (const std::exception&) {
        r = error_response(ApiError(503, "unavailable", "service temporarily unavailable"));
      }
      if (answered->exchange(true)) return;
      finish(method, route, id, start, r);
      deferred->complete(std::move(r));
    };
    // Answered where it is woken (the hub's timer thread when the wait ends, the thread that made or heard
    // the change) when memory has the answer: "unchanged", or the feed this replica moved along itself;
    // else on a worker (a feed to read).
    hub.wait(node, wait_s, [this, give](bool timed_out) {
      from_memory_or_on_worker([give, timed_out] { give(!timed_out); });
    });
    from_memory_or_on_worker([this, give, node, cursor] {
      if (feed_version(node) > cursor) give(false);
    });
    HttpResponse held;
    held.deferred = deferred;
    return held;
  }

  // Runs `work` here if it needs no database (on the network or timer thread, which must not block), else
  // on a hub worker from the start. `work` must have no effect before its database calls.
  void from_memory_or_on_worker(const std::function<void()>& work) {
    try {
      Database::NoWaitingHere no_waiting;
      work();
    } catch (const WouldWaitOnDatabase&) {
      hub.post(work);
    }
  }

  // The node's feed version: as announced (no database read) when this replica is sure of it, else read.
  int64_t feed_version(int64_t node) {
    if (const auto known = hub.known_version(node)) return *known;
    const auto token = hub.read_token(node);
    const int64_t version = fleet.feed_version(node);
    if (version >= 0) hub.learn_version(node, version, token);
    return version;
  }

  // Every answer: its request id in X-Request-Id, its route's metrics, and one log line.
  void finish(const std::string& method, const std::string& route, const std::string& request_id,
              int64_t start_ns, HttpResponse& r) {
    r.headers.emplace_back("X-Request-Id", request_id);
    const double seconds = double(steady_now_ns() - start_ns) * 1e-9;
    metrics.observe(route, r.status, seconds);
    spdlog::info("http {} {} {:.1f} ms", route == "unknown" ? escape_for_log(method) + " (no route)" : route,
                 r.status, seconds * 1e3);
  }

  HttpResponse report_session_state(const Call& c) {
    const int64_t node = authorised_node(*c.node, c.params[0], c.request);
    v1::SessionStateReport body;
    parse_request(c.request.body, body);
    const std::string reason = required_string(true, body.reason(), "reason", 512);
    if (!fleet.report_session_state(node, session_segment(c.params[1]),
                                    required_string(body.has_state(), body.state(), "state", 16), reason))
      throw ApiError(404, "not_found", "no such session on this node");
    return {204, "", "application/json"};
  }

  HttpResponse list_nodes(const Call& c) {
    const PageRequest page = page_request(c.request);
    std::string next;
    const auto nodes = fleet.list_nodes(page, next);
    return respond_page(nodes, c.request.path, next, page.limit);
  }

  // Operators drain and undrain; a node may drain itself (its preStop hook on shutdown) with its token.
  HttpResponse set_drained(const Call& c, bool drained) {
    std::string actor;
    if (c.node) {
      authorised_node(*c.node, c.params[0], c.request);
      actor = credential_name(*c.node);
    } else {
      actor = c.who().username;
    }
    if (!fleet.set_drained(id_segment(c.params[0]), drained))
      throw ApiError(404, "not_found", "no such node");
    auth.audit(drained ? "node_drain" : "node_undrain", actor, c.request.remote_address,
               "node " + c.params[0]);
    v1::DrainState state;
    state.set_node_id(int32_t(id_segment(c.params[0])));
    state.set_drained(drained);
    return respond(200, state);
  }
  HttpResponse drain(const Call& c) { return set_drained(c, true); }
  HttpResponse undrain(const Call& c) { return set_drained(c, false); }

  HttpResponse capacity(const Call&) { return respond(200, fleet.capacity()); }

  HttpResponse create_room(const Call& c) {
    v1::RoomRequest body;
    parse_request(c.request.body, body);
    check_list(body.members(), "members");
    required_string(body.has_name(), body.name(), "name", 128);
    required_string(body.has_scene(), body.scene(), "scene", 256);
    return respond(201, fleet.create_room(caller_of(c.who()), body));
  }

  HttpResponse delete_room(const Call& c) {
    if (!fleet.delete_room(caller_of(c.who()), c.params[0]))
      throw ApiError(404, "not_found", "no such room of yours");
    return {204, "", "application/json"};
  }

  HttpResponse create_session(const Call& c) {
    const AccessClaims& who = c.who();
    if (!sessions_by_user.allow(std::to_string(who.user_id)))
      throw ApiError(429, "rate_limited", "too many sessions created");
    v1::SessionRequest body;
    parse_request(c.request.body, body);
    for (const auto& [present, name] :
         {std::pair{body.has_eye_width(), "eye_width"}, std::pair{body.has_eye_height(), "eye_height"},
          std::pair{body.has_fps(), "fps"}})
      if (!present) throw ApiError(400, "invalid_field", std::string("\"") + name + "\" is required");
    required_string(body.has_scene(), body.scene(), "scene", 256);
    if (body.has_codec()) required_string(true, body.codec(), "codec", 16);
    if (body.has_room()) required_string(true, body.room(), "room", 128);
    SessionCaller caller = caller_of(who);
    caller.request_id = c.request_id;  // stored with the session: its node logs the same id
    return respond(201, fleet.create_session(caller, body));
  }

  HttpResponse list_sessions(const Call& c) {
    const PageRequest page = page_request(c.request);
    std::string next;
    const auto sessions = fleet.list_sessions(own_scope(c.who()), page, next);
    return respond_page(sessions, c.request.path, next, page.limit);
  }

  HttpResponse get_session(const Call& c) {
    const auto session = fleet.get_session(session_segment(c.params[0]), own_scope(c.who()));
    if (!session) throw ApiError(404, "not_found", "no such session");
    return respond(200, *session);
  }

  HttpResponse end_session(const Call& c) {
    if (!fleet.end_session(session_segment(c.params[0]), own_scope(c.who())))
      throw ApiError(404, "not_found", "no such session");
    return {204, "", "application/json"};
  }

  HttpResponse set_quality(const Call& c) {
    v1::QualityRequest body;
    parse_request(c.request.body, body);
    if (!fleet.set_quality(
            session_segment(c.params[0]), own_scope(c.who()),
            body.has_max_bitrate_bps() ? std::optional<int64_t>(body.max_bitrate_bps()) : std::nullopt,
            body.has_max_fps() ? std::optional<int>(body.max_fps()) : std::nullopt,
            body.has_foveation() ? std::optional<bool>(body.foveation()) : std::nullopt))
      throw ApiError(404, "not_found", "no such active session");
    v1::QualityCaps caps;
    if (body.has_max_bitrate_bps()) caps.set_max_bitrate_bps(body.max_bitrate_bps());
    if (body.has_max_fps()) caps.set_max_fps(body.max_fps());
    if (body.has_foveation()) caps.set_foveation(body.foveation());
    return respond(200, caps);
  }

  // The scene catalogue (docs/scenes.md "Catalogue"). The body is the .glb itself; `sha256` (query) is what
  // the uploader computed: a mismatch means the bytes changed on the way, and nothing is stored.
  HttpResponse upload_scene(const Call& c) {
    std::optional<std::string> sha256 = query_parameter(c.request.query, "sha256");
    if (sha256 && !is_sha256_hex(*sha256))
      throw ApiError(400, "invalid_field", "sha256 must be 64 lower-case hex digits");
    return respond(201, scenes.upload(c.params[0], c.request.body, sha256, c.who().user_id));
  }

  HttpResponse list_scenes(const Call& c) {
    const PageRequest page = page_request(c.request);
    std::string next;
    const auto versions = scenes.list(page, next);
    return respond_page(versions, c.request.path, next, page.limit);
  }

  HttpResponse delete_scene(const Call& c) {
    scenes.remove(c.params[0]);
    return {204, "", "application/json"};
  }

  // A scene's bytes by hash, for the nodes it is placed on (and operators).
  HttpResponse scene_blob(const Call& c) {
    if (!is_sha256_hex(c.params[0])) throw ApiError(404, "not_found", "no such scene");
    auto bytes = scenes.blob(c.params[0]);
    if (!bytes) throw ApiError(404, "not_found", "no such scene in the catalogue");
    return {200, std::move(*bytes), "model/gltf-binary"};
  }

  HttpResponse node_scene_cache(const Call& c) {
    const int64_t node = authorised_node(*c.node, c.params[0], c.request);
    v1::NodeSceneCache body;
    parse_request(c.request.body, body);
    check_hashes(body.sha256(), "sha256");
    if (!fleet.set_cached_scenes(node, {body.sha256().begin(), body.sha256().end()}))
      throw ApiError(404, "not_found", "no such node");
    return {204, "", "application/json"};
  }

  // Who may call a route. Users' roles are checked after authentication (401, then 403).
  enum class Access { kAnyone, kClientOrAbove, kOperator, kAdmin, kNode, kNodeOrOperator };

  // The API, one line a route: method, path pattern ({name} matches one segment), who may call, handler.
  // Requests are matched in order; the first whose method and pattern fit is served. tests/openapi_check.py
  // reads this table, so a route without documentation fails a test.
  struct Route {
    const char* method;
    const char* pattern;
    Access access;
    HttpResponse (Impl::*handler)(const Call&);
  };
  static constexpr Route kRoutes[] = {
      {"GET", "/", Access::kAnyone, &Impl::web_index},
      {"GET", "/web/{file}", Access::kAnyone, &Impl::web_asset},
      {"GET", "/healthz", Access::kAnyone, &Impl::healthz},
      {"GET", "/readyz", Access::kAnyone, &Impl::readyz},
      {"GET", "/metrics", Access::kAnyone, &Impl::prometheus},
      {"POST", "/v1/auth/login", Access::kAnyone, &Impl::login},
      {"POST", "/v1/auth/refresh", Access::kAnyone, &Impl::refresh},
      {"POST", "/v1/auth/logout", Access::kAnyone, &Impl::logout},
      {"POST", "/v1/users", Access::kAdmin, &Impl::create_user},
      {"POST", "/v1/node-tokens", Access::kOperator, &Impl::mint_node_token},
      {"DELETE", "/v1/node-tokens/{id}", Access::kOperator, &Impl::revoke_node_token},
      {"POST", "/v1/nodes/register", Access::kNode, &Impl::register_node},
      {"POST", "/v1/nodes/{id}/heartbeat", Access::kNode, &Impl::heartbeat},
      {"GET", "/v1/nodes/{id}/sessions", Access::kNode, &Impl::node_sessions},
      {"GET", "/v1/nodes/{id}/feed", Access::kNode, &Impl::node_feed},
      {"POST", "/v1/nodes/{id}/sessions/{session_id}", Access::kNode, &Impl::report_session_state},
      {"GET", "/v1/nodes", Access::kOperator, &Impl::list_nodes},
      {"POST", "/v1/nodes/{id}/drain", Access::kNodeOrOperator, &Impl::drain},
      {"POST", "/v1/nodes/{id}/undrain", Access::kOperator, &Impl::undrain},
      {"GET", "/v1/capacity", Access::kOperator, &Impl::capacity},
      {"POST", "/v1/rooms", Access::kClientOrAbove, &Impl::create_room},
      {"DELETE", "/v1/rooms/{name}", Access::kClientOrAbove, &Impl::delete_room},
      {"POST", "/v1/sessions", Access::kClientOrAbove, &Impl::create_session},
      {"GET", "/v1/sessions", Access::kClientOrAbove, &Impl::list_sessions},
      {"GET", "/v1/sessions/{id}", Access::kClientOrAbove, &Impl::get_session},
      {"DELETE", "/v1/sessions/{id}", Access::kClientOrAbove, &Impl::end_session},
      {"PATCH", "/v1/sessions/{id}/quality", Access::kClientOrAbove, &Impl::set_quality},
      {"PUT", "/v1/scenes/{name}", Access::kOperator, &Impl::upload_scene},
      {"GET", "/v1/scenes", Access::kClientOrAbove, &Impl::list_scenes},
      {"DELETE", "/v1/scenes/{name}", Access::kOperator, &Impl::delete_scene},
      {"GET", "/v1/scene-blobs/{sha256}", Access::kNodeOrOperator, &Impl::scene_blob},
      {"PUT", "/v1/nodes/{id}/scene-cache", Access::kNode, &Impl::node_scene_cache},
  };

  // A captured path segment, percent-decoded (RFC 3986): clients must encode a room name's spaces, quotes or
  // slashes. Nullopt for a malformed escape, an encoded NUL, or bytes that are not UTF-8 (no name can hold
  // them, and PostgreSQL refuses them: found by tests/fuzz/http_route_fuzzer.cpp as a 500).
  static std::optional<std::string> percent_decoded(std::string_view segment) {
    std::string out;
    out.reserve(segment.size());
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    for (size_t i = 0; i < segment.size(); ++i) {
      if (segment[i] != '%') {
        out += segment[i];
        continue;
      }
      if (i + 2 >= segment.size()) return std::nullopt;
      const int high = hex(segment[i + 1]), low = hex(segment[i + 2]);
      if (high < 0 || low < 0 || (high == 0 && low == 0)) return std::nullopt;
      out += char(high * 16 + low);
      i += 2;
    }
    for (size_t i = 0; i < out.size();) {
      const Utf8Char c = utf8_char_at(out, i);
      if (c.length == 0) return std::nullopt;
      i += c.length;
    }
    return out;
  }

  // The path's segments against a pattern's; {...} segments are captured (percent-decoded). At most 8
  // segments.
  static bool matches(std::string_view pattern, std::string_view path, std::vector<std::string>& params) {
    params.clear();
    for (;;) {
      if (pattern.empty() || path.empty()) return pattern.empty() && path.empty();
      if (pattern[0] != '/' || path[0] != '/') return false;
      pattern.remove_prefix(1);
      path.remove_prefix(1);
      const size_t pattern_end = std::min(pattern.find('/'), pattern.size());
      const size_t path_end = std::min(path.find('/'), path.size());
      const std::string_view want = pattern.substr(0, pattern_end), got = path.substr(0, path_end);
      if (!want.empty() && want.front() == '{') {
        const std::optional<std::string> decoded = percent_decoded(got);
        if (got.empty() || !decoded) return false;
        params.push_back(*decoded);
      } else if (want != got) {
        return false;
      }
      pattern.remove_prefix(pattern_end);
      path.remove_prefix(path_end);
    }
  }

  HttpResponse route(const HttpRequest& r, std::string& route_name, const std::string& request_id,
                     int64_t start_ns) {
    std::vector<std::string> params;
    for (const Route& route : kRoutes) {
      if (r.method != route.method || !matches(route.pattern, r.path, params)) continue;
      route_name = std::string(route.method) + " " + route.pattern;
      Call call{.request = r,
                .params = std::move(params),
                .user = std::nullopt,
                .node = std::nullopt,
                .route = route_name,
                .request_id = request_id,
                .start_ns = start_ns};
      switch (route.access) {
        case Access::kAnyone:
          break;
        case Access::kClientOrAbove:
          call.user = authenticate(r);
          break;
        case Access::kOperator:
          call.user = authenticate(r);
          require(*call.user, {Role::kOperator, Role::kAdmin});
          break;
        case Access::kAdmin:
          call.user = authenticate(r);
          require(*call.user, {Role::kAdmin});
          break;
        case Access::kNode:
          call.node = authenticate_node(r);
          break;
        case Access::kNodeOrOperator:
          call.node = node_credential_of(r);
          if (!call.node) {
            call.user = authenticate(r);
            require(*call.user, {Role::kOperator, Role::kAdmin});
          }
          break;
      }
      return (this->*route.handler)(call);
    }
    route_name = "unknown";
    throw ApiError(404, "not_found", "no such route");
  }

  // Last: destroyed first, so that held feed requests it answers on the way out still find the rest.
  NodeFeedHub hub;  // held node-feed requests
};

ControlApi::ControlApi(Database& db, AuthService& auth, const AccessTokens& tokens, FleetService& fleet,
                       std::string static_node_token, const RateLimits& limits, const ApiOptions& options)
    : impl_(std::make_unique<Impl>(db, auth, tokens, fleet, std::move(static_node_token), limits, options)) {
  impl_->hub.on_announcement(NodeFeedHub::Announcement::kCredentials,
                             [&fleet](bool pushed) { fleet.credentials_changed(pushed); });
  impl_->hub.on_announcement(NodeFeedHub::Announcement::kPlacementInputs,
                             [&fleet](bool pushed) { fleet.placement_inputs_changed(pushed); });
  fleet.on_feed_changed([hub = &impl_->hub](int64_t node, int64_t version, const FeedChange* change) {
    if (version >= 0)
      hub->changed(node, version, change);
    else if (change)
      hub->edited(node, *change);
  });
}
ControlApi::~ControlApi() {
  impl_->fleet.on_feed_changed(nullptr);
}

size_t ControlApi::body_limit(const HttpRequest& head) {
  constexpr size_t kDefault = 64 * 1024;
  std::vector<std::string> params;
  if (head.method != "PUT" || !Impl::matches("/v1/scenes/{name}", head.path, params)) return kDefault;
  try {
    const AccessClaims who = impl_->authenticate(head);
    Impl::require(who, {Role::kOperator, Role::kAdmin});
  } catch (const ApiError&) {
    return kDefault;  // no large body before the caller is known to be allowed one
  }
  return size_t(impl_->scenes.max_upload_bytes());
}

HttpServerOptions ControlApi::serving(HttpServerOptions options) {
  options.body_limit_for = [this](const HttpRequest& head) { return body_limit(head); };
  options.try_without_blocking = [this](const HttpRequest& r) { return try_handle_without_blocking(r); };
  return options;
}

std::optional<HttpResponse> ControlApi::try_handle_without_blocking(const HttpRequest& request) {
  // GET /v1/nodes/{id}/feed: the request a fleet sends most (every node, every wait), all from memory in the
  // steady state (the credential, the heartbeat, the version; a held request's timer).
  std::vector<std::string> params;
  if (request.method != "GET" || !Impl::matches("/v1/nodes/{id}/feed", request.path, params))
    return std::nullopt;
  Database::NoWaitingHere no_waiting;
  try {
    HttpResponse response = handle(request);
    impl_->feed_requests_without_waiting.fetch_add(1, std::memory_order_relaxed);
    return response;
  } catch (const WouldWaitOnDatabase&) {
    impl_->feed_requests_to_workers.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;  // nothing answered or logged yet: the worker runs it from the start
  }
}

HttpResponse ControlApi::handle(const HttpRequest& request) {
  // From its arrival: a request that waited for a worker counts that wait (what the caller sees).
  const int64_t start = request.received_ns > 0 ? request.received_ns : steady_now_ns();
  // The caller's id only from a trusted proxy or a node (docs/operations.md "Request ids"), else a new one.
  const bool trusted = std::find(impl_->options.trusted_proxies.begin(), impl_->options.trusted_proxies.end(),
                                 request.remote_address) != impl_->options.trusted_proxies.end() ||
                       (is_request_id(request.request_id) && impl_->node_credential_of(request).has_value());
  const std::string request_id =
      trusted && is_request_id(request.request_id) ? request.request_id : new_request_id();
  ScopedLogContext scope({.request_id = request_id});
  std::string route_name = "unknown";
  HttpResponse response;
  try {
    response = impl_->route(request, route_name, request_id, start);
  } catch (const ApiError& e) {
    response = error_response(e);
  } catch (const kairo::Error&) {
    // The database is down or similar: the client may retry; nothing was acknowledged.
    response = error_response(ApiError(503, "unavailable", "service temporarily unavailable"));
  } catch (const std::exception& e) {
    // A bug (input that should have been refused with a 4xx reached the database, ...): logged, answered
    // and counted here, so that the metrics show it.
    spdlog::error("http {} {}: {}", escape_for_log(request.method), escape_for_log(request.path),
                  escape_for_log(e.what()));
    response = error_response(ApiError(500, "internal", "internal error"));
  }
  if (response.deferred) return response;  // finished when it is answered
  impl_->finish(request.method, route_name, request_id, start, response);
  return response;
}

}  // namespace kairo::control
