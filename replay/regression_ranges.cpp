#include "replay/regression_ranges.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>

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
                                     .pictures_from_fingerprints = false,
                                     .pictures_of = {}});
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

namespace {

// Writes the three full-size images and the side-by-side thumbnail of one range.
void write_pictures(const std::filesystem::path& out, RegressionRange& r, const ImageRgba8& before,
                    const ImageRgba8& after, const char* prefix) {
  if (before.width != after.width || before.height != after.height) return;
  const ImageRgba8 difference = amplified_difference(before, after);
  const std::string tag = prefix;
  r.baseline_image = frame_file(r.worst_frame, (tag + "-baseline").c_str());
  r.new_image = frame_file(r.worst_frame, (tag + "-new").c_str());
  r.difference_image = frame_file(r.worst_frame, (tag + "-difference").c_str());
  r.pictures = frame_file(r.worst_frame, tag.c_str());
  write_png(out / r.baseline_image, before.width, before.height, before.pixels);
  write_png(out / r.new_image, after.width, after.height, after.pixels);
  write_png(out / r.difference_image, difference.width, difference.height, difference.pixels);
  const ImageRgba8 sheet = contact_sheet({before, after, difference}, 320, 3);
  write_png(out / r.pictures, sheet.width, sheet.height, sheet.pixels);
}

// The index of `frame` among the delivered frames of a run; none if it was not delivered.
std::optional<uint64_t> decoded_index(const std::vector<bool>& delivered, uint64_t frame) {
  if (frame >= delivered.size() || !delivered[frame]) return std::nullopt;
  return uint64_t(std::count(delivered.begin(), delivered.begin() + ptrdiff_t(frame), true));
}

void draw_rendered(const PictureSources& s, const std::vector<RegressionRange*>& drawn) {
  std::vector<uint64_t> frames;
  for (const RegressionRange* r : drawn) frames.push_back(r->worst_frame);
  bool archived = std::filesystem::exists(s.baseline / "rendered.h264") &&
                  std::filesystem::exists(s.out / "rendered.h264");
  std::map<uint64_t, ImageRgba8> before, after;
  if (archived) {
    try {
      before = read_archived_frames(s.baseline / "rendered.h264", frames);
      after = read_archived_frames(s.out / "rendered.h264", frames);
    } catch (const Error&) {
      archived = false;  // a damaged archive: the fingerprints still show where the change is
      before.clear();
    }
  }
  if (!archived) {
    for (uint64_t f : frames) {
      std::error_code ec;
      if (!std::filesystem::exists(s.baseline / fingerprint_file(f), ec)) continue;
      before.emplace(f, read_png(s.baseline / fingerprint_file(f)));
      after.emplace(f, read_png(s.out / fingerprint_file(f)));
    }
  }
  for (RegressionRange* r : drawn) {
    const auto b = before.find(r->worst_frame), a = after.find(r->worst_frame);
    if (b == before.end() || a == after.end()) continue;
    write_pictures(s.out, *r, b->second, a->second, "");
    r->pictures_from_fingerprints = !archived;
    r->pictures_of = "rendered";
  }
}

void draw_decoded(const PictureSources& s, const std::vector<RegressionRange*>& drawn) {
  const std::string name = std::string("decoded.") + codec_name(s.codec);
  if (!std::filesystem::exists(s.baseline / name) || !std::filesystem::exists(s.out / name)) return;
  std::vector<uint64_t> then_indices, now_indices;
  for (const RegressionRange* r : drawn) {
    const auto then = decoded_index(s.delivered_then, r->worst_frame);
    const auto now = decoded_index(s.delivered_now, r->worst_frame);
    if (then && now) {
      then_indices.push_back(*then);
      now_indices.push_back(*now);
    }
  }
  std::map<uint64_t, ImageRgba8> before, after;
  try {
    before = read_decoded_luma(s.baseline / name, s.codec, then_indices);
    after = read_decoded_luma(s.out / name, s.codec, now_indices);
  } catch (const Error&) {
    return;  // a damaged stream: the range keeps its numbers, without pictures
  }
  for (RegressionRange* r : drawn) {
    const auto then = decoded_index(s.delivered_then, r->worst_frame);
    const auto now = decoded_index(s.delivered_now, r->worst_frame);
    if (!then || !now || !before.count(*then) || !after.count(*now)) continue;
    write_pictures(s.out, *r, before.at(*then), after.at(*now), "-decoded");
    r->pictures_of = "decoded";
  }
}

}  // namespace

void draw_change_pictures(const PictureSources& sources, std::vector<RegressionRange>& ranges,
                          size_t max_ranges) {
  std::vector<RegressionRange*> images, qualities;
  for (RegressionRange& r : ranges) {
    if (images.size() + qualities.size() >= max_ranges) break;
    if (r.kind == "image") images.push_back(&r);
    if (r.kind == "quality") qualities.push_back(&r);
  }
  if (images.empty() && qualities.empty()) return;
  std::filesystem::create_directories(sources.out / "changes");
  if (!images.empty()) draw_rendered(sources, images);
  if (!qualities.empty()) draw_decoded(sources, qualities);
}

}  // namespace kairo
