#pragma once
// A small HTTP/1.1 server on Boost.Beast for the control plane's JSON API: keep-alive, a body limit, read
// timeouts, a fixed pool of threads. Routing and JSON live in api.cpp; Beast stays inside http_server.cpp.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kairo::control {

struct HttpRequest {
  std::string method;  // GET, POST, PATCH, DELETE
  std::string path;    // without the query
  std::string query;
  std::string authorization;
  std::string content_type;
  std::string body;
  std::string remote_address;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers{};  // more response headers (the page's CSP)
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";
  int threads = 2;
  size_t body_limit = 64 * 1024;
  std::string tls_cert_file{};  // both set: HTTPS only
  std::string tls_key_file{};
};

class HttpServer {
 public:
  HttpServer(const HttpServerOptions& options, HttpHandler handler);
  ~HttpServer();
  uint16_t port() const;
  bool tls() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo::control
