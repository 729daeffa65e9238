#pragma once
// Parsing of the small value formats the command line uses (sizes, poses).
#include <cstdint>
#include <string>

#include "core/pose.hpp"

namespace kairo::app {

struct Size {
  int width = 0;
  int height = 0;
};

// "WxH", both positive. Throws kairo::Error (invalid input) naming the flag.
Size parse_size(const std::string& text, const char* flag);
// "PX,PY,PZ,QX,QY,QZ,QW": position in metres, unit quaternion (normalised here; zero or NaN refused).
Pose parse_pose(const std::string& text, const char* flag);

// Bits per second: "20M", "800k", "1.5G" or a plain number. Throws kairo::Error naming the flag.
int64_t parse_bitrate(const std::string& text, const char* flag);

}  // namespace kairo::app

namespace kairo::app {

// A secret given as a flag (`value`, also read from the environment variable `env`) or as a file holding it
// (`file`: the first line). A secret typed into argv is visible to every user of the machine (ps,
// /proc/PID/cmdline): that works, with a warning on stderr naming the safer ways. Throws kairo::Error
// (invalid input) when both or an unreadable file are given.
std::string read_secret(const std::string& value, const std::string& file, const char* flag, const char* env);

}  // namespace kairo::app
