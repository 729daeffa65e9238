#pragma once
// A real, throwaway PostgreSQL (Debian's server binaries): initdb into a temporary directory, a free loopback
// port, trust authentication on a Unix socket in that directory and on 127.0.0.1 only. Run as the 'postgres'
// system user when running as root (PostgreSQL refuses to run as root). The one helper behind the tests, the
// benchmarks and the README's demo (`kairo devdb`). Never for production data: fsync is off.
#include <filesystem>
#include <string>

namespace kairo {

class DevDatabase {
 public:
  DevDatabase();   // throws std::runtime_error with the server log when it cannot start
  ~DevDatabase();  // stops the server and removes the directory
  DevDatabase(const DevDatabase&) = delete;
  DevDatabase& operator=(const DevDatabase&) = delete;

  std::string url() const;  // postgresql://kairo@127.0.0.1:PORT/kairo?connect_timeout=5
  int port() const { return port_; }
  const std::filesystem::path& directory() const { return dir_; }
  // Drops everything in the database (a fresh, empty schema), so each test starts from nothing.
  void reset();
  void stop();  // fast shutdown (for restart tests)
  void start();

 private:
  void run_tool(const std::string& tool, const std::string& arguments);
  std::filesystem::path bin_, dir_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace kairo
