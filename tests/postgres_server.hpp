#pragma once
// A real, throwaway PostgreSQL for tests (and the demo): initdb into a temporary directory, a free loopback
// port, trust authentication on a Unix socket in that directory and on 127.0.0.1 only. Run as the
// 'postgres' system user when the tests run as root (PostgreSQL refuses to run as root). No mock anywhere.
#include <filesystem>
#include <string>

namespace kairo::test {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close).
int free_tcp_port();

class PostgresServer {
 public:
  PostgresServer();   // throws std::runtime_error with the server log when it cannot start
  ~PostgresServer();  // stops the server and removes the directory
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  std::string url() const;  // postgresql://kairo@127.0.0.1:PORT/kairo
  int port() const { return port_; }
  void stop();  // fast shutdown (for restart tests)
  void start();

 private:
  void run_tool(const std::string& tool, const std::string& arguments);
  std::filesystem::path bin_, dir_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace kairo::test
