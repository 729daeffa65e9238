#include <csignal>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "app/commands.hpp"
#include "app/impairment_options.hpp"
#include "core/error.hpp"
#include "core/log_format.hpp"
#include "core/realtime_scheduling.hpp"
#include "streaming/netsim.hpp"

namespace kairo::app {

Runner add_netsim_command(CLI::App& app) {
  struct Options {
    std::string listen, forward;
    ImpairmentConfig impairment;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--listen", o->listen, "HOST:PORT the client sends to")->required();
  app.add_option("--forward", o->forward, "HOST:PORT of the server")->required();
  add_impairment_options(app, o->impairment, o->seed);
  return [o] {
    // Wait for SIGINT/SIGTERM synchronously: no work in a signal handler, counters printed from this thread.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals,
                    nullptr);  // before the relay's thread starts, so it inherits the mask
    // The relay's thread (started from this one) wakes on time, ahead of the busy threads of the programs it
    // sits between: otherwise its own scheduling delays add to those it emulates (bench/RESULTS.md, issue
    // 15: a frame's send p99 9 ms through an ordinary relay on two loaded cores, 3.5 ms through this one).
    const RealtimeScheduling realtime;
    if (!realtime.granted())
      spdlog::warn(
          "netsim: real-time scheduling not permitted (CAP_SYS_NICE): the relay's own scheduling "
          "delays add to the ones it emulates on a busy machine");
    Netsim netsim(o->listen, o->forward, o->impairment, o->seed);
    netsim.start();
    announce("relaying " + o->listen + " -> " + o->forward + " (port " +
             std::to_string(netsim.listen_port()) + ")");
    int received = 0;
    sigwait(&signals, &received);
    netsim.stop();
    std::printf("%s\n", netsim.counters_json().c_str());
    return 0;
  };
}

}  // namespace kairo::app
