#pragma once
// The opaque cursors of the API's lists (keyset paging): base64url of the last item's sort key
// ("created_at|id", "id", "name|version"), so clients cannot lean on their form. Malformed ones are 400s
// (ApiError).
#include <string>

namespace kairo::control {

struct PageRequest;

std::string encode_cursor(const std::string& key);
std::string decode_cursor(const std::string& cursor);
// The page's limit, 1 to 1000 (else a 400).
int page_limit(const PageRequest& page);

}  // namespace kairo::control
