// `kairo replay` as QA runs it: deterministic, and a changed rendering against the baseline exits 3 naming
// the frames.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/trace.hpp"
#include "scenes/project_scenes.hpp"
#include "tests/test_support.hpp"

namespace kairo {
namespace {

struct ReplayRun {
  int exit_code;
  std::string out;  // stdout and stderr
};

ReplayRun replay(const std::string& args) {
  const std::string command = std::string(KAIRO_BINARY) + " replay " + args + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buffer[512];
  while (p && std::fgets(buffer, sizeof(buffer), p)) out += buffer;
  const int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

nlohmann::json summary(const std::filesystem::path& dir) {
  std::ifstream in(dir / "summary.json");
  return nlohmann::json::parse(in);
}

TEST(Replay, is_deterministic_and_a_moved_object_fails_against_the_baseline_naming_the_frames) {
  const auto dir = test::temp_dir();
  std::filesystem::create_directories(dir / "base");
  std::filesystem::create_directories(dir / "moved");
  // The same file name in two folders: the second has the marker cube moved 30 cm to the right.
  scenes::write_marker_scene(dir / "base/scene.glb", glm::vec3(0.0f, 1.6f, -2.0f), 0.3f);
  scenes::write_marker_scene(dir / "moved/scene.glb", glm::vec3(0.3f, 1.6f, -2.0f), 0.3f);
  // Six poses: looking at the marker for four, then turned away from it for two.
  std::vector<TraceSample> trace;
  for (int i = 0; i < 6; ++i) {
    const float yaw = i < 4 ? 0.02f * float(i) : 2.5f;
    trace.push_back(TraceSample{.t_ns = int64_t(i) * 33'333'333,
                                .head = Pose{glm::vec3(0, 1.6f, 0), glm::angleAxis(yaw, glm::vec3(0, 1, 0))},
                                .ipd = kDefaultIpdMetres,
                                .fov = std::nullopt});
  }
  save_trace(dir / "trace.jsonl", trace);
  const std::string common = " --trace " + (dir / "trace.jsonl").string() + " --size 128x128 --fps 30";

  const ReplayRun first =
      replay("--scene " + (dir / "base/scene.glb").string() + common + " --out " + (dir / "one").string());
  ASSERT_EQ(first.exit_code, 0) << first.out;
  // Against the first run's baseline: identical pictures, so nothing regresses. Latency is left out of this
  // verdict (--latency-floor 1000 ms): two runs on a shared, loaded 2-core machine differ by more than the
  // default 50 % + 2 ms often enough to make this test a coin flip, and determinism is what it is about.
  const ReplayRun second =
      replay("--scene " + (dir / "base/scene.glb").string() + common + " --out " + (dir / "two").string() +
             " --baseline " + (dir / "one").string() + " --latency-floor 1000");
  ASSERT_EQ(second.exit_code, 0) << second.out;
  const auto a = summary(dir / "one"), b = summary(dir / "two");
  ASSERT_EQ(a["frames"].size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(a["frames"][i]["render_hash"], b["frames"][i]["render_hash"]) << "frame " << i;
    EXPECT_EQ(a["frames"][i]["encoded_bytes"], b["frames"][i]["encoded_bytes"]) << "frame " << i;
    EXPECT_GT(a["frames"][i]["psnr_db"].get<double>(), 30.0);
    EXPECT_GT(a["frames"][i]["ssim"].get<double>(), 0.9);
  }

  const ReplayRun moved = replay("--scene " + (dir / "moved/scene.glb").string() + common + " --out " +
                                 (dir / "three").string() + " --baseline " + (dir / "one").string());
  EXPECT_EQ(moved.exit_code, 3) << moved.out;
  // The frames that look at the marker are named; the ones turned away are not.
  for (int i = 0; i < 4; ++i)
    EXPECT_NE(moved.out.find("frame " + std::to_string(i) + ": rendered image changed"), std::string::npos)
        << moved.out;
  for (int i = 4; i < 6; ++i)
    EXPECT_EQ(moved.out.find("frame " + std::to_string(i) + ": rendered image changed"), std::string::npos)
        << moved.out;
  std::ifstream report(dir / "three/report.html");
  const std::string html((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("regressions</h2>"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("thumbnails/"), std::string::npos);

  // Bad input: a clear message and exit code 2.
  EXPECT_EQ(replay("--scene " + (dir / "base/scene.glb").string() + common + " --out " +
                   (dir / "four").string() + " --baseline " + (dir / "nowhere").string())
                .exit_code,
            2);
  std::filesystem::remove_all(dir);
}

// --netsim: every frame through Kairo's transport and a lossy relay. At 5 % loss the transport recovers
// every frame, so the decoded pictures are bit for bit those of a run without the network.
TEST(Replay, through_netsim_at_5_percent_loss_every_frame_arrives_and_decodes_as_without_the_network) {
  const auto dir = test::temp_dir();
  scenes::write_marker_scene(dir / "scene.glb", glm::vec3(0.0f, 1.6f, -2.0f), 0.3f);
  std::vector<TraceSample> trace;
  for (int i = 0; i < 40; ++i)
    trace.push_back(
        TraceSample{.t_ns = int64_t(i) * 33'333'333,
                    .head = Pose{glm::vec3(0, 1.6f, 0), glm::angleAxis(0.01f * float(i), glm::vec3(0, 1, 0))},
                    .ipd = kDefaultIpdMetres,
                    .fov = std::nullopt});
  save_trace(dir / "trace.jsonl", trace);
  const std::string common = "--scene " + (dir / "scene.glb").string() + " --trace " +
                             (dir / "trace.jsonl").string() + " --size 128x128 --fps 30 --bitrate 3M";
  const ReplayRun direct = replay(common + " --out " + (dir / "direct").string());
  ASSERT_EQ(direct.exit_code, 0) << direct.out;
  const ReplayRun lossy =
      replay(common + " --out " + (dir / "lossy").string() + " --netsim \"--loss 5 --delay 5 --seed 7\"");
  ASSERT_EQ(lossy.exit_code, 0) << lossy.out;
  const auto a = summary(dir / "direct"), b = summary(dir / "lossy");
  ASSERT_TRUE(b.contains("transport")) << b.dump();
  const auto& t = b["transport"];
  std::printf("through netsim: %s\n", t.dump().c_str());
  EXPECT_GT(t["datagrams_lost_by_netsim"].get<int>(), 0);  // the relay really dropped datagrams
  EXPECT_GT(t["fec_recovered_fragments"].get<int>() + t["retransmitted_fragments"].get<int>(), 0);
  EXPECT_EQ(t["frames_lost"].get<int>(), 0);
  ASSERT_EQ(b["frames"].size(), 40u);
  for (size_t i = 0; i < 40; ++i) {
    EXPECT_FALSE(b["frames"][i]["lost"].get<bool>()) << "frame " << i;
    EXPECT_EQ(a["frames"][i]["render_hash"], b["frames"][i]["render_hash"]) << "frame " << i;
    EXPECT_EQ(a["frames"][i]["encoded_bytes"], b["frames"][i]["encoded_bytes"]) << "frame " << i;
    EXPECT_EQ(a["frames"][i]["psnr_db"], b["frames"][i]["psnr_db"]) << "frame " << i;
    EXPECT_GT(b["frames"][i]["transport_ms"].get<double>(), 5.0) << "frame " << i;  // crossed the delay
  }
  // Nonsense impairments: a clear message and exit code 2.
  const ReplayRun bad = replay(common + " --out " + (dir / "bad").string() + " --netsim \"--loss 500\"");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--netsim"), std::string::npos) << bad.out;
  std::filesystem::remove_all(dir);
}

// Each threshold flag decides its own kind of regression, and only that one: --quality-drop (decoded PSNR
// per frame), --latency-rise / --latency-floor (median render+encode+decode), and a frame lost in transport
// that the baseline delivered.
TEST(Replay, each_threshold_flag_decides_its_kind_of_regression) {
  const auto dir = test::temp_dir();
  scenes::write_marker_scene(dir / "scene.glb", glm::vec3(0.0f, 1.6f, -2.0f), 0.3f);
  std::vector<TraceSample> trace;
  for (int i = 0; i < 30; ++i)
    trace.push_back(
        TraceSample{.t_ns = int64_t(i) * 33'333'333,
                    .head = Pose{glm::vec3(0, 1.6f, 0), glm::angleAxis(0.01f * float(i), glm::vec3(0, 1, 0))},
                    .ipd = kDefaultIpdMetres,
                    .fov = std::nullopt});
  save_trace(dir / "trace.jsonl", trace);
  const std::string common = "--scene " + (dir / "scene.glb").string() + " --trace " +
                             (dir / "trace.jsonl").string() + " --size 96x96";
  auto out = [&](const char* name) { return " --out " + (dir / name).string(); };
  auto against = [&](const char* name) { return " --baseline " + (dir / name).string(); };
  ASSERT_EQ(replay(common + " --bitrate 2M" + out("base")).exit_code, 0);

  // Quality: the same pictures at 1/40 of the bitrate decode worse; 1 dB allowed by default, 100 dB allowed
  // passes. Latency is left out of these verdicts (--latency-floor 1000).
  const ReplayRun starved =
      replay(common + " --bitrate 50k --latency-floor 1000" + out("starved") + against("base"));
  EXPECT_EQ(starved.exit_code, 3) << starved.out;
  EXPECT_NE(starved.out.find(": quality down: PSNR"), std::string::npos) << starved.out;
  EXPECT_EQ(starved.out.find("rendered image changed"), std::string::npos) << starved.out;
  const ReplayRun tolerated = replay(common + " --bitrate 50k --latency-floor 1000 --quality-drop 100" +
                                     out("tolerated") + against("base"));
  EXPECT_EQ(tolerated.exit_code, 0) << tolerated.out;

  // Latency: a baseline whose stages took a microsecond each. Any real run is far slower than 1.5 times
  // that, so with no floor it regresses; a floor above the difference, or a rise allowed beyond it, passes.
  std::filesystem::copy(dir / "base", dir / "fast", std::filesystem::copy_options::recursive);
  nlohmann::json fast = summary(dir / "fast");
  for (auto& f : fast["frames"]) f["render_ms"] = f["encode_ms"] = f["decode_ms"] = 0.001;
  std::ofstream(dir / "fast/summary.json") << fast.dump();
  const ReplayRun slower =
      replay(common + " --bitrate 2M --latency-floor 0" + out("slower") + against("fast"));
  EXPECT_EQ(slower.exit_code, 3) << slower.out;
  EXPECT_NE(slower.out.find("latency up: median render+encode+decode 0.0 ->"), std::string::npos)
      << slower.out;
  EXPECT_EQ(
      replay(common + " --bitrate 2M --latency-floor 1000" + out("floored") + against("fast")).exit_code, 0);
  EXPECT_EQ(replay(common + " --bitrate 2M --latency-floor 0 --latency-rise 1000000" + out("risen") +
                   against("fast"))
                .exit_code,
            0);

  // Lost against the baseline: through a relay losing half the datagrams in bursts of 20, frames are lost;
  // each is named, and no delivered frame is.
  const ReplayRun lossy =
      replay(common + " --bitrate 2M --latency-floor 1000 --netsim \"--loss 50 --burst 20 --seed 2\"" +
             out("lossy") + against("base"));
  EXPECT_EQ(lossy.exit_code, 3) << lossy.out;
  const nlohmann::json lossy_summary = summary(dir / "lossy");
  int lost = 0;
  for (const auto& f : lossy_summary["frames"]) {
    const std::string named = "frame " + std::to_string(f["frame"].get<int>()) + ": lost in transport";
    if (f["lost"].get<bool>()) {
      ++lost;
      EXPECT_NE(lossy.out.find(named), std::string::npos) << lossy.out;
    } else {
      EXPECT_EQ(lossy.out.find(named), std::string::npos) << lossy.out;
    }
  }
  EXPECT_GT(lost, 0) << "the relay lost no frame: " << lossy_summary["transport"].dump();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kairo
