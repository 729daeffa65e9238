#include "app/replay_suite_file.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "app/replay_case.hpp"
#include "core/error.hpp"
#include "core/names.hpp"

namespace kairo::app {
namespace {

using nlohmann::json;

// The fields of `from` onto `spec` (defaults first, then the case's own). Unknown fields are refused: a
// misspelt tolerance silently ignored would pass what it should fail.
void apply(const json& from, const std::filesystem::path& dir, ReplayCaseSpec& spec,
           const std::string& where) {
  static const std::set<std::string> kFields = {
      "name",      "scene", "trace", "size",   "fps",        "bitrate",    "codec",      "encoder",
      "foveation", "gaze",  "scale", "netsim", "max_frames", "tolerances", "keep_frames"};
  static const std::set<std::string> kTolerances = {"image_db", "quality_drop_db", "latency_rise",
                                                    "latency_floor_ms"};
  if (!from.is_object()) throw_invalid_input(where + " must be a JSON object");
  try {
    for (const auto& [key, value] : from.items()) {
      if (!kFields.count(key)) throw_invalid_input(where + ": unknown field \"" + key + "\"");
      (void)value;
    }
    // A path beside the suite file, or (a scene) a project scene's name.
    auto path = [&](const std::string& text) {
      const std::filesystem::path p(text);
      return p.is_absolute() || !std::filesystem::exists(dir / p) ? text : (dir / p).string();
    };
    if (from.contains("scene")) spec.scene = path(from["scene"].get<std::string>());
    if (from.contains("trace")) spec.trace = path(from["trace"].get<std::string>());
    if (from.contains("size")) spec.size = from["size"].get<std::string>();
    if (from.contains("fps")) spec.fps = from["fps"].get<int>();
    if (from.contains("bitrate"))
      spec.bitrate = from["bitrate"].is_string() ? from["bitrate"].get<std::string>()
                                                 : std::to_string(from["bitrate"].get<int64_t>());
    if (from.contains("codec")) spec.verbatim.codec = from["codec"].get<std::string>();
    if (from.contains("encoder")) spec.verbatim.encoder = from["encoder"].get<std::string>();
    if (from.contains("foveation")) spec.foveation = from["foveation"].get<float>();
    if (from.contains("gaze")) spec.gaze = from["gaze"].get<std::string>();
    if (from.contains("scale")) spec.scale = from["scale"].get<double>();
    if (from.contains("netsim")) spec.netsim = from["netsim"].get<std::string>();
    if (from.contains("max_frames")) spec.verbatim.max_frames = from["max_frames"].get<int>();
    if (from.contains("keep_frames")) spec.verbatim.keep_frames = from["keep_frames"].get<bool>();
    if (from.contains("tolerances")) {
      const json& t = from["tolerances"];
      if (!t.is_object()) throw_invalid_input(where + ": tolerances must be an object");
      for (const auto& [key, value] : t.items())
        if (!kTolerances.count(key)) throw_invalid_input(where + ": unknown tolerance \"" + key + "\"");
      spec.verbatim.image_tolerance_db = t.value("image_db", spec.verbatim.image_tolerance_db);
      spec.verbatim.quality_drop_db = t.value("quality_drop_db", spec.verbatim.quality_drop_db);
      spec.verbatim.latency_rise = t.value("latency_rise", spec.verbatim.latency_rise);
      spec.verbatim.latency_floor_ms = t.value("latency_floor_ms", spec.verbatim.latency_floor_ms);
    }
  } catch (const json::exception& e) {
    throw_invalid_input(where + ": " + e.what());
  }
}

}  // namespace

SuiteFile load_suite(const std::filesystem::path& file, const std::filesystem::path& out,
                     const std::filesystem::path& baseline) {
  std::ifstream in(file);
  if (!in) throw_invalid_input("cannot read the suite " + file.string());
  const json suite = json::parse(in, nullptr, false);
  if (suite.is_discarded() || !suite.is_object())
    throw_invalid_input(file.string() + " is not a JSON object");
  for (const auto& [key, value] : suite.items())
    if (key != "name" && key != "defaults" && key != "cases")
      throw_invalid_input(file.string() + ": unknown field \"" + key + "\"");
  if (!suite.contains("cases") || !suite["cases"].is_array() || suite["cases"].empty())
    throw_invalid_input(file.string() + ": \"cases\" must be a non-empty array");
  const std::filesystem::path dir = file.parent_path().empty() ? "." : file.parent_path();
  SuiteFile result;
  result.name = suite.value("name", file.stem().string());
  ReplayCaseSpec defaults;
  if (suite.contains("defaults")) apply(suite["defaults"], dir, defaults, file.string() + ": defaults");
  std::set<std::string> names;
  for (size_t i = 0; i < suite["cases"].size(); ++i) {
    const json& c = suite["cases"][i];
    const std::string where = file.string() + ": case " + std::to_string(i + 1);
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string())
      throw_invalid_input(where + " needs a \"name\"");
    const std::string name = c["name"].get<std::string>();
    if (const auto problem = name_problem(name, 128)) throw_invalid_input(where + ": the name " + *problem);
    if (name.find('/') != std::string::npos || name == "." || name == "..")
      throw_invalid_input(where + ": the name is an output folder: no '/', not . or ..");
    if (!names.insert(name).second) throw_invalid_input(where + ": a second case named \"" + name + "\"");
    ReplayCaseSpec spec = defaults;
    apply(c, dir, spec, where + " (" + name + ")");
    if (spec.scene.empty() || spec.trace.empty())
      throw_invalid_input(where + " (" + name + ") needs a scene and a trace");
    spec.verbatim.out = out / name;
    // A case the baseline suite did not have yet runs without a comparison (its summary says so).
    if (!baseline.empty() && std::filesystem::exists(baseline / name / "summary.json"))
      spec.verbatim.baseline = baseline / name;
    try {
      result.cases.push_back(SuiteCase{name, replay_options(spec)});
    } catch (const Error& e) {
      throw_invalid_input(where + " (" + name + "): " + e.what());
    }
  }
  return result;
}

}  // namespace kairo::app
