// kairo: the one command. Subcommands register themselves in app/*_command.cpp; this file only dispatches
// and turns every failure into a message on stderr and an exit code (1 runtime, 2 bad input), never a signal.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/log_format.hpp"

int main(int argc, char** argv) {
  // Logs go to stderr so that stdout carries only results (JSON summaries) for scripts.
  spdlog::set_default_logger(spdlog::stderr_color_mt("kairo"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::warn);

  CLI::App app{"Kairo: cloud rendering and encoding for VR streaming"};
  app.require_subcommand(1);
  app.fallthrough();  // global options (--log-level) may follow the subcommand
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->envname("KAIRO_LOG_LEVEL")
      ->capture_default_str();
  std::string log_format = "text";
  app.add_option("--log-format", log_format, "text, or json: one JSON object per line (docs/operations.md)")
      ->envname("KAIRO_LOG_FORMAT")
      ->capture_default_str();

  std::vector<std::pair<CLI::App*, kairo::app::Runner>> commands;
  auto add = [&](const char* name, const char* description, kairo::app::Runner (*add_command)(CLI::App&)) {
    CLI::App* sub = app.add_subcommand(name, description);
    commands.emplace_back(sub, add_command(*sub));
  };
  add("render", "Render stereo views of a scene to PNG, for one pose or a whole trace",
      kairo::app::add_render_command);
  add("trace", "Generate a realistic synthetic head-motion trace (JSON Lines)",
      kairo::app::add_trace_command);
  add("gpus", "List the Vulkan devices Kairo can render with", kairo::app::add_gpus_command);
  add("encoders", "List encoder backends, each probed with a real session, and why any is unavailable",
      kairo::app::add_encoders_command);
  add("encode", "Encode a .y4m file with Kairo's low-latency settings", kairo::app::add_encode_command);
  add("netsim",
      "UDP impairment relay: loss (random or bursty), delay, jitter, reordering, duplication, rate limit",
      kairo::app::add_netsim_command);
  add("control", "The control plane: auth, users, GPU nodes and session placement, on PostgreSQL",
      kairo::app::add_control_command);
  add("node", "A GPU node: registers with the control plane and streams the sessions placed on it",
      kairo::app::add_node_command);
  add("node-drain", "Drain the node on this host and wait for its sessions to end (a pod's preStop hook)",
      kairo::app::add_node_drain_command);
  add("client", "The reference thin client: a session's poses up, decoded frames and latency report down",
      kairo::app::add_client_command);
  add("replay",
      "QA: the pipeline headless along a trace; hashes, quality, latency, report.html; --baseline finds "
      "regressions "
      "(exit 3)",
      kairo::app::add_replay_command);
  add("scene", "The scene catalogue: upload, list, delete; inspect a file's cost",
      kairo::app::add_scene_command);
  add("contact-sheet", "Tile PNG frames into one overview image", kairo::app::add_contact_sheet_command);
  add("devdb", "A throwaway PostgreSQL on loopback for the demo and trials: prints its URL, stops on Ctrl-C",
      kairo::app::add_devdb_command);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));

  try {
    for (auto& [sub, run] : commands) {
      if (!sub->parsed()) continue;
      kairo::set_log_format(log_format, sub->get_name());  // the component: control, node, client, ...
      return run();
    }
  } catch (const kairo::Error& e) {
    std::fprintf(stderr, "kairo: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kairo: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairo: %s\n", e.what());
    return 1;
  }
  return 2;
}
