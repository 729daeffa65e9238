#include "encoder/y4m.hpp"

#include <sstream>

#include "core/error.hpp"

namespace kairo {

Y4mReader::Y4mReader(const std::filesystem::path& path) : in_(path, std::ios::binary), name_(path.string()) {
  if (!in_) throw_invalid_input("cannot open " + name_);
  std::string header;
  std::getline(in_, header);
  if (header.rfind("YUV4MPEG2 ", 0) != 0) throw_invalid_input(name_ + ": not a YUV4MPEG2 file");
  std::istringstream fields(header.substr(10));
  std::string field;
  while (fields >> field) {
    switch (field[0]) {
      case 'W':
        width_ = std::atoi(field.c_str() + 1);
        break;
      case 'H':
        height_ = std::atoi(field.c_str() + 1);
        break;
      case 'F': {
        const int num = std::atoi(field.c_str() + 1);
        const size_t colon = field.find(':');
        const int den = colon == std::string::npos ? 1 : std::atoi(field.c_str() + colon + 1);
        if (num > 0 && den > 0) fps_ = std::max(1, (num + den / 2) / den);
        break;
      }
      case 'C':
        if (field.rfind("C420", 0) != 0 || field == "C420p10" || field == "C420p12")
          throw_invalid_input(name_ + ": only 8-bit 4:2:0 is supported, file has " + field);
        break;
      default:
        break;
    }
  }
  if (width_ <= 0 || height_ <= 0 || width_ > 16384 || height_ > 16384 || width_ % 2 || height_ % 2)
    throw_invalid_input(name_ + ": bad or odd picture size " + std::to_string(width_) + "x" +
                        std::to_string(height_));
}

bool Y4mReader::next(std::vector<uint8_t>& y, std::vector<uint8_t>& uv) {
  std::string marker;
  if (!std::getline(in_, marker)) return false;
  if (marker.rfind("FRAME", 0) != 0) throw_invalid_input(name_ + ": expected FRAME, found garbage");
  const size_t luma = size_t(width_) * height_, chroma = luma / 4;
  planar_.resize(luma + 2 * chroma);
  in_.read(reinterpret_cast<char*>(planar_.data()), std::streamsize(planar_.size()));
  if (size_t(in_.gcount()) != planar_.size()) throw_invalid_input(name_ + ": truncated frame");
  y.assign(planar_.begin(), planar_.begin() + std::ptrdiff_t(luma));
  uv.resize(2 * chroma);
  for (size_t i = 0; i < chroma; ++i) {
    uv[2 * i] = planar_[luma + i];
    uv[2 * i + 1] = planar_[luma + chroma + i];
  }
  return true;
}

Y4mWriter::Y4mWriter(const std::filesystem::path& path, int width, int height, int fps)
    : out_(path, std::ios::binary), width_(width), height_(height) {
  if (!out_) throw_runtime("cannot write " + path.string());
  out_ << "YUV4MPEG2 W" << width << " H" << height << " F" << fps
       << ":1 Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n";
}

void Y4mWriter::write(const uint8_t* y, const uint8_t* uv) {
  const size_t luma = size_t(width_) * height_, chroma = luma / 4;
  planar_.resize(luma + 2 * chroma);
  std::copy(y, y + luma, planar_.begin());
  for (size_t i = 0; i < chroma; ++i) {
    planar_[luma + i] = uv[2 * i];
    planar_[luma + chroma + i] = uv[2 * i + 1];
  }
  out_ << "FRAME\n";
  out_.write(reinterpret_cast<const char*>(planar_.data()), std::streamsize(planar_.size()));
}

}  // namespace kairo
