#include "core/image_io.hpp"

#include <stb_image.h>
#include <stb_image_write.h>
#include <cmath>
#include <limits>
#include <memory>

#include "core/error.hpp"

namespace kairo {

void write_png(const std::filesystem::path& path, int width, int height, std::span<const uint8_t> rgba) {
  if (width <= 0 || height <= 0 || rgba.size() < static_cast<size_t>(width) * height * 4)
    throw_runtime("write_png: image buffer does not match " + std::to_string(width) + "x" +
                  std::to_string(height));
  if (!stbi_write_png(path.c_str(), width, height, 4, rgba.data(), width * 4))
    throw_runtime("cannot write PNG " + path.string());
}

ImageRgba8 read_png(const std::filesystem::path& path) {
  int w = 0, h = 0, channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load(path.c_str(), &w, &h, &channels, 4),
                                                 stbi_image_free);
  if (!data) throw_invalid_input("cannot read image " + path.string() + ": " + stbi_failure_reason());
  ImageRgba8 image{.width = w, .height = h, .pixels = {}};
  image.pixels.assign(data.get(), data.get() + static_cast<size_t>(w) * h * 4);
  return image;
}

ImageDifference compare_images(const ImageRgba8& a, const ImageRgba8& b, int threshold) {
  if (a.width != b.width || a.height != b.height) throw_invalid_input("compare_images: sizes differ");
  ImageDifference d;
  double sum_abs = 0, sum_sq = 0;
  size_t over = 0;
  const size_t pixels = static_cast<size_t>(a.width) * a.height;
  for (size_t i = 0; i < pixels; ++i) {
    int pixel_max = 0;
    for (int c = 0; c < 3; ++c) {
      const int diff = std::abs(int(a.pixels[i * 4 + c]) - int(b.pixels[i * 4 + c]));
      sum_abs += diff;
      sum_sq += double(diff) * diff;
      pixel_max = std::max(pixel_max, diff);
    }
    d.max_abs = std::max(d.max_abs, pixel_max);
    if (pixel_max > threshold) ++over;
  }
  d.mean_abs = sum_abs / double(pixels * 3);
  const double mse = sum_sq / double(pixels * 3);
  d.psnr_db = mse == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(255.0 * 255.0 / mse);
  d.fraction_over = double(over) / double(pixels);
  return d;
}

}  // namespace kairo
