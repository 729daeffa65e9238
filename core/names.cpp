#include "core/names.hpp"

#include <cstdio>

namespace kairo {
namespace {

// Code points that are not text: they move the cursor, end lines, or reorder what a reader sees.
bool is_control(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}

}  // namespace

Utf8Char utf8_char_at(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return {1, c};
  size_t n = 0;
  uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return {};
  }
  if (i + n > s.size()) return {};
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return {};
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr uint32_t kMinimum[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinimum[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {};
  return {n, cp};
}

std::optional<std::string> name_problem(std::string_view name, size_t max_bytes) {
  if (name.empty()) return "is empty";
  if (name.size() > max_bytes) return "is longer than " + std::to_string(max_bytes) + " bytes";
  for (size_t i = 0; i < name.size();) {
    const Utf8Char c = utf8_char_at(name, i);
    if (c.length == 0) return "is not valid UTF-8";
    if (is_control(c.code_point)) return "contains a control character";
    i += c.length;
  }
  if (name.front() == ' ' || name.back() == ' ') return "starts or ends with a space";
  return std::nullopt;
}

std::string escape_for_log(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const Utf8Char c = utf8_char_at(text, i);
    if (c.length == 0 || is_control(c.code_point) || text[i] == '\\') {
      const size_t n = c.length == 0 ? 1 : c.length;
      for (size_t k = 0; k < n; ++k) {
        if (text[i + k] == '\\') {
          out += "\\\\";
          continue;
        }
        char hex[5];
        std::snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(text[i + k]));
        out += hex;
      }
      i += n;
      continue;
    }
    out.append(text.substr(i, c.length));
    i += c.length;
  }
  return out;
}

}  // namespace kairo
