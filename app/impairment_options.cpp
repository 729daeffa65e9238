#include "app/impairment_options.hpp"

#include "core/error.hpp"

namespace kairo::app {

void add_impairment_options(CLI::App& app, ImpairmentConfig& impairment, uint64_t& seed) {
  app.add_option("--loss", impairment.loss_percent, "packet loss, percent (both directions)")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--burst", impairment.burst_mean, "mean loss burst length in packets (Gilbert-Elliott)")
      ->check(CLI::Range(1.0, 1000.0));
  app.add_option("--delay", impairment.delay_ms, "one-way delay, ms")->check(CLI::Range(0.0, 10000.0));
  app.add_option("--jitter", impairment.jitter_ms, "uniform jitter around the delay, +- ms")
      ->check(CLI::Range(0.0, 10000.0));
  app.add_option("--reorder", impairment.reorder_percent, "packets held back past their successors, percent")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--duplicate", impairment.duplicate_percent, "duplicated packets, percent")
      ->check(CLI::Range(0.0, 100.0));
  app.add_option("--rate", impairment.rate_mbitps, "rate limit, Mbit/s (0: none)")
      ->check(CLI::Range(0.0, 100000.0));
  app.add_option("--queue", impairment.queue_ms, "rate limiter queue, ms")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 10000.0));
  app.add_option("--seed", seed, "random seed: the same seed gives the same impairments")
      ->capture_default_str();
}

void parse_impairment(const std::string& args, ImpairmentConfig& impairment, uint64_t& seed) {
  CLI::App app("netsim impairments", "--netsim");
  add_impairment_options(app, impairment, seed);
  try {
    app.parse(args, false);
  } catch (const CLI::ParseError& e) {
    throw_invalid_input("--netsim \"" + args + "\": " + e.what());
  }
}

}  // namespace kairo::app
