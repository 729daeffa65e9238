#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "core/synthetic_trace.hpp"

namespace kairo::app {

Runner add_trace_command(CLI::App& app) {
  auto options = std::make_shared<SyntheticTraceOptions>();
  auto out = std::make_shared<std::string>();
  app.add_option("--duration", options->duration_s, "seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--rate", options->rate_hz, "samples per second")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 2000.0));
  app.add_option("--seed", options->seed, "random seed: the same seed gives the same trace")
      ->capture_default_str();
  app.add_option("--ipd", options->ipd, "interpupillary distance, metres")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.2));
  app.add_option("--out", *out, "output file (.jsonl)")->required();
  return [options, out] {
    const auto samples = synthetic_trace(*options);
    save_trace(*out, samples);
    std::printf("%s\n", nlohmann::json{{"samples", samples.size()}, {"out", *out}}.dump().c_str());
    return 0;
  };
}

}  // namespace kairo::app
