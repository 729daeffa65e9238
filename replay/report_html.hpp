#pragma once
// report.html for a replay: a verdict banner, what ran, the regression ranges with pictures of what changed,
// quality, size and latency over time as inline SVG plots over the baseline's, every regressing frame, and
// thumbnails. Self-contained but for the PNGs beside it; no scripts.
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace kairo {

// Text for HTML or XML (text and attribute values).
std::string markup_escaped(const std::string& text);

// `baseline`: the baseline's summary (its curves are drawn under this run's), or null.
void write_report_html(const std::filesystem::path& path, const nlohmann::json& summary,
                       const nlohmann::json* baseline = nullptr);

// A value for an axis label: enough decimals that the ends of an axis spanning `span` read differently
// (at least `min_decimals`).
std::string axis_number(double value, double span, int min_decimals = 0);

}  // namespace kairo
