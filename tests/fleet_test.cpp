// Nodes, placement and session lifecycle through the HTTP API of two replicas on one real PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>
#include <tuple>

#include "control-plane/api_json.hpp"
#include "control-plane/control_api.hpp"
#include "control-plane/feed_content.hpp"
#include "control-plane/heartbeat_writer.hpp"
#include "control-plane/http_client.hpp"
#include "control-plane/node_feed_hub.hpp"
#include "core/clock.hpp"
#include "tests/metrics_text.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

using nlohmann::json;
const std::string kNodeToken = "fleet-test-node-token-0123456789";

struct Replica {
  Replica(const std::string& url, const std::string& key,
          int64_t snapshot_max_age_ns = FleetService::kSnapshotMaxAgeNs)
      : db(url, 8),
        tokens(key),
        auth(db, tokens),
        fleet(db, 0.2, snapshot_max_age_ns),
        // No per-user session limit here: these tests fill nodes with few users (the limit is tested in
        // security_test.cpp).
        api(db, auth, tokens, fleet, kNodeToken,
            RateLimits{.sessions_per_user_per_minute = 0,
                       .max_live_sessions_client = 0,
                       .max_live_sessions_operator = 0}),
        server(api.serving(HttpServerOptions{.listen = "127.0.0.1:0", .threads = 4}),
               [this](const HttpRequest& r) { return api.handle(r); }) {}
  Database db;
  AccessTokens tokens;
  AuthService auth;
  FleetService fleet;
  ControlApi api;
  HttpServer server;
  control::HttpResult call(const std::string& method, const std::string& target, const std::string& body = "",
                           const std::string& bearer = "") {
    return control::http_request(server.port(), method, target, body, bearer);
  }
};

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg = std::make_unique<test::PostgresServer>();
    {
      Database db(pg->url(), 1);
      db.migrate();
    }
    const std::string key(48, 'f');
    a = std::make_unique<Replica>(pg->url(), key);
    b = std::make_unique<Replica>(pg->url(), key);
    a->auth.bootstrap_admin("admin", "admin-password");
  }
  std::string login(Replica& r, const std::string& user, const std::string& password) {
    const auto res =
        r.call("POST", "/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(res.status, 200) << res.body;
    return json::parse(res.body).value("access_token", "");
  }
  int64_t register_node(const std::string& name, int capacity, std::vector<std::string> scenes = {"vr-room"},
                        std::vector<std::string> encoders = {"x264:h264", "x265:hevc"},
                        Replica* through = nullptr) {
    const auto res = (through ? through : a.get())
                         ->call("POST", "/v1/nodes/register",
                                json{{"name", name},
                                     {"address", "127.0.0.1:9" + std::to_string(capacity)},
                                     {"device", "test"},
                                     {"encoders", encoders},
                                     {"scenes", scenes},
                                     {"max_sessions", capacity}}
                                    .dump(),
                                kNodeToken);
    EXPECT_EQ(res.status, 201) << res.body;
    return json::parse(res.body).value("node_id", int64_t(0));
  }
  // `count` sessions of the vr-room scene created through `through` for the token's user; their ids.
  std::vector<std::string> create_sessions(Replica& through, const std::string& token, int count) {
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      const auto created = through.call(
          "POST", "/v1/sessions", R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", token);
      EXPECT_EQ(created.status, 201) << created.body;
      if (created.status == 201) ids.push_back(json::parse(created.body)["session_id"].get<std::string>());
    }
    return ids;
  }
  // A new node of `capacity` slots, a new client user, and `count` sessions of that user on it.
  struct UserOnNode {
    int64_t node = 0;
    std::string node_path;  // "/v1/nodes/{id}/sessions/": the node's report route, before a session id
    std::string token;      // the user's
    std::vector<std::string> ids;
  };
  UserOnNode user_with_sessions_on_new_node(const std::string& name, int capacity, int count) {
    UserOnNode out;
    out.node = register_node(name, capacity);
    out.node_path = "/v1/nodes/" + std::to_string(out.node) + "/sessions/";
    a->auth.create_user(name + "-user", name + "-password", Role::kClient);
    out.token = login(*a, name + "-user", name + "-password");
    out.ids = create_sessions(*a, out.token, count);
    EXPECT_EQ(out.ids.size(), size_t(count));
    return out;
  }
  // Until both replicas hear the announcements on kairo_placement_inputs (their pictures of the fleet follow
  // changes made anywhere from then on).
  void wait_until_both_replicas_listen() {
    for (Replica* r : {a.get(), b.get()}) {
      const auto deadline = steady_now_ns() + 5'000'000'000;
      while (test::metric_sample(r->call("GET", "/metrics").body, "kairo_node_feed_listening") != 1 &&
             steady_now_ns() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The listener tells the fleet service it hears announcements just after the metric says so.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A counter's value in a replica's /metrics, -1 when absent.
  static double metric_of(Replica& replica, const std::string& series) {
    return test::metric_sample(replica.call("GET", "/metrics").body, series).value_or(-1);
  }
  double metric_of_a(const std::string& series) { return metric_of(*a, series); }
  std::unique_ptr<test::PostgresServer> pg;
  std::unique_ptr<Replica> a, b;
};

TEST_F(FleetTest, two_hundred_concurrent_creations_through_two_replicas_never_exceed_capacity) {
  // Pictures of the fleet that never age: only announcements make a replica read again, so the burst below
  // places from them unless an announcement lands in it (with the default 200 ms, one thread reading a stale
  // picture while 15 others filled every slot through the database made "none from a picture" 1 run in 3).
  const std::string key(48, 'f');
  constexpr int64_t kHour = 3'600'000'000'000;
  a = std::make_unique<Replica>(pg->url(), key, kHour);
  b = std::make_unique<Replica>(pg->url(), key, kHour);
  wait_until_both_replicas_listen();
  const std::string admin = login(*a, "admin", "admin-password");
  std::vector<int64_t> live = {register_node("n1", 5), register_node("n2", 7), register_node("n3", 8)};
  const int64_t drained = register_node("drained", 50),
                wrong_scene = register_node("other-scene", 50, {"stress"}), down = register_node("down", 50);
  ASSERT_EQ(a->call("POST", "/v1/nodes/" + std::to_string(drained) + "/drain", "", admin).status, 200);
  a->db.transact([&](pqxx::work& w) {
    w.exec_params("UPDATE nodes SET last_heartbeat = now() - interval '1 hour' WHERE id = $1", down);
  });
  a->fleet.sweep_down_nodes();

  std::vector<std::string> users;
  for (int u = 0; u < 8; ++u) {
    a->auth.create_user("user" + std::to_string(u), "user-password", Role::kClient);
    users.push_back(login(u % 2 ? *b : *a, "user" + std::to_string(u), "user-password"));
  }
  constexpr const char* kSession = R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})";
  const auto from_pictures = [&] {
    return test::metric_sample(a->call("GET", "/metrics").body, "kairo_placements_from_snapshot_total")
               .value_or(0) +
           test::metric_sample(b->call("GET", "/metrics").body, "kairo_placements_from_snapshot_total")
               .value_or(0);
  };
  // Warm-up, one at a time on each replica, until a creation finds its replica's picture as the previous one
  // left it: the announcements of the registrations, the drain and the sweep above have all landed.
  int warm_up = 0;
  for (Replica* r : {a.get(), b.get()}) {
    for (int here = 0; here < 4; ++here) {
      const auto reads = [&] {
        return test::metric_sample(r->call("GET", "/metrics").body, "kairo_placement_snapshot_reads_total");
      };
      const auto before = reads();
      ASSERT_EQ(r->call("POST", "/v1/sessions", kSession, users[0]).status, 201);
      ++warm_up;
      if (here > 0 && reads() == before) break;
    }
  }
  ASSERT_LE(warm_up, 8);
  const double from_pictures_before = from_pictures();

  std::atomic<int> created{0}, full{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t)
    threads.emplace_back([&, t] {
      Replica& r = t % 2 ? *b : *a;
      for (int i = 0; i < 200 / 16 + (t < 200 % 16); ++i) {
        const auto res = r.call("POST", "/v1/sessions", kSession, users[size_t(t % 8)]);
        (res.status == 201 ? created : res.status == 503 ? full : other)++;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(created + full + other, 200);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(warm_up + created, 20);  // every free slot used, none beyond
  const json nodes = json::parse(a->call("GET", "/v1/nodes", "", admin).body);
  std::map<int64_t, json> by_id;
  for (const auto& n : nodes) by_id[n["node_id"].get<int64_t>()] = n;
  for (int64_t id : live) EXPECT_EQ(by_id[id]["active_sessions"], by_id[id]["max_sessions"]) << id;
  for (int64_t id : {drained, wrong_scene, down}) EXPECT_EQ(by_id[id]["active_sessions"], 0) << id;
  const std::string metrics = b->call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("kairo_sessions{state=\"placed\"} 20"), std::string::npos) << metrics;
  // Each replica counts what it placed, and the candidates it found held or taken on the way.
  const std::string metrics_a = a->call("GET", "/metrics").body;
  EXPECT_EQ(test::metric_sample(metrics, "kairo_placements_total").value_or(0) +
                test::metric_sample(metrics_a, "kairo_placements_total").value_or(0),
            20);
  EXPECT_TRUE(test::metric_sample(metrics, "kairo_placement_conflicts_total").has_value());
  // The burst too placed from the replicas' pictures of the fleet (a request arriving while its replica reads
  // the fleet lets the database choose instead).
  EXPECT_GT(from_pictures(), from_pictures_before);
  EXPECT_NE(metrics.find("kairo_nodes{state=\"down\"} 1"), std::string::npos);
  const json capacity = json::parse(b->call("GET", "/v1/capacity", "", admin).body);
  EXPECT_EQ(capacity["session_slots_free"], 50);  // only on the node that lacks the scene
  EXPECT_EQ(capacity["nodes_down"], 1);
}

// Each replica chooses the node to try from its own picture of the fleet (one single-row update per placement
// instead of PostgreSQL scanning every node), and a change made through any replica drops that picture at
// once. Here the pictures never age (an hour), so only the announcements can make a replica read again.
TEST_F(FleetTest, placement_chooses_from_the_replicas_picture_of_the_fleet_which_changes_anywhere_drop) {
  const std::string key(48, 'f');
  constexpr int64_t kHour = 3'600'000'000'000;
  a = std::make_unique<Replica>(pg->url(), key, kHour);
  b = std::make_unique<Replica>(pg->url(), key, kHour);
  const std::string admin = login(*a, "admin", "admin-password");
  wait_until_both_replicas_listen();
  const auto metric = [](Replica& r, const std::string& name) {
    return test::metric_sample(r.call("GET", "/metrics").body, name).value_or(-1);
  };
  const auto create = [&](Replica& r, const std::string& scene = "vr-room") {
    const auto res =
        r.call("POST", "/v1/sessions",
               json{{"scene", scene}, {"eye_width", 64}, {"eye_height", 64}, {"fps", 30}}.dump(), admin);
    EXPECT_EQ(res.status, 201) << res.body;
    const json body = json::parse(res.body);
    return std::pair{body.value("node_id", int64_t(-1)), body.value("session_id", std::string())};
  };
  const int64_t first = register_node("first", 200), studio = register_node("studio", 1, {"stress"});
  // The registrations' own announcements reach a within milliseconds; each drops a's picture once more.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const double reads_before = metric(*a, "kairo_placement_snapshot_reads_total");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(create(*a).first, first);
  EXPECT_EQ(metric(*a, "kairo_placement_snapshot_reads_total"), reads_before + 1);  // one read, 3 placements
  EXPECT_EQ(metric(*a, "kairo_placements_from_snapshot_total"), 3);

  // A node registered through b: a hears of it, reads the fleet again and the empty node comes first (until
  // then a's picture does not show it, and a keeps placing on "first").
  const int64_t second = register_node("second", 4, {"vr-room"}, {"x264:h264"}, b.get());
  int64_t placed = -1;
  for (const int64_t deadline = steady_now_ns() + 5'000'000'000;
       placed != second && steady_now_ns() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    placed = create(*a).first;
  }
  EXPECT_EQ(placed, second);
  EXPECT_EQ(metric(*a, "kairo_placement_snapshot_reads_total"), reads_before + 2);

  // A slot freed through b is not announced (slot counts are not): a's picture shows "studio" full, so the
  // database chooses, and finds the slot; then it is full.
  const auto [on, id] = create(*a, "stress");
  EXPECT_EQ(on, studio);
  ASSERT_EQ(b->call("DELETE", "/v1/sessions/" + id, "", admin).status, 204);
  const double from_snapshot = metric(*a, "kairo_placements_from_snapshot_total");
  EXPECT_EQ(create(*a, "stress").first, studio);
  EXPECT_EQ(metric(*a, "kairo_placements_from_snapshot_total"), from_snapshot);
  const auto refused =
      a->call("POST", "/v1/sessions", R"({"scene":"stress","eye_width":64,"eye_height":64,"fps":30})", admin);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(metric(*a, "kairo_placement_snapshot_reads_total"), reads_before + 2);  // nothing announced
}

// One session shape (core/session_shape.hpp): what no node could run is refused before placement, with the
// reason, and never placed.
TEST_F(FleetTest, a_session_no_node_can_serve_gets_a_400_or_503_with_the_reason_and_is_never_placed) {
  register_node("h264-only", 8, {"vr-room"}, {"x264:h264"});
  const std::string admin = login(*a, "admin", "admin-password");
  const auto create = [&](int w, int h, const std::string& codec) {
    return a->call(
        "POST", "/v1/sessions",
        json{{"scene", "vr-room"}, {"eye_width", w}, {"eye_height", h}, {"fps", 30}, {"codec", codec}}.dump(),
        admin);
  };
  const auto odd = create(250, 256, "h264");
  EXPECT_EQ(odd.status, 400) << odd.body;
  EXPECT_NE(odd.body.find("multiples of 8"), std::string::npos) << odd.body;
  const auto av1 = create(256, 256, "av1");
  EXPECT_EQ(av1.status, 400) << av1.body;
  EXPECT_NE(av1.body.find("invalid_codec"), std::string::npos) << av1.body;
  // HEVC is a codec Kairo encodes, but no registered node has an HEVC encoder: 503 naming it.
  const auto hevc = create(256, 256, "hevc");
  EXPECT_EQ(hevc.status, 503) << hevc.body;
  EXPECT_NE(hevc.body.find("hevc encoder"), std::string::npos) << hevc.body;
  int64_t placed = 0;
  a->db.transact(
      [&](pqxx::work& w) { placed = w.exec("SELECT count(*) FROM sessions")[0][0].as<int64_t>(); });
  EXPECT_EQ(placed, 0);
  // A node that can encode HEVC takes it; H.264 still goes anywhere.
  a->call("POST", "/v1/nodes/register",
          json{{"name", "hevc-too"},
               {"address", "127.0.0.1:9100"},
               {"encoders", {"x264:h264", "x265:hevc"}},
               {"scenes", {"vr-room"}},
               {"max_sessions", 2}}
              .dump(),
          kNodeToken);
  const auto placed_hevc = create(256, 256, "hevc");
  ASSERT_EQ(placed_hevc.status, 201) << placed_hevc.body;
  EXPECT_EQ(json::parse(placed_hevc.body)["node_address"], "127.0.0.1:9100");
  EXPECT_EQ(create(256, 256, "h264").status, 201);
}

// The heartbeat interval is the control plane's: nodes are told it when they register and in every answer.
TEST_F(FleetTest, nodes_are_told_the_heartbeat_interval) {
  const auto registered =
      a->call("POST", "/v1/nodes/register",
              json{{"name", "told"}, {"address", "127.0.0.1:9001"}, {"max_sessions", 1}}.dump(), kNodeToken);
  ASSERT_EQ(registered.status, 201);
  EXPECT_EQ(json::parse(registered.body)["heartbeat_interval_ms"], 200);  // FleetService(db, 0.2) here
  const std::string id = std::to_string(json::parse(registered.body)["node_id"].get<int64_t>());
  const auto beat = a->call("POST", "/v1/nodes/" + id + "/heartbeat", "{}", kNodeToken);
  EXPECT_EQ(json::parse(beat.body)["heartbeat_interval_ms"], 200);
}

TEST_F(FleetTest, a_node_that_stops_heartbeating_is_marked_down_and_its_sessions_fail) {
  const int64_t node = register_node("beating", 4);
  a->auth.create_user("gina", "gina-password", Role::kClient);
  const std::string gina = login(*a, "gina", "gina-password");
  const auto created = a->call("POST", "/v1/sessions",
                               R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", gina);
  ASSERT_EQ(created.status, 201) << created.body;
  const json session = json::parse(created.body);
  EXPECT_EQ(session["session_key"].get<std::string>().size(), 64u);
  EXPECT_EQ(a->call("POST", "/v1/nodes/" + std::to_string(node) + "/heartbeat", R"({"load":0.5})", kNodeToken)
                .status,
            200);
  const int64_t beat = steady_now_ns();
  DownNodeSweeper sweeper(a->fleet, 0.1);
  // Down after 3 missed intervals of 0.2 s: wait for it (bounded), and check it was not declared early.
  json after;
  for (int i = 0; i < 100; ++i) {
    after = json::parse(
        a->call("GET", "/v1/sessions/" + session["session_id"].get<std::string>(), "", gina).body);
    if (after["state"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(double(steady_now_ns() - beat) * 1e-9, 0.55) << "declared down before 3 missed heartbeats";
  EXPECT_EQ(after["state"], "failed");
  EXPECT_EQ(after["failure_reason"], "node stopped responding");
  EXPECT_EQ(a->call("POST", "/v1/sessions",
                    R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", gina)
                .status,
            503);
}

// The node's slot counter and feed version follow every way a session changes (migration 013's trigger):
// a "running" report changes neither, new caps bump the version only, a failure reported by the node and an
// end by the user give the slot back and bump the version, and a repeated end changes nothing.
TEST_F(FleetTest, the_slot_counter_and_feed_version_follow_every_change_of_a_session) {
  const auto [node, node_path, hana, ids] = user_with_sessions_on_new_node("counted", 4, 3);
  ASSERT_EQ(ids.size(), 3u);
  // (slots taken, feed version, live sessions counted)
  const auto node_state = [&] {
    std::tuple<int, int64_t, int> out;
    a->db.transact([&](pqxx::work& w) {
      const auto r = w.exec_params(
          "SELECT active_sessions, feed_version, (SELECT count(*) FROM sessions WHERE node_id = $1 AND state "
          "IN "
          "('placed','running')) FROM nodes WHERE id = $1",
          node)[0];
      out = {r[0].as<int>(), r[1].as<int64_t>(), r[2].as<int>()};
    });
    return out;
  };
  const auto [slots0, version0, live0] = node_state();
  EXPECT_EQ(slots0, 3);
  EXPECT_EQ(live0, 3);

  ASSERT_EQ(a->call("POST", node_path + ids[0], R"({"state":"running"})", kNodeToken).status, 204);
  EXPECT_EQ(node_state(), std::make_tuple(3, version0, 3)) << "a running report changes neither";

  ASSERT_EQ(a->call("PATCH", "/v1/sessions/" + ids[1] + "/quality", R"({"max_fps":45})", hana).status, 200);
  EXPECT_EQ(node_state(), std::make_tuple(3, version0 + 1, 3)) << "new caps: the node must hear of them";

  ASSERT_EQ(
      a->call("POST", node_path + ids[1], R"({"state":"failed","reason":"encoder gone"})", kNodeToken).status,
      204);
  EXPECT_EQ(node_state(), std::make_tuple(2, version0 + 2, 2));

  ASSERT_EQ(a->call("DELETE", "/v1/sessions/" + ids[0], "", hana).status, 204);
  EXPECT_EQ(node_state(), std::make_tuple(1, version0 + 3, 1));
  ASSERT_EQ(a->call("DELETE", "/v1/sessions/" + ids[0], "", hana).status, 204);
  ASSERT_EQ(a->call("POST", node_path + ids[0], R"({"state":"ended"})", kNodeToken).status, 204);
  EXPECT_EQ(node_state(), std::make_tuple(1, version0 + 3, 1)) << "a session already ended changes nothing";
}

// A user's end does the node's bookkeeping in its own statement and the trigger does it for a node's report
// (migration 016): racing for the same sessions through two replicas, exactly one of the two gives each slot
// back and moves the feed version, never both and never neither.
TEST_F(FleetTest, ends_racing_the_nodes_reports_give_each_slot_back_exactly_once) {
  const auto [node, node_path, jo, ids] = user_with_sessions_on_new_node("raced", 40, 40);
  ASSERT_EQ(ids.size(), 40u);
  // Half of them running first: the end finds both states.
  for (size_t i = 0; i < ids.size(); i += 2)
    ASSERT_EQ(b->call("POST", node_path + ids[i], R"({"state":"running"})", kNodeToken).status, 204);
  const auto node_row = [&] {
    std::pair<int, int64_t> out;
    a->db.transact([&](pqxx::work& w) {
      const auto r = w.exec_params("SELECT active_sessions, feed_version FROM nodes WHERE id = $1", node)[0];
      out = {r[0].as<int>(), r[1].as<int64_t>()};
    });
    return out;
  };
  const auto [slots_before, version_before] = node_row();
  ASSERT_EQ(slots_before, 40);

  std::atomic<int> refused{0};
  std::thread user([&] {
    for (const auto& id : ids)
      if (a->call("DELETE", "/v1/sessions/" + id, "", jo).status != 204) ++refused;
  });
  std::thread reporter([&] {
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string report = i % 4 < 2 ? R"({"state":"ended"})" : R"({"state":"failed","reason":"gone"})";
      if (b->call("POST", node_path + ids[i], report, kNodeToken).status != 204) ++refused;
    }
  });
  user.join();
  reporter.join();
  EXPECT_EQ(refused, 0);
  const auto [slots_after, version_after] = node_row();
  EXPECT_EQ(slots_after, 0) << "every slot given back once";
  EXPECT_EQ(version_after, version_before + 40) << "one feed version per session ended";
  a->db.transact([&](pqxx::work& w) {
    EXPECT_EQ(
        w.exec_params("SELECT count(*) FROM sessions WHERE node_id = $1 AND live", node)[0][0].as<int>(), 0);
    // Each row holds the version its end made: 40 distinct versions, the last the node's.
    const auto r = w.exec_params(
        "SELECT count(DISTINCT node_feed_version), max(node_feed_version) FROM sessions WHERE node_id = $1",
        node)[0];
    EXPECT_EQ(r[0].as<int>(), 40);
    EXPECT_EQ(r[1].as<int64_t>(), version_after);
  });
}

// A node's "running" report (placed -> running), one of the three writes of every session at the fleet's
// churn rate, is a HOT update: the row's new version stays on its page and no index entry is written
// (migration 015). An index or predicate on state would quietly undo that; this test would then fail.
TEST_F(FleetTest, a_running_report_is_a_hot_update_that_writes_no_index) {
  const auto [node, node_path, ines, ids] = user_with_sessions_on_new_node("hot", 4, 3);
  ASSERT_EQ(ids.size(), 3u);
  // (updates, of which HOT) of sessions, as the statistics have them: backends send theirs within about
  // a second of going idle.
  const auto updates = [&] {
    std::pair<int64_t, int64_t> out;
    a->db.transact([&](pqxx::work& w) {
      w.exec("SELECT pg_stat_clear_snapshot()");
      const auto r = w.exec(
          "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = "
          "'sessions'")[0];
      out = {r[0].as<int64_t>(), r[1].as<int64_t>()};
    });
    return out;
  };
  const auto [updated0, hot0] = updates();
  for (const auto& id : ids)
    ASSERT_EQ(a->call("POST", node_path + id, R"({"state":"running"})", kNodeToken).status, 204);
  auto [updated, hot] = updates();
  for (int waited_ms = 0; updated - updated0 < 3 && waited_ms < 15'000; waited_ms += 100) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::tie(updated, hot) = updates();
  }
  EXPECT_EQ(updated - updated0, 3) << "the three reports, each one update";
  EXPECT_EQ(hot - hot0, 3) << "every one of them HOT";
}

TEST_F(FleetTest, sessions_belong_to_their_user_and_operators_see_all) {
  register_node("n", 10);
  a->auth.create_user("hal", "hal-password", Role::kClient);
  a->auth.create_user("ivy", "ivy-password", Role::kClient);
  a->auth.create_user("op", "op-password", Role::kOperator);
  const std::string hal = login(*a, "hal", "hal-password"), ivy = login(*a, "ivy", "ivy-password"),
                    op = login(*a, "op", "op-password");
  const json s = json::parse(
      a->call("POST", "/v1/sessions",
              R"({"scene":"vr-room","eye_width":512,"eye_height":512,"fps":72,"codec":"hevc"})", hal)
          .body);
  const std::string path = "/v1/sessions/" + s["session_id"].get<std::string>();
  EXPECT_EQ(a->call("GET", path, "", hal).status, 200);
  EXPECT_EQ(a->call("GET", path, "", ivy).status, 404);  // not theirs: indistinguishable from absent
  EXPECT_EQ(a->call("GET", path, "", op).status, 200);
  EXPECT_EQ(json::parse(a->call("GET", "/v1/sessions", "", ivy).body).size(), 0u);
  EXPECT_EQ(json::parse(a->call("GET", "/v1/sessions", "", op).body).size(), 1u);
  EXPECT_EQ(a->call("PATCH", path + "/quality", R"({"max_bitrate_bps":8000000})", hal).status, 200);
  EXPECT_EQ(a->call("PATCH", path + "/quality", R"({"max_bitrate_bps":8000000})", ivy).status, 404);
  EXPECT_EQ(json::parse(a->call("GET", path, "", hal).body)["max_bitrate_bps"], 8000000);
  // Frame-rate and foveation caps join the bitrate cap; the node sees all three with the session's key.
  EXPECT_EQ(a->call("PATCH", path + "/quality", R"({"max_fps":30,"foveation":false})", hal).status, 200);
  EXPECT_EQ(a->call("PATCH", path + "/quality", R"({})", hal).status, 400);
  EXPECT_EQ(a->call("PATCH", path + "/quality", R"({"max_fps":0})", hal).status, 400);
  EXPECT_EQ(a->call("PATCH", path + "/quality", R"({"max_fps":"fast"})", hal).status, 400);
  const json caps = json::parse(a->call("GET", path, "", hal).body);
  EXPECT_EQ(caps["max_bitrate_bps"], 8000000);
  EXPECT_EQ(caps["max_fps"], 30);
  EXPECT_EQ(caps["foveation"], false);
  EXPECT_FALSE(caps.contains("session_key"));  // the key is handed out once, at creation
  const json placed = json::parse(
      a->call("GET", "/v1/nodes/" + std::to_string(s["node_id"].get<int>()) + "/sessions", "", kNodeToken)
          .body);
  ASSERT_EQ(placed.size(), 1u);
  EXPECT_EQ(placed[0]["max_fps"], 30);
  EXPECT_EQ(placed[0]["session_key"], s["session_key"]);
  EXPECT_EQ(a->call("GET", "/v1/nodes/1/sessions", "", hal).status, 401);  // users are not nodes
  EXPECT_EQ(a->call("DELETE", path, "", ivy).status, 404);
  EXPECT_EQ(a->call("DELETE", path, "", hal).status, 204);
  EXPECT_EQ(json::parse(a->call("GET", path, "", hal).body)["state"], "ended");
  EXPECT_EQ(
      a->call("POST", "/v1/sessions", R"({"scene":"vr-room","eye_width":5,"eye_height":512,"fps":72})", hal)
          .status,
      400);
  EXPECT_EQ(a->call("POST", "/v1/sessions",
                    R"({"scene":"vr-room","eye_width":512,"eye_height":512,"fps":72,"gpu":"all"})", hal)
                .status,
            400);
}

TEST_F(FleetTest, a_database_restart_under_load_loses_no_acknowledged_session_and_the_api_recovers) {
  register_node("steady", 1000);
  std::vector<std::string> users;  // one per client thread, to stay under the per-user creation rate limit
  for (int t = 0; t < 4; ++t) {
    a->auth.create_user("load" + std::to_string(t), "load-password", Role::kClient);
    users.push_back(login(*a, "load" + std::to_string(t), "load-password"));
  }
  std::mutex mutex;
  std::vector<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::atomic<int> unavailable{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      Replica& r = t % 2 ? *b : *a;
      while (!stop) {
        try {
          const auto res =
              r.call("POST", "/v1/sessions", R"({"scene":"vr-room","eye_width":64,"eye_height":64,"fps":30})",
                     users[size_t(t)]);
          if (res.status == 201) {
            std::lock_guard lock(mutex);
            acknowledged.push_back(json::parse(res.body)["session_id"].get<std::string>());
          } else if (res.status == 503) {
            ++unavailable;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
          } else if (res.status == 429) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          } else {
            ADD_FAILURE() << res.status << " " << res.body;
          }
        } catch (const std::exception&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pg->stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pg->start();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(unavailable, 0);  // the outage was seen as 503s, not 500s or crashes
  EXPECT_EQ(a->call("GET", "/readyz").status, 200);
  EXPECT_EQ(b->call("GET", "/readyz").status, 200);
  ASSERT_FALSE(acknowledged.empty());
  int present = 0;
  a->db.transact([&](pqxx::work& w) {
    for (const std::string& id : acknowledged)
      present += int(w.exec_params("SELECT 1 FROM sessions WHERE id = $1", id).size());
  });
  EXPECT_EQ(present, int(acknowledged.size()));
}

TEST_F(FleetTest, the_sessions_of_a_room_share_one_node_or_are_refused_with_the_reason) {
  register_node("room-a", 2);
  register_node("room-b", 2);
  const std::string token = login(*a, "admin", "admin-password");
  auto create = [&](Replica& r, const std::string& room, const std::string& scene = "vr-room") {
    return r.call(
        "POST", "/v1/sessions",
        json{{"scene", scene}, {"eye_width", 64}, {"eye_height", 64}, {"fps", 30}, {"room", room}}.dump(),
        token);
  };
  const auto first = create(*a, "lobby");
  ASSERT_EQ(first.status, 201) << first.body;
  const json one = json::parse(first.body);
  EXPECT_EQ(one["room"], "lobby");
  // The second member joins the same node even though the other node is emptier (through the other replica).
  const json two = json::parse(create(*b, "lobby").body);
  EXPECT_EQ(two["node_id"], one["node_id"]);
  // The node is full: a third member is refused with the room's reason, while other rooms still fit.
  const auto third = create(*a, "lobby");
  EXPECT_EQ(third.status, 503);
  EXPECT_NE(third.body.find("room_unavailable"), std::string::npos) << third.body;
  EXPECT_NE(third.body.find("is full"), std::string::npos) << third.body;
  const json other = json::parse(create(*a, "garden").body);
  EXPECT_NE(other["node_id"], one["node_id"]);
  // A room runs one scene.
  register_node("room-c", 2, {"vr-room", "stress"});
  const auto wrong_scene = create(*a, "garden", "stress");
  EXPECT_EQ(wrong_scene.status, 503);
  EXPECT_NE(wrong_scene.body.find("is for scene vr-room"), std::string::npos) << wrong_scene.body;
  // A member leaves: a newcomer takes the free slot on the room's node.
  EXPECT_EQ(a->call("DELETE", "/v1/sessions/" + two["session_id"].get<std::string>(), "", token).status, 204);
  const json again = json::parse(create(*b, "lobby").body);
  EXPECT_EQ(again["node_id"], one["node_id"]);
}

TEST_F(FleetTest, members_joining_a_room_at_once_through_two_replicas_all_land_on_one_node) {
  for (int n = 0; n < 3; ++n) register_node("party-" + std::to_string(n), 10);
  const std::string token = login(*a, "admin", "admin-password");
  std::mutex mutex;
  std::map<int64_t, int> placed;
  int refused = 0;
  std::vector<std::thread> joins;
  for (int i = 0; i < 24; ++i)
    joins.emplace_back([&, i] {
      const auto r =
          (i % 2 ? *a : *b)
              .call("POST", "/v1/sessions",
                    R"({"scene":"vr-room","eye_width":64,"eye_height":64,"fps":30,"room":"party"})", token);
      std::lock_guard lock(mutex);
      if (r.status == 201)
        ++placed[json::parse(r.body)["node_id"].get<int64_t>()];
      else
        ++refused;
    });
  for (auto& t : joins) t.join();
  ASSERT_EQ(placed.size(), 1u);          // one node for the whole room
  EXPECT_EQ(placed.begin()->second, 8);  // a room's limit (the node has 10 slots)
  EXPECT_EQ(refused, 16);
}

TEST_F(FleetTest, an_empty_room_goes_back_to_the_node_that_keeps_its_state) {
  for (int n = 0; n < 3; ++n) register_node("den-" + std::to_string(n), 2);
  const std::string token = login(*a, "admin", "admin-password");
  auto create = [&](const std::string& room) {
    json body{{"scene", "vr-room"}, {"eye_width", 64}, {"eye_height", 64}, {"fps", 30}};
    if (!room.empty()) body["room"] = room;
    const auto r = a->call("POST", "/v1/sessions", body.dump(), token);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body);
  };
  const json first = create("den");
  EXPECT_EQ(a->call("DELETE", "/v1/sessions/" + first["session_id"].get<std::string>(), "", token).status,
            204);
  // The room's node now carries another session, so the least loaded choice would be another node.
  const json other = create("");
  ASSERT_EQ(other["node_id"], first["node_id"]);
  const json back = create("den");
  EXPECT_EQ(back["node_id"], first["node_id"]);
}

// Draining is how operators empty a node before maintenance: it keeps its live sessions, takes no new one,
// not even a member of a room it runs, and undraining gives it back to placement. The autoscaler's metrics
// (k8s/autoscaling.yaml scales on kairo_capacity_utilisation) follow each step, through either replica.
TEST_F(FleetTest, a_drained_node_takes_no_session_nor_room_member_and_undraining_restores_placement) {
  const int64_t node = register_node("maintenance", 4);
  const std::string admin = login(*a, "admin", "admin-password");
  auto create = [&](Replica& r, const std::string& room) {
    json body{{"scene", "vr-room"}, {"eye_width", 64}, {"eye_height", 64}, {"fps", 30}};
    if (!room.empty()) body["room"] = room;
    return r.call("POST", "/v1/sessions", body.dump(), admin);
  };
  auto metric = [&](Replica& r, const std::string& series) {
    const std::string text = r.call("GET", "/metrics").body;
    EXPECT_TRUE(test::metric_declared(text, "kairo_capacity_utilisation", "gauge"));
    EXPECT_TRUE(test::metric_declared(text, "kairo_capacity_session_slots", "gauge"));
    return test::metric_sample(text, series).value_or(-1.0);
  };
  EXPECT_EQ(metric(*a, "kairo_capacity_session_slots"), 4.0);
  EXPECT_EQ(metric(*b, "kairo_capacity_utilisation"), 0.0);

  const auto member = create(*a, "studio");
  ASSERT_EQ(member.status, 201) << member.body;
  EXPECT_EQ(json::parse(member.body)["node_id"], node);
  EXPECT_EQ(metric(*b, "kairo_capacity_utilisation"), 0.25);

  ASSERT_EQ(a->call("POST", "/v1/nodes/" + std::to_string(node) + "/drain", "", admin).status, 200);
  const auto refused_member = create(*b, "studio");
  EXPECT_EQ(refused_member.status, 503);
  EXPECT_NE(refused_member.body.find("down or draining"), std::string::npos) << refused_member.body;
  const auto refused = create(*a, "");
  EXPECT_EQ(refused.status, 503);
  EXPECT_NE(refused.body.find("no_capacity"), std::string::npos) << refused.body;
  // Its live session stays; its slots leave the capacity (no slots: utilisation 1, so an autoscaler adds
  // nodes).
  const std::string id = json::parse(member.body)["session_id"].get<std::string>();
  EXPECT_EQ(json::parse(b->call("GET", "/v1/sessions/" + id, "", admin).body)["state"], "placed");
  EXPECT_EQ(metric(*a, "kairo_capacity_session_slots"), 0.0);
  EXPECT_EQ(metric(*a, "kairo_capacity_utilisation"), 1.0);
  EXPECT_EQ(metric(*a, "kairo_nodes{state=\"drained\"}"), 1.0);

  ASSERT_EQ(b->call("POST", "/v1/nodes/" + std::to_string(node) + "/undrain", "", admin).status, 200);
  const auto joined = create(*b, "studio");
  ASSERT_EQ(joined.status, 201) << joined.body;
  EXPECT_EQ(json::parse(joined.body)["node_id"], node);
  const auto plain = create(*a, "");
  ASSERT_EQ(plain.status, 201) << plain.body;
  EXPECT_EQ(json::parse(plain.body)["node_id"], node);
  EXPECT_EQ(metric(*a, "kairo_capacity_session_slots"), 4.0);
  EXPECT_EQ(metric(*b, "kairo_capacity_utilisation"), 0.75);
  EXPECT_EQ(metric(*b, "kairo_nodes{state=\"drained\"}"), 0.0);
}

TEST_F(FleetTest, role_matrix_every_route_for_every_role) {
  const int64_t node = register_node("matrix", 10);
  a->auth.create_user("c", "c-password", Role::kClient);
  a->auth.create_user("o", "o-password", Role::kOperator);
  const std::map<std::string, std::string> tokens = {{"none", ""},
                                                     {"client", login(*a, "c", "c-password")},
                                                     {"operator", login(*a, "o", "o-password")},
                                                     {"admin", login(*a, "admin", "admin-password")}};
  const std::string n = std::to_string(node);
  struct Route {
    std::string method, path, body;
    std::set<std::string> allowed;  // roles that pass authorisation (status neither 401 nor 403)
  };
  const std::vector<Route> routes = {
      {"POST",
       "/v1/sessions",
       R"({"scene":"vr-room","eye_width":64,"eye_height":64,"fps":30})",
       {"client", "operator", "admin"}},
      {"GET", "/v1/sessions", "", {"client", "operator", "admin"}},
      {"GET", "/v1/nodes", "", {"operator", "admin"}},
      {"POST", "/v1/nodes/" + n + "/drain", "", {"operator", "admin"}},
      {"POST", "/v1/nodes/" + n + "/undrain", "", {"operator", "admin"}},
      {"GET", "/v1/capacity", "", {"operator", "admin"}},
      {"POST", "/v1/node-tokens", "", {"operator", "admin"}},
      {"DELETE", "/v1/node-tokens/999", "", {"operator", "admin"}},
      {"POST",
       "/v1/users",
       R"({"username":"new-user-x","password":"new-password","role":"client"})",
       {"admin"}},
      {"POST",
       "/v1/nodes/register",
       R"({"name":"x","address":"a:1","max_sessions":1})",
       {}},  // node tokens only
      {"POST", "/v1/nodes/" + n + "/heartbeat", R"({"load":1})", {}},
      {"GET", "/v1/nodes/" + n + "/sessions", "", {}},
      {"POST", "/v1/nodes/" + n + "/sessions/0123456789abcdef0123456789abcdef", R"({"state":"ended"})", {}},
  };
  for (const Route& route : routes)
    for (const auto& [role, token] : tokens) {
      const int status = a->call(route.method, route.path, route.body, token).status;
      SCOPED_TRACE(route.method + " " + route.path + " as " + role + " -> " + std::to_string(status));
      if (role == "none") {
        EXPECT_EQ(status, 401);
      } else if (route.allowed.count(role)) {
        EXPECT_TRUE(status != 401 && status != 403);
      } else {
        EXPECT_TRUE(status == 403 || status == 401);
      }
    }
  // Node routes with a node token; a token minted for the node (rotation away from the static token) works
  // until revoked, and from then on the node answers to it, not to the static token.
  EXPECT_EQ(a->call("POST", "/v1/nodes/" + n + "/heartbeat", R"({"load":1})", kNodeToken).status, 200);
  const json unbound = json::parse(a->call("POST", "/v1/node-tokens", "", tokens.at("operator")).body);
  EXPECT_EQ(a->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", unbound["token"]).status, 403);
  EXPECT_EQ(a->call("POST", "/v1/node-tokens", R"({"node":"no-such-node"})", tokens.at("operator")).status,
            404);
  const json minted =
      json::parse(a->call("POST", "/v1/node-tokens", R"({"node":"matrix"})", tokens.at("operator")).body);
  EXPECT_EQ(a->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", minted["token"]).status, 200);
  EXPECT_EQ(a->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", kNodeToken).status, 403);
  EXPECT_EQ(a->call("DELETE", "/v1/node-tokens/" + std::to_string(minted["id"].get<int64_t>()), "",
                    tokens.at("admin"))
                .status,
            204);
  EXPECT_EQ(a->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", minted["token"]).status, 401);
}

// A node token revoked through one replica is refused by the other at once (the revocation is announced:
// migration 009), not only when the other's cached credential expires.
TEST_F(FleetTest, a_node_token_revoked_through_one_replica_is_refused_by_the_other_at_once) {
  const std::string admin = login(*a, "admin", "admin-password");
  const std::string n = std::to_string(register_node("revoked-node", 4));
  const json minted =
      json::parse(a->call("POST", "/v1/node-tokens", R"({"node":"revoked-node"})", admin).body);
  const std::string token = minted["token"];
  // Both replicas hear announcements, and b has the credential cached (good for a minute while it listens).
  wait_until_both_replicas_listen();
  ASSERT_EQ(b->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", token).status, 200);
  ASSERT_EQ(b->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", token).status, 200);
  const int64_t revoked = steady_now_ns();
  ASSERT_EQ(
      a->call("DELETE", "/v1/node-tokens/" + std::to_string(minted["id"].get<int64_t>()), "", admin).status,
      204);
  int status = 200;
  while (status != 401 && steady_now_ns() - revoked < 3'000'000'000) {
    status = b->call("POST", "/v1/nodes/" + n + "/heartbeat", "{}", token).status;
    if (status != 401) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(status, 401);
  // Generous for a loaded machine, and well under the cache's minute (and its old second).
  EXPECT_LT(double(steady_now_ns() - revoked) * 1e-9, 0.5) << "refused only when the cache expired";
}

// A node following its feed the way `kairo node` does (GET /v1/nodes/{id}/feed with its cursor, the whole
// state applied by session id), against a list of replicas: on an error it moves to the next one and resumes
// from its cursor. Counts how often each session was started, and when it was first seen.
class FeedFollower {
 public:
  FeedFollower(std::vector<std::function<uint16_t()>> replicas, int64_t node, std::string token)
      : replicas_(std::move(replicas)), node_(node), token_(std::move(token)) {
    thread_ = std::thread([this] { run(); });
  }
  ~FeedFollower() {
    stop_ = true;
    thread_.join();
  }
  std::map<std::string, int> started() {
    std::lock_guard lock(mutex_);
    return started_;
  }
  int64_t seen_ns(const std::string& id) {
    std::lock_guard lock(mutex_);
    const auto it = seen_ns_.find(id);
    return it == seen_ns_.end() ? 0 : it->second;
  }
  int failovers() const { return failovers_; }
  std::vector<int> statuses() {
    std::lock_guard lock(mutex_);
    return statuses_;
  }

 private:
  void run() {
    std::string cursor = "0";
    std::set<std::string> running;
    size_t replica = 0;
    while (!stop_) {
      try {
        const auto r =
            http_request(replicas_[replica % replicas_.size()](), "GET",
                         "/v1/nodes/" + std::to_string(node_) + "/feed?cursor=" + cursor, "", token_);
        {
          std::lock_guard lock(mutex_);
          statuses_.push_back(r.status);
        }
        if (r.status != 200) throw std::runtime_error("HTTP " + std::to_string(r.status));
        const json feed = json::parse(r.body);
        if (std::getenv("FEED_DEBUG"))
          std::fprintf(stderr, "feed cursor %s -> %s\n", cursor.c_str(), r.body.substr(0, 120).c_str());
        if (!feed["changed"].get<bool>()) continue;
        cursor = feed["cursor"].get<std::string>();
        std::set<std::string> wanted;
        for (const auto& s : feed["sessions"]) wanted.insert(s["session_id"].get<std::string>());
        std::lock_guard lock(mutex_);
        for (const std::string& id : wanted)
          if (!running.count(id)) {
            ++started_[id];
            seen_ns_.emplace(id, steady_now_ns());
          }
        running = wanted;
      } catch (const std::exception&) {
        ++replica;  // that replica is gone: the next one, from the same cursor
        ++failovers_;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
  std::vector<std::function<uint16_t()>> replicas_;
  int64_t node_;
  std::string token_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failovers_{0};
  std::mutex mutex_;
  std::map<std::string, int> started_;
  std::map<std::string, int64_t> seen_ns_;
  std::vector<int> statuses_;
  std::thread thread_;
};

TEST_F(FleetTest, a_node_feed_delivers_every_session_once_across_replicas_and_a_replica_restart) {
  const std::string admin = login(*a, "admin", "admin-password");
  const int64_t node = register_node("feed-node", 100);
  // The node follows its feed on replica B (then A, when B goes); sessions are created through A.
  std::mutex replicas_mutex;
  FeedFollower follower({[&] {
                           std::lock_guard lock(replicas_mutex);
                           return b ? b->server.port() : uint16_t(1);
                         },
                         [&] { return a->server.port(); }},
                        node, kNodeToken);
  const auto create = [&] {
    const auto r = a->call("POST", "/v1/sessions",
                           R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", admin);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::pair{json::parse(r.body).value("session_id", std::string()), steady_now_ns()};
  };
  // A replica hears the others' changes once its LISTEN connection is up (kairo_node_feed_listening).
  const auto until_listening = [](Replica& r) {
    for (int i = 0; i < 500; ++i) {
      if (test::metric_sample(r.call("GET", "/metrics").body, "kairo_node_feed_listening") == 1) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(until_listening(*a));
  ASSERT_TRUE(until_listening(*b));
  const auto wait_for = [&](const std::string& id) {
    for (int i = 0; i < 500 && follower.seen_ns(id) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return follower.seen_ns(id);
  };
  std::vector<std::string> ids;
  // Created through A, followed on B: it reaches the node through LISTEN/NOTIFY, not when B's wait ends
  // (every 200 ms here): the median says which (generous: the bench measures tightly).
  std::vector<double> reach_ms;
  for (int i = 0; i < 10; ++i) {
    const auto [id, created_ns] = create();
    ids.push_back(id);
    const int64_t seen = wait_for(id);
    ASSERT_NE(seen, 0) << "session " << i << " never reached the node";
    reach_ms.push_back(double(seen - created_ns) * 1e-6);
    EXPECT_LT(reach_ms.back(), 1000.0) << "session " << i;
  }
  std::sort(reach_ms.begin(), reach_ms.end());
  EXPECT_LT(reach_ms[5], 60.0);
  // Replica B restarts; sessions placed meanwhile (through A) reach the node (on A, then on the new B).
  {
    std::lock_guard lock(replicas_mutex);
    b.reset();
  }
  for (int i = 0; i < 10; ++i) ids.push_back(create().first);
  {
    std::lock_guard lock(replicas_mutex);
    b = std::make_unique<Replica>(pg->url(), std::string(48, 'f'));
  }
  ASSERT_TRUE(until_listening(*b));
  for (int i = 0; i < 10; ++i) ids.push_back(create().first);
  for (const std::string& id : ids) EXPECT_NE(wait_for(id), 0) << id;
  // An ended session leaves the feed; nothing is started twice.
  ASSERT_EQ(a->call("DELETE", "/v1/sessions/" + ids[0], "", admin).status, 204);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto started = follower.started();
  EXPECT_EQ(started.size(), ids.size());
  for (const auto& [id, times] : started) EXPECT_EQ(times, 1) << id;
  EXPECT_GE(follower.failovers(), 1);
  for (int status : follower.statuses()) EXPECT_LT(status, 500);
  // The feed's metrics: placements, the notifications the new B heard (with their lag), the node attached
  // to it (its one held request, or none between two), its listening connection never reopened.
  const std::string metrics_a = a->call("GET", "/metrics").body, metrics_b = b->call("GET", "/metrics").body;
  EXPECT_EQ(test::metric_sample(metrics_a, "kairo_placements_total"), 30);
  // One creator at a time: a conflict here is only the node's own heartbeat holding its row for an instant.
  EXPECT_LE(test::metric_sample(metrics_a, "kairo_placement_conflicts_total").value_or(99), 5);
  EXPECT_TRUE(test::metric_declared(metrics_b, "kairo_node_feed_notification_lag_seconds", "histogram"));
  EXPECT_GE(test::metric_sample(metrics_b, "kairo_node_feed_notification_lag_seconds_count").value_or(0), 5);
  EXPECT_LE(test::metric_sample(metrics_b, "kairo_node_feed_waiting").value_or(-1), 1);
  EXPECT_GE(test::metric_sample(metrics_b, "kairo_node_feed_waiting").value_or(-1), 0);
  EXPECT_EQ(test::metric_sample(metrics_b, "kairo_node_feed_listener_reconnects_total"), 0);
}

// Changes are announced by the replica that made them, after their commit (NodeFeedHub::changed): an end
// through A reaches the node's feed on B, with the version the end made; a change no replica announced (a
// replica that died between its commit and its announcement, here an UPDATE straight into the database)
// still reaches the node once B stops believing the version it knew (NodeFeedHub::kTrustNs).
TEST_F(FleetTest, changes_reach_a_node_on_the_other_replica_and_an_unannounced_one_within_the_trust_bound) {
  wait_until_both_replicas_listen();
  const std::string admin = login(*a, "admin", "admin-password");
  const int64_t node = register_node("announced-node", 10);
  const std::vector<std::string> ids = create_sessions(*a, admin, 3);
  ASSERT_EQ(ids.size(), 3u);
  // The node's view on B: the sessions it holds and the cursor, followed until `done` or `deadline_s`.
  std::string cursor = "0";
  std::set<std::string> held;
  const auto follow_until = [&](const std::function<bool()>& done, double deadline_s) {
    const int64_t deadline = steady_now_ns() + int64_t(deadline_s * 1e9);
    while (!done() && steady_now_ns() < deadline) {
      const auto r =
          b->call("GET", "/v1/nodes/" + std::to_string(node) + "/feed?cursor=" + cursor, "", kNodeToken);
      EXPECT_EQ(r.status, 200) << r.body;
      const json feed = json::parse(r.body);
      if (!feed.value("changed", false)) continue;
      cursor = feed["cursor"].get<std::string>();
      held.clear();
      for (const auto& session : feed["sessions"]) held.insert(session["session_id"].get<std::string>());
    }
    return done();
  };
  ASSERT_TRUE(follow_until([&] { return held.size() == 3; }, 5.0));
  // Ended through A: gone from the node's feed on B.
  ASSERT_EQ(a->call("DELETE", "/v1/sessions/" + ids[0], "", admin).status, 204);
  EXPECT_TRUE(follow_until([&] { return !held.count(ids[0]); }, 5.0));
  // Ended behind every replica's back: no announcement at all, yet the node learns of it within the trust
  // bound and a few waits.
  {
    Database db(pg->url(), 1);
    db.transact([&](pqxx::work& w) {
      w.exec_params("UPDATE sessions SET state = 'ended', ended_at = now() WHERE id = $1", ids[1]);
    });
  }
  const int64_t unannounced = steady_now_ns();
  EXPECT_TRUE(follow_until([&] { return !held.count(ids[1]); }, 1e-9 * double(NodeFeedHub::kTrustNs) + 3.0))
      << "a change nobody announced never reached the node";
  std::printf("unannounced change reached the node after %.0f ms\n",
              double(steady_now_ns() - unannounced) * 1e-6);
  EXPECT_TRUE(held.count(ids[2]));
  // A told B of every change it made: three placements and an end, each with its version, in batches.
  const std::string metrics = a->call("GET", "/metrics").body;
  EXPECT_EQ(test::metric_sample(metrics, "kairo_node_feed_announced_total"), 4);
  EXPECT_GE(test::metric_sample(metrics, "kairo_node_feed_announcement_batches_total").value_or(0), 1);
  EXPECT_LE(test::metric_sample(metrics, "kairo_node_feed_announcement_batches_total").value_or(99), 4);
  EXPECT_EQ(test::metric_sample(metrics, "kairo_node_feed_announcements_lost_total"), 0);
}

TEST_F(FleetTest, a_node_feed_shows_only_its_own_node_and_refuses_other_tokens) {
  const std::string admin = login(*a, "admin", "admin-password");
  // Two nodes with minted tokens of their own.
  const auto mint = [&] {
    const auto r = a->call("POST", "/v1/node-tokens", "{}", admin);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body).value("token", std::string());
  };
  const std::string token_x = mint(), token_y = mint();
  const auto register_with = [&](const std::string& name, const std::string& token) {
    const auto r = a->call("POST", "/v1/nodes/register",
                           json{{"name", name},
                                {"address", "127.0.0.1:9"},
                                {"device", "t"},
                                {"encoders", {"x264:h264"}},
                                {"scenes", {"vr-room"}},
                                {"max_sessions", 1}}
                               .dump(),
                           token);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body).value("node_id", int64_t(0));
  };
  const int64_t x = register_with("x", token_x), y = register_with("y", token_y);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(a->call("POST", "/v1/sessions",
                      R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", admin)
                  .status,
              201);
  const auto feed = [&](int64_t node, const std::string& token) {
    return b->call("GET", "/v1/nodes/" + std::to_string(node) + "/feed?cursor=0", "", token);
  };
  const json own_x = json::parse(feed(x, token_x).body), own_y = json::parse(feed(y, token_y).body);
  ASSERT_EQ(own_x["sessions"].size(), 1u);
  ASSERT_EQ(own_y["sessions"].size(), 1u);
  EXPECT_NE(own_x["sessions"][0]["session_id"], own_y["sessions"][0]["session_id"]);
  EXPECT_EQ(feed(y, token_x).status, 403);  // another node's feed
  EXPECT_EQ(feed(x, admin).status, 401);    // a user's token is not a node's
  EXPECT_EQ(feed(x, "").status, 401);
  EXPECT_EQ(b->call("GET", "/v1/nodes/" + std::to_string(x) + "/feed?cursor=abc", "", token_x).status, 400);
}

TEST_F(FleetTest, pages_list_every_session_exactly_once_while_sessions_are_created) {
  const std::string admin = login(*a, "admin", "admin-password");
  register_node("big", 10000);
  std::set<std::string> before;
  for (int i = 0; i < 120; ++i) {
    const auto r = a->call("POST", "/v1/sessions",
                           R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", admin);
    ASSERT_EQ(r.status, 201);
    before.insert(json::parse(r.body)["session_id"].get<std::string>());
  }
  std::atomic<bool> stop{false};
  std::thread creator([&] {
    while (!stop)
      b->call("POST", "/v1/sessions", R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})",
              admin);
  });
  std::map<std::string, int> listed;
  std::string cursor;
  int pages = 0;
  for (;;) {
    // A page at a time, from both replicas in turn: the cursor is the database's, not a replica's.
    Replica& r = pages % 2 ? *b : *a;
    const auto page =
        http_request(r.server.port(), "GET",
                     "/v1/sessions?limit=7" + (cursor.empty() ? "" : "&cursor=" + cursor), "", admin);
    ASSERT_EQ(page.status, 200) << page.body;
    for (const auto& s : json::parse(page.body)) ++listed[s["session_id"].get<std::string>()];
    ++pages;
    const auto next = page.headers.find("x-next-cursor");
    if (next == page.headers.end()) break;
    cursor = next->second;
    ASSERT_LT(pages, 1000);
  }
  stop = true;
  creator.join();
  for (const std::string& id : before) EXPECT_EQ(listed[id], 1) << id;
  for (const auto& [id, times] : listed) EXPECT_EQ(times, 1) << id;
  EXPECT_GE(pages, 120 / 7);
  EXPECT_EQ(a->call("GET", "/v1/sessions?limit=0", "", admin).status, 400);
  EXPECT_EQ(a->call("GET", "/v1/sessions?cursor=%%%", "", admin).status, 400);
  const auto nodes = a->call("GET", "/v1/nodes?limit=1", "", admin);
  EXPECT_EQ(json::parse(nodes.body).size(), 1u);
}

// Heartbeats are written in batches; a node row another transaction holds (a placement) is skipped without
// waiting and written with a later batch; a node that does not exist is refused.
TEST_F(FleetTest, heartbeats_are_written_in_batches_and_a_held_node_row_with_a_later_one) {
  std::vector<int64_t> ids;
  a->db.transact([&](pqxx::work& w) {
    for (const auto& row :
         w.exec("INSERT INTO nodes (name, address, max_sessions, last_heartbeat) SELECT 'hb' || i, "
                "'127.0.0.1:9', "
                "4, now() - interval '1 hour' FROM generate_series(1, 300) AS i RETURNING id"))
      ids.push_back(row[0].as<int64_t>());
  });
  const auto fresh = [&] {
    int n = 0;
    a->db.transact([&](pqxx::work& w) {
      n = w.exec(
               "SELECT count(*) FROM nodes WHERE name LIKE 'hb%' AND last_heartbeat > now() - interval '1 "
               "minute' AND load = (id % 10) + 0.5")[0][0]
              .as<int>();
    });
    return n;
  };
  HeartbeatWriter writer(a->db, 0.4);  // batches at most every 50 ms
  pqxx::connection holder(pg->url());
  pqxx::work hold(holder);
  hold.exec_params("SELECT 1 FROM nodes WHERE id = $1 FOR UPDATE", ids[0]);
  for (int64_t id : ids) EXPECT_TRUE(writer.record(id, double(id % 10) + 0.5));
  writer.flush();  // does not wait for the held row
  EXPECT_EQ(fresh(), 299);
  hold.abort();
  writer.flush();
  EXPECT_EQ(fresh(), 300);
  // A node that does not exist: its heartbeat is recorded, and refused once a write has not found it.
  EXPECT_TRUE(writer.record(ids.back() + 1000, 1));
  writer.flush();
  EXPECT_FALSE(writer.record(ids.back() + 1000, 1)) << "a node that does not exist";
  // Recording never writes (it runs on the network thread): the writer's own thread writes what was
  // recorded within a flush period or so, without a flush by hand.
  int64_t late = 0;
  a->db.transact([&](pqxx::work& w) {
    late = w.exec(
                "INSERT INTO nodes (name, address, max_sessions, last_heartbeat) VALUES ('hb-late', "
                "'127.0.0.1:9', 4, now() - interval '1 hour') RETURNING id")[0][0]
               .as<int64_t>();
  });
  EXPECT_TRUE(writer.record(late, 7.5));
  const auto written = [&] {
    bool yes = false;
    a->db.transact([&](pqxx::work& w) {
      yes = w.exec_params(
                 "SELECT last_heartbeat > now() - interval '1 minute' AND load = 7.5 FROM nodes "
                 "WHERE id = $1",
                 late)[0][0]
                .as<bool>();
    });
    return yes;
  };
  const int64_t recorded = steady_now_ns();
  while (!written() && steady_now_ns() - recorded < 5'000'000'000)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(written()) << "a recorded heartbeat was never written";
}

// Code that must not block (a network thread, the feed's timer thread) cannot reach the database by mistake:
// a call there throws WouldWaitOnDatabase before taking a connection, and the guard nests.
TEST_F(FleetTest, a_database_call_where_waiting_is_not_allowed_throws_instead_of_blocking) {
  const auto read = [&] {
    int one = 0;
    a->db.autocommit([&](pqxx::transaction_base& w) { one = w.exec("SELECT 1")[0][0].as<int>(); });
    return one;
  };
  EXPECT_EQ(read(), 1);
  {
    Database::NoWaitingHere outer;
    EXPECT_THROW(read(), WouldWaitOnDatabase);
    {
      Database::NoWaitingHere inner;
      EXPECT_THROW(a->db.transact([](pqxx::work&) {}), WouldWaitOnDatabase);
    }
    EXPECT_THROW(read(), WouldWaitOnDatabase) << "the inner guard's end must not lift the outer one";
    std::thread other([&] { EXPECT_EQ(read(), 1) << "the guard is this thread's only"; });
    other.join();
  }
  EXPECT_EQ(read(), 1);
}

// A node's feed request is served on the network thread from memory once its credential and version are
// known (no hand-off to a worker); the first, with nothing known yet, goes to a worker. A held request whose
// wait ends is answered "unchanged" on time (from the hub's timer thread), and one woken by a session placed
// on its node gets it.
TEST_F(FleetTest, a_node_feed_is_served_from_memory_on_the_network_thread_once_its_node_is_known) {
  const int64_t node = register_node("quick", 4);
  a->auth.create_user("quinn", "quinn-password", Role::kClient);
  const std::string quinn = login(*a, "quinn", "quinn-password");
  const std::string feed = "/v1/nodes/" + std::to_string(node) + "/feed";
  const auto served = [&](const char* where) {
    return metric_of_a(std::string("kairo_node_feed_requests_total{served=\"") + where + "\"}");
  };
  const double network_before = served("network"), worker_before = served("worker");
  const auto first = a->call("GET", feed + "?cursor=0&wait_ms=0", "", kNodeToken);
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string cursor = json::parse(first.body)["cursor"].get<std::string>();
  EXPECT_GE(served("worker"), worker_before + 1) << "nothing was known of the node: a worker read it";
  // Held, and its wait (the heartbeat interval here, 0.2 s) ends: answered unchanged, not before three
  // quarters of the wait (the jitter), and not long after it.
  for (int i = 0; i < 3; ++i) {
    const int64_t start = steady_now_ns();
    const auto held = a->call("GET", feed + "?cursor=" + cursor, "", kNodeToken);
    const double waited_s = double(steady_now_ns() - start) * 1e-9;
    ASSERT_EQ(held.status, 200) << held.body;
    EXPECT_FALSE(json::parse(held.body)["changed"].get<bool>());
    EXPECT_GE(waited_s, 0.14);
    EXPECT_LT(waited_s, 2.0);
  }
  EXPECT_GE(served("network"), network_before + 3) << "known node, known version: served from memory";
  // Followed from the network thread, the node gets the session placed on it.
  json changed = json::object();
  std::thread follower([&] {
    for (int i = 0; i < 40 && !changed.value("changed", false); ++i)
      changed = json::parse(a->call("GET", feed + "?cursor=" + cursor, "", kNodeToken).body);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto created = a->call("POST", "/v1/sessions",
                               R"({"scene":"vr-room","eye_width":256,"eye_height":256,"fps":30})", quinn);
  ASSERT_EQ(created.status, 201) << created.body;
  follower.join();
  EXPECT_TRUE(changed["changed"].get<bool>());
  ASSERT_EQ(changed["sessions"].size(), 1u);
  EXPECT_EQ(changed["sessions"][0]["session_id"], json::parse(created.body)["session_id"]);
}

// A kept feed takes a placed session where a read would list it: by creation time as PostgreSQL prints it
// (trailing zeros of the fraction dropped), then id.
TEST(FeedContent, puts_a_session_where_the_feeds_order_puts_it_and_removes_it) {
  FeedContent content;
  const auto session = [](const std::string& id) {
    v1::NodeSession s;
    s.set_session_id(id);
    return s;
  };
  content.add(session("c"), "2026-12-02 10:50:13.5+00|c");
  content.add(session("a"), "2026-12-02 10:50:13+00|a");
  content.add(session("d"), "2026-12-02 10:50:13.52+00|d");
  content.add(session("b"), "2026-12-02 10:50:13.1+00|b");
  content.add(session("e"), "2026-12-02 10:50:13.52+00|e");
  const auto ids = [&] {
    std::string out;
    for (const auto& s : content.feed.sessions()) out += s.session_id();
    return out;
  };
  EXPECT_EQ(ids(), "abcde");
  EXPECT_TRUE(content.set_state("c", "running"));
  EXPECT_EQ(content.feed.sessions(2).state(), "running");
  EXPECT_TRUE(content.remove("b"));
  EXPECT_FALSE(content.remove("b"));
  EXPECT_FALSE(content.set_state("b", "running"));
  EXPECT_EQ(ids(), "acde");
  EXPECT_EQ(content.order.size(), 4u);
  content.add(session("f"), "2026-12-02 10:50:13.51+00|f");
  EXPECT_EQ(ids(), "acfde");
}

// A node's feed read whole once is kept, and each change made through the replica moves it along in memory:
// placements, a running report, an end, answered at once or to a held request, with no read, and each
// answer is what a read of the database gives then. The other replica keeps it too and follows the same
// changes from their announcements (control-plane/feed_announcement.hpp). A change whose announcement does
// not carry it (new caps) makes a replica read the feed again.
TEST_F(FleetTest, a_nodes_feed_moves_along_in_memory_with_this_replicas_changes_and_equals_a_read) {
  wait_until_both_replicas_listen();
  const int64_t node = register_node("kept", 8);
  a->auth.create_user("kim", "kim-password", Role::kClient);
  const std::string kim = login(*a, "kim", "kim-password");
  const std::string feed = "/v1/nodes/" + std::to_string(node) + "/feed";
  const auto answers = [&](const char* from) {
    return metric_of_a(std::string("kairo_node_feed_answers_total{from=\"") + from + "\"}");
  };
  const auto b_reads = [&] { return metric_of(*b, "kairo_node_feed_answers_total{from=\"database\"}"); };
  const auto read_now = [&] { return json::parse(to_json(a->fleet.node_feed(node).feed)); };
  const auto feed_from = [&](const std::string& cursor) {
    const auto res = a->call("GET", feed + "?cursor=" + cursor + "&wait_ms=0", "", kNodeToken);
    EXPECT_EQ(res.status, 200) << res.body;
    return json::parse(res.body);
  };
  const double read_before = answers("database");
  json known = feed_from("0");
  EXPECT_EQ(known, read_now());
  EXPECT_EQ(answers("database"), read_before + 1) << "nothing was known: read whole";

  const double memory_before = answers("memory");
  const std::vector<std::string> ids = create_sessions(*a, kim, 3);
  ASSERT_EQ(ids.size(), 3u);
  json moved = feed_from(known["cursor"]);
  EXPECT_EQ(moved["sessions"].size(), 3u);
  EXPECT_EQ(moved, read_now());
  // Replica b keeps the feed too (read whole once); a's running report reaches it as an announcement.
  const auto b_feed = [&] {
    return json::parse(b->call("GET", feed + "?cursor=0&wait_ms=0", "", kNodeToken).body);
  };
  EXPECT_EQ(b_feed(), read_now());
  // b keeps what it read once no announcement of a's placements overtook the read (then it is not sure of
  // the read, and reads again): until an answer comes from memory.
  double b_read_once = b_reads();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(b_feed(), read_now());
    if (b_reads() == b_read_once) break;
    b_read_once = b_reads();
  }
  ASSERT_EQ(a->call("POST", "/v1/nodes/" + std::to_string(node) + "/sessions/" + ids[1],
                    R"({"state":"running"})", kNodeToken)
                .status,
            204);
  EXPECT_EQ(feed_from("0"), read_now()) << "the running report shows in the feed kept";
  // Within the trust window (5 s), so b's answer comes from what it heard, not from its kept feed expiring.
  json on_b = b_feed();
  for (int i = 0; i < 20 && on_b != read_now(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    on_b = b_feed();
  }
  EXPECT_EQ(on_b, read_now()) << "replica b did not hear of the running report";
  EXPECT_EQ(b_reads(), b_read_once) << "replica b applied the running report to the feed it keeps";
  ASSERT_EQ(a->call("DELETE", "/v1/sessions/" + ids[0], "", kim).status, 204);
  moved = feed_from(moved["cursor"]);
  EXPECT_EQ(moved["sessions"].size(), 2u);
  EXPECT_EQ(moved, read_now());
  // Held, and woken by a placement through this replica.
  json woken = json::object();
  std::thread follower([&] {
    for (int i = 0; i < 40 && !woken.value("changed", false); ++i)
      woken = json::parse(
          a->call("GET", feed + "?cursor=" + moved["cursor"].get<std::string>(), "", kNodeToken).body);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const std::string fourth = create_sessions(*a, kim, 1).at(0);
  follower.join();
  EXPECT_EQ(woken, read_now());
  EXPECT_EQ(woken["sessions"].size(), 3u);
  EXPECT_EQ(answers("database"), read_before + 1) << "every change above was followed in memory";
  EXPECT_GE(answers("memory"), memory_before + 4);

  // Replica b followed a's placements and end too, from their announcements, without reading.
  json on_b_now = b_feed();
  for (int i = 0; i < 20 && on_b_now != read_now(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    on_b_now = b_feed();
  }
  EXPECT_EQ(on_b_now, read_now());
  EXPECT_EQ(b_reads(), b_read_once) << "replica b followed a's placements and end in memory";

  // A placement, a running report and an end through replica b: a follows them from b's announcements.
  const std::string through_b = create_sessions(*b, kim, 1).at(0);
  json after_b = json::object();
  for (int i = 0; i < 40 && after_b.value("sessions", json::array()).size() != 4; ++i)
    after_b = json::parse(
        a->call("GET", feed + "?cursor=" + woken["cursor"].get<std::string>(), "", kNodeToken).body);
  EXPECT_EQ(after_b, read_now());
  ASSERT_EQ(b->call("POST", "/v1/nodes/" + std::to_string(node) + "/sessions/" + through_b,
                    R"({"state":"running"})", kNodeToken)
                .status,
            204);
  ASSERT_EQ(b->call("DELETE", "/v1/sessions/" + through_b, "", kim).status, 204);
  json after_end = json::object();
  for (int i = 0; i < 40 && after_end.value("sessions", json::array()).size() != 3; ++i)
    after_end = json::parse(
        a->call("GET", feed + "?cursor=" + after_b["cursor"].get<std::string>(), "", kNodeToken).body);
  EXPECT_EQ(after_end, read_now());
  EXPECT_EQ(answers("database"), read_before + 1) << "a followed b's changes in memory";
  EXPECT_GE(metric_of_a("kairo_node_feed_changes_followed_total"), 3);

  // New caps through replica b: their announcement carries no change, so a reads the feed again...
  ASSERT_EQ(b->call("PATCH", "/v1/sessions/" + fourth + "/quality", R"({"max_fps":45})", kim).status, 200);
  json after_caps = json::object();
  for (int i = 0; i < 40 && after_caps.value("cursor", after_end["cursor"]) == after_end["cursor"]; ++i)
    after_caps = json::parse(
        a->call("GET", feed + "?cursor=" + after_end["cursor"].get<std::string>(), "", kNodeToken).body);
  EXPECT_EQ(after_caps, read_now());
  EXPECT_EQ(answers("database"), read_before + 2);
  // ...and follows in memory again from that read.
  ASSERT_EQ(a->call("DELETE", "/v1/sessions/" + fourth, "", kim).status, 204);
  EXPECT_EQ(feed_from(after_caps["cursor"]), read_now());
  EXPECT_EQ(answers("database"), read_before + 2);
}

// The hot path's queries use an index (EXPLAIN on a table large enough for the planner to care).
TEST_F(FleetTest, hot_path_queries_use_their_indexes) {
  // A fleet's worth of history: 200 nodes, 500 users, 20,000 sessions of which 2 % live.
  a->db.transact([&](pqxx::work& w) {
    w.exec(
        "INSERT INTO nodes (name, address, max_sessions) SELECT 'n' || i, '127.0.0.1:9', 50 FROM "
        "generate_series(1, 200) AS i");
    w.exec(
        "INSERT INTO users (username, password_hash, role) SELECT 'u' || i, 'x', 'client' FROM "
        "generate_series(1, 500) AS i");
    w.exec(
        "INSERT INTO sessions (id, user_id, node_id, scene, eye_width, eye_height, fps, state, session_key, "
        "created_at) SELECT md5(i::text), (SELECT min(id) FROM users) + i % 500, (SELECT min(id) FROM nodes) "
        "+ "
        "i % 200, 'vr-room', 256, 256, 30, CASE WHEN i % 50 = 0 THEN 'running' ELSE 'ended' END, '\\x00', "
        "now() - "
        "i * interval '1 second' FROM generate_series(1, 20000) AS i");
    w.exec("ANALYZE");
  });
  const auto plan = [&](const std::string& sql) {
    std::string text = sql + "\n";
    a->db.transact([&](pqxx::work& w) {
      for (const auto& row : w.exec("EXPLAIN " + sql)) text += row[0].as<std::string>() + "\n";
    });
    return text;
  };
  // The node feed and the node's session list: live sessions of one node.
  EXPECT_NE(plan("SELECT id FROM sessions s WHERE s.node_id = (SELECT min(id) FROM nodes) + 7 AND s.live")
                .find("sessions_by_node"),
            std::string::npos);
  // A page of sessions, all users and one user's.
  EXPECT_NE(
      plan("SELECT id FROM sessions s WHERE (s.created_at, s.id) > (now() - interval '1 hour', 'x') ORDER BY "
           "s.created_at, s.id LIMIT 100")
          .find("sessions_by_created"),
      std::string::npos);
  EXPECT_NE(plan("SELECT id FROM sessions s WHERE s.user_id = 77 ORDER BY s.created_at, s.id LIMIT 100")
                .find("sessions_by_user_created"),
            std::string::npos);
  // Every session of a user (the cascade when a user is deleted).
  EXPECT_NE(plan("SELECT id FROM sessions WHERE user_id = 77").find("sessions_by_user_created"),
            std::string::npos);
  // A user's live sessions (the session limit).
  EXPECT_NE(plan("SELECT count(*) FROM sessions WHERE user_id = 77 AND live").find("sessions_live_by_user"),
            std::string::npos);
}

}  // namespace
}  // namespace kairo::control
