#pragma once
// The fixture of the end-to-end tests: one real PostgreSQL per test binary, a fresh schema and control plane
// per test, and the reference client's options for a small, quick session.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "client/reference_client.hpp"
#include "control-plane/database.hpp"
#include "core/clock.hpp"
#include "renderer/stereo_renderer.hpp"
#include "streaming/frame_metadata.hpp"
#include "tests/fleet_harness.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {

using test::ControlPlane;

// Frames as a client decoded them: when, and how many bytes of video.
struct Timeline {
  std::mutex mutex;
  std::vector<std::pair<int64_t, size_t>> frames;  // decode time, access unit bytes
  void add(size_t bytes) {
    std::lock_guard lock(mutex);
    frames.emplace_back(steady_now_ns(), bytes);
  }
  // Video bit/s and frames/s decoded in [from, to) seconds after `start`.
  std::pair<double, double> rates(int64_t start, double from, double to) {
    std::lock_guard lock(mutex);
    double bits = 0, n = 0;
    for (const auto& [t, bytes] : frames) {
      const double s = double(t - start) * 1e-9;
      if (s >= from && s < to) {
        bits += 8.0 * double(bytes);
        ++n;
      }
    }
    return {bits / (to - from), n / (to - from)};
  }
};

// Two clients at once, each on a thread of its own; a failure of either is rethrown once both are done.
inline std::pair<ClientReport, ClientReport> run_together(const ClientOptions& a, const ClientOptions& b) {
  ClientReport a_report, b_report;
  std::exception_ptr b_failed;
  std::thread other([&] {
    try {
      b_report = run_client(b, std::atomic<bool>(false));
    } catch (...) {
      b_failed = std::current_exception();
    }
  });
  try {
    a_report = run_client(a, std::atomic<bool>(false));
  } catch (...) {
    other.join();
    throw;
  }
  other.join();
  if (b_failed) std::rethrow_exception(b_failed);
  return {a_report, b_report};
}

// What the node should have sent for a frame: its pose, size and foveation rendered here (luma plane).
struct DirectLuma {
  int width = 0;
  std::vector<uint8_t> y;
};
inline DirectLuma direct_render_luma(StereoRenderer& renderer, const FrameMetadata& m) {
  renderer.submit(FrameRequest{.frame_id = m.frame_id,
                               .view = m.view,
                               .coded_width = m.coded_width,
                               .coded_height = m.coded_height,
                               .foveation = m.foveation});
  const RenderedFrame& f = renderer.collect();
  DirectLuma out{f.nv12[0].width, {f.nv12[0].y.begin(), f.nv12[0].y.end()}};
  renderer.release(f);
  return out;
}

class NodeEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg = new test::PostgresServer(); }
  static void TearDownTestSuite() {
    delete pg;
    pg = nullptr;
  }
  void SetUp() override {
    pg->reset();  // a fresh database per test: nothing the previous test created
    control = std::make_unique<ControlPlane>(pg->url());
  }
  ClientOptions client_options(double duration) {
    return ClientOptions{.control_url = control->url(),
                         .user = "admin",
                         .password = "admin-password",
                         .scene = "vr-room",
                         .eye_width = 256,
                         .eye_height = 256,
                         .fps = 30,
                         .duration_s = duration};
  }
  static inline test::PostgresServer* pg = nullptr;
  std::unique_ptr<ControlPlane> control;
};

// The same set-up for tests whose assertion is a timing threshold on this shared machine (how evenly, how
// fast, how much on time): ctest labels their suite `perf`, and the test command reports them with their
// measured values after the others (tests/CMakeLists.txt, scripts/run-tests.sh). Their measured values are
// printed on lines that start with "perf: ".
class NodeEndToEndPerf : public NodeEndToEnd {};

}  // namespace kairo
