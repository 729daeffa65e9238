#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "app/cli_parsing.hpp"
#include "app/commands.hpp"
#include "app/signal_stop.hpp"
#include "client/reference_client.hpp"
#include "core/error.hpp"

namespace kairo::app {

Runner add_client_command(CLI::App& app) {
  struct Options {
    ClientOptions client;
    std::string size = "512x512", report;
    std::vector<float> gaze;
    bool hands = false;
  };
  auto o = std::make_shared<Options>();
  ClientOptions& c = o->client;
  app.add_option("--control", c.control_url, "control plane URL")->envname("KAIRO_CONTROL")->required();
  app.add_option("--user", c.user, "user name")->envname("KAIRO_USER")->required();
  app.add_option("--password", c.password, "password (prefer KAIRO_PASSWORD)")
      ->envname("KAIRO_PASSWORD")
      ->required();
  app.add_option("--scene", c.scene, "scene name on the node")->capture_default_str();
  app.add_option("--size", o->size, "per-eye WxH")->capture_default_str();
  app.add_option("--fps", c.fps, "display rate")->capture_default_str()->check(CLI::Range(1, 240));
  app.add_option("--codec", c.codec, "h264 or hevc")->capture_default_str();
  app.add_option("--trace", c.trace, "head-motion trace (JSON Lines); default: synthetic head motion");
  app.add_option("--duration", c.duration_s, "seconds")->capture_default_str();
  app.add_option("--via", c.via, "HOST:PORT of a relay (kairo netsim) in front of the node");
  app.add_option("--save", c.save_dir, "write decoded frames as PNG into this directory");
  app.add_option("--save-every", c.save_every, "save every Nth decoded frame")->capture_default_str();
  app.add_option("--report", o->report, "write the summary JSON here too");
  app.add_option("--gaze", o->gaze, "a fixed eye-gaze point X,Y (-1..1, y down) to centre foveation on")
      ->delimiter(',')
      ->expected(2);
  app.add_option("--room", c.room, "join this room: one shared scene, the others' avatars, shared objects");
  app.add_flag("--hands", o->hands, "send two tracked hands at rest in front of the body (avatars in rooms)");
  app.add_option("--ca-file", c.ca_file, "CA bundle for an https control plane")->envname("KAIRO_CA_FILE");
  return [o] {
    const Size size = parse_size(o->size, "--size");
    o->client.eye_width = size.width;
    o->client.eye_height = size.height;
    if (!o->gaze.empty()) {
      if (o->gaze.size() != 2 || std::abs(o->gaze[0]) > 1 || std::abs(o->gaze[1]) > 1)
        throw_invalid_input("--gaze takes X,Y between -1 and 1");
      o->client.gaze = std::array<float, 2>{o->gaze[0], o->gaze[1]};
    }
    if (o->hands) o->client.hands = [](double, const Pose& head) { return resting_hands(head); };
    SignalStop signals;
    const ClientReport report = run_client(o->client, signals.stop);
    const std::string text = report.to_json().dump(2);
    if (!o->report.empty()) {
      std::ofstream out(o->report);
      out << text << "\n";
      if (!out) throw_runtime("cannot write " + o->report);
    }
    std::printf("%s\n", text.c_str());
    return 0;
  };
}

}  // namespace kairo::app
