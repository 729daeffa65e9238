#include "replay/regression_ranges.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/error.hpp"
#include "replay/frame_archive.hpp"
#include "replay/replay.hpp"

namespace kairo {

std::vector<RegressionRange> group_regressions(const std::vector<Regression>& regressions) {
  std::vector<const Regression*> sorted;
  for (const Regression& r : regressions) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Regression* a, const Regression* b) {
    return a->kind != b->kind ? a->kind < b->kind : a->frame < b->frame;
  });
  std::vector<RegressionRange> ranges;
  for (const Regression* r : sorted) {
    RegressionRange* open = ranges.empty() ? nullptr : &ranges.back();
    if (open && r->kind != "run" && open->kind == r->kind && r->frame == open->last + 1) {
      open->last = r->frame;
      ++open->frames;
      if (r->severity > open->worst_severity) {
        open->worst_severity = r->severity;
        open->worst_frame = r->frame;
        open->worst_what = r->what;
      }
      continue;
    }
    ranges.push_back(RegressionRange{.kind = r->kind,
                                     .first = r->frame,
                                     .last = r->frame,
                                     .frames = 1,
                                     .worst_frame = r->frame,
                                     .worst_what = r->what,
                                     .worst_severity = r->severity,
                                     .pictures = {},
                                     .baseline_image = {},
                                     .new_image = {},
                                     .difference_image = {},
                                     .pictures_from_fingerprints = false});
  }
  std::stable_sort(ranges.begin(), ranges.end(),
                   [](const RegressionRange& a, const RegressionRange& b) { return a.first < b.first; });
  return ranges;
}

const RegressionRange* worst_range(const std::vector<RegressionRange>& ranges) {
  for (const char* kind : {"image", "lost", "quality", "run"}) {
    const RegressionRange* worst = nullptr;
    for (const RegressionRange& r : ranges)
      if (r.kind == kind && (!worst || r.worst_severity > worst->worst_severity)) worst = &r;
    if (worst) return worst;
  }
  return nullptr;
}

ImageRgba8 amplified_difference(const ImageRgba8& baseline, const ImageRgba8& now) {
  if (baseline.width != now.width || baseline.height != now.height)
    throw_invalid_input("amplified_difference: the images differ in size");
  ImageRgba8 out{.width = now.width, .height = now.height, .pixels = {}};
  out.pixels.resize(now.pixels.size());
  for (size_t i = 0; i + 3 < now.pixels.size(); i += 4) {
    int change = 0;
    for (int c = 0; c < 3; ++c)
      change = std::max(change, std::abs(int(baseline.pixels[i + c]) - now.pixels[i + c]));
    uint8_t* o = &out.pixels[i];
    if (change == 0) {
      const int luma = (77 * now.pixels[i] + 150 * now.pixels[i + 1] + 29 * now.pixels[i + 2]) >> 8;
      o[0] = o[1] = o[2] = uint8_t(luma / 4);
    } else {
      o[0] = 255;
      o[1] = uint8_t(std::min(255, 8 * change));
      o[2] = 0;
    }
    o[3] = 255;
  }
  return out;
}

namespace {

std::string frame_file(uint64_t frame, const char* suffix) {
  char name[64];
  std::snprintf(name, sizeof(name), "changes/%06llu%s.png", static_cast<unsigned long long>(frame), suffix);
  return name;
}

std::string fingerprint_file(uint64_t frame) {
  char name[48];
  std::snprintf(name, sizeof(name), "fingerprints/%06llu.png", static_cast<unsigned long long>(frame));
  return name;
}

}  // namespace

void draw_change_pictures(const std::filesystem::path& out, const std::filesystem::path& baseline,
                          std::vector<RegressionRange>& ranges, size_t max_ranges) {
  std::vector<RegressionRange*> drawn;
  std::vector<uint64_t> frames;
  for (RegressionRange& r : ranges)
    if (r.kind == "image" && drawn.size() < max_ranges) {
      drawn.push_back(&r);
      frames.push_back(r.worst_frame);
    }
  if (drawn.empty()) return;
  bool archived =
      std::filesystem::exists(baseline / "rendered.h264") && std::filesystem::exists(out / "rendered.h264");
  std::map<uint64_t, ImageRgba8> before, after;
  if (archived) {
    try {
      before = read_archived_frames(baseline / "rendered.h264", frames);
      after = read_archived_frames(out / "rendered.h264", frames);
    } catch (const Error&) {
      archived = false;  // a damaged archive: the fingerprints still show where the change is
      before.clear();
    }
  }
  if (!archived) {
    for (uint64_t f : frames) {
      std::error_code ec;
      if (!std::filesystem::exists(baseline / fingerprint_file(f), ec)) continue;
      before.emplace(f, read_png(baseline / fingerprint_file(f)));
      after.emplace(f, read_png(out / fingerprint_file(f)));
    }
  }
  std::filesystem::create_directories(out / "changes");
  for (RegressionRange* r : drawn) {
    const auto b = before.find(r->worst_frame), a = after.find(r->worst_frame);
    if (b == before.end() || a == after.end()) continue;
    if (b->second.width != a->second.width || b->second.height != a->second.height) continue;
    const ImageRgba8 difference = amplified_difference(b->second, a->second);
    r->baseline_image = frame_file(r->worst_frame, "-baseline");
    r->new_image = frame_file(r->worst_frame, "-new");
    r->difference_image = frame_file(r->worst_frame, "-difference");
    r->pictures = frame_file(r->worst_frame, "");
    r->pictures_from_fingerprints = !archived;
    write_png(out / r->baseline_image, b->second.width, b->second.height, b->second.pixels);
    write_png(out / r->new_image, a->second.width, a->second.height, a->second.pixels);
    write_png(out / r->difference_image, difference.width, difference.height, difference.pixels);
    const ImageRgba8 sheet = contact_sheet({b->second, a->second, difference}, 320, 3);
    write_png(out / r->pictures, sheet.width, sheet.height, sheet.pixels);
  }
}

}  // namespace kairo
