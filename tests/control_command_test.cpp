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
#include <thread>

#include "control-plane/http_client.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {
namespace {

TEST(ControlCommand, serves_the_api_from_environment_settings_and_stops_on_sigterm) {
  test::PostgresServer pg;
  const std::string log = (std::filesystem::temp_directory_path() /
                           ("kairo-control-command-" + std::to_string(getpid()) + ".log"))
                              .string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("KAIRO_DB", pg.url().c_str(), 1);
    setenv("KAIRO_LISTEN", "127.0.0.1:0", 1);  // the kernel picks the port; the log line says which
    setenv("KAIRO_BOOTSTRAP_ADMIN", "root:root-password", 1);
    freopen(log.c_str(), "w", stderr);
    execl(KAIRO_BINARY, KAIRO_BINARY, "control", static_cast<char*>(nullptr));
    _exit(127);
  }
  uint16_t port = 0;
  for (int i = 0; i < 300 && port == 0; ++i) {  // up to 30 s on a loaded machine
    std::ifstream in(log);
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    const size_t line = text.find("listening on ");
    const size_t at = line == std::string::npos ? line : text.find(" port ", line);
    if (at != std::string::npos) port = uint16_t(std::atoi(text.c_str() + at + 6));
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(port, 0) << "kairo control never said where it listens";
  int status_code = 0;
  for (int i = 0; i < 100 && status_code != 200; ++i) {
    try {
      status_code = control::http_request(port, "GET", "/readyz").status;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  EXPECT_EQ(status_code, 200);
  EXPECT_EQ(control::http_request(port, "POST", "/v1/auth/login",
                                  R"({"username":"root","password":"root-password"})")
                .status,
            200);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
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

}  // namespace
}  // namespace kairo
