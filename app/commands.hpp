#pragma once
// Each `kairo` subcommand registers its options on the CLI and returns the function that runs it.
#include <CLI/CLI.hpp>
#include <functional>

namespace kairo::app {

using Runner = std::function<int()>;

Runner add_render_command(CLI::App& app);
Runner add_trace_command(CLI::App& app);
Runner add_gpus_command(CLI::App& app);
Runner add_contact_sheet_command(CLI::App& app);
Runner add_encoders_command(CLI::App& app);
Runner add_encode_command(CLI::App& app);
Runner add_netsim_command(CLI::App& app);
Runner add_control_command(CLI::App& app);
Runner add_node_command(CLI::App& app);
Runner add_node_drain_command(CLI::App& app);
Runner add_client_command(CLI::App& app);
Runner add_replay_command(CLI::App& app);
Runner add_devdb_command(CLI::App& app);
Runner add_scene_command(CLI::App& app);

}  // namespace kairo::app
