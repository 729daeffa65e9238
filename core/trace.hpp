#pragma once
// Kairo's pose trace: JSON Lines, one head sample per line (format in docs/pose-trace.md).
//   {"t_ns":0,"head":{"p":[x,y,z],"q":[x,y,z,w]},"ipd":0.063,"fov":[{"l":..,"r":..,"u":..,"d":..},{...}]}
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/pose.hpp"

namespace kairo {

struct TraceSample {
  int64_t t_ns = 0;
  Pose head;
  float ipd = kDefaultIpdMetres;
  std::optional<std::array<Fov, 2>> fov;  // per eye, radians; absent = the renderer's default
};

// Parses one line; throws kairo::Error (invalid input) with a message that does not yet name the line.
TraceSample parse_trace_line(std::string_view line);
std::string format_trace_line(const TraceSample& sample);

// Loads a whole trace. Errors name the file and line: "trace.jsonl:17: pose quaternion has zero length".
// Timestamps must not go backwards. Files over `max_samples` lines are refused rather than read into memory.
std::vector<TraceSample> load_trace(const std::filesystem::path& path, size_t max_samples = 10'000'000);
void save_trace(const std::filesystem::path& path, const std::vector<TraceSample>& samples);

}  // namespace kairo
