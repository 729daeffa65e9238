#pragma once
// YUV4MPEG2 (.y4m) files of 8-bit 4:2:0 pictures, read as NV12 (what the encoder takes) and written from
// NV12.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

namespace kairo {

class Y4mReader {
 public:
  explicit Y4mReader(const std::filesystem::path& path);  // throws kairo::Error naming the problem
  int width() const { return width_; }
  int height() const { return height_; }
  int fps() const { return fps_; }
  // Reads the next frame into y/uv (NV12, reused buffers); false at the end of the file.
  bool next(std::vector<uint8_t>& y, std::vector<uint8_t>& uv);

 private:
  std::ifstream in_;
  std::string name_;
  int width_ = 0, height_ = 0, fps_ = 30;
  std::vector<uint8_t> planar_;
};

class Y4mWriter {
 public:
  Y4mWriter(const std::filesystem::path& path, int width, int height, int fps);
  void write(const uint8_t* y, const uint8_t* uv);  // NV12, stride = width

 private:
  std::ofstream out_;
  int width_, height_;
  std::vector<uint8_t> planar_;
};

}  // namespace kairo
