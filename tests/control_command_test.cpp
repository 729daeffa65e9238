// `kairo control` as operators run it: flags or KAIRO_ environment variables, a real PostgreSQL, HTTP on
// loopback, a clean exit on SIGTERM.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "control-plane/http_client.hpp"
#include "tests/control_process.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {
namespace {

std::filesystem::path log_path(const std::string& what) {
  return std::filesystem::temp_directory_path() /
         ("kairo-control-" + what + "-" + std::to_string(getpid()) + ".log");
}

TEST(ControlCommand, serves_the_api_from_environment_settings_and_stops_on_sigterm) {
  test::PostgresServer pg;
  test::ControlProcess control(KAIRO_BINARY,
                               {{"KAIRO_DB", pg.url()}, {"KAIRO_BOOTSTRAP_ADMIN", "root:root-password"}},
                               log_path("env"));
  const uint16_t port = control.port();
  ASSERT_GT(port, 0) << "kairo control never said where it listens:\n" << control.log_text();
  EXPECT_EQ(control::http_request(port, "GET", "/readyz").status, 200);
  EXPECT_EQ(control::http_request(port, "POST", "/v1/auth/login",
                                  R"({"username":"root","password":"root-password"})")
                .status,
            200);
  EXPECT_EQ(control.stop(), 0);
}

// Rotating the access-token signing key (docs/operations.md): every replica restarts with the new key and the
// old one as --previous-token-key, so tokens already handed out keep working; once they have expired the
// previous key is dropped, and what it signed is refused while refresh tokens (database rows) carry on.
TEST(ControlCommand, the_token_key_rotates_without_logging_anyone_out) {
  test::PostgresServer pg;
  const std::string old_key(40, 'o'), new_key(40, 'n');
  auto run = [&](const std::string& what, std::map<std::string, std::string> env) {
    env.emplace("KAIRO_DB", pg.url());
    env.emplace("KAIRO_BOOTSTRAP_ADMIN", "root:root-password");
    return std::make_unique<test::ControlProcess>(KAIRO_BINARY, env, log_path(what));
  };
  auto sessions = [](const test::ControlProcess& c, const std::string& token) {
    return control::http_request(c.port(), "GET", "/v1/sessions", "", token).status;
  };
  auto before = run("before", {{"KAIRO_TOKEN_KEY", old_key}});
  ASSERT_GT(before->port(), 0) << before->log_text();
  const auto login =
      nlohmann::json::parse(control::http_request(before->port(), "POST", "/v1/auth/login",
                                                  R"({"username":"root","password":"root-password"})")
                                .body);
  const std::string old_access = login["access_token"], refresh = login["refresh_token"];
  EXPECT_EQ(sessions(*before, old_access), 200);
  EXPECT_EQ(before->stop(), 0);

  // Mid-rotation: the old token still works; new tokens are signed with the new key.
  auto rotating = run("rotating", {{"KAIRO_TOKEN_KEY", new_key}, {"KAIRO_PREVIOUS_TOKEN_KEY", old_key}});
  ASSERT_GT(rotating->port(), 0) << rotating->log_text();
  EXPECT_EQ(sessions(*rotating, old_access), 200);
  const auto refreshed = control::http_request(rotating->port(), "POST", "/v1/auth/refresh",
                                               nlohmann::json{{"refresh_token", refresh}}.dump());
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  const auto pair = nlohmann::json::parse(refreshed.body);
  const std::string new_access = pair["access_token"], new_refresh = pair["refresh_token"];
  EXPECT_EQ(sessions(*rotating, new_access), 200);
  EXPECT_EQ(rotating->stop(), 0);

  // Rotation over: the old key's tokens are refused, the new ones and the refresh token still work.
  auto after = run("after", {{"KAIRO_TOKEN_KEY", new_key}});
  ASSERT_GT(after->port(), 0) << after->log_text();
  EXPECT_EQ(sessions(*after, old_access), 401);
  EXPECT_EQ(sessions(*after, new_access), 200);
  EXPECT_EQ(control::http_request(after->port(), "POST", "/v1/auth/refresh",
                                  nlohmann::json{{"refresh_token", new_refresh}}.dump())
                .status,
            200);
  // A previous key without a new one is refused at start: it would sign with a generated key.
  auto refused = run("refused", {{"KAIRO_PREVIOUS_TOKEN_KEY", old_key}});
  EXPECT_EQ(refused->port(), 0);
  EXPECT_EQ(refused->stop(), 2);
  EXPECT_NE(refused->log_text().find("--previous-token-key is for a rotation"), std::string::npos)
      << refused->log_text();
  // The keys never reach the log.
  for (const auto& log : {after->log_text(), refused->log_text()}) {
    EXPECT_EQ(log.find(old_key), std::string::npos);
    EXPECT_EQ(log.find(new_key), std::string::npos);
  }
}

TEST(ControlCommand, refuses_plain_http_beyond_loopback_and_a_missing_database) {
  const std::string refuse =
      std::string(KAIRO_BINARY) + " control --db postgresql://x@127.0.0.1:1/x --listen 0.0.0.0:0 2>/dev/null";
  int status = std::system(refuse.c_str());
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const std::string no_db =
      std::string(KAIRO_BINARY) + " control --db postgresql://x@127.0.0.1:1/x?connect_timeout=2 2>/dev/null";
  status = std::system(no_db.c_str());
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

// Finding 9 of docs/security.md: secrets need not be in argv (environment or file), and on argv they warn.
TEST(ControlCommand, secrets_come_from_files_or_the_environment_and_warn_on_the_command_line) {
  const auto dir = std::filesystem::temp_directory_path() / ("kairo-secrets-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "token") << "file-node-token-0123456789\n"; }
  const auto stderr_of = [&](const std::string& args, const std::string& env = "") {
    const std::string command = env + " " + KAIRO_BINARY +
                                " control --db postgresql://x@127.0.0.1:1/x?connect_timeout=1 " + args +
                                " 2>" + (dir / "err").string();
    const int status = std::system(command.c_str());
    std::ifstream in(dir / "err");
    return std::pair{WEXITSTATUS(status), std::string(std::istreambuf_iterator<char>(in), {})};
  };
  const auto [argv_code, on_argv] = stderr_of("--node-token argv-token-0123456789");
  EXPECT_NE(on_argv.find("--node-token on the command line is visible"), std::string::npos) << on_argv;
  EXPECT_NE(on_argv.find("fleet-wide"), std::string::npos) << on_argv;  // the static token's own warning
  EXPECT_EQ(argv_code, 1);  // then it fails on the missing database, as before
  const auto [env_code, from_env] = stderr_of("", "KAIRO_NODE_TOKEN=env-token-0123456789");
  EXPECT_EQ(from_env.find("visible"), std::string::npos) << from_env;
  const auto [file_code, from_file] = stderr_of("--node-token-file " + (dir / "token").string());
  EXPECT_EQ(from_file.find("visible"), std::string::npos) << from_file;
  EXPECT_NE(from_file.find("fleet-wide"), std::string::npos) << from_file;
  const auto [both_code, both] = stderr_of("--node-token x --node-token-file " + (dir / "token").string());
  EXPECT_EQ(both_code, 2) << both;
  const auto [missing_code, missing] = stderr_of("--node-token-file " + (dir / "nothing").string());
  EXPECT_EQ(missing_code, 2) << missing;
  std::filesystem::remove_all(dir);
}

// `kairo scene` against `kairo control` (docs/scenes.md): a .gltf with its files uploaded as one GLB,
// inspected by the control plane's own binary in its sandbox, listed, deleted; a refusal's reason reaches the
// operator.
TEST(ControlCommand, kairo_scene_uploads_lists_and_deletes_through_the_control_plane) {
  test::PostgresServer pg;
  test::ControlProcess control(KAIRO_BINARY,
                               {{"KAIRO_DB", pg.url()},
                                {"KAIRO_BOOTSTRAP_ADMIN", "root:root-password"},
                                {"KAIRO_SCENE_MAX_TRIANGLES", "100000"}},
                               log_path("scene"));
  ASSERT_GT(control.port(), 0) << control.log_text();
  const std::string env = std::string("KAIRO_CONTROL=http://127.0.0.1:") + std::to_string(control.port()) +
                          " KAIRO_USER=root KAIRO_PASSWORD=root-password ";
  const auto run = [&](const std::string& args, std::string& out) {
    const auto file = std::filesystem::temp_directory_path() / ("kairo-scene-" + std::to_string(getpid()));
    const int status =
        std::system((env + KAIRO_BINARY + " scene " + args + " > " + file.string() + " 2>&1").c_str());
    std::ifstream in(file);
    out.assign(std::istreambuf_iterator<char>(in), {});
    std::filesystem::remove(file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string out;
  ASSERT_EQ(run("upload /usr/share/assimp/models/glTF2/BoxTextured-glTF/BoxTextured.gltf --name box", out), 0)
      << out;
  const auto stored = nlohmann::json::parse(out);
  EXPECT_EQ(stored["name"], "box");
  EXPECT_EQ(stored["triangles"], "12");
  EXPECT_EQ(stored["textures"], 1);
  ASSERT_EQ(run("list", out), 0) << out;
  const auto listed = nlohmann::json::parse(out);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["sha256"], stored["sha256"]);
  // Over the budget this control plane was given: refused with the numbers, exit 2.
  EXPECT_EQ(run(std::string("upload ") + KAIRO_SCENE_DIR + "/stress.glb", out), 2) << out;
  EXPECT_NE(out.find("triangles 524,290 > 100,000"), std::string::npos) << out;
  ASSERT_EQ(run("delete box", out), 0) << out;
  ASSERT_EQ(run("list", out), 0) << out;
  EXPECT_EQ(nlohmann::json::parse(out).size(), 0u);
  EXPECT_EQ(run("delete box", out), 2) << out;
  EXPECT_EQ(control.stop(), 0);
}

}  // namespace
}  // namespace kairo
