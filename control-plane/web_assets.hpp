#pragma once
// The browser client (web/), built into `kairo control` at build time (control-plane/embed_web.cmake).
#include <map>
#include <string>

namespace kairo::control {

struct WebAsset {
  const char* body;
  const char* content_type;
};

// By file name: "index.html", "app.js", ...
const std::map<std::string, WebAsset>& web_assets();

}  // namespace kairo::control
