#include "streaming/session_credential.hpp"

#include <sodium.h>

namespace kairo {

namespace {
constexpr std::string_view kLabel = "kairo webrtc signalling credential v1";
}

std::string signalling_credential(const SessionKey& key) {
  unsigned char digest[32];
  crypto_generichash(digest, sizeof(digest), reinterpret_cast<const unsigned char*>(kLabel.data()),
                     kLabel.size(), key.bytes.data(), key.bytes.size());
  char hex[65];
  sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
  return std::string(hex, 64);
}

bool signalling_credential_matches(const SessionKey& key, std::string_view presented) {
  const std::string expected = signalling_credential(key);
  if (presented.size() != expected.size()) return false;
  return sodium_memcmp(expected.data(), presented.data(), expected.size()) == 0;
}

}  // namespace kairo
