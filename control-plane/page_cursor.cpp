#include "control-plane/page_cursor.hpp"

#include <sodium.h>
#include <cstring>

#include "control-plane/api_error.hpp"
#include "control-plane/fleet_service.hpp"

namespace kairo::control {

std::string encode_cursor(const std::string& key) {
  std::string out(sodium_base64_ENCODED_LEN(key.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}
std::string decode_cursor(const std::string& cursor) {
  std::string key(cursor.size(), '\0');
  size_t length = 0;
  if (cursor.size() > 256 || sodium_base642bin(reinterpret_cast<unsigned char*>(key.data()), key.size(),
                                               cursor.data(), cursor.size(), nullptr, &length, nullptr,
                                               sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    throw ApiError(400, "invalid_cursor", "malformed cursor: pass back a next_cursor as it was given");
  key.resize(length);
  return key;
}
int page_limit(const PageRequest& page) {
  if (page.limit < 1 || page.limit > 1000) throw ApiError(400, "invalid_limit", "limit must be 1 to 1000");
  return page.limit;
}

}  // namespace kairo::control
