#pragma once
// The impairment flags of `kairo netsim`, shared with `kairo replay --netsim "ARGS"`, which takes the same
// flags in one argument.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "streaming/netsim.hpp"

namespace kairo::app {

void add_impairment_options(CLI::App& app, ImpairmentConfig& impairment, uint64_t& seed);
// "--loss 5 --burst 2 --delay 20 --seed 3": throws kairo::Error (invalid input) naming --netsim.
void parse_impairment(const std::string& args, ImpairmentConfig& impairment, uint64_t& seed);

}  // namespace kairo::app
