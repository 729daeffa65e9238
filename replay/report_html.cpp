#include "replay/report_html.hpp"

#include <algorithm>
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

namespace {

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f", v);
  return b;
}

// A line plot of one or more series over the frame index, as inline SVG.
std::string svg_plot(const std::string& title, const std::string& unit,
                     const std::vector<std::pair<std::string, std::vector<double>>>& series) {
  constexpr int kWidth = 720, kHeight = 180, kLeft = 50, kBottom = 20;
  static const char* kColours[] = {"#2b6cb0", "#c05621", "#2f855a", "#6b46c1"};
  double lo = 1e300, hi = -1e300;
  size_t n = 0;
  for (const auto& [name, v] : series) {
    for (double x : v) lo = std::min(lo, x), hi = std::max(hi, x);
    n = std::max(n, v.size());
  }
  if (n == 0) return "";
  if (hi - lo < 1e-9) hi = lo + 1;
  std::string out = "<h3>" + markup_escaped(title) + "</h3><svg width=\"" + std::to_string(kWidth) +
                    "\" height=\"" + std::to_string(kHeight + kBottom) + "\" role=\"img\">";
  out += "<text x=\"0\" y=\"12\" font-size=\"11\">" + number(hi) + " " + markup_escaped(unit) + "</text>";
  out += "<text x=\"0\" y=\"" + std::to_string(kHeight) + "\" font-size=\"11\">" + number(lo) + "</text>";
  out += "<text x=\"" + std::to_string(kLeft) + "\" y=\"" + std::to_string(kHeight + 15) +
         "\" font-size=\"11\">frame 0 .. " + std::to_string(n - 1) + "</text>";
  for (size_t s = 0; s < series.size(); ++s) {
    std::string points;
    const auto& v = series[s].second;
    for (size_t i = 0; i < v.size(); ++i) {
      const double x = kLeft + double(kWidth - kLeft - 10) * double(i) / double(std::max<size_t>(1, n - 1));
      const double y = 5 + double(kHeight - 10) * (1.0 - (v[i] - lo) / (hi - lo));
      points += number(x) + "," + number(y) + " ";
    }
    out += std::string("<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"") + kColours[s % 4] +
           "\" points=\"" + points + "\"/>";
    out += std::string("<text x=\"") + std::to_string(kLeft + 120 * int(s)) +
           "\" y=\"12\" font-size=\"11\" fill=\"" + kColours[s % 4] + "\">" +
           markup_escaped(series[s].first) + "</text>";
  }
  return out + "</svg>";
}

}  // namespace

void write_report_html(const std::filesystem::path& path, const nlohmann::json& summary) {
  std::vector<double> psnr, ssim, bytes, render, encode, decode;
  for (const auto& f : summary["frames"]) {
    psnr.push_back(f.value("psnr_db", 0.0));
    ssim.push_back(f.value("ssim", 0.0));
    bytes.push_back(double(f.value("encoded_bytes", 0)) / 1000.0);
    render.push_back(f.value("render_ms", 0.0));
    encode.push_back(f.value("encode_ms", 0.0));
    decode.push_back(f.value("decode_ms", 0.0));
  }
  std::string html =
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Kairo replay: " +
      markup_escaped(summary.value("scene", "")) +
      "</title><style>body{font-family:sans-serif;margin:2em;max-width:960px}td,th{padding:2px "
      "10px;text-align:left}"
      ".bad{color:#c53030}.good{color:#2f855a}img{width:300px;margin:4px}</style></head><body>";
  html += "<h1>Replay of " + markup_escaped(summary.value("scene", "")) + " along " +
          markup_escaped(summary.value("trace", "")) + "</h1><table>";
  for (const char* key :
       {"eye_width", "eye_height", "fps", "encoder", "bitrate_bps", "frame_count", "baseline"})
    html += std::string("<tr><th>") + key + "</th><td>" +
            markup_escaped(summary[key].is_string() ? summary[key].get<std::string>() : summary[key].dump()) +
            "</td></tr>";
  if (summary.contains("transport"))
    for (const auto& [key, value] : summary["transport"].items())
      html += "<tr><th>transport " + markup_escaped(key) + "</th><td>" +
              markup_escaped(value.is_string() ? value.get<std::string>() : value.dump()) + "</td></tr>";
  html += "</table>";
  const auto& regressions = summary["regressions"];
  if (summary.value("baseline", "").empty()) {
    html += "<p>No baseline given.</p>";
  } else if (regressions.empty()) {
    html += "<p class=\"good\">No regression against the baseline.</p>";
  } else {
    html += "<h2 class=\"bad\">" + std::to_string(regressions.size()) +
            " regressions</h2><table><tr><th>frame</th><th>what</th></tr>";
    for (const auto& r : regressions)
      html += "<tr><td>" + std::to_string(r.value("frame", 0)) + "</td><td>" +
              markup_escaped(r.value("what", "")) + "</td></tr>";
    html += "</table>";
  }
  html += svg_plot("Quality: decoded vs rendered (luma PSNR)", "dB", {{"PSNR dB", psnr}});
  html += svg_plot("Quality: SSIM", "", {{"SSIM", ssim}});
  html += svg_plot("Encoded size", "kB", {{"kB", bytes}});
  html += svg_plot("Latency per stage", "ms", {{"render", render}, {"encode", encode}, {"decode", decode}});
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
