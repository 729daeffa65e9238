#include "replay/replay_suite.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.hpp"
#include "replay/report_html.hpp"

namespace kairo {
namespace {

using nlohmann::json;

const char* verdict(const CaseOutcome& c) {
  if (!c.result) return "error";
  return c.result->regressions.empty() ? "pass" : "regression";
}

// The ranges first (what changed where, and its pictures), then every frame.
std::string regression_lines(const ReplayResult& r, const std::filesystem::path& report) {
  std::string text;
  for (const RegressionRange& range : r.ranges) {
    if (range.kind == "run") {
      text += "run: " + range.worst_what + "\n";
      continue;
    }
    text += "frames " + std::to_string(range.first) + "-" + std::to_string(range.last) + " (" +
            std::to_string(range.frames) + ", " + range.kind + "): worst frame " +
            std::to_string(range.worst_frame) + ": " + range.worst_what;
    if (!range.pictures.empty()) text += "; pictures: " + (report.parent_path() / range.pictures).string();
    text += "\n";
  }
  for (const Regression& reg : r.regressions)
    text += "frame " + std::to_string(reg.frame) + ": " + reg.what + "\n";
  return text;
}

}  // namespace

std::vector<CaseOutcome> run_suite(const std::vector<SuiteCase>& cases, int jobs) {
  std::vector<CaseOutcome> outcomes(cases.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < cases.size(); i = next++) {
      CaseOutcome& o = outcomes[i];
      o.name = cases[i].name;
      o.report = cases[i].options.out / "report.html";
      const auto start = std::chrono::steady_clock::now();
      try {
        o.result = run_replay(cases[i].options);
      } catch (const std::exception& e) {
        o.error = e.what();
      }
      o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::clamp(jobs, 1, int(std::max<size_t>(1, cases.size()))); ++t)
    threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  return outcomes;
}

void write_suite_summary(const std::filesystem::path& out, const std::vector<CaseOutcome>& outcomes) {
  json cases = json::array();
  int failed = 0, errors = 0;
  for (const CaseOutcome& c : outcomes) {
    json j{{"name", c.name},
           {"verdict", verdict(c)},
           {"seconds", c.seconds},
           {"report", std::filesystem::relative(c.report, out).string()}};
    if (c.result) {
      j["frames"] = c.result->frames.size();
      j["frames_per_second"] = c.result->frames_per_second;
      j["regression_ranges"] = c.result->ranges.size();
      json regressions = json::array();
      for (const Regression& r : c.result->regressions)
        regressions.push_back({{"frame", r.frame}, {"what", r.what}});
      j["regressions"] = regressions;
      failed += !c.result->regressions.empty();
    } else {
      j["error"] = c.error;
      ++errors;
    }
    cases.push_back(j);
  }
  std::filesystem::create_directories(out);
  std::ofstream(out / "summary.json")
      << json{{"cases", cases}, {"failed", failed}, {"errors", errors}}.dump(2) << "\n";
  // The index: failures first, then errors, then passes; each row links the case's own report.
  std::vector<const CaseOutcome*> order;
  for (const CaseOutcome& c : outcomes) order.push_back(&c);
  auto rank = [](const CaseOutcome* c) {
    return std::string(verdict(*c)) == "regression" ? 0 : !c->result ? 1 : 2;
  };
  std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) { return rank(a) < rank(b); });
  std::ofstream html(out / "index.html");
  html << "<!doctype html><meta charset=utf-8><title>kairo replay suite</title>"
       << "<style>body{font:14px system-ui;margin:2em}table{border-collapse:collapse}td,th{padding:4px 10px;"
       << "border-bottom:1px solid #ddd;text-align:left}.pass{color:#176f2c}.regression,.error{color:#b00020;"
       << "font-weight:bold}.banner{padding:10px;margin-bottom:1em;color:#fff}</style>";
  const bool green = failed == 0 && errors == 0;
  html << "<div class=banner style=\"background:" << (green ? "#176f2c" : "#b00020") << "\">"
       << (green ? "PASS" : "FAIL") << ": " << outcomes.size() << " cases, " << failed
       << " with regressions, " << errors
       << " could not run</div><table><tr><th>case</th><th>verdict</th><th>frames</th>"
       << "<th>regressions</th><th>seconds</th><th>report</th></tr>";
  for (const CaseOutcome* c : order) {
    const std::string link = std::filesystem::relative(c->report, out).string();
    html << "<tr><td>" << markup_escaped(c->name) << "</td><td class=" << verdict(*c) << ">" << verdict(*c)
         << "</td><td>" << (c->result ? std::to_string(c->result->frames.size()) : "") << "</td><td>"
         << (c->result ? std::to_string(c->result->regressions.size()) : markup_escaped(c->error))
         << "</td><td>";
    char seconds[32];
    std::snprintf(seconds, sizeof(seconds), "%.1f", c->seconds);
    html << seconds << "</td><td>"
         << (c->result ? "<a href=\"" + markup_escaped(link) + "\">" + markup_escaped(link) + "</a>" : "")
         << "</td></tr>";
  }
  html << "</table>\n";
}

void write_junit(const std::filesystem::path& file, const std::string& suite_name,
                 const std::vector<CaseOutcome>& outcomes) {
  int failures = 0, errors = 0;
  double total = 0;
  for (const CaseOutcome& c : outcomes) {
    failures += c.result && !c.result->regressions.empty();
    errors += !c.result;
    total += c.seconds;
  }
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  std::ofstream x(file);
  if (!x) throw_invalid_input("cannot write --junit " + file.string());
  char time[32];
  std::snprintf(time, sizeof(time), "%.3f", total);
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\""
    << markup_escaped(suite_name) << "\" tests=\"" << outcomes.size() << "\" failures=\"" << failures
    << "\" errors=\"" << errors << "\" time=\"" << time << "\">\n";
  for (const CaseOutcome& c : outcomes) {
    std::snprintf(time, sizeof(time), "%.3f", c.seconds);
    x << "    <testcase classname=\"kairo.replay\" name=\"" << markup_escaped(c.name) << "\" time=\"" << time
      << "\">\n";
    if (!c.result) {
      x << "      <error message=\"" << markup_escaped(c.error) << "\"/>\n";
    } else if (!c.result->regressions.empty()) {
      const std::string message = std::to_string(c.result->regressions.size()) + " regressions in " +
                                  std::to_string(c.result->ranges.size()) +
                                  " ranges; report: " + c.report.string();
      x << "      <failure message=\"" << markup_escaped(message) << "\" type=\"regression\">"
        << markup_escaped(regression_lines(*c.result, c.report) + "report: " + c.report.string())
        << "</failure>\n";
    }
    x << "      <system-out>report: " << markup_escaped(c.report.string())
      << "</system-out>\n    </testcase>\n";
  }
  x << "  </testsuite>\n</testsuites>\n";
}

}  // namespace kairo
