#include "renderer/gltf_extensions.hpp"

#include <meshoptimizer.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "core/error.hpp"

namespace kairo {
namespace {

using nlohmann::json;

constexpr uint32_t kGlbMagic = 0x46546C67, kJsonChunk = 0x4E4F534A, kBinChunk = 0x004E4942;
constexpr int kFloat = 5126;
const std::set<std::string> kDecoded = {"EXT_meshopt_compression", "KHR_mesh_quantization",
                                        "KHR_texture_basisu"};

uint32_t read_u32(const std::string& bytes, size_t at) {
  uint32_t value = 0;
  std::memcpy(&value, bytes.data() + at, 4);
  return value;
}

std::string lowercase_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext;
}

void append_u32(std::string& out, uint32_t value) {
  out.append(reinterpret_cast<const char*>(&value), 4);
}

class Decoder {
 public:
  Decoder(std::filesystem::path path, uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}

  // `always`: the self-contained GLB even when no extension needs decoding (packing a .gltf for upload).
  std::optional<std::string> run(bool always = false) {
    const std::string file = read_file(path_);
    std::string glb_bin;
    bool glb = false;
    if (file.size() >= 12 && read_u32(file, 0) == kGlbMagic) {
      glb = true;
      parse_glb(file, glb_bin);
    } else {
      parse_json(file);
    }
    std::set<std::string> used;
    for (const char* key : {"extensionsUsed", "extensionsRequired"}) {
      const auto list = doc_.find(key);  // not doc_[key]: that would add a null member to the output
      if (list != doc_.end() && list->is_array())
        for (const auto& name : *list)
          if (name.is_string()) used.insert(name.get<std::string>());
    }
    if (!always &&
        std::none_of(kDecoded.begin(), kDecoded.end(), [&](const auto& e) { return used.count(e) > 0; }))
      return std::nullopt;

    refuse_basis_only_textures();
    load_buffers(glb, glb_bin);
    rebase_buffer_views();
    std::vector<std::string>().swap(buffers_);  // all in bin_ now (compressed views decoded): halve the peak
    embed_external_images();
    dequantise_attributes();
    for (const char* list : {"extensionsUsed", "extensionsRequired"}) {
      if (!doc_.contains(list) || !doc_[list].is_array()) continue;
      json kept = json::array();
      for (const auto& name : doc_[list])
        if (!(name.is_string() && kDecoded.count(name.get<std::string>()))) kept.push_back(name);
      if (kept.empty())
        doc_.erase(list);
      else
        doc_[list] = kept;
    }
    doc_["buffers"] = json::array({json{{"byteLength", bin_.size()}}});
    return write_glb();
  }

 private:
  [[noreturn]] void fail(const std::string& why) const { throw_invalid_input(path_.string() + ": " + why); }

  std::string read_file(const std::filesystem::path& file) const {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) fail("cannot read " + file.filename().string() + ": " + ec.message());
    if (size > max_bytes_) fail(file.filename().string() + " is larger than the scene limit");
    std::ifstream in(file, std::ios::binary);
    std::string bytes(size_t(size), '\0');
    if (!in.read(bytes.data(), std::streamsize(size))) fail("cannot read " + file.filename().string());
    return bytes;
  }

  void parse_json(const std::string& text) {
    try {
      doc_ = json::parse(text);
    } catch (const json::exception& e) {
      fail(std::string("malformed glTF JSON: ") + e.what());
    }
    if (!doc_.is_object()) fail("malformed glTF: the document is not a JSON object");
  }

  void parse_glb(const std::string& file, std::string& bin) {
    if (file.size() < 20 || read_u32(file, 4) != 2) fail("GLB: not version 2");
    const size_t length = std::min<size_t>(read_u32(file, 8), file.size());
    size_t at = 12;
    bool have_json = false;
    while (at + 8 <= length) {
      const size_t chunk = read_u32(file, at), type = read_u32(file, at + 4);
      if (chunk > length - at - 8) fail("GLB: a chunk runs past the end of the file (truncated?)");
      if (type == kJsonChunk && !have_json) {
        parse_json(file.substr(at + 8, chunk));
        have_json = true;
      } else if (type == kBinChunk && bin.empty()) {
        bin = file.substr(at + 8, chunk);
      }
      at += 8 + chunk;
    }
    if (!have_json) fail("GLB: no JSON chunk");
  }

  // A JSON object array member, or an empty array.
  json& array(json& parent, const char* name) {
    if (!parent.contains(name) || !parent[name].is_array()) parent[name] = json::array();
    return parent[name];
  }

  static uint64_t number(const json& object, const char* name, uint64_t fallback = 0) {
    const auto it = object.find(name);
    if (it == object.end()) return fallback;
    if (!it->is_number_unsigned()) throw std::invalid_argument(name);
    return it->get<uint64_t>();
  }
  uint64_t field(const json& object, const char* name, const std::string& what, uint64_t fallback = 0) const {
    try {
      return number(object, name, fallback);
    } catch (const std::invalid_argument&) {
      fail(what + ": " + name + " is not a non-negative integer");
    }
  }

  void refuse_basis_only_textures() {
    json& textures = array(doc_, "textures");
    for (size_t i = 0; i < textures.size(); ++i) {
      json& texture = textures[i];
      if (!texture.is_object() || !texture.contains("extensions") ||
          !texture["extensions"].contains("KHR_texture_basisu"))
        continue;
      if (!texture.contains("source"))
        fail(
            "texture " + std::to_string(i) +
            " is Basis Universal only (KHR_texture_basisu, a KTX2 image): Kairo cannot decode it (there is "
            "no "
            "Basis transcoder in Debian's archive); export the scene with a PNG or JPEG fallback image (e.g. "
            "gltfpack without -tc)");
      texture["extensions"].erase("KHR_texture_basisu");  // the PNG or JPEG fallback is used
    }
  }

  // Every buffer's bytes: the GLB's binary chunk, a data: URI or a file beside the scene. A fallback buffer
  // of EXT_meshopt_compression has none (its views are decoded from another buffer).
  void load_buffers(bool glb, std::string& glb_bin) {
    json& buffers = array(doc_, "buffers");
    for (size_t i = 0; i < buffers.size(); ++i) {
      const json& buffer = buffers[i];
      std::string bytes;
      const std::string what = "buffer " + std::to_string(i);
      if (!buffer.is_object()) fail(what + " is not an object");
      const bool fallback = buffer.contains("extensions") &&
                            buffer["extensions"].contains("EXT_meshopt_compression") &&
                            buffer["extensions"]["EXT_meshopt_compression"].value("fallback", false);
      if (buffer.contains("uri") && buffer["uri"].is_string() && !fallback) {
        bytes = resolve_uri(buffer["uri"].get<std::string>(), what);
      } else if (!buffer.contains("uri") && i == 0 && glb) {
        bytes = std::move(glb_bin);  // the binary chunk is used once
      } else if (!fallback && field(buffer, "byteLength", what) > 0) {
        fail(what + " has no data (no uri, and not the GLB's binary chunk)");
      }
      if (!fallback && bytes.size() < field(buffer, "byteLength", what))
        fail(what + " is shorter than its byteLength");
      buffers_.push_back(std::move(bytes));
    }
  }

  std::string resolve_uri(const std::string& uri, const std::string& what) const {
    if (uri.rfind("data:", 0) == 0) {
      const size_t comma = uri.find(";base64,");
      if (comma == std::string::npos) fail(what + ": only base64 data: URIs are read");
      const std::string text = uri.substr(comma + 8);
      std::string bytes(text.size() / 4 * 3 + 3, '\0');
      size_t length = 0;
      if (sodium_base642bin(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size(), text.data(),
                            text.size(), nullptr, &length, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
        fail(what + ": malformed base64 data: URI");
      bytes.resize(length);
      return bytes;
    }
    if (uri.find("..") != std::string::npos || uri.find(':') != std::string::npos || uri.empty() ||
        uri[0] == '/')
      fail(what + ": uri \"" + uri + "\" is not a file beside the scene");
    return read_file(path_.parent_path() / uri);
  }

  size_t append(const void* data, size_t size) {
    bin_.resize((bin_.size() + 3) & ~size_t(3), '\0');
    const size_t offset = bin_.size();
    if (bin_.size() + size > max_bytes_) fail("decoded data larger than the scene limit");
    bin_.append(static_cast<const char*>(data), size);
    return offset;
  }

  // All views into one buffer (a GLB has one); views compressed with EXT_meshopt_compression decoded.
  void rebase_buffer_views() {
    std::vector<size_t> base(buffers_.size(), 0);
    for (size_t i = 0; i < buffers_.size(); ++i)
      base[i] = buffers_[i].empty() ? 0 : append(buffers_[i].data(), buffers_[i].size());
    json& views = array(doc_, "bufferViews");
    for (size_t i = 0; i < views.size(); ++i) {
      json& view = views[i];
      const std::string what = "bufferView " + std::to_string(i);
      if (!view.is_object()) fail(what + " is not an object");
      if (view.contains("extensions") && view["extensions"].contains("EXT_meshopt_compression")) {
        decode_meshopt_view(view, what);
        continue;
      }
      const uint64_t buffer = field(view, "buffer", what), offset = field(view, "byteOffset", what),
                     length = field(view, "byteLength", what);
      if (buffer >= buffers_.size()) fail(what + ": no buffer " + std::to_string(buffer));
      if (offset > buffers_[buffer].size() || length > buffers_[buffer].size() - offset)
        fail(what + " runs past the end of buffer " + std::to_string(buffer));
      view["buffer"] = 0;
      view["byteOffset"] = base[buffer] + offset;
    }
  }

  void decode_meshopt_view(json& view, const std::string& what) {
    const json& ext = view["extensions"]["EXT_meshopt_compression"];
    if (!ext.is_object()) fail(what + ": malformed EXT_meshopt_compression");
    const uint64_t buffer = field(ext, "buffer", what), offset = field(ext, "byteOffset", what),
                   length = field(ext, "byteLength", what), stride = field(ext, "byteStride", what),
                   count = field(ext, "count", what);
    const std::string mode = ext.value("mode", ""), filter = ext.value("filter", "NONE");
    if (buffer >= buffers_.size() || offset > buffers_[buffer].size() ||
        length > buffers_[buffer].size() - offset)
      fail(what + ": compressed data runs past the end of buffer " + std::to_string(buffer));
    if (stride == 0 || stride > 256 || count > max_bytes_ / stride) fail(what + ": bad count or byteStride");
    std::vector<unsigned char> out(size_t(count * stride));
    const auto* src = reinterpret_cast<const unsigned char*>(buffers_[buffer].data() + offset);
    int status = -1;
    if (mode == "ATTRIBUTES") {
      if (stride % 4 != 0) fail(what + ": attribute byteStride must be a multiple of 4");
      status = meshopt_decodeVertexBuffer(out.data(), size_t(count), size_t(stride), src, size_t(length));
      if (status == 0 && filter == "OCTAHEDRAL" && (stride == 4 || stride == 8))
        meshopt_decodeFilterOct(out.data(), size_t(count), size_t(stride));
      else if (status == 0 && filter == "QUATERNION" && stride == 8)
        meshopt_decodeFilterQuat(out.data(), size_t(count), size_t(stride));
      else if (status == 0 && filter == "EXPONENTIAL")
        meshopt_decodeFilterExp(out.data(), size_t(count), size_t(stride));
      else if (status == 0 && filter != "NONE")
        fail(what + ": filter " + filter + " with byteStride " + std::to_string(stride) +
             " is not in the extension");
    } else if (mode == "TRIANGLES" || mode == "INDICES") {
      // meshoptimizer asserts these rather than returning an error: checked first.
      if (stride != 2 && stride != 4) fail(what + ": index byteStride must be 2 or 4");
      if (mode == "TRIANGLES" && count % 3 != 0) fail(what + ": a TRIANGLES count must be a multiple of 3");
      status =
          mode == "TRIANGLES"
              ? meshopt_decodeIndexBuffer(out.data(), size_t(count), size_t(stride), src, size_t(length))
              : meshopt_decodeIndexSequence(out.data(), size_t(count), size_t(stride), src, size_t(length));
    } else {
      fail(what + ": unknown EXT_meshopt_compression mode \"" + mode + "\"");
    }
    if (status != 0) fail(what + ": EXT_meshopt_compression data does not decode (corrupt or truncated)");
    view["buffer"] = 0;
    view["byteOffset"] = append(out.data(), out.size());
    view["byteLength"] = out.size();
    view["extensions"].erase("EXT_meshopt_compression");
    if (view["extensions"].empty()) view.erase("extensions");
  }

  // Images named by a file beside a .gltf go into the one buffer, as a GLB needs them.
  void embed_external_images() {
    json& images = array(doc_, "images");
    json& views = array(doc_, "bufferViews");
    for (size_t i = 0; i < images.size(); ++i) {
      json& image = images[i];
      if (!image.is_object() || !image.contains("uri") || !image["uri"].is_string()) continue;
      const std::string uri = image["uri"].get<std::string>();
      if (uri.rfind("data:", 0) == 0) continue;  // assimp reads those
      const std::string bytes = resolve_uri(uri, "image " + std::to_string(i));
      const std::string ext = lowercase_extension(uri);
      views.push_back(json{
          {"buffer", 0}, {"byteOffset", append(bytes.data(), bytes.size())}, {"byteLength", bytes.size()}});
      image.erase("uri");
      image["bufferView"] = views.size() - 1;
      image["mimeType"] = ext == ".png" ? "image/png" : ext == ".ktx2" ? "image/ktx2" : "image/jpeg";
    }
  }

  // The texture-coordinate transform of a material's textures on `texcoord`, when they all share one.
  struct UvTransform {
    double offset[2] = {0, 0}, scale[2] = {1, 1}, rotation = 0;
    bool operator==(const UvTransform&) const = default;
  };
  std::optional<UvTransform> material_transform(int64_t material, uint64_t texcoord, bool erase) {
    json& materials = array(doc_, "materials");
    if (material < 0 || size_t(material) >= materials.size() || !materials[size_t(material)].is_object())
      return std::nullopt;
    std::vector<json*> infos;
    json& m = materials[size_t(material)];
    for (const char* name : {"normalTexture", "occlusionTexture", "emissiveTexture"})
      if (m.contains(name) && m[name].is_object()) infos.push_back(&m[name]);
    if (m.contains("pbrMetallicRoughness") && m["pbrMetallicRoughness"].is_object())
      for (const char* name : {"baseColorTexture", "metallicRoughnessTexture"})
        if (m["pbrMetallicRoughness"].contains(name) && m["pbrMetallicRoughness"][name].is_object())
          infos.push_back(&m["pbrMetallicRoughness"][name]);
    std::optional<UvTransform> shared;
    for (json* info : infos) {
      if (info->value("texCoord", uint64_t(0)) != texcoord) continue;
      UvTransform t;
      if (info->contains("extensions") && (*info)["extensions"].contains("KHR_texture_transform")) {
        const json& x = (*info)["extensions"]["KHR_texture_transform"];
        for (int k = 0; k < 2; ++k) {
          if (x.contains("offset") && x["offset"].is_array() && x["offset"].size() == 2 &&
              x["offset"][k].is_number())
            t.offset[k] = x["offset"][k].get<double>();
          if (x.contains("scale") && x["scale"].is_array() && x["scale"].size() == 2 &&
              x["scale"][k].is_number())
            t.scale[k] = x["scale"][k].get<double>();
        }
        if (x.contains("rotation") && x["rotation"].is_number()) t.rotation = x["rotation"].get<double>();
        if (erase) (*info)["extensions"].erase("KHR_texture_transform");
      }
      if (shared && !(*shared == t))
        fail("material " + std::to_string(material) +
             ": quantised texture coordinates shared by textures with different transforms");
      shared = t;
    }
    return shared;
  }

  // Integer attributes (KHR_mesh_quantization) become floats; each converted accessor is new, so one read
  // with another material's transform keeps its own.
  void dequantise_attributes() {
    json& meshes = array(doc_, "meshes");
    json& accessors = array(doc_, "accessors");
    const size_t original = accessors.size();
    std::map<std::pair<uint64_t, std::string>, size_t> converted;  // (accessor, transform) -> new accessor
    std::set<std::pair<int64_t, uint64_t>> transformed;            // (material, texcoord) applied
    for (json& mesh : meshes) {
      if (!mesh.is_object()) continue;
      for (json& primitive : array(mesh, "primitives")) {
        if (!primitive.is_object() || !primitive.contains("attributes") ||
            !primitive["attributes"].is_object())
          continue;
        if (primitive.contains("extensions") &&
            primitive["extensions"].contains("KHR_draco_mesh_compression"))
          continue;  // assimp decodes Draco
        const int64_t material = primitive.value("material", int64_t(-1));
        for (auto& [name, index] : primitive["attributes"].items()) {
          const bool position = name == "POSITION", texcoord = name.rfind("TEXCOORD_", 0) == 0;
          if (!(position || texcoord || name == "NORMAL" || name == "TANGENT" ||
                name.rfind("COLOR_", 0) == 0))
            continue;
          if (!index.is_number_unsigned() || index.get<uint64_t>() >= original)
            fail("mesh attribute " + name + ": no such accessor");
          const uint64_t accessor = index.get<uint64_t>();
          if (accessors[accessor].value("componentType", kFloat) == kFloat) continue;
          std::optional<UvTransform> uv;
          if (texcoord) uv = material_transform(material, std::stoull(name.substr(9)), false);
          const std::string key =
              uv ? json{uv->offset[0], uv->offset[1], uv->scale[0], uv->scale[1], uv->rotation}.dump() : "";
          auto it = converted.find({accessor, key});
          if (it == converted.end())
            it = converted.emplace(std::pair{accessor, key}, to_float(accessor, position, uv)).first;
          index = it->second;
          if (uv) transformed.emplace(material, std::stoull(name.substr(9)));
        }
      }
    }
    for (const auto& [material, texcoord] : transformed) material_transform(material, texcoord, true);
  }

  size_t to_float(uint64_t index, bool position, const std::optional<UvTransform>& uv) {
    json accessor = doc_["accessors"][index];
    const std::string what = "accessor " + std::to_string(index);
    if (accessor.contains("sparse")) fail(what + ": sparse quantised attributes are not read");
    static const std::map<std::string, size_t> kComponents = {
        {"SCALAR", 1}, {"VEC2", 2}, {"VEC3", 3}, {"VEC4", 4}};
    const auto components_it = kComponents.find(accessor.value("type", ""));
    if (components_it == kComponents.end()) fail(what + ": type must be SCALAR or VECn");
    const size_t components = components_it->second;
    const uint64_t type = field(accessor, "componentType", what), count = field(accessor, "count", what);
    const size_t size = type == 5120 || type == 5121   ? 1
                        : type == 5122 || type == 5123 ? 2
                        : type == 5125                 ? 4
                                                       : 0;
    if (size == 0) fail(what + ": componentType " + std::to_string(type) + " is not an integer type");
    const bool normalized = accessor.value("normalized", false);
    if (count > max_bytes_ / (components * 4)) fail(what + ": count too large");
    std::vector<float> out(size_t(count) * components, 0.0f);
    if (accessor.contains("bufferView")) {
      const uint64_t view_index = field(accessor, "bufferView", what);
      json& views = doc_["bufferViews"];
      if (view_index >= views.size()) fail(what + ": no such bufferView");
      const json& view = views[view_index];
      const uint64_t element = ((components * size + 3) & ~size_t(3));
      const uint64_t stride = field(view, "byteStride", what,
                                    components == 1 || size == 4 ? components * size : element),
                     begin = field(view, "byteOffset", what) + field(accessor, "byteOffset", what),
                     view_end = field(view, "byteOffset", what) + field(view, "byteLength", what);
      if (count > 0 &&
          (stride < components * size || begin + (count - 1) * stride + components * size > view_end ||
           view_end > bin_.size()))
        fail(what + " runs past the end of its bufferView");
      for (size_t v = 0; v < count; ++v)
        for (size_t c = 0; c < components; ++c)
          out[v * components + c] = component(bin_.data() + begin + v * stride + c * size, type, normalized);
    }
    if (uv && components == 2) {
      const double cs = std::cos(uv->rotation), sn = std::sin(uv->rotation);
      for (size_t v = 0; v < count; ++v) {
        const double u = out[v * 2] * uv->scale[0], w = out[v * 2 + 1] * uv->scale[1];
        out[v * 2] = float(cs * u + sn * w + uv->offset[0]);
        out[v * 2 + 1] = float(-sn * u + cs * w + uv->offset[1]);
      }
    }
    json& views = doc_["bufferViews"];
    views.push_back(json{{"buffer", 0},
                         {"byteOffset", append(out.data(), out.size() * sizeof(float))},
                         {"byteLength", out.size() * sizeof(float)}});
    accessor["bufferView"] = views.size() - 1;
    accessor["componentType"] = kFloat;
    accessor.erase("byteOffset");
    accessor.erase("normalized");
    accessor.erase("min");
    accessor.erase("max");
    if (position && count > 0) {  // required for positions: the float range, recomputed
      json low = json::array(), high = json::array();
      for (size_t c = 0; c < components; ++c) {
        float lo = std::numeric_limits<float>::max(), hi = std::numeric_limits<float>::lowest();
        for (size_t v = 0; v < count; ++v)
          lo = std::min(lo, out[v * components + c]), hi = std::max(hi, out[v * components + c]);
        low.push_back(lo), high.push_back(hi);
      }
      accessor["min"] = low, accessor["max"] = high;
    }
    doc_["accessors"].push_back(accessor);
    return doc_["accessors"].size() - 1;
  }

  // One integer component as a float; a normalised one mapped to [0, 1] or [-1, 1] as glTF defines.
  template <typename T>
  static float read_component(const char* at, bool normalized) {
    T v;
    std::memcpy(&v, at, sizeof(T));
    if (!normalized) return float(v);
    const double scaled = double(v) / double(std::numeric_limits<T>::max());
    return float(std::max(scaled, -1.0));
  }
  static float component(const char* at, uint64_t type, bool normalized) {
    switch (type) {
      case 5120:
        return read_component<int8_t>(at, normalized);
      case 5121:
        return read_component<uint8_t>(at, normalized);
      case 5122:
        return read_component<int16_t>(at, normalized);
      case 5123:
        return read_component<uint16_t>(at, normalized);
      default:
        return read_component<uint32_t>(at, normalized);
    }
  }

  std::string write_glb() const {
    std::string text = doc_.dump();
    text.resize((text.size() + 3) & ~size_t(3), ' ');
    const size_t bin_padded = (bin_.size() + 3) & ~size_t(3);
    std::string out;
    out.reserve(28 + text.size() + bin_padded);
    append_u32(out, kGlbMagic);
    append_u32(out, 2);
    append_u32(out, uint32_t(28 + text.size() + bin_padded));
    append_u32(out, uint32_t(text.size()));
    append_u32(out, kJsonChunk);
    out += text;
    append_u32(out, uint32_t(bin_padded));
    append_u32(out, kBinChunk);
    out += bin_;
    out.resize(out.size() + bin_padded - bin_.size(), '\0');
    return out;
  }

  std::filesystem::path path_;
  uint64_t max_bytes_;
  json doc_;
  std::vector<std::string> buffers_;
  std::string bin_;
};

}  // namespace

namespace {
std::optional<std::string> decode(const std::filesystem::path& path, uint64_t max_bytes, bool always);
}  // namespace

std::optional<std::string> decode_gltf_extensions(const std::filesystem::path& path, uint64_t max_bytes) {
  const std::string ext = lowercase_extension(path);
  if (ext != ".gltf" && ext != ".glb") return std::nullopt;
  return decode(path, max_bytes, false);
}

std::string pack_gltf(const std::filesystem::path& path, uint64_t max_bytes) {
  const std::string ext = lowercase_extension(path);
  if (ext != ".gltf" && ext != ".glb")
    throw_invalid_input(path.string() + ": not a glTF file (.gltf or .glb)");
  return *decode(path, max_bytes, true);
}

namespace {
std::optional<std::string> decode(const std::filesystem::path& path, uint64_t max_bytes, bool always) {
  try {
    return Decoder(path, max_bytes).run(always);
  } catch (const nlohmann::json::exception& e) {  // a member of the wrong JSON type
    throw_invalid_input(path.string() + ": malformed glTF: " + e.what());
  } catch (const std::logic_error& e) {  // a TEXCOORD_ or COLOR_ index that is no number
    throw_invalid_input(path.string() + ": malformed glTF: " + e.what());
  }
}
}  // namespace

}  // namespace kairo
