#include "replay/report_html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace kairo {

// XML text and attribute values, and HTML's: the five predefined entities; characters XML 1.0 cannot carry
// at all (C0 controls but tab and newlines) become U+FFFD.
std::string markup_escaped(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\n' && ch != '\t' && ch != '\r')
          out += "\xEF\xBF\xBD";
        else
          out += ch;
    }
  }
  return out;
}

std::string axis_number(double value, double span, int min_decimals) {
  const int decimals =
      std::clamp(span > 0 ? int(std::ceil(-std::log10(span))) + 2 : min_decimals, min_decimals, 6);
  char b[48];
  std::snprintf(b, sizeof(b), "%.*f", decimals, value);
  return b;
}

namespace {

std::string coordinate(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.1f", v);
  return b;
}

struct Series {
  std::string name;
  std::vector<double> values;
  bool baseline = false;  // drawn dashed and pale, under this run's
};

constexpr const char* kColours[] = {"#2b6cb0", "#c05621", "#2f855a", "#6b46c1"};

// A line plot over the frame index as inline SVG, with the regressing frame ranges shaded; the legend is HTML
// above it (it never covers the axis labels).
std::string svg_plot(const std::string& title, const std::string& unit, const std::vector<Series>& series,
                     const std::vector<std::pair<uint64_t, uint64_t>>& regressing, int min_decimals = 0) {
  constexpr int kWidth = 760, kHeight = 180, kLeft = 70, kBottom = 20, kRight = 10;
  double lo = 1e300, hi = -1e300;
  size_t n = 0;
  for (const Series& s : series) {
    for (double x : s.values) lo = std::min(lo, x), hi = std::max(hi, x);
    n = std::max(n, s.values.size());
  }
  if (n == 0) return "";
  if (hi - lo < 1e-9) hi = lo + (lo == 0 ? 1 : std::abs(lo) * 1e-3);
  const double span = hi - lo;
  const auto x_of = [&](double i) {
    return kLeft + double(kWidth - kLeft - kRight) * i / double(std::max<size_t>(1, n - 1));
  };
  const auto y_of = [&](double v) { return 5 + double(kHeight - 10) * (1.0 - (v - lo) / span); };
  std::string out = "<h3>" + markup_escaped(title) + "</h3><div class=\"legend\">";
  int colour = 0;
  for (const Series& s : series) {
    const std::string c = s.baseline ? "#a0aec0" : kColours[colour++ % 4];
    out += "<span style=\"color:" + c + "\">" + (s.baseline ? "- - " : "&mdash; ") + markup_escaped(s.name) +
           "</span> ";
  }
  if (!regressing.empty()) out += "<span class=\"bad\">&#9608; regressing frames</span>";
  out += "</div><svg width=\"" + std::to_string(kWidth) + "\" height=\"" + std::to_string(kHeight + kBottom) +
         "\" role=\"img\">";
  for (const auto& [first, last] : regressing) {
    const double x0 = x_of(double(first) - 0.5), x1 = x_of(double(last) + 0.5);
    out += "<rect class=\"regressing\" x=\"" + coordinate(std::max<double>(kLeft, x0)) +
           "\" y=\"0\" width=\"" +
           coordinate(std::max(1.0, std::min<double>(kWidth - kRight, x1) - std::max<double>(kLeft, x0))) +
           "\" height=\"" + std::to_string(kHeight) + "\" fill=\"#fed7d7\"/>";
  }
  for (const double v : {hi, (hi + lo) / 2, lo})
    out += "<text x=\"0\" y=\"" + coordinate(std::clamp(y_of(v) + 4, 11.0, double(kHeight))) +
           "\" font-size=\"11\">" + axis_number(v, span, min_decimals) + " " + markup_escaped(unit) +
           "</text><line x1=\"" + std::to_string(kLeft - 4) + "\" x2=\"" + std::to_string(kWidth - kRight) +
           "\" y1=\"" + coordinate(y_of(v)) + "\" y2=\"" + coordinate(y_of(v)) + "\" stroke=\"#edf2f7\"/>";
  out += "<text x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kHeight + 15) +
         "\" font-size=\"11\">frame 0</text><text x=\"" + std::to_string(kWidth - kRight) + "\" y=\"" +
         std::to_string(kHeight + 15) + "\" font-size=\"11\" text-anchor=\"end\">frame " +
         std::to_string(n - 1) + "</text>";
  colour = 0;
  for (const Series& s : series) {
    std::string points;
    for (size_t i = 0; i < s.values.size(); ++i)
      points += coordinate(x_of(double(i))) + "," + coordinate(y_of(s.values[i])) + " ";
    const std::string c = s.baseline ? "#a0aec0" : kColours[colour++ % 4];
    out += "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" + c + "\"" +
           (s.baseline ? " stroke-dasharray=\"4 3\" class=\"baseline\"" : "") + " points=\"" + points +
           "\"/>";
  }
  return out + "</svg>";
}

std::vector<double> field(const nlohmann::json& summary, const char* key, double scale = 1.0) {
  std::vector<double> v;
  for (const auto& f : summary["frames"]) v.push_back(f.value(key, 0.0) * scale);
  return v;
}

std::string text_of(const nlohmann::json& value) {
  return markup_escaped(value.is_string() ? value.get<std::string>() : value.dump());
}

std::string banner(const nlohmann::json& summary) {
  const auto& ranges = summary["regression_ranges"];
  const size_t frames = summary["frames"].size();
  if (summary.value("baseline", "").empty())
    return "<div class=\"banner none\">NO BASELINE: " + std::to_string(frames) +
           " frames replayed, nothing to compare with</div>";
  if (ranges.empty())
    return "<div class=\"banner pass\">PASS: " + std::to_string(frames) +
           " frames, no regression against the baseline</div>";
  size_t regressing = 0;
  for (const auto& r : ranges)
    if (r.value("kind", "") != "run") regressing += r.value("frames", size_t(0));
  const auto& worst = summary["worst"];
  return "<div class=\"banner fail\">FAIL: " + std::to_string(summary["regressions"].size()) +
         " regressions (" + std::to_string(regressing) + " of " + std::to_string(frames) + " frames) in " +
         std::to_string(ranges.size()) + (ranges.size() == 1 ? " range" : " ranges") + ". Worst: " +
         (worst.value("kind", "") == "run" ? std::string("the run")
                                           : "frame " + std::to_string(worst.value("frame", 0))) +
         ", " + markup_escaped(worst.value("what", "")) + "</div>";
}

std::string ranges_table(const nlohmann::json& summary) {
  const auto& ranges = summary["regression_ranges"];
  if (ranges.empty()) return "";
  std::string html =
      "<h2 class=\"bad\">Regression ranges</h2><table><tr><th>frames</th><th>kind</th>"
      "<th>worst frame</th><th>baseline | new | difference</th></tr>";
  for (const auto& r : ranges) {
    const bool run = r.value("kind", "") == "run";
    const uint64_t first = r.value("first", uint64_t(0)), last = r.value("last", uint64_t(0));
    html += "<tr><td>" +
            (run ? std::string("whole run")
                 : std::to_string(first) + (last > first ? "&ndash;" + std::to_string(last) : "") + " (" +
                       std::to_string(r.value("frames", 0)) + ")") +
            "</td><td>" + markup_escaped(r.value("kind", "")) + "</td><td class=\"why\">" +
            (run ? "" : std::to_string(r.value("worst_frame", 0)) + ": ") +
            markup_escaped(r.value("worst", "")) + "</td><td>";
    if (r.contains("pictures")) {
      const auto& p = r["pictures"];
      html += "<a href=\"" + markup_escaped(p.value("side_by_side", "")) + "\"><img class=\"change\" src=\"" +
              markup_escaped(p.value("side_by_side", "")) +
              "\" alt=\"baseline, new and amplified difference\"></a><br>full size: ";
      for (const char* key : {"baseline", "new", "difference"})
        html += "<a href=\"" + markup_escaped(p.value(key, "")) + "\">" + key + "</a> ";
      if (p.value("of", "") == "decoded") html += "(decoded luma: what the client showed)";
      if (p.value("from_fingerprints", false))
        html += "(from 128-pixel fingerprints: the baseline kept no frames)";
    }
    html += "</td></tr>";
  }
  return html + "</table>";
}

}  // namespace

void write_report_html(const std::filesystem::path& path, const nlohmann::json& summary,
                       const nlohmann::json* baseline) {
  std::vector<std::pair<uint64_t, uint64_t>> regressing;
  for (const auto& r : summary["regression_ranges"])
    if (r.value("kind", "") != "run") regressing.emplace_back(r.value("first", 0), r.value("last", 0));
  const auto with_baseline = [&](std::vector<Series> series, const char* key, const char* name,
                                 double scale = 1.0) {
    if (baseline) series.push_back({std::string("baseline ") + name, field(*baseline, key, scale), true});
    return series;
  };
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Kairo replay: " +
      markup_escaped(summary.value("scene", "")) +
      "</title><style>body{font-family:sans-serif;margin:2em;max-width:1000px}td,th{padding:2px "
      "10px;text-align:left;vertical-align:top}.bad{color:#c53030}.good{color:#2f855a}"
      ".banner{padding:10px 14px;font-weight:bold;border-radius:4px;margin-bottom:1em}"
      ".pass{background:#c6f6d5;color:#22543d}.fail{background:#fed7d7;color:#822727}"
      ".none{background:#edf2f7}.legend span{margin-right:1.5em;font-size:12px}"
      "td.why{min-width:12em}img{width:300px;margin:4px}img.change{width:560px}</style></head><body>";
  html += banner(summary);
  html += "<h1>Replay of " + markup_escaped(summary.value("scene", "")) + " along " +
          markup_escaped(summary.value("trace", "")) + "</h1><table>";
  for (const char* key : {"eye_width", "eye_height", "fps", "encoder", "bitrate_bps", "frame_count",
                          "frames_per_second", "baseline"})
    if (summary.contains(key))
      html += std::string("<tr><th>") + key + "</th><td>" + text_of(summary[key]) + "</td></tr>";
  if (summary.contains("transport"))
    for (const auto& [key, value] : summary["transport"].items())
      html += "<tr><th>transport " + markup_escaped(key) + "</th><td>" + text_of(value) + "</td></tr>";
  html += "</table>";
  html += ranges_table(summary);
  html += svg_plot("Quality: decoded vs rendered (luma PSNR)", "dB",
                   with_baseline({{"PSNR", field(summary, "psnr_db")}}, "psnr_db", "PSNR"), regressing, 2);
  html += svg_plot("Quality: SSIM (luma)", "",
                   with_baseline({{"SSIM", field(summary, "ssim")}}, "ssim", "SSIM"), regressing, 4);
  html += svg_plot(
      "Encoded size", "kB",
      with_baseline({{"size", field(summary, "encoded_bytes", 1e-3)}}, "encoded_bytes", "size", 1e-3),
      regressing, 1);
  std::vector<Series> latency{{"render", field(summary, "render_ms")},
                              {"encode", field(summary, "encode_ms")},
                              {"decode", field(summary, "decode_ms")}};
  html += svg_plot("Latency per stage", "ms", with_baseline(latency, "render_ms", "render"), regressing, 1);
  const auto& regressions = summary["regressions"];
  if (!regressions.empty()) {
    html += "<details><summary>Every regressing frame (" + std::to_string(regressions.size()) +
            ")</summary><table><tr><th>frame</th><th>what</th></tr>";
    for (const auto& r : regressions)
      html += "<tr><td>" + std::to_string(r.value("frame", 0)) + "</td><td>" +
              markup_escaped(r.value("what", "")) + "</td></tr>";
    html += "</table></details>";
  }
  html += "<h2>Thumbnails</h2><div>";
  std::vector<std::filesystem::path> thumbs;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path.parent_path() / "thumbnails", ec))
    thumbs.push_back(e.path().filename());
  std::sort(thumbs.begin(), thumbs.end());
  for (const auto& t : thumbs)
    html += "<figure style=\"display:inline-block\"><img src=\"thumbnails/" + markup_escaped(t.string()) +
            "\"><figcaption>frame " + markup_escaped(t.stem().string()) + "</figcaption></figure>";
  html += "</div></body></html>\n";
  std::ofstream out(path);
  out << html;
  if (!out) throw_runtime("cannot write " + path.string());
}

}  // namespace kairo
