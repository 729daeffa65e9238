#pragma once
// Reading Prometheus' text exposition format in tests: a sample's value by its exact series (name and
// labels, as Kairo writes them), and whether a family is declared with its HELP and TYPE lines.
#include <optional>
#include <sstream>
#include <string>

namespace kairo::test {

inline std::optional<double> metric_sample(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);)
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ')
      return std::stod(line.substr(series.size() + 1));
  return std::nullopt;
}

inline bool metric_declared(const std::string& text, const std::string& family, const std::string& type) {
  return text.find("# HELP " + family + " ") != std::string::npos &&
         text.find("# TYPE " + family + " " + type + "\n") != std::string::npos;
}

}  // namespace kairo::test
