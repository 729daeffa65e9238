#pragma once
// A minimal blocking HTTP/1.1 client for API tests (Boost.Beast), one connection per request.
#include <string>

namespace kairo::test {

struct HttpResult {
  int status = 0;
  std::string body;
  std::string content_type;
};

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::string& body = "", const std::string& bearer = "");

}  // namespace kairo::test
