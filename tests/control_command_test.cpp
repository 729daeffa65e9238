// `kairo control` as operators run it: flags or KAIRO_ environment variables, a real PostgreSQL, HTTP on
// loopback, a clean exit on SIGTERM.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <thread>

#include "control-plane/http_client.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {
namespace {

TEST(ControlCommand, serves_the_api_from_environment_settings_and_stops_on_sigterm) {
  test::PostgresServer pg;
  const int port = test::free_tcp_port();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("KAIRO_DB", pg.url().c_str(), 1);
    setenv("KAIRO_LISTEN", ("127.0.0.1:" + std::to_string(port)).c_str(), 1);
    setenv("KAIRO_BOOTSTRAP_ADMIN", "root:root-password", 1);
    execl(KAIRO_BINARY, KAIRO_BINARY, "control", static_cast<char*>(nullptr));
    _exit(127);
  }
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

}  // namespace
}  // namespace kairo
