#include "replay/baseline_comparison.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/image_io.hpp"
#include "core/percentile.hpp"
#include "replay/replay.hpp"

namespace kairo {

using nlohmann::json;

nlohmann::json load_baseline_summary(const ReplayOptions& o) {
  const auto summary_path = o.baseline / "summary.json";
  std::ifstream in(summary_path);
  if (!in) throw_invalid_input("no baseline at " + summary_path.string());
  json baseline = json::parse(in, nullptr, false);
  if (baseline.is_discarded() || !baseline.contains("frames") || !baseline["frames"].is_array())
    throw_invalid_input(summary_path.string() + " is not a replay summary");
  return baseline;
}

std::vector<Regression> compare_with_baseline(const ReplayOptions& o, const json& baseline,
                                              const std::vector<ReplayFrame>& now_frames) {
  std::vector<Regression> regressions;
  const auto& frames = baseline["frames"];
  std::vector<double> old_latency, new_latency;
  char what[160];
  for (size_t i = 0; i < std::min(frames.size(), now_frames.size()); ++i) {
    const ReplayFrame& now = now_frames[i];
    const json& then = frames[i];
    if (then.value("render_hash", "") != now.render_hash) {
      // Not bit-identical: within tolerance? Compare the fingerprints.
      const ImageRgba8 a = read_png(o.baseline / replay_fingerprint_name(i)),
                       b = read_png(o.out / replay_fingerprint_name(i));
      const double psnr = a.width == b.width && a.height == b.height ? compare_images(a, b, 24).psnr_db : 0.0;
      if (psnr < o.image_tolerance_db) {
        std::snprintf(what, sizeof(what), "rendered image changed (PSNR %.1f dB against the baseline)", psnr);
        regressions.push_back({.frame = now.index, .what = what, .kind = "image", .severity = -psnr});
      }
    }
    const double old_psnr = then.value("psnr_db", 0.0);
    if (now.lost && !then.value("lost", false)) {
      regressions.push_back({.frame = now.index,
                             .what = "lost in transport (delivered in the baseline)",
                             .kind = "lost",
                             .severity = 0});
    } else if (now.psnr_db < old_psnr - o.quality_drop_db) {
      std::snprintf(what, sizeof(what), "quality down: PSNR %.2f -> %.2f dB", old_psnr, now.psnr_db);
      regressions.push_back(
          {.frame = now.index, .what = what, .kind = "quality", .severity = old_psnr - now.psnr_db});
    }
    old_latency.push_back(then.value("render_ms", 0.0) + then.value("encode_ms", 0.0) +
                          then.value("decode_ms", 0.0));
    new_latency.push_back(now.render_ms + now.encode_ms + now.decode_ms);
  }
  if (frames.size() != now_frames.size())
    regressions.push_back({.frame = 0,
                           .what = "frame count changed: " + std::to_string(frames.size()) + " -> " +
                                   std::to_string(now_frames.size()),
                           .kind = "run",
                           .severity = 0});
  const double before = percentile(old_latency, 0.5), after = percentile(new_latency, 0.5);
  if (before > 0 && after > before * (1.0 + o.latency_rise) && after - before > o.latency_floor_ms) {
    std::snprintf(what, sizeof(what), "latency up: median render+encode+decode %.1f -> %.1f ms", before,
                  after);
    regressions.push_back({.frame = 0, .what = what, .kind = "run", .severity = 0});
  }
  return regressions;
}

}  // namespace kairo
