#pragma once
// A whole file's bytes. Throws kairo::Error (invalid input) naming the file when it cannot be read.
#include <filesystem>
#include <string>

namespace kairo {

std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace kairo
