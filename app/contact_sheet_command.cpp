#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "core/error.hpp"
#include "core/image_io.hpp"

namespace kairo::app {

Runner add_contact_sheet_command(CLI::App& app) {
  struct Options {
    std::string in, out;
    int every = 1, width = 256, columns = 4;
  };
  auto o = std::make_shared<Options>();
  app.add_option("--in", o->in, "directory of PNG frames")->required();
  app.add_option("--out", o->out, "contact sheet PNG")->required();
  app.add_option("--every", o->every, "take every Nth frame")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--width", o->width, "thumbnail width, pixels")
      ->capture_default_str()
      ->check(CLI::Range(16, 2048));
  app.add_option("--columns", o->columns, "thumbnails per row")
      ->capture_default_str()
      ->check(CLI::Range(1, 32));
  return [o] {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(o->in, ec))
      if (entry.path().extension() == ".png") files.push_back(entry.path());
    if (ec) throw_invalid_input("cannot read directory " + o->in + ": " + ec.message());
    std::sort(files.begin(), files.end());
    std::vector<ImageRgba8> images;
    for (size_t i = 0; i < files.size() && images.size() < 256; i += size_t(o->every))
      images.push_back(read_png(files[i]));
    if (images.empty()) throw_invalid_input("no PNG files in " + o->in);
    const ImageRgba8 sheet = contact_sheet(images, o->width, o->columns);
    write_png(o->out, sheet.width, sheet.height, sheet.pixels);
    std::printf("%s\n", nlohmann::json{{"images", images.size()}, {"out", o->out}}.dump().c_str());
    return 0;
  };
}

}  // namespace kairo::app
