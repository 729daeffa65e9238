#include "core/image_io.hpp"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
#include <algorithm>
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

ImageRgba8 resized(const ImageRgba8& image, int width) {
  if (image.width <= 0 || image.height <= 0 || width <= 0)
    throw_invalid_input("resized: empty image or width");
  ImageRgba8 out{.width = width, .height = std::max(1, image.height * width / image.width), .pixels = {}};
  out.pixels.resize(size_t(out.width) * out.height * 4);
  stbir_resize_uint8_srgb(image.pixels.data(), image.width, image.height, 0, out.pixels.data(), out.width,
                          out.height, 0, 4, 3, 0);
  return out;
}

ImageRgba8 contact_sheet(const std::vector<ImageRgba8>& images, int thumbnail_width, int columns) {
  if (images.empty() || columns <= 0) throw_invalid_input("contact sheet needs at least one image");
  const int gap = 4;
  std::vector<ImageRgba8> thumbs;
  int cell_height = 0;
  for (const ImageRgba8& image : images) {
    thumbs.push_back(resized(image, thumbnail_width));
    cell_height = std::max(cell_height, thumbs.back().height);
  }
  const int cols = std::min(columns, int(thumbs.size()));
  const int rows = (int(thumbs.size()) + cols - 1) / cols;
  ImageRgba8 sheet{.width = cols * (thumbnail_width + gap) + gap,
                   .height = rows * (cell_height + gap) + gap,
                   .pixels = {}};
  sheet.pixels.assign(size_t(sheet.width) * sheet.height * 4, 32);
  for (size_t i = 3; i < sheet.pixels.size(); i += 4) sheet.pixels[i] = 255;
  for (size_t t = 0; t < thumbs.size(); ++t) {
    const int x0 = gap + int(t % size_t(cols)) * (thumbnail_width + gap),
              y0 = gap + int(t / size_t(cols)) * (cell_height + gap);
    for (int y = 0; y < thumbs[t].height; ++y)
      std::copy_n(&thumbs[t].pixels[size_t(y) * thumbs[t].width * 4], size_t(thumbs[t].width) * 4,
                  &sheet.pixels[(size_t(y0 + y) * sheet.width + x0) * 4]);
  }
  return sheet;
}

}  // namespace kairo
