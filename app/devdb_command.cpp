// `kairo devdb`: a throwaway PostgreSQL for the demo and for trying Kairo out (devdb/dev_database.hpp, the
// same helper the tests and benchmarks use). Prints its URL on stdout, serves until SIGINT/SIGTERM, then
// stops it and removes its files.
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "app/commands.hpp"
#include "app/signal_stop.hpp"
#include "core/error.hpp"
#include "devdb/dev_database.hpp"

namespace kairo::app {

Runner add_devdb_command(CLI::App&) {
  return [] {
    SignalStop signals;  // before the server starts: a Ctrl-C during start-up still cleans up
    std::unique_ptr<DevDatabase> db;
    try {
      db = std::make_unique<DevDatabase>();
    } catch (const std::runtime_error& e) {
      throw_runtime(std::string("cannot start a throwaway PostgreSQL: ") + e.what());
    }
    std::printf("%s\n", db->url().c_str());
    std::fflush(stdout);
    std::fprintf(stderr,
                 "kairo devdb: PostgreSQL on 127.0.0.1:%d in %s (throwaway: fsync off); Ctrl-C stops it\n",
                 db->port(), db->directory().c_str());
    while (!signals.stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return 0;
  };
}

}  // namespace kairo::app
