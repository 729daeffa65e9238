#include "control-plane/fleet_service.hpp"

#include <sodium.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "control-plane/api_error.hpp"
#include "control-plane/feed_content.hpp"
#include "control-plane/page_cursor.hpp"
#include "control-plane/proto/control.pb.h"
#include "core/clock.hpp"
#include "core/names.hpp"
#include "core/session_shape.hpp"
#include "streaming/room_messages.hpp"
#include "streaming/session_credential.hpp"

namespace kairo::control {

namespace {

pqxx::binarystring bytes(const std::string& raw) {
  return pqxx::binarystring(raw.data(), raw.size());
}

// A text[] column read as array_to_json(column)::text (libpqxx 6 has no array type): its elements.
std::vector<std::string> text_array(const pqxx::field& json_text) {
  std::vector<std::string> out;
  for (const auto& item : nlohmann::json::parse(json_text.as<std::string>()))
    out.push_back(item.get<std::string>());
  return out;
}

// A PostgreSQL text[] literal with every element quoted and escaped (values also pass as parameters).
template <class Strings>
std::string array_literal(const Strings& items) {
  std::string out = "{";
  size_t i = 0;
  for (const std::string& item : items) {
    out += i++ ? ",\"" : "\"";
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string hex(const std::string& raw) {
  std::string out(raw.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  out.pop_back();
  return out;
}

// A (created_at, id) cursor's two halves; both empty for the first page.
std::pair<std::optional<std::string>, std::optional<std::string>> time_id_cursor(const std::string& cursor) {
  if (cursor.empty()) return {};
  const std::string key = decode_cursor(cursor);
  const size_t bar = key.find('|');
  if (bar == std::string::npos || bar == 0 || bar + 1 == key.size() || name_problem(key, 256))
    throw ApiError(400, "invalid_cursor", "malformed cursor: pass back a next_cursor as it was given");
  return {key.substr(0, bar), key.substr(bar + 1)};
}

// A session row (kSessionColumns) as the API's message: straight from the row, no intermediate form.
v1::Session session_message(const pqxx::row& r) {
  v1::Session s;
  s.set_session_id(r["id"].as<std::string>());
  s.set_scene(r["scene"].as<std::string>());
  s.set_eye_width(r["eye_width"].as<int>());
  s.set_eye_height(r["eye_height"].as<int>());
  s.set_fps(r["fps"].as<int>());
  s.set_codec(r["codec"].as<std::string>());
  s.set_state(r["state"].as<std::string>());
  s.set_node_address(r["address"].is_null() ? "" : r["address"].as<std::string>());
  if (!r["failure_reason"].is_null()) s.set_failure_reason(r["failure_reason"].as<std::string>());
  if (!r["max_bitrate_bps"].is_null()) s.set_max_bitrate_bps(uint32_t(r["max_bitrate_bps"].as<int64_t>()));
  if (!r["max_fps"].is_null()) s.set_max_fps(r["max_fps"].as<int>());
  if (!r["foveation"].is_null()) s.set_foveation(r["foveation"].as<bool>());
  if (!r["room"].is_null()) s.set_room(r["room"].as<std::string>());
  s.set_transport(r["transport"].as<std::string>());
  if (s.transport() == "webrtc" && !r["signalling_url"].is_null())
    s.set_signalling_url(r["signalling_url"].as<std::string>());
  return s;
}

constexpr const char* kSessionColumns =
    "s.id, s.scene, s.eye_width, s.eye_height, s.fps, s.codec, s.state, s.failure_reason, s.max_bitrate_bps, "
    "s.max_fps, s.foveation, "
    "s.room, s.transport, n.address, n.signalling_url";

// A room's members on its node: the node's limit, which its room state message is sized for.
constexpr int kMaxRoomMembers = int(wire::kMaxRoomMembers);

}  // namespace

FleetService::FleetService(Database& db, double heartbeat_interval_s, int64_t snapshot_max_age_ns)
    : db_(db),
      heartbeat_interval_s_(heartbeat_interval_s),
      heartbeats_(db, heartbeat_interval_s),
      snapshot_(snapshot_max_age_ns) {}

std::pair<int64_t, std::string> FleetService::mint_node_token(int64_t created_by,
                                                              const std::optional<std::string>& for_node) {
  const std::string token = random_token();
  int64_t id = 0;
  bool found = true;
  db_.transact([&](pqxx::work& w) {
    std::optional<int64_t> node;
    if (for_node) {
      const auto rows = w.exec_params("SELECT id FROM nodes WHERE name = $1 FOR UPDATE", *for_node);
      found = !rows.empty();
      if (!found) return;
      node = rows[0][0].as<int64_t>();
    }
    id = w.exec_params(
              "INSERT INTO node_tokens (token_hash, created_by, node_id) VALUES ($1, $2, $3) RETURNING id",
              bytes(token_hash(token)), created_by, node)[0][0]
             .as<int64_t>();
    if (node) w.exec_params("UPDATE nodes SET token_id = $2 WHERE id = $1", *node, id);
  });
  if (!found) throw ApiError(404, "not_found", "no node named \"" + *for_node + "\"");
  if (for_node) forget_cached_credentials();  // the node now answers to this token only
  return {id, token};
}

bool FleetService::revoke_node_token(int64_t id) {
  bool found = false;
  db_.transact([&](pqxx::work& w) {
    found =
        !w.exec_params(
              "UPDATE node_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id",
              id)
             .empty();
  });
  forget_cached_credentials();  // at once here; the others on the announcement (migration 009)
  return found;
}

// Node requests come about once a second per node (the feed, its heartbeat): a token's row and a node's
// ownership are cached. Every change to node credentials is announced (kairo_credentials) and drops the
// cache on every replica that hears it, so a revocation or rotation through any replica takes effect at once;
// while a replica hears those announcements it keeps entries a minute, otherwise a second (like the
// access-token revocation list, AuthService::sync_revocations).
int64_t FleetService::credential_cache_ns() const {
  return credentials_pushed_ ? kPushedCredentialCacheNs : kCredentialCacheNs;
}

void FleetService::credentials_changed(bool pushed) {
  credentials_pushed_ = pushed;
  forget_cached_credentials();
}

std::optional<NodeCredential> FleetService::node_credential(const std::string& token) {
  const std::string hash = token_hash(token);
  const int64_t now = steady_now_ns();
  {
    std::lock_guard lock(cache_mutex_);
    const auto it = credentials_.find(hash);
    if (it != credentials_.end() && it->second.second > now) return it->second.first;
  }
  std::optional<NodeCredential> out;
  db_.transact([&](pqxx::work& w) {
    out.reset();
    const auto rows = w.exec_params(
        "SELECT id, node_id FROM node_tokens WHERE token_hash = $1 AND revoked_at IS NULL", bytes(hash));
    if (rows.empty()) return;
    out = NodeCredential{
        .token_id = rows[0][0].as<int64_t>(),
        .node_id = rows[0][1].is_null() ? std::nullopt : std::optional<int64_t>(rows[0][1].as<int64_t>())};
  });
  std::lock_guard lock(cache_mutex_);
  if (credentials_.size() > 100'000) credentials_.clear();  // bounded under a flood of made-up tokens
  // A token not yet bound to a node is not cached: its registration binds it a moment later.
  if (!out || out->node_id) credentials_[hash] = {out, now + credential_cache_ns()};
  return out;
}

void FleetService::authorise_node(const NodeCredential& credential, int64_t node_id) {
  if (credential.token_id) {
    // A minted token acts for its own node only (no database read: the token's row said which).
    if (credential.node_id != node_id)
      throw ApiError(403, "forbidden", "this node token belongs to another node");
    return;
  }
  // The static fleet token acts for the nodes registered with it, never for a node with a token of its own.
  const int64_t now = steady_now_ns();
  std::optional<bool> own;
  bool cached = false;
  {
    std::lock_guard lock(cache_mutex_);
    const auto it = static_own_.find(node_id);
    if (it != static_own_.end() && it->second.second > now) {
      own = it->second.first;
      cached = true;
    }
  }
  if (!cached) {
    db_.transact([&](pqxx::work& w) {
      own.reset();
      const auto rows = w.exec_params("SELECT token_id IS NULL FROM nodes WHERE id = $1", node_id);
      if (!rows.empty()) own = rows[0][0].as<bool>();
    });
    std::lock_guard lock(cache_mutex_);
    if (static_own_.size() > 100'000) static_own_.clear();
    if (own) static_own_[node_id] = {own, now + credential_cache_ns()};
  }
  if (!own) throw ApiError(404, "not_found", "no such node");
  if (!*own) throw ApiError(403, "forbidden", "this node registered with a node token of its own");
}

void FleetService::forget_cached_credentials() {
  std::lock_guard lock(cache_mutex_);
  credentials_.clear();
  static_own_.clear();
}

int64_t FleetService::register_node(const v1::NodeRegistration& n, const NodeCredential& credential) {
  if (const auto problem = name_problem(n.name(), 128))
    throw ApiError(400, "invalid_node", "node name " + *problem);
  if (n.address().empty() || n.address().size() > 256 || name_problem(n.address(), 256))
    throw ApiError(400, "invalid_node", "address is required: printable, at most 256 characters");
  if (n.max_sessions() < 0 || n.max_sessions() > 10000)
    throw ApiError(400, "invalid_node", "max_sessions must be 0 to 10000");
  if (n.has_signalling_url() &&
      (n.signalling_url().size() > 256 || name_problem(n.signalling_url(), 256) ||
       !(n.signalling_url().rfind("ws://", 0) == 0 || n.signalling_url().rfind("wss://", 0) == 0)))
    throw ApiError(400, "invalid_node",
                   "signalling_url: a ws:// or wss:// URL, printable, at most 256 characters");
  const std::optional<std::string> signalling =
      n.has_signalling_url() ? std::optional<std::string>(n.signalling_url()) : std::nullopt;
  int64_t id = 0;
  std::string refusal;
  db_.transact([&](pqxx::work& w) {
    refusal.clear();
    const auto existing =
        w.exec_params("SELECT id, token_id FROM nodes WHERE name = $1 FOR UPDATE", n.name());
    const std::optional<int64_t> owner = existing.empty() || existing[0][1].is_null()
                                             ? std::nullopt
                                             : std::optional<int64_t>(existing[0][1].as<int64_t>());
    if (credential.token_id) {
      // A bound token registers its own node again (a restart), under its own name only.
      if (credential.node_id && (existing.empty() || existing[0][0].as<int64_t>() != *credential.node_id)) {
        refusal = "this node token belongs to another node";
        return;
      }
      if (!existing.empty() && owner != credential.token_id) {
        refusal = "the name \"" + n.name() + "\" belongs to another node";
        return;
      }
    } else if (owner) {
      refusal = "the name \"" + n.name() + "\" belongs to a node with a token of its own";
      return;
    }
    if (existing.empty()) {
      id = w.exec_params(
                "INSERT INTO nodes (name, address, device, encoders, scenes, max_sessions, state, "
                "last_heartbeat, token_id, signalling_url, cached_scenes) VALUES ($1, $2, $3, $4::text[], "
                "$5::text[], $6, 'up', now(), $7, $8, $9::text[]) RETURNING id",
                n.name(), n.address(), n.device(), array_literal(n.encoders()), array_literal(n.scenes()),
                n.max_sessions(), credential.token_id, signalling, array_literal(n.cached_scenes()))[0][0]
               .as<int64_t>();
      if (credential.token_id)
        w.exec_params("UPDATE node_tokens SET node_id = $2 WHERE id = $1", *credential.token_id, id);
    } else {
      id = existing[0][0].as<int64_t>();
      w.exec_params(
          "UPDATE nodes SET address = $2, device = $3, encoders = $4::text[], scenes = $5::text[], "
          "max_sessions = $6, state = 'up', last_heartbeat = now(), signalling_url = $7, cached_scenes = "
          "$8::text[] WHERE id = $1",
          id, n.address(), n.device(), array_literal(n.encoders()), array_literal(n.scenes()),
          n.max_sessions(), signalling, array_literal(n.cached_scenes()));
    }
  });
  if (!refusal.empty()) throw ApiError(403, "forbidden", refusal);
  snapshot_.drop();  // at once for this replica's next placement (the announcement reaches the others)
  return id;
}

bool FleetService::heartbeat(int64_t node_id, double load) {
  return heartbeats_.record(node_id, load);
}

bool FleetService::set_cached_scenes(int64_t node_id, const std::vector<std::string>& sha256) {
  bool found = false;
  db_.transact([&](pqxx::work& w) {
    found = !w.exec_params("UPDATE nodes SET cached_scenes = $2::text[] WHERE id = $1 RETURNING id", node_id,
                           array_literal(sha256))
                 .empty();
  });
  snapshot_.drop();
  return found;
}

bool FleetService::set_drained(int64_t node_id, bool drained) {
  bool found = false;
  int64_t version = 0;
  db_.transact([&](pqxx::work& w) {
    // A drain order is part of the node's feed: its version moves and the replica holding its request hears.
    const auto rows = w.exec_params(
        "UPDATE nodes SET drained = $2, feed_version = feed_version + CASE WHEN drained = $2 THEN 0 ELSE 1 "
        "END "
        "WHERE id = $1 RETURNING feed_version",
        node_id, drained);
    found = !rows.empty();
    if (found) version = rows[0][0].as<int64_t>();
  });
  if (found) feed_changed(node_id, version);
  snapshot_.drop();
  return found;
}

std::vector<v1::Node> FleetService::list_nodes(const PageRequest& page, std::string& next_cursor) {
  std::optional<int64_t> after;
  if (!page.cursor.empty()) {
    const std::string key = decode_cursor(page.cursor);
    if (key.empty() || key.size() > 18 || key.find_first_not_of("0123456789") != std::string::npos)
      throw ApiError(400, "invalid_cursor", "malformed cursor: pass back a next_cursor as it was given");
    after = std::stoll(key);
  }
  const int limit = page_limit(page);
  std::vector<v1::Node> out;
  next_cursor.clear();
  db_.transact([&](pqxx::work& w) {
    out.clear();
    for (const auto& r : w.exec_params(
             "SELECT id, name, address, device, max_sessions, state, drained, load, active_sessions, "
             "array_to_json(scenes)::text, array_to_json(cached_scenes)::text "
             "FROM nodes WHERE ($1::bigint IS NULL OR id > $1) ORDER BY id LIMIT $2",
             after, limit + 1)) {
      if (int(out.size()) == limit) {
        next_cursor = encode_cursor(std::to_string(out.back().node_id()));
        break;
      }
      v1::Node& n = out.emplace_back();
      n.set_node_id(r[0].as<int32_t>());
      n.set_name(r[1].as<std::string>());
      n.set_address(r[2].as<std::string>());
      n.set_device(r[3].as<std::string>());
      n.set_max_sessions(r[4].as<int>());
      n.set_state(r[5].as<std::string>());
      n.set_drained(r[6].as<bool>());
      n.set_load(r[7].as<double>());
      n.set_active_sessions(r[8].as<int>());
      for (std::string& scene : text_array(r[9])) n.add_scenes(std::move(scene));
      for (std::string& hash : text_array(r[10])) n.add_cached_scenes(std::move(hash));
    }
  });
  return out;
}

v1::Capacity FleetService::capacity() {
  v1::Capacity out;
  db_.transact([&](pqxx::work& w) {
    const auto r = w.exec(
        "SELECT count(*) FILTER (WHERE state = 'up' AND NOT drained), count(*) FILTER (WHERE state = "
        "'down'), "
        "count(*) FILTER (WHERE drained), coalesce(sum(max_sessions) FILTER (WHERE state = 'up' AND NOT "
        "drained), 0), "
        "coalesce(sum(active_sessions), 0) FROM nodes")[0];
    const int64_t slots = r[3].as<int64_t>(), active = r[4].as<int64_t>();
    out.set_nodes_available(r[0].as<int32_t>());
    out.set_nodes_down(r[1].as<int32_t>());
    out.set_nodes_drained(r[2].as<int32_t>());
    out.set_session_slots(int32_t(slots));
    out.set_sessions_active(int32_t(active));
    out.set_session_slots_free(int32_t(std::max<int64_t>(0, slots - active)));
    out.set_utilisation(slots > 0 ? double(active) / double(slots) : 1.0);
  });
  return out;
}

std::string FleetService::metrics_text() {
  std::string out = "# HELP kairo_sessions Sessions by state.\n# TYPE kairo_sessions gauge\n";
  db_.transact([&](pqxx::work& w) {
    std::map<std::string, int64_t> sessions{{"placed", 0}, {"running", 0}, {"ended", 0}, {"failed", 0}};
    for (const auto& r : w.exec("SELECT state, count(*) FROM sessions GROUP BY state"))
      sessions[r[0].as<std::string>()] = r[1].as<int64_t>();
    for (const auto& [state, n] : sessions)
      out += "kairo_sessions{state=\"" + state + "\"} " + std::to_string(n) + "\n";
    const auto nodes = w.exec(
        "SELECT count(*) FILTER (WHERE state = 'up' AND NOT drained), count(*) FILTER (WHERE state = "
        "'down'), "
        "count(*) FILTER (WHERE drained AND state = 'up') FROM nodes")[0];
    out += "# HELP kairo_nodes GPU nodes by state.\n# TYPE kairo_nodes gauge\n";
    out += "kairo_nodes{state=\"up\"} " + nodes[0].as<std::string>() + "\n";
    out += "kairo_nodes{state=\"down\"} " + nodes[1].as<std::string>() + "\n";
    out += "kairo_nodes{state=\"drained\"} " + nodes[2].as<std::string>() + "\n";
    // What an autoscaler acts on (k8s/autoscaling.yaml): active sessions over the slots of live nodes.
    const auto capacity = w.exec(
        "SELECT coalesce(sum(max_sessions) FILTER (WHERE state = 'up' AND NOT drained), 0), "
        "coalesce(sum(active_sessions), 0) FROM nodes")[0];
    const double slots = capacity[0].as<double>(), active = capacity[1].as<double>();
    out += "# HELP kairo_capacity_session_slots Session slots on live, undrained nodes.\n";
    out += "# TYPE kairo_capacity_session_slots gauge\nkairo_capacity_session_slots " +
           std::to_string(int64_t(slots)) + "\n";
    out += "# HELP kairo_capacity_utilisation Active sessions / session slots (1 with no slots).\n";
    out += "# TYPE kairo_capacity_utilisation gauge\nkairo_capacity_utilisation " +
           std::to_string(slots > 0 ? active / slots : 1.0) + "\n";
  });
  return out;
}

int FleetService::sweep_down_nodes() {
  heartbeats_.flush();  // a heartbeat recorded but not yet written must not make its node look silent
  int down = 0;
  std::vector<std::pair<int64_t, int64_t>> failed;  // node, its feed version after its sessions failed
  db_.transact([&](pqxx::work& w) {
    failed.clear();
    const auto rows = w.exec_params(
        "UPDATE nodes SET state = 'down' WHERE state = 'up' AND last_heartbeat < now() - make_interval(secs "
        "=> $1) RETURNING id",
        3.0 * heartbeat_interval_s_);
    down = int(rows.size());
    for (const auto& r : rows) {
      const auto versions = w.exec_params(
          "WITH failed AS (UPDATE sessions SET state = 'failed', failure_reason = 'node stopped responding', "
          "ended_at = now() WHERE node_id = $1 AND live RETURNING "
          "node_feed_version) "
          "SELECT max(node_feed_version) FROM failed",
          r[0].as<int64_t>());
      if (!versions[0][0].is_null()) failed.emplace_back(r[0].as<int64_t>(), versions[0][0].as<int64_t>());
    }
  });
  // A node back in time finds its sessions gone; one that had none has nothing new to hear.
  for (const auto& [node, version] : failed) feed_changed(node, version);
  if (down > 0) snapshot_.drop();
  return down;
}

namespace {

// A user's creations serialise on the user's row, so the live-session count cannot be raced past the limit
// by parallel requests (through any replica). Lock order in a placement: user, room, nodes (by id).
void enforce_session_limit(pqxx::work& w, const SessionCaller& caller) {
  if (caller.max_live_sessions <= 0) return;  // no limit: nothing to serialise
  w.exec_params("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", caller.user_id);
  const int live =
      w.exec_params("SELECT count(*) FROM sessions WHERE user_id = $1 AND live", caller.user_id)[0][0]
          .as<int>();
  if (live >= caller.max_live_sessions)
    throw ApiError(429, "session_limit",
                   "you have " + std::to_string(live) + " live sessions, the limit is " +
                       std::to_string(caller.max_live_sessions) + ": end one first");
}

// Where a room's next member must go: the node its members are on, or (an empty room) the node it last
// ran on, preferred because it keeps the room's state (moved objects) for a while.
struct RoomPlacement {
  int64_t node = -1, preferred = -1;
};

// The users of a room share one scene instance, so a room lives on one node. Members joining at once
// through different replicas serialise on the room's advisory lock: the first one picks the node. Rooms are
// owned: the first user of a name owns it; others join only as listed members, or when an operator made it
// open. So nobody can squat a name on another scene and turn its members away. Refusals throw ApiError.
// What the API fills in when a request leaves it out.
std::string requested_codec(const v1::SessionRequest& q) {
  return q.has_codec() ? q.codec() : "h264";
}
std::optional<std::string> requested_room(const v1::SessionRequest& q) {
  return q.has_room() ? std::optional<std::string>(q.room()) : std::nullopt;
}

RoomPlacement join_room(pqxx::work& w, const SessionCaller& caller, const v1::SessionRequest& q) {
  const std::string& name = q.room();
  const auto refuse = [&](const std::string& why) { throw ApiError(503, "room_unavailable", why); };
  w.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", "kairo-room:" + name);
  const auto room = w.exec_params(
      "SELECT owner_id IS NOT DISTINCT FROM $2, open, $2 = ANY(members), scene FROM rooms WHERE name = $1",
      name, caller.user_id);
  if (room.empty()) {
    w.exec_params("INSERT INTO rooms (name, owner_id, scene) VALUES ($1, $2, $3)", name, caller.user_id,
                  q.scene());
  } else {
    if (!(room[0][0].as<bool>() || room[0][1].as<bool>() || room[0][2].as<bool>() || caller.privileged))
      throw ApiError(403, "room_forbidden",
                     "room \"" + name + "\" belongs to another user, who has not listed you as a member");
    if (room[0][3].as<std::string>() != q.scene())
      refuse("room \"" + name + "\" is for scene " + room[0][3].as<std::string>());
  }
  RoomPlacement placement;
  const auto members = w.exec_params(
      "SELECT node_id, scene, count(*) OVER () FROM sessions WHERE room = $1 AND live "
      "LIMIT 1",
      name);
  if (!members.empty() && members[0][2].as<int>() >= kMaxRoomMembers)
    refuse("room \"" + name + "\" is full (" + std::to_string(kMaxRoomMembers) + " members)");
  if (!members.empty() && !members[0][0].is_null()) {
    placement.node = members[0][0].as<int64_t>();
    if (members[0][1].as<std::string>() != q.scene())
      refuse("room \"" + name + "\" is running scene " + members[0][1].as<std::string>());
    return placement;
  }
  const auto last = w.exec_params(
      "SELECT node_id FROM sessions WHERE room = $1 AND node_id IS NOT NULL ORDER BY created_at DESC LIMIT 1",
      name);
  if (!last.empty()) placement.preferred = last[0][0].as<int64_t>();
  return placement;
}

struct PlacedOn {
  int64_t node = -1;
  std::string address;
  std::string signalling_url;  // empty: the node takes no browser sessions
  int64_t feed_version = 0;    // the node's, with this session placed
  // What the node's feed shows of the session besides what the request gave, when the placement read it:
  // its creation time as PostgreSQL prints it (the feed's order), its user's name, its scene's hash.
  std::optional<std::string> created_text{}, username{}, scene_sha256{};
};

std::string requested_transport(const v1::SessionRequest& q) {
  return q.has_transport() ? q.transport() : "udp";
}

// A node that may take the session ($1 scene, $2 codec, $3 transport): live, undrained, with a free slot,
// with the scene in its folder or able to fetch it (every node can fetch a catalogue scene; the subquery
// does not depend on the row, so PostgreSQL evaluates it once per statement).
constexpr const char* kCandidate =
    "state = 'up' AND NOT drained AND ($1 = ANY(scenes) OR EXISTS (SELECT 1 FROM scene_versions WHERE name = "
    "$1)) AND active_sessions < max_sessions AND $2 = ANY(codecs) AND ($3 = 'udp' OR signalling_url IS NOT "
    "NULL)";
// The newest version of a catalogue scene ($1): what a session created now renders.
constexpr const char* kSceneHash =
    "(SELECT sha256 FROM scene_versions WHERE name = $1 ORDER BY version DESC LIMIT 1)";
// Nodes that already hold a catalogue scene come first (a fetch delays a session's start by the scene's bytes
// at the link's rate); for a scene from the nodes' folders the array is empty and every node holds it.
const std::string kHoldersFirst = std::string("cached_scenes @> ARRAY") + kSceneHash + " DESC, ";
// The best candidate first ($4 the room's node if it has one, $5 the node it prefers or -1).
const std::string kCandidateOrder = " AND ($4::bigint IS NULL OR id = $4) ORDER BY id = $5 DESC, " +
                                    kHoldersFirst +
                                    "active_sessions::float8 / greatest(max_sessions, 1), load, id";

std::optional<int64_t> room_node(const RoomPlacement& room) {
  return room.node >= 0 ? std::optional<int64_t>(room.node) : std::nullopt;
}

// What the sessions row holds besides its node.
struct NewSession {
  std::string id, key;
  const SessionCaller& caller;
  const v1::SessionRequest& request;
};

// The statement, for the node chosen ($11) or the best of the fleet.
std::string placement_sql(bool on_chosen) {
  const std::string order =
      " ORDER BY " + kHoldersFirst + "active_sessions::float8 / greatest(max_sessions, 1), load, id";
  const std::string best = on_chosen ? std::string("id = $11")
                                     : "id = ANY(ARRAY(SELECT id FROM nodes WHERE " +
                                           std::string(kCandidate) + order + " LIMIT 32))";
  return "WITH pick AS (SELECT id FROM nodes WHERE " + best + " AND " + kCandidate +
         (on_chosen ? "" : order) +
         // The row pick locked passed the candidate test under its lock: the update needs no recheck.
         " LIMIT 1 FOR UPDATE SKIP LOCKED), slot AS (UPDATE nodes SET active_sessions = active_sessions + "
         "1, feed_version = feed_version + 1 WHERE id = (SELECT id FROM pick) RETURNING id, address, "
         "coalesce(signalling_url, '') AS signalling, feed_version), made AS "
         "(INSERT INTO sessions (id, user_id, node_id, scene, eye_width, eye_height, fps, codec, state, "
         "session_key, transport, request_id, scene_sha256) SELECT $4, $5, id, $1, $6, $7, $8, $2, 'placed', "
         "$9, $3, $10, " +
         kSceneHash +
         " FROM slot RETURNING created_at::text AS created, scene_sha256) SELECT slot.id, address, "
         "signalling, "
         "feed_version, made.created, made.scene_sha256, (SELECT username FROM users WHERE id = $5) FROM "
         "slot, "
         "made";
}

// The common case (a session outside rooms) in one statement: the best candidate no other placement holds
// at that instant, its slot, the session's row and the node's new feed version (one round trip where the loop
// below takes three or more). Empty when the best free candidates are all held at that instant, or there is
// no free candidate: then reserve_slot decides. SKIP LOCKED means it never waits, so it holds no lock
// another placement waits for while it waits itself (no deadlock). The best 32 (more than the placements
// that can run at once through a few replicas, so concurrent ones rarely all miss) are found first without
// locks (a top-32 heap), then locked: under FOR UPDATE the planner sorts every candidate (the lock sits
// between the sort and the limit; that sort was 6 % of the database's time). An index in placement order was
// tried and made it worse: the order moves with every placement, so the index filled with dead entries at its
// start.
//
// With `chosen` (the node this replica's picture of the fleet chose), only that node is tried: one row read
// by its key instead of the candidates scanned and sorted.
std::optional<PlacedOn> place_at_once(pqxx::transaction_base& w, const NewSession& s,
                                      std::optional<int64_t> chosen = std::nullopt) {
  static const PreparedStatement kOnChosen{"place_on_chosen", placement_sql(true)},
      kOnBest{"place_on_best", placement_sql(false)};
  const v1::SessionRequest& q = s.request;
  const std::optional<std::string> request_id =
      s.caller.request_id.empty() ? std::nullopt : std::optional<std::string>(s.caller.request_id);
  const auto rows = chosen ? exec_prepared(w, kOnChosen, q.scene(), requested_codec(q),
                                           requested_transport(q), s.id, s.caller.user_id, q.eye_width(),
                                           q.eye_height(), q.fps(), bytes(s.key), request_id, *chosen)
                           : exec_prepared(w, kOnBest, q.scene(), requested_codec(q), requested_transport(q),
                                           s.id, s.caller.user_id, q.eye_width(), q.eye_height(), q.fps(),
                                           bytes(s.key), request_id);
  if (rows.empty()) return std::nullopt;
  const auto& r = rows[0];
  return PlacedOn{r[0].as<int64_t>(),
                  r[1].as<std::string>(),
                  r[2].as<std::string>(),
                  r[3].as<int64_t>(),
                  r[4].as<std::string>(),
                  r[6].as<std::string>(),
                  r[5].is_null() ? std::nullopt : std::optional<std::string>(r[5].as<std::string>())};
}

// Reserves a slot on a node: one conditional update of the node's counter (active_sessions < max_sessions)
// on the best candidate (live, undrained, with the scene, an encoder for the codec and the transport): the
// room's node, else the room's preferred node, else the least filled, then least loaded. The candidates are
// read without locks, then tried one at a time in that order with a single-row update that takes a slot only
// if the node still has one: first skipping a node another placement holds at that moment (so concurrent
// placements spread over the best nodes instead of queueing on one), then, if every free node was held,
// waiting for each in turn. A placement never queues behind the fleet (the old way locked every candidate's
// row in id order, so every placement through every replica queued behind every other). Each miss is a
// conflict (counted). Never over capacity: the counter only moves under the row's lock and only below the
// capacity. Without concurrency the choice is deterministic (ties to the lower id).
//
// Why not one SELECT ... ORDER BY ... LIMIT 1 FOR UPDATE over all candidates: a row locked and then found
// full on the recheck stays locked while the next one is tried, and two placements doing that in different
// orders deadlocked (the 500s under concurrent creation through two replicas).
std::optional<PlacedOn> reserve_slot(pqxx::work& w, const v1::SessionRequest& q, const RoomPlacement& room,
                                     int& conflicts) {
  for (int round = 0; round < 4; ++round) {
    const auto rows =
        w.exec_params(std::string("SELECT id FROM nodes WHERE ") + kCandidate + kCandidateOrder + " LIMIT 16",
                      q.scene(), requested_codec(q), requested_transport(q), room_node(room), room.preferred);
    std::vector<int64_t> order;
    for (const auto& r : rows) order.push_back(r[0].as<int64_t>());
    if (order.empty()) break;
    // First pass: a candidate another placement holds is skipped, not waited for. Second pass (every free
    // one was held): wait for each in turn.
    for (const char* lock : {"FOR UPDATE SKIP LOCKED", ""}) {
      for (int64_t node : order) {
        const std::string target =
            *lock ? std::string("(SELECT id FROM nodes WHERE id = $4 AND ") + kCandidate + " " + lock + ")"
                  : std::string("$4");
        // The slot and the node's new feed version in one statement (one round trip).
        const auto placed = w.exec_params(
            "WITH slot AS (UPDATE nodes SET active_sessions = active_sessions + 1, feed_version = "
            "feed_version + "
            "1 WHERE id = " +
                target + " AND " + kCandidate +
                " RETURNING id, address, coalesce(signalling_url, '') AS signalling, feed_version) SELECT "
                "address, signalling, feed_version FROM slot",
            q.scene(), requested_codec(q), requested_transport(q), node);
        if (placed.empty()) {
          ++conflicts;  // held by another placement, or taken (or drained, or down) since the read
          continue;
        }
        return PlacedOn{node, placed[0][0].as<std::string>(), placed[0][1].as<std::string>(),
                        placed[0][2].as<int64_t>()};
      }
    }
  }
  if (room.node >= 0) {
    const bool node_live =
        !w.exec_params("SELECT 1 FROM nodes WHERE id = $1 AND state = 'up' AND NOT drained", room.node)
             .empty();
    throw ApiError(503, "room_unavailable",
                   node_live ? "room \"" + q.room() + "\" is full: its node has no free slot"
                             : "room \"" + q.room() + "\" is on a node that is down or draining");
  }
  return std::nullopt;
}

}  // namespace

void FleetService::placement_inputs_changed(bool pushed) {
  snapshot_pushed_ = pushed;
  snapshot_.drop();
}

bool FleetService::snapshot_ready() {
  if (!snapshot_pushed_) return false;
  const int64_t start = steady_now_ns();
  if (!snapshot_.refresh_due(start)) return true;
  // One request reads; the others go on with the picture they have while it is usable.
  bool idle = false;
  if (!snapshot_reading_.compare_exchange_strong(idle, true)) return snapshot_.usable(start);
  struct Done {
    std::atomic<bool>& reading;
    ~Done() { reading = false; }
  } done{snapshot_reading_};
  const uint64_t generation = snapshot_.generation();
  PlacementSnapshot::Fleet fleet;
  static const PreparedStatement kNodes{
      "snapshot_nodes",
      "SELECT id, active_sessions, max_sessions, load, signalling_url IS NOT NULL, "
      "array_to_json(scenes)::text, array_to_json(codecs)::text, array_to_json(cached_scenes)::text "
      "FROM nodes WHERE state = 'up' AND NOT drained"},
      kCatalogue{"snapshot_catalogue",
                 "SELECT DISTINCT ON (name) name, sha256 FROM scene_versions ORDER BY name, version DESC"};
  db_.transact([&](pqxx::work& w) {
    fleet = {};
    for (const auto& r : exec_prepared(w, kNodes))
      fleet.nodes.push_back({.id = r[0].as<int64_t>(),
                             .active = r[1].as<int>(),
                             .capacity = r[2].as<int>(),
                             .load = r[3].as<double>(),
                             .webrtc = r[4].as<bool>(),
                             .scenes = text_array(r[5]),
                             .codecs = text_array(r[6]),
                             .cached_scenes = text_array(r[7])});
    for (const auto& r : exec_prepared(w, kCatalogue))
      fleet.catalogue.emplace(r[0].as<std::string>(), r[1].as<std::string>());
  });
  snapshot_.install(std::move(fleet), start, generation);
  ++snapshot_reads_;
  return snapshot_.usable(steady_now_ns());
}

v1::Session FleetService::create_session(const SessionCaller& caller, const v1::SessionRequest& q) {
  if (const auto problem = session_shape_problem(SessionShape{.scene = q.scene(),
                                                              .eye_width = q.eye_width(),
                                                              .eye_height = q.eye_height(),
                                                              .fps = q.fps(),
                                                              .codec = requested_codec(q),
                                                              .room = requested_room(q)}))
    throw ApiError(400, problem->code, problem->message);
  const std::string transport = requested_transport(q);
  if (transport != "udp" && transport != "webrtc")
    throw ApiError(400, "invalid_transport", "transport must be udp or webrtc");
  if (transport == "webrtc" && requested_codec(q) != "h264")
    throw ApiError(400, "invalid_codec", "browser sessions stream H.264 (what every browser decodes)");
  unsigned char drawn[16 + 32];  // the id, then the key: one draw (one system call)
  randombytes_buf(drawn, sizeof(drawn));
  const std::string id = hex(std::string(reinterpret_cast<char*>(drawn), 16));
  const std::string key(reinterpret_cast<char*>(drawn) + 16, 32);
  std::optional<PlacedOn> placed;
  int conflicts = 0;
  const bool use_snapshot = !q.has_room() && snapshot_ready();
  bool from_snapshot = false;
  const NewSession session{.id = id, .key = key, .caller = caller, .request = q};
  // Each try is one statement that takes a slot and inserts the session, or does nothing: the nodes this
  // replica's picture shows best, one single-row try each; then the database's choice.
  int runs = 0;
  const auto place_in_one_statement = [&](pqxx::transaction_base& w) {
    placed.reset();
    from_snapshot = false;
    conflicts = 0;
    if (runs++ > 0) {
      // Run again (the connection was lost, outside a transaction): the session may be placed already. Its
      // id is new and random, so finding it means the earlier run committed: that placement is the answer.
      const auto rows = w.exec_params(
          "SELECT n.id, n.address, coalesce(n.signalling_url, ''), n.feed_version FROM sessions s JOIN "
          "nodes n ON n.id = s.node_id WHERE s.id = $1",
          id);
      if (!rows.empty()) {
        placed = PlacedOn{rows[0][0].as<int64_t>(), rows[0][1].as<std::string>(),
                          rows[0][2].as<std::string>(), rows[0][3].as<int64_t>()};
        return;
      }
    }
    const std::string codec = requested_codec(q);  // outlives `want`, which only views it
    const PlacementWant want{.scene = q.scene(), .codec = codec, .webrtc = transport == "webrtc"};
    for (int attempt = 0; attempt < 3 && use_snapshot; ++attempt) {
      const auto chosen = snapshot_.choose(want, steady_now_ns());
      if (!chosen) break;
      placed = place_at_once(w, session, chosen);
      if (placed) {
        from_snapshot = true;
        return;
      }
      snapshot_.missed(*chosen);
      ++conflicts;
    }
    placed = place_at_once(w, session);
  };
  // Without a room or a limit on the caller's live sessions, those statements need no transaction around
  // them: each is atomic, and one that did nothing leaves nothing. That saves the BEGIN and COMMIT round
  // trips of most placements (two of three); run again after a lost connection, it first looks for its
  // session (above).
  const bool single_statements = !q.has_room() && caller.max_live_sessions <= 0;
  if (single_statements) db_.autocommit(place_in_one_statement);
  const int conflicts_at_once = conflicts;
  // A refusal (ApiError) rolls the whole transaction back: nothing of a refused request stays.
  if (!placed)
    db_.transact([&](pqxx::work& w) {
      from_snapshot = false;
      conflicts = conflicts_at_once;
      enforce_session_limit(w, caller);
      const RoomPlacement room = q.has_room() ? join_room(w, caller, q) : RoomPlacement{};
      if (!q.has_room() && !single_statements) {
        place_in_one_statement(w);
        if (placed) return;
      }
      // The best candidates were held at that instant, or none is free: decide one at a time.
      placed = reserve_slot(w, q, room, conflicts);
      if (placed && !q.has_room()) ++conflicts;  // the statement above missed a node that had a slot
      if (!placed)
        throw ApiError(503, "no_capacity",
                       "no live, undrained node with scene \"" + q.scene() + "\" and a " +
                           requested_codec(q) + " encoder" +
                           (transport == "webrtc" ? " that takes browser sessions" : "") +
                           " has a free slot");
      w.exec_params(
          "INSERT INTO sessions (id, user_id, node_id, scene, eye_width, eye_height, fps, codec, room, "
          "state, "
          "session_key, transport, request_id, scene_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
          "'placed', "
          "$10, $11, $12, (SELECT sha256 FROM scene_versions WHERE name = $4 ORDER BY version DESC LIMIT 1))",
          id, caller.user_id, placed->node, q.scene(), q.eye_width(), q.eye_height(), q.fps(),
          requested_codec(q), requested_room(q), bytes(key), transport,
          caller.request_id.empty() ? std::nullopt : std::optional<std::string>(caller.request_id));
    });
  if (placed->created_text) {
    // The session as the node's feed shows it (node_session_message): the feed known in memory takes it.
    FeedChange added{.kind = FeedChange::Kind::kAdd,
                     .session_id = id,
                     .session = {},
                     .order_key = *placed->created_text + "|" + id};
    v1::NodeSession& shown = added.session;
    shown.set_session_id(id);
    shown.set_scene(q.scene());
    shown.set_eye_width(q.eye_width());
    shown.set_eye_height(q.eye_height());
    shown.set_fps(q.fps());
    shown.set_codec(requested_codec(q));
    shown.set_state("placed");
    shown.set_session_key(hex(key));
    shown.set_user(*placed->username);
    shown.set_transport(transport);
    if (!caller.request_id.empty()) shown.set_request_id(caller.request_id);
    if (placed->scene_sha256) shown.set_scene_sha256(*placed->scene_sha256);
    feed_changed(placed->node, placed->feed_version, &added);
  } else {
    feed_changed(placed->node, placed->feed_version);
  }
  placement_conflicts_ += uint64_t(conflicts);
  ++placements_;
  if (from_snapshot) ++placements_from_snapshot_;
  v1::Session result;
  result.set_session_id(id);
  result.set_node_id(int32_t(placed->node));
  result.set_node_address(placed->address);
  result.set_transport(transport);
  if (transport == "webrtc") {
    // The browser gets a credential for this session's signalling only, never the datagram key.
    SessionKey session_key;
    std::copy(key.begin(), key.end(), session_key.bytes.begin());
    result.set_signalling_url(placed->signalling_url);
    result.set_signalling_credential(signalling_credential(session_key));
  } else {
    result.set_session_key(hex(key));
  }
  result.set_state("placed");
  if (q.has_room()) result.set_room(q.room());
  return result;
}

v1::Room FleetService::create_room(const SessionCaller& owner, const v1::RoomRequest& q) {
  if (const auto problem = name_problem(q.name(), 128))
    throw ApiError(400, "invalid_room", "room " + *problem);
  if (const auto problem = name_problem(q.scene(), 256))
    throw ApiError(400, "invalid_scene", "scene " + *problem);
  if (q.open() && !owner.privileged)
    throw ApiError(403, "forbidden", "only operators open rooms to every user");
  if (q.members().size() > 64) throw ApiError(400, "invalid_field", "at most 64 members");
  v1::Room result;
  std::string missing;
  bool taken = false;
  db_.transact([&](pqxx::work& w) {
    missing.clear();
    w.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", "kairo-room:" + q.name());
    std::vector<std::string> ids;
    for (const std::string& member : q.members()) {
      const auto rows = w.exec_params("SELECT id FROM users WHERE username = $1", member);
      if (rows.empty()) {
        missing = member;
        return;
      }
      ids.push_back(rows[0][0].as<std::string>());
    }
    const auto inserted = w.exec_params(
        "INSERT INTO rooms (name, owner_id, scene, open, members) VALUES ($1, $2, $3, $4, $5::bigint[]) ON "
        "CONFLICT (name) DO NOTHING RETURNING (SELECT username FROM users WHERE id = $2)",
        q.name(), owner.user_id, q.scene(), q.open(), array_literal(ids));
    taken = inserted.empty();
    if (taken) return;
    result.set_name(q.name());
    result.set_scene(q.scene());
    result.set_open(q.open());
    result.set_owner(inserted[0][0].is_null() ? "" : inserted[0][0].as<std::string>());
    for (const std::string& member : q.members()) result.add_members(member);
  });
  if (!missing.empty()) throw ApiError(400, "invalid_field", "no user named \"" + missing + "\"");
  if (taken) throw ApiError(409, "room_exists", "a room with that name exists");
  return result;
}

bool FleetService::delete_room(const SessionCaller& caller, const std::string& name) {
  bool found = false;
  db_.transact([&](pqxx::work& w) {
    found = !w.exec_params("DELETE FROM rooms WHERE name = $1 AND ($3 OR owner_id = $2) RETURNING name", name,
                           caller.user_id, caller.privileged)
                 .empty();
  });
  return found;
}

std::vector<v1::Session> FleetService::list_sessions(std::optional<int64_t> user_id, const PageRequest& page,
                                                     std::string& next_cursor) {
  // Named copies, not a structured binding: clang (the fuzz build) does not let lambdas capture those.
  const auto after = time_id_cursor(page.cursor);
  const std::optional<std::string> after_time = after.first, after_id = after.second;
  const int limit = page_limit(page);
  std::vector<v1::Session> out;
  next_cursor.clear();
  db_.transact([&](pqxx::work& w) {
    out.clear();
    // Keyset order (created_at, id): indexes sessions_by_created and sessions_by_user_created.
    const std::string sql =
        std::string("SELECT ") + kSessionColumns +
        ", s.created_at::text AS created_text FROM sessions s LEFT JOIN nodes n ON n.id = s.node_id WHERE "
        "($1::bigint IS NULL OR s.user_id = $1) AND ($2::timestamptz IS NULL OR (s.created_at, s.id) > "
        "($2::timestamptz, $3)) ORDER BY s.created_at, s.id LIMIT $4";
    std::string last_key;
    for (const auto& r : w.exec_params(sql, user_id, after_time, after_id, limit + 1)) {
      if (int(out.size()) == limit) {
        next_cursor = encode_cursor(last_key);
        break;
      }
      out.push_back(session_message(r));
      last_key = r["created_text"].as<std::string>() + "|" + r["id"].as<std::string>();
    }
  });
  return out;
}

std::optional<v1::Session> FleetService::get_session(const std::string& id, std::optional<int64_t> user_id) {
  std::optional<v1::Session> out;
  db_.transact([&](pqxx::work& w) {
    const std::string sql =
        std::string("SELECT ") + kSessionColumns +
        " FROM sessions s LEFT JOIN nodes n ON n.id = s.node_id WHERE s.id = $1 AND ($2::bigint IS NULL OR "
        "s.user_id = $2)";
    const auto rows = w.exec_params(sql, id, user_id);
    if (!rows.empty()) out = session_message(rows[0]);
  });
  return out;
}

bool FleetService::end_session(const std::string& id, std::optional<int64_t> user_id) {
  bool found = false;
  std::optional<int64_t> node;
  int64_t version = 0;
  // One statement, idempotent: no transaction needed. It gives the node's slot back and moves its feed
  // version itself, in the trigger's lock order (the session's row, then its node's), and leaves that version
  // in the row, which tells the trigger it was done (migration 016). A row with the node and its new feed
  // version when this ended a live session, one without when the session was over already, none when there
  // is no such session (of the user).
  static const PreparedStatement kEnd{
      "end_session",
      "WITH target AS (SELECT id, node_id FROM sessions WHERE id = $1 AND ($2::bigint IS NULL OR user_id = "
      "$2) AND live FOR UPDATE), slot AS (UPDATE nodes SET feed_version = feed_version + 1, active_sessions "
      "= active_sessions - 1 WHERE id = (SELECT node_id FROM target) RETURNING feed_version), ended AS "
      "(UPDATE sessions SET state = 'ended', ended_at = now(), node_feed_version = (SELECT feed_version FROM "
      "slot) WHERE id = (SELECT id FROM target) RETURNING node_id, node_feed_version) SELECT node_id, "
      "node_feed_version FROM ended UNION ALL SELECT NULL, NULL FROM sessions WHERE id = $1 AND ($2::bigint "
      "IS NULL OR user_id = $2) AND NOT EXISTS (SELECT 1 FROM ended)"};
  db_.autocommit([&](pqxx::transaction_base& w) {
    const auto rows = exec_prepared(w, kEnd, id, user_id);
    found = !rows.empty();
    node = found && !rows[0][0].is_null() ? std::optional<int64_t>(rows[0][0].as<int64_t>()) : std::nullopt;
    version = node ? rows[0][1].as<int64_t>(0) : 0;
  });
  if (node) {
    const FeedChange removed{
        .kind = FeedChange::Kind::kRemove, .session_id = id, .session = {}, .order_key = {}};
    feed_changed(*node, version, &removed);
  }
  return found;
}

bool FleetService::set_quality(const std::string& id, std::optional<int64_t> user_id,
                               std::optional<int64_t> max_bitrate_bps, std::optional<int> max_fps,
                               std::optional<bool> foveation) {
  if (max_bitrate_bps && (*max_bitrate_bps < 100'000 || *max_bitrate_bps > 2'000'000'000))
    throw ApiError(400, "invalid_bitrate", "max_bitrate_bps must be 100000 to 2000000000");
  if (max_fps && (*max_fps < 1 || *max_fps > 240))
    throw ApiError(400, "invalid_fps", "max_fps must be 1 to 240");
  if (!max_bitrate_bps && !max_fps && !foveation)
    throw ApiError(400, "invalid_field", "give at least one of max_bitrate_bps, max_fps, foveation");
  std::optional<int64_t> node;
  int64_t version = 0;
  db_.transact([&](pqxx::work& w) {
    const auto rows = w.exec_params(
        "UPDATE sessions SET max_bitrate_bps = coalesce($3, max_bitrate_bps), max_fps = coalesce($4, "
        "max_fps), foveation = coalesce($5, foveation) WHERE id = $1 AND ($2::bigint IS NULL OR "
        "user_id = $2) AND live RETURNING node_id, node_feed_version",
        id, user_id, max_bitrate_bps, max_fps, foveation);
    node = rows.empty() ? std::nullopt : std::optional<int64_t>(rows[0][0].as<int64_t>());
    version = node ? rows[0][1].as<int64_t>(0) : 0;
  });
  // Caps the same as before move no version: then this announces the version of an earlier change, which
  // tells nothing new.
  if (node) feed_changed(*node, version);
  return node.has_value();
}

namespace {

constexpr const char* kNodeSessionColumns =
    "s.id, s.scene, s.eye_width, s.eye_height, s.fps, s.codec, s.state, s.max_bitrate_bps, s.session_key, "
    "s.max_fps, s.foveation, s.room, u.username, s.transport, s.request_id, s.created_at::text, "
    "s.scene_sha256";

// From kNodeSessionColumns, starting at column `at` of the row.
void node_session_message(const pqxx::row& row, pqxx::row::size_type at, v1::NodeSession& s) {
  const auto r = [&](pqxx::row::size_type column) { return row[at + column]; };
  s.set_session_id(r(0).as<std::string>());
  s.set_scene(r(1).as<std::string>());
  s.set_eye_width(r(2).as<int>());
  s.set_eye_height(r(3).as<int>());
  s.set_fps(r(4).as<int>());
  s.set_codec(r(5).as<std::string>());
  s.set_state(r(6).as<std::string>());
  s.set_session_key(hex(std::string(pqxx::binarystring(r(8)).str())));
  if (!r(7).is_null()) s.set_max_bitrate_bps(uint32_t(r(7).as<int64_t>()));
  if (!r(9).is_null()) s.set_max_fps(r(9).as<int>());
  if (!r(10).is_null()) s.set_foveation(r(10).as<bool>());
  if (!r(11).is_null()) s.set_room(r(11).as<std::string>());
  s.set_user(r(12).as<std::string>());
  s.set_transport(r(13).as<std::string>());
  if (!r(14).is_null()) s.set_request_id(r(14).as<std::string>());
  if (!r(16).is_null()) s.set_scene_sha256(r(16).as<std::string>());
}

}  // namespace

std::vector<v1::NodeSession> FleetService::node_sessions(int64_t node_id, const PageRequest& page,
                                                         std::string& next_cursor) {
  // Named copies, not a structured binding: clang (the fuzz build) does not let lambdas capture those.
  const auto after = time_id_cursor(page.cursor);
  const std::optional<std::string> after_time = after.first, after_id = after.second;
  const int limit = page_limit(page);
  std::vector<v1::NodeSession> out;
  next_cursor.clear();
  db_.transact([&](pqxx::work& w) {
    out.clear();
    std::string last_key;
    for (const auto& r :
         w.exec_params(std::string("SELECT ") + kNodeSessionColumns +
                           " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.node_id = $1 AND "
                           "s.live AND ($2::timestamptz IS NULL OR (s.created_at, s.id) > "
                           "($2::timestamptz, "
                           "$3)) ORDER BY s.created_at, s.id LIMIT $4",
                       node_id, after_time, after_id, limit + 1)) {
      if (int(out.size()) == limit) {
        next_cursor = encode_cursor(last_key);
        break;
      }
      node_session_message(r, 0, out.emplace_back());
      last_key = r[15].as<std::string>() + "|" + r[0].as<std::string>();
    }
  });
  return out;
}

int64_t FleetService::feed_version(int64_t node_id) {
  int64_t version = -1;
  static const PreparedStatement kVersion{"feed_version", "SELECT feed_version FROM nodes WHERE id = $1"};
  db_.autocommit([&](pqxx::transaction_base& w) {
    const auto rows = exec_prepared(w, kVersion, node_id);
    if (!rows.empty()) version = rows[0][0].as<int64_t>();
  });
  return version;
}

FeedContent FleetService::node_feed(int64_t node_id) {
  // The node's version and its live sessions in one statement (one snapshot, one round trip): the node row
  // with each live session beside it, or with nulls when it has none.
  static const PreparedStatement kFeed{
      "node_feed",
      std::string("SELECT n.feed_version, n.drained, s.* FROM nodes n LEFT JOIN LATERAL (SELECT ") +
          kNodeSessionColumns +
          ", s.created_at AS created FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.node_id "
          "= n.id AND s.live) s ON true WHERE n.id = $1 ORDER BY s.created, "
          "s.id"};
  FeedContent content;
  v1::NodeFeed& feed = content.feed;
  db_.autocommit([&](pqxx::transaction_base& w) {
    feed.Clear();
    content.order.clear();
    const auto rows = exec_prepared(w, kFeed, node_id);
    if (rows.empty()) throw ApiError(404, "not_found", "no such node");
    content.version = rows[0][0].as<int64_t>();
    feed.set_cursor(std::to_string(content.version));
    feed.set_drained(rows[0][1].as<bool>());
    feed.set_changed(true);
    for (const auto& r : rows) {
      if (r[2].is_null()) continue;
      node_session_message(r, 2, *feed.add_sessions());
      content.order.push_back(r[2 + 15].as<std::string>() + "|" + r[2].as<std::string>());
    }
  });
  feed.set_heartbeat_interval_ms(int32_t(std::lround(heartbeat_interval_s_ * 1000.0)));
  return content;
}

bool FleetService::report_session_state(int64_t node_id, const std::string& session_id,
                                        const std::string& state, const std::string& reason) {
  if (state != "running" && state != "ended" && state != "failed")
    throw ApiError(400, "invalid_state", "state must be running, ended or failed");
  bool found = false, ended = false;
  int64_t version = 0;
  // One statement, idempotent (a repeated report changes nothing): no transaction needed.
  // Only forward: placed -> running -> ended/failed. A session the client already ended stays ended. A row
  // saying whether this report ended a live session and whether it changed the session at all; none when
  // the session is not on this node.
  static const PreparedStatement kReport{
      "report_session_state",
      "WITH moved AS (UPDATE sessions SET state = $3::text, failure_reason = CASE WHEN $3::text = 'failed' "
      "THEN $4 ELSE failure_reason END, ended_at = CASE WHEN $3::text <> 'running' THEN now() ELSE ended_at "
      "END WHERE id = $1 AND node_id = $2 AND (state = 'placed' AND $3::text = 'running' OR live AND "
      "$3::text <> 'running') RETURNING state <> 'running' AS ended, "
      "node_feed_version) SELECT ended, node_feed_version, true FROM moved UNION ALL SELECT false, NULL, "
      "false FROM sessions WHERE id = $1 AND node_id = $2 AND NOT EXISTS (SELECT 1 FROM moved)"};
  bool moved = false;
  db_.autocommit([&](pqxx::transaction_base& w) {
    const auto rows = exec_prepared(w, kReport, session_id, node_id, state, reason);
    found = !rows.empty();
    ended = found && rows[0][0].as<bool>();
    moved = found && rows[0][2].as<bool>();
    version = ended ? rows[0][1].as<int64_t>(0) : 0;
  });
  // placed -> running moves no version (-1); the feed kept in memory shows it too
  if (ended || moved) {
    const FeedChange change{.kind = ended ? FeedChange::Kind::kRemove : FeedChange::Kind::kRunning,
                            .session_id = session_id,
                            .session = {},
                            .order_key = {}};
    feed_changed(node_id, ended ? version : -1, &change);
  }
  return found;
}

void FleetService::on_feed_changed(FeedListener listener) {
  auto shared = listener ? std::make_shared<const FeedListener>(std::move(listener)) : nullptr;
  std::lock_guard lock(feed_listener_mutex_);
  feed_listener_ = std::move(shared);
}

void FleetService::feed_changed(int64_t node, int64_t version, const FeedChange* change) {
  std::shared_ptr<const FeedListener> listener;
  {
    std::lock_guard lock(feed_listener_mutex_);
    listener = feed_listener_;
  }
  if (listener) (*listener)(node, version, change);
}

DownNodeSweeper::DownNodeSweeper(FleetService& fleet, double interval_s)
    : fleet_(fleet), interval_s_(interval_s) {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::duration<double>(interval_s_), [this] { return stopping_; })) {
      lock.unlock();
      try {
        fleet_.sweep_down_nodes();
      } catch (const std::exception&) {
        // database briefly unavailable: the next sweep catches up
      }
      lock.lock();
    }
  });
}

DownNodeSweeper::~DownNodeSweeper() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

}  // namespace kairo::control
