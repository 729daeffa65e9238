// The deployment docs/operations.md describes, as processes: `kairo control` serving HTTPS with
// --tls-cert/--tls-key, a `kairo node` and a `kairo client` that trust it through --ca-file. Frames flow; a
// client that does not trust the certificate is refused before it sends anything, and says why.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/control_process.hpp"
#include "tests/postgres_server.hpp"
#include "tests/test_certificate.hpp"

namespace kairo {
namespace {

// Runs `kairo ARGS...` with stdout and stderr into files; returns its exit code (-1: killed).
int run_kairo(const std::vector<std::string>& args, const std::filesystem::path& out,
              const std::filesystem::path& err) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (std::freopen(out.c_str(), "w", stdout) == nullptr ||
        std::freopen(err.c_str(), "w", stderr) == nullptr)
      _exit(126);
    std::vector<char*> argv{const_cast<char*>(KAIRO_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(KAIRO_BINARY, argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(TlsEndToEnd, node_and_client_reach_an_https_control_plane_through_their_ca_file) {
  const auto dir = std::filesystem::temp_directory_path() / ("kairo-tls-e2e-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  test::write_certificate(dir / "cert.pem", dir / "key.pem", "DNS:localhost,IP:127.0.0.1");
  test::PostgresServer pg;
  test::ControlProcess control(KAIRO_BINARY,
                               {{"KAIRO_DB", pg.url()},
                                {"KAIRO_TLS_CERT", (dir / "cert.pem").string()},
                                {"KAIRO_TLS_KEY", (dir / "key.pem").string()},
                                {"KAIRO_BOOTSTRAP_ADMIN", "root:root-password"},
                                {"KAIRO_NODE_TOKEN", "tls-e2e-node-token-0123456789"}},
                               dir / "control.log");
  ASSERT_GT(control.port(), 0) << control.log_text();
  EXPECT_NE(control.log_text().find("(https)"), std::string::npos) << control.log_text();
  const std::string url = "https://localhost:" + std::to_string(control.port());

  const pid_t node = fork();
  if (node == 0) {
    setenv("KAIRO_NODE_TOKEN", "tls-e2e-node-token-0123456789", 1);
    if (std::freopen((dir / "node.log").c_str(), "w", stderr) == nullptr) _exit(126);
    execl(KAIRO_BINARY, KAIRO_BINARY, "node", "--control", url.c_str(), "--ca-file",
          (dir / "cert.pem").c_str(), "--listen-udp", "127.0.0.1:0", "--listen-signalling", "none",
          "--scenes", KAIRO_SCENE_DIR, "--admin-socket", (dir / "node.sock").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // The client retries while the node registers (device and encoder probes take a moment).
  int client = -1;
  setenv("KAIRO_PASSWORD", "root-password", 1);
  for (int attempt = 0; attempt < 30 && client != 0; ++attempt) {
    client = run_kairo(
        {"client", "--control", url, "--ca-file", (dir / "cert.pem").string(), "--user", "root", "--size",
         "128x128", "--fps", "15", "--duration", "3", "--report", (dir / "report.json").string()},
        dir / "client.out", dir / "client.err");
    if (client != 0) sleep(1);
  }
  EXPECT_EQ(client, 0) << read_file(dir / "client.err") << read_file(dir / "node.log");
  const auto report = nlohmann::json::parse(read_file(dir / "report.json"), nullptr, false);
  ASSERT_TRUE(report.is_object()) << read_file(dir / "client.out");
  EXPECT_GT(report.value("frames_decoded", 0), 20) << report.dump();

  // Without the CA file the client does not trust the control plane: refused, with the reason.
  const int untrusting =
      run_kairo({"client", "--control", url, "--user", "root", "--size", "128x128", "--duration", "1"},
                dir / "untrusting.out", dir / "untrusting.err");
  EXPECT_NE(untrusting, 0);
  const std::string why = read_file(dir / "untrusting.err");
  EXPECT_NE(why.find("certificate"), std::string::npos) << why;
  EXPECT_EQ(why.find("root-password"), std::string::npos) << "a secret in the error";
  unsetenv("KAIRO_PASSWORD");

  kill(node, SIGTERM);
  int status = 0;
  waitpid(node, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir / "node.log");
  EXPECT_EQ(control.stop(), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kairo
