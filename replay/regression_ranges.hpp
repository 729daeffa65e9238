#pragma once
// What a QA engineer reads first: regressing frames grouped into ranges (consecutive frames with the same
// kind of regression) with the worst frame of each, and for a range whose rendered image changed, pictures
// of the change at its worst frame: baseline | new | amplified difference.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/image_io.hpp"
#include "encoder/video_encoder.hpp"

namespace kairo {

struct Regression;

struct RegressionRange {
  std::string kind;  // "image", "quality", "lost" (per frame) or "run" (frame count, latency)
  uint64_t first = 0, last = 0, frames = 0;
  uint64_t worst_frame = 0;
  std::string worst_what;  // the worst frame's reason, as listed per frame
  double worst_severity = 0;
  // Pictures, relative to the replay's output folder (empty when the range has none): the side-by-side
  // thumbnail the report shows, and the three full-size images.
  std::string pictures, baseline_image, new_image, difference_image;
  bool pictures_from_fingerprints = false;  // the baseline kept no full-size frames: 128-pixel pictures
  std::string pictures_of;                  // "rendered" frames or "decoded" luma
};

// Groups per kind; ranges in the order of their first frame.
std::vector<RegressionRange> group_regressions(const std::vector<Regression>& regressions);
// The range to name first: a changed image before a lost frame, a quality drop, then the run's own; within a
// kind the most severe. Null when there is none.
const RegressionRange* worst_range(const std::vector<RegressionRange>& ranges);

// The amplified difference of two images of the same size: unchanged pixels are the new image's luma at a
// quarter (context), changed ones red (R 255, B 0) with green rising with the change (8 per level), so even
// a difference of one level shows. Throws kairo::Error if the sizes differ.
ImageRgba8 amplified_difference(const ImageRgba8& baseline, const ImageRgba8& now);
inline bool marked_changed(const uint8_t* rgba) {
  return rgba[0] == 255 && rgba[2] == 0;
}

// Where the pictures come from: both runs' folders, the codec of their decoded streams, and which frames
// each run delivered (a frame's index in a decoded stream counts the delivered frames before it).
struct PictureSources {
  std::filesystem::path out, baseline;
  Codec codec = Codec::kH264;
  std::vector<bool> delivered_now, delivered_then;
};

// Draws the pictures of the first `max_ranges` ranges into `out`/changes: for a changed image the rendered
// frames, from both runs' frame archives (replay/frame_archive.hpp) or their fingerprints where the
// baseline has no archive; for a quality drop the decoded pictures' luma, from both runs' decoded streams.
void draw_change_pictures(const PictureSources& sources, std::vector<RegressionRange>& ranges,
                          size_t max_ranges = 20);

}  // namespace kairo
