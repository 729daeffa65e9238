// The control plane's HTTP API against a real PostgreSQL, over real HTTP on loopback.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "control-plane/control_api.hpp"
#include "control-plane/http_client.hpp"
#include "tests/metrics_text.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

using nlohmann::json;

class ControlApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg = new test::PostgresServer();
    db = new Database(pg->url(), 4);
    db->migrate();
    tokens = new AccessTokens(std::string(48, 'q'));
    auth = new AuthService(*db, *tokens);
    auth->bootstrap_admin("admin", "admin-password");
    fleet = new FleetService(*db, 0.2);
    api = new ControlApi(*db, *auth, *tokens, *fleet, "static-node-token-for-tests");
    server = new HttpServer(api->serving(HttpServerOptions{.listen = "127.0.0.1:0"}),
                            [](const HttpRequest& r) { return api->handle(r); });
  }
  static void TearDownTestSuite() {
    delete server;
    delete api;
    delete fleet;
    delete auth;
    delete tokens;
    delete db;
    delete pg;
  }
  static control::HttpResult call(const std::string& method, const std::string& target,
                                  const std::string& body = "", const std::string& bearer = "") {
    return control::http_request(server->port(), method, target, body, bearer);
  }
  static std::string login(const std::string& user, const std::string& password) {
    const auto r = call("POST", "/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).value("access_token", "");
  }
  static std::string error_code(const control::HttpResult& r) {
    const json body = json::parse(r.body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
  }

  static test::PostgresServer* pg;
  static Database* db;
  static AccessTokens* tokens;
  static AuthService* auth;
  static FleetService* fleet;
  static ControlApi* api;
  static HttpServer* server;
};
FleetService* ControlApiTest::fleet = nullptr;
test::PostgresServer* ControlApiTest::pg = nullptr;
Database* ControlApiTest::db = nullptr;
AccessTokens* ControlApiTest::tokens = nullptr;
AuthService* ControlApiTest::auth = nullptr;
ControlApi* ControlApiTest::api = nullptr;
HttpServer* ControlApiTest::server = nullptr;

TEST_F(ControlApiTest, health_readiness_and_metrics_answer) {
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(call("GET", "/readyz").status, 200);
  call("GET", "/nowhere");
  const auto metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("kairo_http_requests_total{route=\"GET /readyz\",code=\"200\"}"),
            std::string::npos)
      << metrics.body;
  // The latency histogram counts every request its route answered: as many as the request counter (all of
  // /healthz's are 200s), +Inf holds them all, and the time they took is neither zero nor absurd.
  const std::string route = "{route=\"GET /healthz\"";
  const double count =
      test::metric_sample(metrics.body, "kairo_http_request_duration_seconds_count" + route + "}")
          .value_or(-1);
  EXPECT_GE(count, 1.0);
  EXPECT_EQ(count, test::metric_sample(metrics.body, "kairo_http_requests_total" + route + ",code=\"200\"}"));
  EXPECT_EQ(count, test::metric_sample(
                       metrics.body, "kairo_http_request_duration_seconds_bucket" + route + ",le=\"+Inf\"}"));
  const double sum =
      test::metric_sample(metrics.body, "kairo_http_request_duration_seconds_sum" + route + "}").value_or(-1);
  EXPECT_GT(sum, 0.0);
  EXPECT_LT(sum / count, 1.0);
  EXPECT_TRUE(test::metric_declared(metrics.body, "kairo_http_request_duration_seconds", "histogram"));
}

TEST_F(ControlApiTest, login_refresh_logout_over_http) {
  const auto login_response =
      call("POST", "/v1/auth/login", R"({"username":"admin","password":"admin-password"})");
  ASSERT_EQ(login_response.status, 200);
  const json pair = json::parse(login_response.body);
  EXPECT_EQ(pair["expires_in"], 900);
  const auto refreshed =
      call("POST", "/v1/auth/refresh", json{{"refresh_token", pair["refresh_token"]}}.dump());
  ASSERT_EQ(refreshed.status, 200);
  const json second = json::parse(refreshed.body);
  EXPECT_EQ(call("POST", "/v1/auth/refresh", json{{"refresh_token", pair["refresh_token"]}}.dump()).status,
            401);  // reuse
  EXPECT_EQ(call("POST", "/v1/auth/logout", json{{"refresh_token", second["refresh_token"]}}.dump()).status,
            204);
  EXPECT_EQ(error_code(call("POST", "/v1/auth/login", R"({"username":"admin","password":"nope"})")),
            "invalid_credentials");
}

TEST_F(ControlApiTest, creating_users_needs_an_admin_token) {
  const std::string admin = login("admin", "admin-password");
  const std::string body = R"({"username":"eve","password":"eve-password","role":"client"})";
  EXPECT_EQ(call("POST", "/v1/users", body).status, 401);
  EXPECT_EQ(call("POST", "/v1/users", body, "not-a-token").status, 401);
  EXPECT_EQ(call("POST", "/v1/users", body, admin).status, 201);
  EXPECT_EQ(call("POST", "/v1/users", body, admin).status, 409);
  const std::string eve = login("eve", "eve-password");
  EXPECT_EQ(call("POST", "/v1/users", R"({"username":"mallory","password":"mallory-pw","role":"admin"})", eve)
                .status,
            403);
  EXPECT_EQ(error_code(call("POST", "/v1/users",
                            R"({"username":"x1","password":"x1-password","role":"king"})", admin)),
            "invalid_role");
}

TEST_F(ControlApiTest, bad_requests_get_4xx_json_errors_never_500) {
  const std::string admin = login("admin", "admin-password");
  EXPECT_EQ(error_code(call("POST", "/v1/auth/login", "{not json")), "malformed_json");
  EXPECT_EQ(error_code(call("POST", "/v1/auth/login", "[1,2]")), "malformed_json");
  EXPECT_EQ(error_code(call("POST", "/v1/auth/login", R"({"username":"admin","password":"x","admin":true})")),
            "unknown_field");
  EXPECT_EQ(error_code(call("POST", "/v1/auth/login", R"({"username":5,"password":"x"})")), "invalid_field");
  EXPECT_EQ(call("POST", "/v1/auth/login", std::string(200 * 1024, 'a')).status, 413);
  const auto injection =
      call("POST", "/v1/users",
           R"({"username":"a'; DROP TABLE users; --","password":"long-enough","role":"client"})", admin);
  EXPECT_EQ(injection.status, 400);
  EXPECT_EQ(call("GET", "/readyz").status, 200);  // the users table is still there
  EXPECT_EQ(call("DELETE", "/v1/auth/login").status, 404);
  // Path segments that decode to bytes no name can hold (not UTF-8) match no route: once they reached
  // PostgreSQL, which refused them, and the API answered 500 (found by tests/fuzz/http_route_fuzzer.cpp).
  for (const char* path : {"/v1/rooms/%FF", "/v1/rooms/a%C3%28", "/v1/sessions/%ED%A0%80"}) {
    const auto r = call(path[4] == 'r' ? "DELETE" : "GET", path, "", admin);
    EXPECT_EQ(r.status, 404) << path << " " << r.body;
    EXPECT_EQ(error_code(r), "not_found") << path;
  }
  // JSON can carry a NUL ("\u0000"), PostgreSQL's text cannot: a node's scene list holding one was a 500
  // (found by the fuzzer), now a 400 naming the field; so is a NUL in any other string field.
  const auto nul_scene =
      call("POST", "/v1/nodes/register",
           R"({"name":"nul","address":"127.0.0.1:1","device":"d","encoders":["x264:h264"],)"
           R"("scenes":["vr\u0000"],"max_sessions":1})",
           "static-node-token-for-tests");
  EXPECT_EQ(nul_scene.status, 400) << nul_scene.body;
  EXPECT_NE(nul_scene.body.find("scenes"), std::string::npos) << nul_scene.body;
  const auto nul_device =
      call("POST", "/v1/nodes/register",
           R"({"name":"nul","address":"127.0.0.1:1","device":"d\u0000","encoders":["x264:h264"],)"
           R"("scenes":["vr-room"],"max_sessions":1})",
           "static-node-token-for-tests");
  EXPECT_EQ(nul_device.status, 400) << nul_device.body;
  EXPECT_NE(nul_device.body.find("NUL"), std::string::npos) << nul_device.body;
}

// Injection that reaches SQL: names the validation accepts (quotes, semicolons, comment markers, braces and
// backslashes are all printable) go into queries and text[] literals and come back verbatim; the tables are
// still there. (A name refused by validation would prove nothing about the SQL.)
TEST_F(ControlApiTest, names_full_of_sql_come_back_verbatim_and_change_nothing_else) {
  const std::string admin = login("admin", "admin-password");
  const std::string node_name = "n'); DELETE FROM nodes; --";
  const std::string encoder = "x264:h264\"}, {\"evil\\";  // closes a quoted array element, then the array
  const std::string scene = "vr-room', 'other'); DROP TABLE sessions; --";
  const auto registered = call("POST", "/v1/nodes/register",
                               json{{"name", node_name},
                                    {"address", "127.0.0.1:1; DROP TABLE nodes"},
                                    {"device", "d\\"},
                                    {"encoders", {encoder, "x265:hevc"}},
                                    {"scenes", {scene}},
                                    {"max_sessions", 2}}
                                   .dump(),
                               "static-node-token-for-tests");
  ASSERT_EQ(registered.status, 201) << registered.body;
  const json nodes = json::parse(call("GET", "/v1/nodes", "", admin).body);
  const json* node = nullptr;
  for (const json& n : nodes)
    if (n.value("name", "") == node_name) node = &n;
  ASSERT_NE(node, nullptr) << nodes.dump();
  EXPECT_EQ((*node)["address"], "127.0.0.1:1; DROP TABLE nodes");
  // The text[] literals held every element verbatim: a session on that scene, for the codec of the element
  // after the hostile one, is placed on this node.
  const auto session = call(
      "POST", "/v1/sessions",
      json{{"scene", scene}, {"eye_width", 256}, {"eye_height", 256}, {"fps", 30}, {"codec", "hevc"}}.dump(),
      admin);
  ASSERT_EQ(session.status, 201) << session.body;
  EXPECT_EQ(json::parse(session.body)["node_id"], (*node)["node_id"]);
  // A room by such a name, on that scene: stored, answered verbatim, deleted by the same name.
  const std::string room = "r' OR '1'='1";
  const auto created = call("POST", "/v1/rooms",
                            json{{"name", room}, {"scene", scene}, {"members", json::array()}}.dump(), admin);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(json::parse(created.body)["name"], room);
  EXPECT_EQ(call("POST", "/v1/rooms", json{{"name", "r' OR '1'='2"}, {"scene", scene}}.dump(), admin).status,
            201)
      << "a near-identical name is another room";
  EXPECT_EQ(call("DELETE", "/v1/rooms/r'%20OR%20'1'%3D'1", "", admin).status, 204);
  EXPECT_EQ(call("DELETE", "/v1/rooms/r'%20OR%20'1'%3D'1", "", admin).status, 404)
      << "deleted once, and only it";
  EXPECT_EQ(call("GET", "/readyz").status, 200);
  EXPECT_GE(json::parse(call("GET", "/v1/nodes", "", admin).body).size(), 1u);
}

TEST_F(ControlApiTest, login_attempts_are_rate_limited_per_user_and_audited) {
  auth->create_user("frank", "frank-password", Role::kClient);
  int limited = 0;
  for (int i = 0; i < 8; ++i)
    limited += call("POST", "/v1/auth/login", R"({"username":"frank","password":"guess"})").status == 429;
  EXPECT_GE(limited, 3);
  int audited = 0;
  db->transact([&](pqxx::work& w) {
    audited =
        w.exec(
             "SELECT count(*) FROM audit_log WHERE event = 'login_rate_limited' AND username = 'frank'")[0][0]
            .as<int>();
  });
  EXPECT_EQ(audited, limited);
}

}  // namespace
}  // namespace kairo::control
