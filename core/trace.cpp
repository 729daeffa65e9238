#include "core/trace.hpp"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace kairo {
namespace {

using nlohmann::json;

constexpr size_t kMaxLineBytes = 64 * 1024;

float number_at(const json& array, size_t index, const char* what) {
  if (!array[index].is_number()) throw_invalid_input(std::string(what) + " must hold numbers");
  return array[index].get<float>();
}

template <size_t N>
std::array<float, N> numbers(const json& object, const char* key, const char* what) {
  const auto it = object.find(key);
  if (it == object.end()) throw_invalid_input(std::string("missing \"") + what + "\"");
  if (!it->is_array() || it->size() != N)
    throw_invalid_input(std::string("\"") + what + "\" must be an array of " + std::to_string(N) +
                        " numbers");
  std::array<float, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = number_at(*it, i, what);
  return out;
}

Fov parse_fov(const json& object) {
  if (!object.is_object()) throw_invalid_input("\"fov\" entries must be objects {l,r,u,d}");
  Fov fov;
  const std::pair<const char*, float*> fields[] = {
      {"l", &fov.left}, {"r", &fov.right}, {"u", &fov.up}, {"d", &fov.down}};
  for (auto [key, target] : fields) {
    const auto it = object.find(key);
    if (it == object.end() || !it->is_number())
      throw_invalid_input(std::string("\"fov\" needs a number \"") + key + "\"");
    *target = it->get<float>();
  }
  return validated_fov(fov);
}

}  // namespace

TraceSample parse_trace_line(std::string_view line) {
  if (line.size() > kMaxLineBytes) throw_invalid_input("line longer than 64 KiB");
  const json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) throw_invalid_input("not valid JSON");
  if (!doc.is_object()) throw_invalid_input("expected a JSON object");

  TraceSample sample;
  const auto t = doc.find("t_ns");
  if (t == doc.end() || !t->is_number_integer()) throw_invalid_input("missing integer \"t_ns\"");
  sample.t_ns = t->get<int64_t>();
  if (sample.t_ns < 0) throw_invalid_input("\"t_ns\" is negative");

  const auto head = doc.find("head");
  if (head == doc.end() || !head->is_object()) throw_invalid_input("missing object \"head\"");
  const auto p = numbers<3>(*head, "p", "head.p");
  const auto q = numbers<4>(*head, "q", "head.q");
  sample.head =
      validated_pose(Pose{.position = {p[0], p[1], p[2]}, .orientation = glm::quat(q[3], q[0], q[1], q[2])});

  if (const auto ipd = doc.find("ipd"); ipd != doc.end()) {
    if (!ipd->is_number()) throw_invalid_input("\"ipd\" must be a number");
    sample.ipd = ipd->get<float>();
    if (!std::isfinite(sample.ipd) || sample.ipd < 0.0f || sample.ipd > 0.2f)
      throw_invalid_input("\"ipd\" must be between 0 and 0.2 metres");
  }
  if (const auto fov = doc.find("fov"); fov != doc.end()) {
    if (!fov->is_array() || fov->size() != 2)
      throw_invalid_input("\"fov\" must be an array of two per-eye objects");
    sample.fov = std::array<Fov, 2>{parse_fov((*fov)[0]), parse_fov((*fov)[1])};
  }
  return sample;
}

std::string format_trace_line(const TraceSample& s) {
  json doc;
  doc["t_ns"] = s.t_ns;
  const glm::vec3& p = s.head.position;
  const glm::quat& q = s.head.orientation;
  doc["head"] = {{"p", {p.x, p.y, p.z}}, {"q", {q.x, q.y, q.z, q.w}}};
  doc["ipd"] = s.ipd;
  if (s.fov) {
    doc["fov"] = json::array();
    for (const Fov& f : *s.fov)
      doc["fov"].push_back({{"l", f.left}, {"r", f.right}, {"u", f.up}, {"d", f.down}});
  }
  return doc.dump();
}

std::vector<TraceSample> load_trace(const std::filesystem::path& path, size_t max_samples) {
  std::ifstream in(path);
  if (!in) throw_invalid_input("cannot open trace " + path.string());
  std::vector<TraceSample> samples;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are allowed
    if (samples.size() >= max_samples)
      throw_invalid_input(path.string() + ": more than " + std::to_string(max_samples) + " samples");
    try {
      samples.push_back(parse_trace_line(line));
    } catch (const Error& e) {
      throw_invalid_input(path.string() + ":" + std::to_string(line_number) + ": " + e.what());
    }
    if (samples.size() > 1 && samples.back().t_ns < samples[samples.size() - 2].t_ns)
      throw_invalid_input(path.string() + ":" + std::to_string(line_number) + ": \"t_ns\" goes backwards");
  }
  if (in.bad()) throw_runtime("error reading trace " + path.string());
  if (samples.empty()) throw_invalid_input(path.string() + ": trace has no samples");
  return samples;
}

void save_trace(const std::filesystem::path& path, const std::vector<TraceSample>& samples) {
  std::ofstream out(path);
  if (!out) throw_runtime("cannot write trace " + path.string());
  for (const TraceSample& s : samples) out << format_trace_line(s) << '\n';
  if (!out) throw_runtime("error writing trace " + path.string());
}

}  // namespace kairo
