#pragma once
// pgbench, Debian's PostgreSQL benchmark, as the peer the control-plane benchmarks measure against: its TPS
// (TPC-B-like) on the same PostgreSQL in the same invocation.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace kairo::bench {

// The newest installed /usr/lib/postgresql/*/bin/pgbench; empty when none.
inline std::string pgbench_binary() {
  std::vector<std::string> found;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", error))
    if (std::filesystem::exists(entry.path() / "bin/pgbench"))
      found.push_back((entry.path() / "bin/pgbench").string());
  std::sort(found.begin(), found.end());
  return found.empty() ? std::string() : found.back();
}

inline std::string pgbench_connection(int port) {
  return " -h 127.0.0.1 -p " + std::to_string(port) + " -U kairo ";
}

// pgbench's tables (scale 10) in the database "kairo" of the server on `port`.
inline bool pgbench_initialise(int port) {
  const std::string bin = pgbench_binary();
  return !bin.empty() &&
         std::system((bin + pgbench_connection(port) + "-i -s 10 -q kairo >/dev/null 2>&1").c_str()) == 0;
}

// Drops pgbench's tables. After its run they hold tens of thousands of dead rows (of a million): left in the
// database, autovacuum's first pass over them (about a minute after the server started, in the middle of
// what is measured next) took a share of the two cores for seconds, and the measured tail with it.
inline void pgbench_drop(int port) {
  const std::string bin = pgbench_binary();
  if (bin.empty()) return;
  [[maybe_unused]] const int status =
      std::system((bin + pgbench_connection(port) + "-i -I d -q kairo >/dev/null 2>&1").c_str());
}

// The first line `command` prints (empty when it printed nothing or could not run).
inline std::string first_output_line(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return {};
  char line[256] = {};
  const bool read = std::fgets(line, sizeof(line), p) != nullptr;
  pclose(p);
  return read ? std::string(line) : std::string();
}

// TPS of `clients` for `seconds` (0 when pgbench is missing or failed).
inline double pgbench_tps(int port, int clients, int seconds) {
  const std::string bin = pgbench_binary();
  if (bin.empty()) return 0;
  const std::string command = bin + pgbench_connection(port) + "-n -c " + std::to_string(clients) +
                              " -j 2 -T " + std::to_string(seconds) +
                              " kairo 2>/dev/null | grep -E '^tps' | head -1";
  const std::string line = first_output_line(command);
  const size_t eq = line.find('=');
  return eq != std::string::npos ? std::atof(line.c_str() + eq + 1) : 0;
}

}  // namespace kairo::bench
