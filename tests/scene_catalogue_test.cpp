// The scene catalogue (#16): uploads checked (hash, container, sandboxed load, budget) and stored
// content-addressed; refusals leave nothing behind; a scene in use cannot be deleted; sessions on a catalogue
// scene carry its hash to their node, and placement prefers nodes that hold it. Real PostgreSQL, real HTTP.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>

#include "control-plane/control_api.hpp"
#include "control-plane/http_client.hpp"
#include "control-plane/scene_catalogue.hpp"
#include "core/file_bytes.hpp"
#include "tests/postgres_server.hpp"

namespace kairo::control {
namespace {

using nlohmann::json;

const std::string kNodeToken = "static-node-token-for-scene-tests";

class SceneCatalogueTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pg = new test::PostgresServer();
    db = new Database(pg->url(), 4);
    db->migrate();
    tokens = new AccessTokens(std::string(48, 's'));
    auth = new AuthService(*db, *tokens);
    auth->bootstrap_admin("admin", "admin-password");
    auth->create_user("viewer", "viewer-password", Role::kClient);
    fleet = new FleetService(*db, 0.5);
    // A small budget, so that the project's stress scene (524,290 triangles) is over it and a 9 MB file too
    // large.
    CatalogueOptions scenes{
        .budget = {.max_file_bytes = 8 << 20,
                   .max_triangles = 100'000,
                   .max_texture_bytes = 64 << 20,
                   .max_draws = 1000},
        .inspection = {.inspector = KAIRO_BINARY, .timeout_s = 60, .memory_bytes = 4ull << 30}};
    api = new ControlApi(*db, *auth, *tokens, *fleet, kNodeToken, {}, ApiOptions{.scenes = scenes});
    server = new HttpServer(api->serving(HttpServerOptions{.listen = "127.0.0.1:0"}),
                            [](const HttpRequest& r) { return api->handle(r); });
    admin = login("admin", "admin-password");
    viewer = login("viewer", "viewer-password");
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
  void SetUp() override {
    db->transact([](pqxx::work& w) {
      w.exec("DELETE FROM sessions");
      w.exec("DELETE FROM nodes");
      w.exec("DELETE FROM scene_versions");
      w.exec("DELETE FROM scene_blobs");
    });
  }
  static HttpResult call(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& bearer = "") {
    return http_request(server->port(), method, target, body, bearer);
  }
  static std::string login(const std::string& user, const std::string& password) {
    const auto r = call("POST", "/v1/auth/login", json{{"username", user}, {"password", password}}.dump());
    return json::parse(r.body).value("access_token", "");
  }
  static HttpResult upload(const std::string& name, const std::string& bytes, const std::string& sha256) {
    return call("PUT", "/v1/scenes/" + name + (sha256.empty() ? "" : "?sha256=" + sha256), bytes, admin);
  }
  static std::string error_code(const HttpResult& r) {
    const json body = json::parse(r.body, nullptr, false);
    return body.is_object() && body.contains("error") ? body["error"].value("code", "") : "";
  }
  // Rows in the catalogue's tables: a refusal changes none.
  static std::string stored() {
    std::string counts;
    db->transact([&](pqxx::work& w) {
      counts = w.exec1(
                    "SELECT (SELECT count(*) FROM scene_versions) || '/' || (SELECT count(*) FROM "
                    "scene_blobs) || '/' || (SELECT count(*) FROM scene_chunks)")[0]
                   .as<std::string>();
    });
    return counts;
  }
  static int64_t register_node(const std::string& name) {
    const auto r = call("POST", "/v1/nodes/register",
                        json{{"name", name},
                             {"address", "127.0.0.1:1"},
                             {"device", "lavapipe"},
                             {"encoders", {"x264:h264"}},
                             {"scenes", {"vr-room"}},
                             {"max_sessions", 4}}
                            .dump(),
                        kNodeToken);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body).value("node_id", int64_t(0));
  }
  static json create_session(const std::string& scene) {
    const auto r =
        call("POST", "/v1/sessions",
             json{{"scene", scene}, {"eye_width", 256}, {"eye_height", 256}, {"fps", 30}}.dump(), admin);
    EXPECT_EQ(r.status, 201) << r.body;
    return json::parse(r.body, nullptr, false);
  }

  static inline test::PostgresServer* pg = nullptr;
  static inline Database* db = nullptr;
  static inline AccessTokens* tokens = nullptr;
  static inline AuthService* auth = nullptr;
  static inline FleetService* fleet = nullptr;
  static inline ControlApi* api = nullptr;
  static inline HttpServer* server = nullptr;
  static inline std::string admin, viewer;
  const std::string room = read_file_bytes(KAIRO_SCENE_DIR "/vr-room.glb");
};

TEST_F(SceneCatalogueTest, an_upload_is_stored_once_by_content_versioned_by_name_and_listed) {
  ASSERT_GT(room.size(), size_t(2 << 20));  // more than one chunk
  const auto first = upload("lobby", room, sha256_hex(room));
  ASSERT_EQ(first.status, 201) << first.body;
  const json v1 = json::parse(first.body);
  EXPECT_EQ(v1["name"], "lobby");
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["sha256"], sha256_hex(room));
  EXPECT_EQ(v1["size"], std::to_string(room.size()));
  EXPECT_EQ(v1["triangles"], "9614");
  EXPECT_EQ(v1["textures"], 7);
  EXPECT_EQ(v1["draws"], 25);
  // The same bytes again, and under another name: new versions, one stored copy.
  ASSERT_EQ(upload("lobby", room, "").status, 201);
  ASSERT_EQ(upload("atrium", room, sha256_hex(room)).status, 201);
  EXPECT_EQ(stored(), "3/1/" + std::to_string((room.size() + (1 << 20) - 1) >> 20));
  // Listed (clients too: they choose scenes from it), by name then version, in pages.
  const auto page1 = call("GET", "/v1/scenes?limit=2", "", viewer);
  ASSERT_EQ(page1.status, 200) << page1.body;
  const json items1 = json::parse(page1.body);
  ASSERT_EQ(items1.size(), 2u);
  EXPECT_EQ(items1[0]["name"], "atrium");
  EXPECT_EQ(items1[1]["name"], "lobby");
  EXPECT_EQ(items1[1]["version"], 1);
  ASSERT_TRUE(page1.headers.count("x-next-cursor"));
  const auto page2 =
      call("GET", "/v1/scenes?limit=2&cursor=" + page1.headers.at("x-next-cursor"), "", viewer);
  const json items2 = json::parse(page2.body);
  ASSERT_EQ(items2.size(), 1u);
  EXPECT_EQ(items2[0]["version"], 2);
  EXPECT_FALSE(page2.headers.count("x-next-cursor"));
  // Nodes fetch the bytes by hash, exactly as uploaded; a client cannot.
  const auto bytes = call("GET", "/v1/scene-blobs/" + sha256_hex(room), "", kNodeToken);
  ASSERT_EQ(bytes.status, 200);
  EXPECT_TRUE(bytes.body == room);
  EXPECT_EQ(bytes.content_type, "model/gltf-binary");
  EXPECT_EQ(call("GET", "/v1/scene-blobs/" + sha256_hex(room), "", viewer).status, 403);
  EXPECT_EQ(call("GET", "/v1/scene-blobs/" + std::string(64, '0'), "", kNodeToken).status, 404);
}

TEST_F(SceneCatalogueTest, refused_uploads_say_why_and_leave_nothing_behind) {
  ASSERT_EQ(upload("kept", room, "").status, 201);
  const std::string before = stored();
  // Bytes that changed on the way.
  const auto mismatch = upload("lobby", room, sha256_hex(room + "x"));
  EXPECT_EQ(mismatch.status, 400);
  EXPECT_EQ(error_code(mismatch), "hash_mismatch") << mismatch.body;
  // A truncated file (its own hash matches: cut before hashing).
  const std::string half = room.substr(0, room.size() / 2);
  const auto truncated = upload("lobby", half, sha256_hex(half));
  EXPECT_EQ(truncated.status, 400);
  EXPECT_EQ(error_code(truncated), "invalid_scene");
  EXPECT_NE(truncated.body.find("truncated"), std::string::npos) << truncated.body;
  // A complete container whose JSON is garbage: refused by the sandboxed loader, with its reason.
  std::string garbage = room;
  garbage.replace(20, 12, "{{{{{{{{{{{{");
  const auto corrupt = upload("lobby", garbage, sha256_hex(garbage));
  EXPECT_EQ(corrupt.status, 400);
  EXPECT_EQ(error_code(corrupt), "invalid_scene") << corrupt.body;
  EXPECT_EQ(corrupt.body.find("kairo-scene-"), std::string::npos) << "no scratch path: " << corrupt.body;
  // Over the triangle budget (the stress scene draws 524,290): named with the numbers.
  const std::string stress = read_file_bytes(KAIRO_SCENE_DIR "/stress.glb");
  const auto over = upload("stress", stress, sha256_hex(stress));
  EXPECT_EQ(over.status, 400);
  EXPECT_EQ(error_code(over), "over_budget");
  EXPECT_NE(json::parse(over.body)["error"]["message"].get<std::string>().find("triangles 524,290 > 100,000"),
            std::string::npos)
      << over.body;
  // Larger than the file budget: 413 before anything is read past the limit.
  const std::string huge = room + std::string(6 << 20, '\0');
  EXPECT_EQ(upload("huge", huge, "").status, 413);
  // Not a glTF at all, and an unacceptable name.
  EXPECT_EQ(error_code(upload("text", "hello, this is no scene at all", "")), "invalid_scene");
  EXPECT_EQ(call("PUT", "/v1/scenes/bad%0Aname", room, admin).status, 400);
  // A client may not upload; without a token the body is not even read past 64 KiB.
  EXPECT_EQ(call("PUT", "/v1/scenes/mine", room.substr(0, 1000), viewer).status, 403);
  EXPECT_EQ(call("PUT", "/v1/scenes/mine", room, "").status, 413);
  EXPECT_EQ(stored(), before);
}

TEST_F(SceneCatalogueTest, a_scene_in_use_is_not_deleted_and_its_sessions_carry_its_hash) {
  ASSERT_EQ(upload("lobby", room, "").status, 201);
  register_node("a");
  const json session = create_session("lobby");
  const std::string id = session.value("session_id", "");
  // The node is told which bytes to render.
  const auto placed =
      call("GET", "/v1/nodes/" + std::to_string(session.value("node_id", 0)) + "/sessions", "", kNodeToken);
  const json listed = json::parse(placed.body);
  ASSERT_EQ(listed.size(), 1u) << placed.body;
  EXPECT_EQ(listed[0]["scene_sha256"], sha256_hex(room));
  // In use: refused, naming the session; nothing deleted.
  const std::string before = stored();
  const auto refused = call("DELETE", "/v1/scenes/lobby", "", admin);
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(error_code(refused), "scene_in_use");
  EXPECT_NE(refused.body.find(id), std::string::npos) << refused.body;
  EXPECT_EQ(stored(), before);
  EXPECT_EQ(call("DELETE", "/v1/scenes/lobby", "", viewer).status, 403);
  // Ended: deleted, bytes and all.
  ASSERT_EQ(call("DELETE", "/v1/sessions/" + id, "", admin).status, 204);
  EXPECT_EQ(call("DELETE", "/v1/scenes/lobby", "", admin).status, 204);
  EXPECT_EQ(stored(), "0/0/0");
  EXPECT_EQ(call("DELETE", "/v1/scenes/lobby", "", admin).status, 404);
  // A scene that is neither in the catalogue nor in any node's folder has no node.
  const auto nowhere =
      call("POST", "/v1/sessions",
           json{{"scene", "lobby"}, {"eye_width", 256}, {"eye_height", 256}, {"fps", 30}}.dump(), admin);
  EXPECT_EQ(nowhere.status, 503) << nowhere.body;
}

TEST_F(SceneCatalogueTest, placement_prefers_a_node_that_holds_the_scene) {
  ASSERT_EQ(upload("lobby", room, "").status, 201);
  const int64_t a = register_node("a");
  const int64_t b = register_node("b");
  ASSERT_LT(a, b);  // without a holder, ties go to the lower id
  EXPECT_EQ(create_session("lobby").value("node_id", int64_t(0)), a);
  // b reports the scene in its cache: the next sessions go there, though a is as free (and b fills first).
  const auto reported = call("PUT", "/v1/nodes/" + std::to_string(b) + "/scene-cache",
                             json{{"sha256", {sha256_hex(room)}}}.dump(), kNodeToken);
  ASSERT_EQ(reported.status, 204) << reported.body;
  EXPECT_EQ(create_session("lobby").value("node_id", int64_t(0)), b);
  EXPECT_EQ(create_session("lobby").value("node_id", int64_t(0)), b);
  // Operators see what each node holds.
  const json nodes = json::parse(call("GET", "/v1/nodes", "", admin).body);
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[1]["cached_scenes"], json::array({sha256_hex(room)}));
  EXPECT_EQ(nodes[0]["scenes"], json::array({"vr-room"}));
  EXPECT_TRUE(nodes[0].value("cached_scenes", json::array()).empty());
  // A scene from the nodes' folders is placed as before (least filled).
  EXPECT_EQ(create_session("vr-room").value("node_id", int64_t(0)), a);
  // Bad reports are refused.
  EXPECT_EQ(
      call("PUT", "/v1/nodes/" + std::to_string(b) + "/scene-cache", R"({"sha256":["nope"]})", kNodeToken)
          .status,
      400);
}

}  // namespace
}  // namespace kairo::control
