#pragma once
// Content addresses: SHA-256 as 64 lower-case hex digits (libsodium). The scene catalogue stores scenes
// under them, nodes verify fetched scenes against them, `kairo scene upload` sends one with its bytes.
#include <string>
#include <string_view>

namespace kairo {

std::string sha256_hex(std::string_view bytes);
bool is_sha256_hex(std::string_view text);  // 64 lower-case hex digits

}  // namespace kairo
