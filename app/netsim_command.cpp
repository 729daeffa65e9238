#include <csignal>
#include <cstdio>

#include "app/commands.hpp"
#include "core/error.hpp"
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
  app.add_option("--loss", o->impairment.loss_percent, "packet loss, percent (both directions)")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--burst", o->impairment.burst_mean, "mean loss burst length in packets (Gilbert-Elliott)")
      ->check(CLI::Range(1.0, 1000.0));
  app.add_option("--delay", o->impairment.delay_ms, "one-way delay, ms")->check(CLI::Range(0.0, 10000.0));
  app.add_option("--jitter", o->impairment.jitter_ms, "uniform jitter around the delay, +- ms")
      ->check(CLI::Range(0.0, 10000.0));
  app.add_option("--reorder", o->impairment.reorder_percent,
                 "packets held back past their successors, percent")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--duplicate", o->impairment.duplicate_percent, "duplicated packets, percent")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--rate", o->impairment.rate_mbitps, "rate limit, Mbit/s (0: none)")
      ->check(CLI::Range(0.0, 100000.0));
  app.add_option("--queue", o->impairment.queue_ms, "rate limiter queue, ms")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 10000.0));
  app.add_option("--seed", o->seed, "random seed: the same seed gives the same impairments")
      ->capture_default_str();
  return [o] {
    // Wait for SIGINT/SIGTERM synchronously: no work in a signal handler, counters printed from this thread.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals,
                    nullptr);  // before the relay's thread starts, so it inherits the mask
    Netsim netsim(o->listen, o->forward, o->impairment, o->seed);
    netsim.start();
    std::fprintf(stderr, "netsim: relaying %s -> %s (port %u)\n", o->listen.c_str(), o->forward.c_str(),
                 netsim.listen_port());
    int received = 0;
    sigwait(&signals, &received);
    netsim.stop();
    std::printf("%s\n", netsim.counters_json().c_str());
    return 0;
  };
}

}  // namespace kairo::app
