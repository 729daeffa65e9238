// The control plane under attack (docs/security.md): each test is a finding of the attack on the landed main
// that failed then, replayed over real HTTP against a real PostgreSQL.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "control-plane/api_error.hpp"
#include "control-plane/control_api.hpp"
#include "control-plane/http_client.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

using nlohmann::json;
const std::string kStaticToken = "security-test-static-node-token-0123";

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg = new test::PostgresServer(); }
  static void TearDownTestSuite() {
    delete pg;
    pg = nullptr;
  }
  void SetUp() override {
    pg->reset();  // a fresh database per test: nothing the previous test created
    db = std::make_unique<Database>(pg->url(), 4);
    db->migrate();
    tokens = std::make_unique<AccessTokens>(std::string(48, 's'));
    auth = std::make_unique<AuthService>(*db, *tokens);
    auth->bootstrap_admin("admin", "admin-password");
    fleet = std::make_unique<FleetService>(*db, 2.0);
    api = std::make_unique<ControlApi>(*db, *auth, *tokens, *fleet, kStaticToken,
                                       RateLimits{.max_live_sessions_client = 3});
    server =
        std::make_unique<HttpServer>(api->serving(HttpServerOptions{.listen = "127.0.0.1:0", .threads = 2}),
                                     [this](const HttpRequest& r) { return api->handle(r); });
  }
  HttpResult call(const std::string& method, const std::string& target, const std::string& body = "",
                  const std::string& bearer = "") {
    return http_request(server->port(), method, target, body, bearer);
  }
  std::string login(const std::string& user, const std::string& password) {
    const auto r = call("POST", "/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).value("access_token", "");
  }
  std::string user(const std::string& name, Role role = Role::kClient) {
    auth->create_user(name, name + "-password", role);
    return login(name, name + "-password");
  }
  std::string mint(const std::string& operator_token) {
    const auto r = call("POST", "/v1/node-tokens", "", operator_token);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body).value("token", "");
  }
  HttpResult register_node(const std::string& name, const std::string& address, const std::string& token) {
    return call("POST", "/v1/nodes/register",
                json{{"name", name},
                     {"address", address},
                     {"device", "test"},
                     {"encoders", {"x264:h264"}},
                     {"scenes", {"vr-room", "stress"}},
                     {"max_sessions", 8}}
                    .dump(),
                token);
  }
  static std::string code(const HttpResult& r) {
    const json body = json::parse(r.body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
  }
  int64_t audit_count(const std::string& event) {
    int64_t n = 0;
    db->transact([&](pqxx::work& w) {
      n = w.exec_params("SELECT count(*) FROM audit_log WHERE event = $1", event)[0][0].as<int64_t>();
    });
    return n;
  }
  std::string session_body(const std::string& scene = "vr-room", const std::string& room = "") {
    json body{{"scene", scene}, {"eye_width", 256}, {"eye_height", 256}, {"fps", 30}};
    if (!room.empty()) body["room"] = room;
    return body.dump();
  }

  static inline test::PostgresServer* pg = nullptr;
  std::unique_ptr<Database> db;
  std::unique_ptr<AccessTokens> tokens;
  std::unique_ptr<AuthService> auth;
  std::unique_ptr<FleetService> fleet;
  std::unique_ptr<ControlApi> api;
  std::unique_ptr<HttpServer> server;
};

// Finding 1: a node token is bound to the node that first registered with it.
TEST_F(SecurityTest, another_nodes_token_gets_403_on_every_node_route_and_cannot_take_over_its_name) {
  const std::string admin = login("admin", "admin-password");
  const std::string token1 = mint(admin), token2 = mint(admin);
  const auto r1 = register_node("gpu-1", "10.0.0.1:7000", token1);
  ASSERT_EQ(r1.status, 201) << r1.body;
  const std::string node1 = std::to_string(json::parse(r1.body)["node_id"].get<int64_t>());
  ASSERT_EQ(register_node("gpu-2", "10.0.0.2:7000", token2).status, 201);
  const std::string alice = user("alice");
  const auto created = call("POST", "/v1/sessions", session_body(), alice);
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string session = json::parse(created.body)["session_id"];
  ASSERT_EQ(json::parse(created.body)["node_address"], "10.0.0.1:7000");  // the emptiest: node 1 (lower id)

  // Node 2's token, and the static fleet token, on node 1's routes: all 403, nothing changed.
  for (const std::string& other : {token2, kStaticToken}) {
    SCOPED_TRACE(other == token2 ? "node 2's token" : "the static token");
    EXPECT_EQ(call("GET", "/v1/nodes/" + node1 + "/sessions", "", other).status, 403);
    EXPECT_EQ(call("POST", "/v1/nodes/" + node1 + "/heartbeat", R"({"load":999999})", other).status, 403);
    EXPECT_EQ(call("POST", "/v1/nodes/" + node1 + "/sessions/" + session,
                   R"({"state":"failed","reason":"attacker"})", other)
                  .status,
              403);
    EXPECT_EQ(call("POST", "/v1/nodes/" + node1 + "/drain", "", other).status, 403);
    const auto takeover = register_node("gpu-1", "10.6.6.6:7000", other);
    EXPECT_EQ(takeover.status, 403) << takeover.body;
  }
  // Node 1 still owns its name, address and session; its own token still works on its routes.
  const json nodes = json::parse(call("GET", "/v1/nodes", "", admin).body);
  for (const json& n : nodes) {
    if (n["name"] == "gpu-1") {
      EXPECT_EQ(n["address"], "10.0.0.1:7000");
      EXPECT_FALSE(n["drained"].get<bool>());
      EXPECT_LT(n["load"].get<double>(), 1.0);
    }
  }
  EXPECT_EQ(json::parse(call("GET", "/v1/sessions/" + session, "", alice).body)["state"], "placed");
  const auto own = call("GET", "/v1/nodes/" + node1 + "/sessions", "", token1);
  EXPECT_EQ(own.status, 200);
  EXPECT_NE(own.body.find(session), std::string::npos);
  EXPECT_EQ(call("POST", "/v1/nodes/" + node1 + "/heartbeat", R"({"load":0.5})", token1).status, 200);
  // A restart of node 1 registers again under its own name; its token cannot register a second name.
  EXPECT_EQ(register_node("gpu-1", "10.0.0.1:7000", token1).status, 201);
  EXPECT_EQ(register_node("gpu-9", "10.0.0.9:7000", token1).status, 403);
  // The static token's own nodes stay its own: a minted token cannot take them over either.
  ASSERT_EQ(register_node("simple-1", "10.0.1.1:7000", kStaticToken).status, 201);
  EXPECT_EQ(register_node("simple-1", "10.6.6.6:7000", mint(admin)).status, 403);
  // Registrations and refused uses are audited.
  EXPECT_EQ(audit_count("node_registered"), 4);
  EXPECT_GE(audit_count("node_token_refused"), 8);
  EXPECT_GE(audit_count("node_registration_refused"), 4);
}

// Finding 3: one rule for names, at login, user creation, session creation, rooms and nodes.
TEST_F(SecurityTest, names_with_nul_or_control_characters_are_refused_everywhere) {
  const std::string admin = login("admin", "admin-password");
  auth->create_user("bob", "bob-password", Role::kClient);
  const std::string nul_name = std::string("bob\0zz", 6);
  const auto nul_login =
      call("POST", "/v1/auth/login", json{{"username", nul_name}, {"password", "bob-password"}}.dump());
  EXPECT_EQ(nul_login.status, 400) << nul_login.body;
  EXPECT_EQ(code(nul_login), "invalid_username");
  EXPECT_EQ(call("POST", "/v1/auth/login", json{{"username", "bob\nzz"}, {"password", "bob-password"}}.dump())
                .status,
            400);
  for (const std::string& bad : {nul_name, std::string("eve\x1b[31m"), std::string("eve\xe2\x80\xae")})
    EXPECT_EQ(call("POST", "/v1/users",
                   json{{"username", bad}, {"password", "long-enough"}, {"role", "client"}}.dump(), admin)
                  .status,
              400);
  ASSERT_EQ(register_node("n1", "127.0.0.1:7000", kStaticToken).status, 201);
  const std::string bob = login("bob", "bob-password");
  const auto traversal =
      call("POST", "/v1/sessions", session_body(std::string("vr-room\0../../etc/passwd", 24)), bob);
  EXPECT_EQ(traversal.status, 400) << traversal.body;
  EXPECT_EQ(code(traversal), "invalid_scene");
  const auto forged_log =
      call("POST", "/v1/sessions", session_body("vr-room", "r\n[error] \x1b[31mforged"), bob);
  EXPECT_EQ(forged_log.status, 400) << forged_log.body;
  EXPECT_EQ(code(forged_log), "invalid_room");
  EXPECT_EQ(call("POST", "/v1/sessions",
                 session_body("vr-room", std::string("r\xe2\x80\xae"
                                                     "evil")),
                 bob)
                .status,
            400);  // a right-to-left override
  EXPECT_EQ(register_node("n\n2", "127.0.0.1:7001", kStaticToken).status, 400);
  // Nothing of that was stored; printable UTF-8 names still work.
  int64_t sessions = 0;
  db->transact(
      [&](pqxx::work& w) { sessions = w.exec("SELECT count(*) FROM sessions")[0][0].as<int64_t>(); });
  EXPECT_EQ(sessions, 0);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body("vr-room", "Café Zürich 東京"), bob).status, 201);
}

// Finding 5: a user cannot hold more than the limit of live sessions, and rooms are owned.
TEST_F(SecurityTest, a_user_holds_at_most_the_session_limit_and_rooms_cannot_be_squatted) {
  ASSERT_EQ(register_node("n1", "127.0.0.1:7000", kStaticToken).status, 201);
  const std::string admin = login("admin", "admin-password"), mallory = user("mallory"),
                    alice = user("alice"), bob = user("bob");
  std::vector<std::string> held;
  for (int i = 0; i < 3; ++i) {
    const auto r = call("POST", "/v1/sessions", session_body(), mallory);
    ASSERT_EQ(r.status, 201) << r.body;
    held.push_back(json::parse(r.body)["session_id"]);
  }
  const auto fourth = call("POST", "/v1/sessions", session_body(), mallory);
  EXPECT_EQ(fourth.status, 429) << fourth.body;
  EXPECT_EQ(code(fourth), "session_limit");
  // Ending one frees a place; other users are not affected by mallory's limit; operators have their own.
  EXPECT_EQ(call("DELETE", "/v1/sessions/" + held[0], "", mallory).status, 204);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body(), mallory).status, 201);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body(), alice).status, 201);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body(), admin).status, 201);

  // Rooms: mallory squats "demo" on another scene before the real members arrive...
  const std::string carol = user("carol");
  ASSERT_EQ(call("POST", "/v1/sessions", session_body("stress", "demo"), carol).status, 201);
  // ...so bob, not listed, is refused with the reason, whatever scene he asks for.
  const auto refused = call("POST", "/v1/sessions", session_body("vr-room", "demo"), bob);
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_EQ(code(refused), "room_forbidden");
  // A room made by its owner with members: members join, others do not; clients cannot open rooms.
  EXPECT_EQ(
      call("POST", "/v1/rooms", json{{"name", "team"}, {"scene", "vr-room"}, {"open", true}}.dump(), alice)
          .status,
      403);
  const auto team = call("POST", "/v1/rooms",
                         json{{"name", "team"}, {"scene", "vr-room"}, {"members", {"bob"}}}.dump(), alice);
  ASSERT_EQ(team.status, 201) << team.body;
  EXPECT_EQ(json::parse(team.body)["owner"], "alice");
  EXPECT_EQ(call("POST", "/v1/rooms", json{{"name", "team"}, {"scene", "stress"}}.dump(), carol).status, 409);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body("vr-room", "team"), bob).status, 201);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body("vr-room", "team"), carol).status, 403);
  // An operator opens a room to everyone; a room of another scene is refused with its scene named.
  ASSERT_EQ(
      call("POST", "/v1/rooms", json{{"name", "lobby"}, {"scene", "vr-room"}, {"open", true}}.dump(), admin)
          .status,
      201);
  EXPECT_EQ(call("POST", "/v1/sessions", session_body("vr-room", "lobby"), carol).status, 201);
  const auto wrong_scene = call("POST", "/v1/sessions", session_body("stress", "lobby"), bob);
  EXPECT_EQ(wrong_scene.status, 503);
  EXPECT_NE(wrong_scene.body.find("vr-room"), std::string::npos);
  // Only its owner (or an operator) deletes a room.
  EXPECT_EQ(call("DELETE", "/v1/rooms/team", "", bob).status, 404);
  EXPECT_EQ(call("DELETE", "/v1/rooms/team", "", alice).status, 204);
}

// Finding 6: a login takes as long for an unknown user as for a known one with a wrong password.
TEST_F(SecurityTest, login_time_does_not_tell_whether_a_user_exists) {
  auth->create_user("known", "known-password", Role::kClient);
  const auto time_login = [&](const std::string& name) {
    const auto start = std::chrono::steady_clock::now();
    const auto r =
        call("POST", "/v1/auth/login", json{{"username", name}, {"password", "wrong-password"}}.dump());
    EXPECT_EQ(r.status, 401);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<double> known, unknown;
  for (int i = 0; i < 4; ++i) {  // alternating, so that load on the machine hits both alike
    known.push_back(time_login("known"));
    unknown.push_back(time_login("nobody" + std::to_string(i)));
  }
  std::sort(known.begin(), known.end());
  std::sort(unknown.begin(), unknown.end());
  const double ratio = unknown[1] / known[1];  // lower medians: the least disturbed runs
  std::printf("login p50: known user %.1f ms, unknown user %.1f ms (ratio %.2f)\n", known[1], unknown[1],
              ratio);
  // Before the fix: 4-16 ms against 172-271 ms (ratio ~0.05). Argon2id dominates both now.
  EXPECT_GT(ratio, 0.5);
  EXPECT_LT(ratio, 2.0);
}

// Finding 7: a Transfer-Encoding other than chunked is a 400 and the connection closes (no smuggling).
TEST_F(SecurityTest, transfer_encoding_other_than_chunked_is_refused_and_the_connection_closed) {
  for (const char* te : {"identity", "chunked, identity", "xchunked"}) {
    SCOPED_TRACE(te);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(server->port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    timeval timeout{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    const std::string smuggled = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string request =
        std::string("POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te +
        "\r\nContent-Type: application/json\r\n\r\n" + smuggled;
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    std::string answer;
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;) answer.append(buffer, size_t(n));
    ::close(fd);
    EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
    EXPECT_EQ(answer.find("HTTP/1.1 200"), std::string::npos)
        << "the smuggled request was answered: " << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  }
}

// Finding 9: access tokens of a login that ended stop working at once, not when they expire.
TEST_F(SecurityTest, access_tokens_of_a_revoked_refresh_family_are_refused) {
  const auto r = call("POST", "/v1/auth/login", R"({"username":"admin","password":"admin-password"})");
  ASSERT_EQ(r.status, 200);
  const json pair = json::parse(r.body);
  const std::string access = pair["access_token"], refresh = pair["refresh_token"];
  EXPECT_EQ(call("GET", "/v1/sessions", "", access).status, 200);
  // Another login of the same user is another family: it keeps working.
  const std::string other = login("admin", "admin-password");
  ASSERT_EQ(call("POST", "/v1/auth/logout", json{{"refresh_token", refresh}}.dump()).status, 204);
  const auto after = call("GET", "/v1/sessions", "", access);
  EXPECT_EQ(after.status, 401) << after.body;
  EXPECT_EQ(call("GET", "/v1/sessions", "", other).status, 200);
  // A second replica (its own cache) learns of it within a second.
  AuthService replica(*db, *tokens);
  const auto claims = tokens->verify(access, std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
  ASSERT_TRUE(claims);
  EXPECT_TRUE(replica.access_revoked(*claims));
  // Refresh-token reuse revokes the family too.
  const json second =
      json::parse(call("POST", "/v1/auth/login", R"({"username":"admin","password":"admin-password"})").body);
  const json rotated = json::parse(
      call("POST", "/v1/auth/refresh", json{{"refresh_token", second["refresh_token"]}}.dump()).body);
  ASSERT_EQ(call("GET", "/v1/sessions", "", rotated["access_token"].get<std::string>()).status, 200);
  EXPECT_EQ(call("POST", "/v1/auth/refresh", json{{"refresh_token", second["refresh_token"]}}.dump()).status,
            401);
  EXPECT_EQ(call("GET", "/v1/sessions", "", rotated["access_token"].get<std::string>()).status, 401);
}

// Finding 9: the bootstrap password is held to the same policy as every other password.
TEST_F(SecurityTest, the_bootstrap_admin_password_follows_the_password_policy) {
  EXPECT_THROW(auth->bootstrap_admin("root2", "short"), ApiError);
  EXPECT_THROW(auth->bootstrap_admin("ro\not", "long-enough-password"), ApiError);
  EXPECT_NO_THROW(auth->bootstrap_admin("root2", "long-enough-password"));
}

}  // namespace
}  // namespace kairo::control
