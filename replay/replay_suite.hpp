#pragma once
// A QA suite: many replays (scenes x traces x settings) run as one, with --jobs N cases at a time (each
// case is the same deterministic replay it would be alone), one summary, one index page linking each case's
// report, and JUnit XML for CI systems (Jenkins, GitLab, GitHub Actions display it).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "replay/replay.hpp"

namespace kairo {

struct SuiteCase {
  std::string name;  // unique in the suite; its output folder
  ReplayOptions options;
};

struct CaseOutcome {
  std::string name;
  std::optional<ReplayResult> result;  // empty when the case could not run
  std::string error;                   // why it could not run
  double seconds = 0;
  std::filesystem::path report;  // the case's report.html
};

// Runs the cases, `jobs` at a time (>= 1), in the suite's order of results. Never throws for one case's
// failure: it is recorded in its outcome.
std::vector<CaseOutcome> run_suite(const std::vector<SuiteCase>& cases, int jobs);

// out/summary.json (every case: verdict, frames, regressions, report) and out/index.html (one row per case,
// linking its report, the failures first).
void write_suite_summary(const std::filesystem::path& out, const std::vector<CaseOutcome>& outcomes);

// JUnit XML: one testsuite, one testcase per case; a <failure> per case with regressions (each frame and
// reason in its text, the report's path), an <error> for a case that could not run.
void write_junit(const std::filesystem::path& file, const std::string& suite_name,
                 const std::vector<CaseOutcome>& outcomes);

}  // namespace kairo
