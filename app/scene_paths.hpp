#pragma once
#include <filesystem>
#include <string>

namespace kairo::app {

// A scene argument is a path, or the name of a project scene ("vr-room", "stress.glb") looked up in
// $KAIRO_SCENES, then the scenes/ folder beside the kairo binary (where the build generates them).
std::filesystem::path resolve_scene(const std::string& argument);
std::filesystem::path default_scene_dir();

}  // namespace kairo::app
