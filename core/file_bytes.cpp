#include "core/file_bytes.hpp"

#include <fstream>
#include <iterator>

#include "core/error.hpp"

namespace kairo {

std::string read_file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_invalid_input("cannot read " + path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_invalid_input("cannot read " + path.string());
  return bytes;
}

}  // namespace kairo
