// `kairo scene`: the scene catalogue from the command line (docs/scenes.md "Catalogue"), and `inspect`, which
// loads one file and prints what it costs: the control plane runs it, in a sandboxed child, on every upload.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/commands.hpp"
#include "control-plane/api_json.hpp"
#include "control-plane/http_client.hpp"
#include "control-plane/proto/control.pb.h"
#include "core/content_hash.hpp"
#include "core/error.hpp"
#include "core/file_bytes.hpp"
#include "renderer/gltf_extensions.hpp"
#include "renderer/scene_data.hpp"

namespace kairo::app {

namespace {

struct Connection {
  std::string control_url, user, password, token, ca_file;
};

// An access token: the one given, or a login's.
std::string access_token(const Connection& c, const control::ControlUrl& url) {
  if (!c.token.empty()) return c.token;
  if (c.user.empty() || c.password.empty())
    throw_invalid_input("give --user and --password (or KAIRO_USER and KAIRO_PASSWORD), or --token");
  v1::LoginRequest login;
  login.set_username(c.user);
  login.set_password(c.password);
  const auto r = control::http_request(url, "POST", "/v1/auth/login", control::to_json(login), "",
                                       control::HttpClientOptions{.ca_file = c.ca_file});
  if (r.status != 200) throw_invalid_input("login refused: HTTP " + std::to_string(r.status) + " " + r.body);
  v1::TokenPair tokens;
  control::parse_answer(r.body, tokens);
  return tokens.access_token();
}

// The API's error message, else the body as it came.
std::string refusal(const control::HttpResult& r) {
  const auto body = nlohmann::json::parse(r.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].contains("message"))
    return body["error"]["message"].get<std::string>() + " (HTTP " + std::to_string(r.status) + ")";
  return "HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 300);
}

std::string percent_encoded(const std::string& segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

void add_connection_options(CLI::App& app, Connection& c) {
  app.add_option("--control", c.control_url, "control plane URL")->envname("KAIRO_CONTROL")->required();
  app.add_option("--user", c.user, "user name (an operator's, to upload or delete)")->envname("KAIRO_USER");
  app.add_option("--password", c.password, "password (prefer KAIRO_PASSWORD)")->envname("KAIRO_PASSWORD");
  app.add_option("--token", c.token, "an access token instead of --user/--password")->envname("KAIRO_TOKEN");
  app.add_option("--ca-file", c.ca_file, "CA bundle for an https control plane")->envname("KAIRO_CA_FILE");
}

}  // namespace

Runner add_scene_command(CLI::App& app) {
  struct Options {
    Connection connection;
    std::string file, name;
    uint64_t max_bytes = 1ull << 30;
  };
  auto o = std::make_shared<Options>();
  app.require_subcommand(1);
  CLI::App* inspect = app.add_subcommand("inspect", "Load a scene file and print what it costs (JSON)");
  inspect->add_option("file", o->file, "the scene file")->required();
  CLI::App* upload =
      app.add_subcommand("upload", "Upload a .glb (or a .gltf with its files, packed into one)");
  upload->add_option("file", o->file, "the scene file")->required();
  upload->add_option("--name", o->name, "the scene's name in the catalogue (default: the file's stem)");
  add_connection_options(*upload, o->connection);
  CLI::App* list = app.add_subcommand("list", "List the catalogue: every version of every scene (JSON)");
  add_connection_options(*list, o->connection);
  CLI::App* remove = app.add_subcommand("delete", "Delete a scene (every version); refused while in use");
  remove->add_option("name", o->name, "the scene's name")->required();
  add_connection_options(*remove, o->connection);

  return [o, inspect, upload, list, remove] {
    if (inspect->parsed()) {
      const SceneData scene = load_scene(o->file);
      uint64_t texture_bytes = 0;
      for (const TextureData& t : scene.textures) texture_bytes += t.rgba.size();
      const nlohmann::json answer = {
          {"triangles", scene.triangle_count()}, {"vertices", scene.vertices.size()},
          {"textures", scene.textures.size()},   {"texture_bytes", texture_bytes},
          {"draws", scene.draws.size()},         {"meshes", scene.meshes.size()},
          {"materials", scene.materials.size()}};
      std::printf("%s\n", answer.dump().c_str());
      return 0;
    }
    const Connection& c = o->connection;
    const control::ControlUrl url = control::parse_control_url(c.control_url);
    const std::string token = access_token(c, url);
    if (upload->parsed()) {
      const std::filesystem::path file = o->file;
      std::string ext = file.extension().string();
      for (char& ch : ext) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      std::string bytes;
      if (ext == ".gltf") {
        bytes = pack_gltf(file, o->max_bytes);
      } else if (ext == ".glb") {
        bytes = read_file_bytes(file);
      } else {
        throw_invalid_input(file.string() + ": the catalogue takes glTF (.glb, or .gltf with its files)");
      }
      const std::string sha256 = sha256_hex(bytes);
      const std::string name = o->name.empty() ? file.stem().string() : o->name;
      // The bytes' hash goes with them: the control plane refuses bytes that changed on the way.
      const auto r = control::http_request(
          url, "PUT", "/v1/scenes/" + percent_encoded(name) + "?sha256=" + sha256, bytes, token,
          control::HttpClientOptions{
              .timeout_s = 120, .ca_file = c.ca_file, .content_type = "model/gltf-binary"});
      if (r.status != 201) throw_invalid_input("upload refused: " + refusal(r));
      std::printf("%s\n", r.body.c_str());
      return 0;
    }
    if (list->parsed()) {
      nlohmann::json all = nlohmann::json::array();
      std::string cursor;
      do {
        const auto r = control::http_request(
            url, "GET", "/v1/scenes?limit=1000" + (cursor.empty() ? "" : "&cursor=" + cursor), "", token,
            control::HttpClientOptions{.ca_file = c.ca_file});
        if (r.status != 200) throw_runtime("listing failed: " + refusal(r));
        for (auto& v : nlohmann::json::parse(r.body)) all.push_back(std::move(v));
        const auto next = r.headers.find("x-next-cursor");
        cursor = next == r.headers.end() ? "" : next->second;
      } while (!cursor.empty());
      std::printf("%s\n", all.dump(2).c_str());
      return 0;
    }
    const auto r = control::http_request(url, "DELETE", "/v1/scenes/" + percent_encoded(o->name), "", token,
                                         control::HttpClientOptions{.ca_file = c.ca_file});
    if (r.status != 204) throw_invalid_input("delete refused: " + refusal(r));
    return 0;
  };
}

}  // namespace kairo::app
