#include "app/cli_parsing.hpp"
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "core/error.hpp"

namespace kairo::app {
namespace {

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

bool parse_float(const std::string& text, float& out) {
  try {
    size_t used = 0;
    out = std::stof(text, &used);
    return used == text.size();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

Size parse_size(const std::string& text, const char* flag) {
  const auto parts = split(text, 'x');
  Size size;
  auto parse_int = [](const std::string& s, int& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && !s.empty();
  };
  if (parts.size() != 2 || !parse_int(parts[0], size.width) || !parse_int(parts[1], size.height))
    throw_invalid_input(std::string(flag) + " must look like WIDTHxHEIGHT, got \"" + text + "\"");
  if (size.width <= 0 || size.height <= 0 || size.width > 8192 || size.height > 8192)
    throw_invalid_input(std::string(flag) + " must be between 1x1 and 8192x8192, got \"" + text + "\"");
  return size;
}

Pose parse_pose(const std::string& text, const char* flag) {
  const auto parts = split(text, ',');
  float v[7];
  if (parts.size() != 7)
    throw_invalid_input(std::string(flag) + " needs 7 comma-separated numbers PX,PY,PZ,QX,QY,QZ,QW, got \"" +
                        text + "\"");
  for (size_t i = 0; i < 7; ++i)
    if (!parse_float(parts[i], v[i]))
      throw_invalid_input(std::string(flag) + ": \"" + parts[i] + "\" is not a number");
  try {
    return validated_pose(
        Pose{.position = {v[0], v[1], v[2]}, .orientation = glm::quat(v[6], v[3], v[4], v[5])});
  } catch (const Error& e) {
    throw_invalid_input(std::string(flag) + ": " + e.what());
  }
}

int64_t parse_bitrate(const std::string& text, const char* flag) {
  if (text.empty()) throw_invalid_input(std::string(flag) + " is empty");
  double scale = 1;
  std::string number = text;
  switch (text.back()) {
    case 'k':
    case 'K':
      scale = 1e3;
      number.pop_back();
      break;
    case 'm':
    case 'M':
      scale = 1e6;
      number.pop_back();
      break;
    case 'g':
    case 'G':
      scale = 1e9;
      number.pop_back();
      break;
    default:
      break;
  }
  float value = 0;
  if (!parse_float(number, value) || !(value > 0))
    throw_invalid_input(std::string(flag) + " must look like 20M, 800k or 5000000, got \"" + text + "\"");
  const double bits = double(value) * scale;
  if (bits < 10e3 || bits > 2e9)
    throw_invalid_input(std::string(flag) + " must be between 10k and 2G bits/s");
  return int64_t(bits);
}

}  // namespace kairo::app

namespace kairo::app {

std::string read_secret(const std::string& value, const std::string& file, const char* flag,
                        const char* env) {
  if (!file.empty()) {
    if (!value.empty()) throw_invalid_input(std::string("give ") + flag + " or " + flag + "-file, not both");
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line))
      throw_invalid_input(std::string("cannot read ") + flag + "-file " + file);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) throw_invalid_input(std::string(flag) + "-file " + file + " is empty");
    return line;
  }
  const char* from_env = std::getenv(env);
  if (!value.empty() && (from_env == nullptr || value != from_env))
    spdlog::warn("{} on the command line is visible to every process on this machine; use {} or {}-file",
                 flag, env, flag);
  return value;
}

}  // namespace kairo::app
