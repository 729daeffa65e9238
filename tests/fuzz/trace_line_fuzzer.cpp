// libFuzzer target: one line of a pose trace (core/trace.hpp, docs/pose-trace.md), the format recordings,
// `kairo replay` and `kairo render --trace` read. Invariant: a line that parses formats to a line that parses
// to the same sample (one canonical form), and a bad line is refused with kairo::Error, never anything else.
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "core/trace.hpp"

using namespace kairo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  TraceSample sample;
  try {
    sample = parse_trace_line(line);
  } catch (const Error&) {
    return 0;
  }
  const std::string canonical = format_trace_line(sample);
  const TraceSample again = parse_trace_line(canonical);  // must not throw
  if (format_trace_line(again) != canonical) __builtin_trap();
  return 0;
}
