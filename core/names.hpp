#pragma once
// One rule for every name a person or a node chooses (users, scenes, rooms, nodes): well-formed UTF-8,
// 1..max_bytes bytes, no control characters (C0, DEL, C1), no line or paragraph separators and no
// bidirectional overrides. Such names are safe to store (PostgreSQL would cut a text at a NUL), to compare
// (one spelling per name), and to print in a log line (no forged lines, no terminal escapes).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kairo {

// Length in bytes of the UTF-8 sequence starting at s[i] and its code point; length 0 when it is not well
// formed (overlong forms, surrogates and values past U+10FFFF included). Written here because no library
// the project uses exposes one.
struct Utf8Char {
  size_t length = 0;
  uint32_t code_point = 0;
};
Utf8Char utf8_char_at(std::string_view s, size_t i);

// Why `name` breaks the rule ("contains a control character", ...), or nullopt when it keeps it.
std::optional<std::string> name_problem(std::string_view name, size_t max_bytes);

// The text with every byte that is not printable ASCII or well-formed, non-control UTF-8 written as \xNN
// (and backslash as \\): what a log line may carry of a value an outsider chose.
std::string escape_for_log(std::string_view text);

}  // namespace kairo
