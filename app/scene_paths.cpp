#include "app/scene_paths.hpp"

#include <unistd.h>
#include <cstdlib>

namespace kairo::app {

std::filesystem::path default_scene_dir() {
  if (const char* env = std::getenv("KAIRO_SCENES")) return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path("scenes") : exe.parent_path() / "scenes";
}

std::filesystem::path resolve_scene(const std::string& argument) {
  std::error_code ec;
  if (std::filesystem::exists(argument, ec) || argument.find('/') != std::string::npos) return argument;
  const auto dir = default_scene_dir();
  for (const std::string& candidate : {argument, argument + ".glb", argument + ".gltf"})
    if (std::filesystem::exists(dir / candidate, ec)) return dir / candidate;
  return argument;  // the loader reports it as missing
}

}  // namespace kairo::app
