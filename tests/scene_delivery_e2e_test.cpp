// Catalogue scenes delivered to nodes (#16, docs/scenes.md "Delivery"), end to end: an uploaded scene reaches
// a node that did not hold it, its frames show that scene, the node keeps it for the next session (no second
// fetch), and a session whose scene cannot be fetched fails with the reason.
#include <gtest/gtest.h>

#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

#include "client/reference_client.hpp"
#include "control-plane/http_client.hpp"
#include "core/content_hash.hpp"
#include "core/file_bytes.hpp"
#include "encoder/video_decoder.hpp"
#include "node/node_agent.hpp"
#include "renderer/gpu_scene.hpp"
#include "renderer/scene_data.hpp"
#include "renderer/stereo_renderer.hpp"
#include "tests/metrics_text.hpp"
#include "tests/node_e2e_fixture.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

using nlohmann::json;

class SceneDelivery : public NodeEndToEnd {
 protected:
  // The project's room uploaded under a name no node's folder has: a node can only render it by fetching it.
  std::string upload_gallery() {
    const std::string bytes = read_file_bytes(test::scene_path("vr-room.glb"));
    const auto r =
        control::http_request(control->server.port(), "PUT", "/v1/scenes/gallery?sha256=" + sha256_hex(bytes),
                              bytes, control->admin_token());
    EXPECT_EQ(r.status, 201) << r.body;
    return sha256_hex(bytes);
  }
};

TEST_F(SceneDelivery, an_uploaded_scene_reaches_a_node_without_it_renders_and_stays_cached) {
  const std::string hash = upload_gallery();
  test::InProcessNode node(control->url(), "127.0.0.1:0");
  ASSERT_TRUE(node.agent.cached_scenes().empty());

  struct Kept {
    FrameMetadata metadata;
    std::vector<uint8_t> y;
  };
  std::mutex mutex;
  std::vector<Kept> kept;
  ClientOptions options = client_options(3);
  options.scene = "gallery";
  options.on_decoded = [&](const FrameMetadata& m, const DecodedPicture& p, size_t) {
    std::lock_guard lock(mutex);
    if (m.frame_id % 10 == 5 && kept.size() < 4) kept.push_back({m, p.y});
  };
  const ClientReport first = run_client(options, std::atomic<bool>(false));
  EXPECT_GT(first.frames_decoded, 20u);
  EXPECT_EQ(node.agent.scene_fetches(), 1u);
  EXPECT_EQ(node.agent.cached_scenes(), std::vector<std::string>{hash});

  // The frames show the uploaded scene: each against a direct render of its pose from the original file.
  ASSERT_GE(kept.size(), 2u);
  auto scene = GpuScene::upload(test::vulkan(), load_scene(test::scene_path("vr-room.glb")));
  StereoRenderer renderer(scene, RendererConfig{.eye_width = 256, .eye_height = 256, .frames_in_flight = 1});
  for (const Kept& k : kept) {
    const double psnr = plane_psnr(direct_render_luma(renderer, k.metadata).y, k.y);
    std::printf("frame %llu: %.1f dB against a direct render of the uploaded file\n",
                static_cast<unsigned long long>(k.metadata.frame_id), psnr);
    EXPECT_GE(psnr, 35.0) << "frame " << k.metadata.frame_id;
  }

  // The control plane knows the node holds it; a second session starts without fetching.
  std::string cached;
  control->db.transact(
      [&](pqxx::work& w) { cached = w.exec1("SELECT cached_scenes::text FROM nodes")[0].as<std::string>(); });
  EXPECT_EQ(cached, "{" + hash + "}");
  const ClientReport second = run_client(options, std::atomic<bool>(false));
  EXPECT_GT(second.frames_decoded, 20u);
  EXPECT_EQ(node.agent.scene_fetches(), 1u);
  const std::string metrics = control::http_request(node.agent.metrics_port(), "GET", "/metrics").body;
  EXPECT_EQ(test::metric_sample(metrics, "kairo_node_scene_fetches_total{result=\"ok\"}"), 1.0) << metrics;
  EXPECT_EQ(test::metric_sample(metrics, "kairo_node_scene_fetches_total{result=\"failed\"}"), 0.0);
}

TEST_F(SceneDelivery, a_session_whose_scene_cannot_be_fetched_fails_with_the_reason) {
  upload_gallery();  // 3.4 MB: more than this node's whole cache
  NodeAgent agent(NodeOptions{.control_url = control->url(),
                              .node_token = test::kNodeToken,
                              .listen_udp = "127.0.0.1:0",
                              .scenes_dir = KAIRO_SCENE_DIR,
                              .scene_cache_mb = 1,
                              .name = "small-cache"});
  std::atomic<bool> stop{false};
  std::thread serving([&] { agent.run(stop); });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop, serving};
  // The node registers asynchronously: wait until placement can find it.
  json created;
  for (int i = 0; i < 100; ++i) {
    const auto r = control::http_request(
        control->server.port(), "POST", "/v1/sessions",
        json{{"scene", "gallery"}, {"eye_width", 256}, {"eye_height", 256}, {"fps", 30}}.dump(),
        control->admin_token());
    if (r.status == 201) {
      created = json::parse(r.body);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(created.contains("session_id"));
  json session;
  for (int i = 0; i < 100; ++i) {
    session = control->session(created["session_id"].get<std::string>());
    if (session.value("state", "") == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(session.value("state", ""), "failed") << session.dump();
  const std::string reason = session.value("failure_reason", "");
  EXPECT_NE(reason.find("could not fetch scene \"gallery\""), std::string::npos) << reason;
  EXPECT_NE(reason.find("exceeds the whole scene cache"), std::string::npos) << reason;
  EXPECT_TRUE(agent.cached_scenes().empty());
}

}  // namespace
}  // namespace kairo
