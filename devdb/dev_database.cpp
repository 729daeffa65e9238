#include "devdb/dev_database.hpp"

#include "core/free_port.hpp"

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <stdexcept>

namespace kairo {
namespace {

std::filesystem::path postgres_bin() {
  std::filesystem::path best;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec))
    if (std::filesystem::exists(entry.path() / "bin/initdb") && entry.path() > best.parent_path())
      best = entry.path() / "bin";
  if (best.empty())
    throw std::runtime_error("PostgreSQL server binaries not found (Debian package postgresql)");
  return best;
}

}  // namespace

DevDatabase::DevDatabase() : bin_(postgres_bin()) {
  dir_ = std::filesystem::temp_directory_path() /
         ("kairo-pg-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir_);
  if (geteuid() == 0) {
    const passwd* user = getpwnam("postgres");
    if (user == nullptr)
      throw std::runtime_error("running as root but there is no 'postgres' user to run PostgreSQL as");
    if (chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0)
      throw std::runtime_error("cannot chown " + dir_.string());
  }
  run_tool("initdb", "-D " + (dir_ / "data").string() + " -U kairo -A trust -E UTF8 --no-sync");
  std::ofstream(dir_ / "data/postgresql.auto.conf", std::ios::app)
      << "listen_addresses = '127.0.0.1'\nunix_socket_directories = '" << dir_.string()
      << "'\nfsync = off\nsynchronous_commit = on\nmax_connections = 200\n";
  // KAIRO_DEVDB_STATEMENT_STATS=1: per-statement counts and times, planning included (pg_stat_statements;
  // `CREATE EXTENSION pg_stat_statements` to read them): how bench/RESULTS.md's fleet figures were taken
  // apart.
  if (const char* stats = std::getenv("KAIRO_DEVDB_STATEMENT_STATS"); stats != nullptr && *stats == '1')
    std::ofstream(dir_ / "data/postgresql.auto.conf", std::ios::app)
        << "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n"
           "pg_stat_statements.track_planning = on\n";
  // PostgreSQL takes its port from its configuration: a port the kernel just gave out can be taken by
  // another process before the server binds it (tests start servers in parallel), so a start that failed
  // on a taken port is retried on another one. The last `port` line of the file is the one that counts.
  for (int attempt = 0;; ++attempt) {
    port_ = free_tcp_port();
    std::ofstream(dir_ / "data/postgresql.auto.conf", std::ios::app) << "port = " << port_ << "\n";
    try {
      start();
      break;
    } catch (const std::runtime_error& e) {
      if (attempt >= 4 || std::string(e.what()).find("already in use") == std::string::npos) throw;
    }
  }
  run_tool("createdb", "-h " + dir_.string() + " -p " + std::to_string(port_) + " -U kairo kairo");
}

DevDatabase::~DevDatabase() {
  try {
    stop();
  } catch (...) {
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string DevDatabase::url() const {
  return "postgresql://kairo@127.0.0.1:" + std::to_string(port_) + "/kairo?connect_timeout=5";
}

void DevDatabase::reset() {
  run_tool("psql", "-q -v ON_ERROR_STOP=1 -h " + dir_.string() + " -p " + std::to_string(port_) +
                       " -U kairo -d kairo -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;'");
}

void DevDatabase::start() {
  run_tool("pg_ctl",
           "-D " + (dir_ / "data").string() + " -l " + (dir_ / "server.log").string() + " -w -t 30 start");
  running_ = true;
}

void DevDatabase::stop() {
  if (!running_) return;
  running_ = false;
  run_tool("pg_ctl", "-D " + (dir_ / "data").string() + " -m fast -w -t 30 stop");
}

void DevDatabase::run_tool(const std::string& tool, const std::string& arguments) {
  const std::string command =
      (bin_ / tool).string() + " " + arguments + " >> " + (dir_ / "tools.log").string() + " 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    if (geteuid() == 0) {
      const passwd* user = getpwnam("postgres");
      if (user == nullptr || setgid(user->pw_gid) != 0 || setuid(user->pw_uid) != 0) _exit(126);
    }
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream log(dir_ / "tools.log"), server(dir_ / "server.log");
    const std::string text((std::istreambuf_iterator<char>(log)), {}),
        server_text((std::istreambuf_iterator<char>(server)), {});
    throw std::runtime_error(tool + " failed:\n" + text + server_text);
  }
}

}  // namespace kairo
