#pragma once
// RGBA8 images in host memory and their PNG files (through stb).
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace kairo {

struct ImageRgba8 {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 4, rows top to bottom
};

void write_png(const std::filesystem::path& path, int width, int height, std::span<const uint8_t> rgba);
ImageRgba8 read_png(const std::filesystem::path& path);

struct ImageDifference {
  double mean_abs = 0;       // mean absolute difference per channel, 0..255
  double psnr_db = 0;        // over RGB; infinity when identical
  double fraction_over = 0;  // share of pixels with any channel differing by more than the threshold
  int max_abs = 0;
};
// Compares RGB (alpha ignored); images must have the same size.
ImageDifference compare_images(const ImageRgba8& a, const ImageRgba8& b, int threshold);

// Scales `image` to `width` pixels wide, keeping its aspect ratio.
ImageRgba8 resized(const ImageRgba8& image, int width);
// Tiles images (all scaled to `thumbnail_width`) left to right, `columns` per row, on a dark background.
ImageRgba8 contact_sheet(const std::vector<ImageRgba8>& images, int thumbnail_width, int columns);

}  // namespace kairo
