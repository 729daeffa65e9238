#pragma once
// report.html for a replay: what ran, the regressions (naming frames), quality and latency over time as
// inline SVG plots, and thumbnails. Self-contained but for the thumbnail PNGs beside it; no scripts.
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace kairo {

// Text for HTML or XML (text and attribute values).
std::string markup_escaped(const std::string& text);

void write_report_html(const std::filesystem::path& path, const nlohmann::json& summary);

}  // namespace kairo
