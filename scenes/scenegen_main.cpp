// kairo-scenegen OUTDIR: writes the project's scenes (vr-room.glb, stress.glb). Run by the build.
#include <cstdio>
#include <exception>
#include <filesystem>

#include "scenes/project_scenes.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kairo-scenegen OUTDIR\n");
    return 2;
  }
  try {
    const std::filesystem::path dir = argv[1];
    std::filesystem::create_directories(dir);
    kairo::scenes::write_vr_room(dir / "vr-room.glb");
    kairo::scenes::write_stress_scene(dir / "stress.glb");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairo-scenegen: %s\n", e.what());
    return 1;
  }
  return 0;
}
