// From upload to first frame (#16): how long an operator's upload takes (checked, inspected in its sandbox,
// stored), and how long a session on a node that does not hold the scene waits for its first decoded frame,
// against the peer in the same run: the same scene from the node's own folder, also cold (not yet on the
// device). And a second session, with the scene cached and resident.
// Real PostgreSQL, control plane and node in this process (lavapipe, x264), the reference client on loopback.
// Usage: kairo_scene_delivery_bench [scene file names in the project's scenes, default vr-room.glb
// stress.glb]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "client/reference_client.hpp"
#include "control-plane/http_client.hpp"
#include "core/clock.hpp"
#include "core/content_hash.hpp"
#include "core/file_bytes.hpp"
#include "tests/fleet_harness.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {
namespace {

// Seconds from asking for a session to its first decoded frame (session creation included).
double first_frame_s(const std::string& control_url, const std::string& scene) {
  const int64_t start = steady_now_ns();
  std::optional<int64_t> first;
  ClientOptions options{.control_url = control_url,
                        .user = "admin",
                        .password = "admin-password",
                        .scene = scene,
                        .eye_width = 512,
                        .eye_height = 512,
                        .fps = 30,
                        .duration_s = 1.5};
  std::atomic<bool> stop{false};
  options.on_decoded = [&](const FrameMetadata&, const DecodedPicture&, size_t) {
    if (!first) first = steady_now_ns();
  };
  run_client(options, stop);
  if (!first) throw std::runtime_error("no frame decoded for scene " + scene);
  return double(*first - start) * 1e-9;
}

void run(const std::vector<std::string>& files) {
  test::PostgresServer pg;
  test::ControlPlane control(pg.url());
  const std::string admin = control.admin_token();
  std::printf(
      "| scene | bytes | upload s | first frame, node's folder, cold s | first frame, catalogue, not on "
      "the node s | ratio | first frame, catalogue, cached s |\n|---|---|---|---|---|---|---|\n");
  for (const std::string& file : files) {
    const std::string bytes = read_file_bytes(std::string(KAIRO_SCENE_DIR) + "/" + file);
    const std::string local = file.substr(0, file.rfind('.'));
    double folder_cold = 0;
    {
      test::InProcessNode node(control.url(), "", 2);  // fresh: nothing on its device yet
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      folder_cold = first_frame_s(control.url(), local);
    }
    const int64_t upload_start = steady_now_ns();
    const std::string name = "catalogue-" + local;
    const auto r = control::http_request(control.server.port(), "PUT",
                                         "/v1/scenes/" + name + "?sha256=" + sha256_hex(bytes), bytes, admin);
    const double upload_s = double(steady_now_ns() - upload_start) * 1e-9;
    if (r.status != 201) throw std::runtime_error("upload refused: " + r.body);
    test::InProcessNode node(control.url(), "", 2);  // fresh again: no scene cached, nothing resident
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const double catalogue_cold = first_frame_s(control.url(), name);
    const double catalogue_cached = first_frame_s(control.url(), name);
    std::printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f | %.2f |\n", file.c_str(), bytes.size(), upload_s,
                folder_cold, catalogue_cold, catalogue_cold / folder_cold, catalogue_cached);
    std::fflush(stdout);
  }
}

}  // namespace
}  // namespace kairo

int main(int argc, char** argv) {
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) files.emplace_back(argv[i]);
  if (files.empty()) files = {"vr-room.glb", "stress.glb"};
  kairo::run(files);
  return 0;
}
