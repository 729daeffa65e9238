#pragma once
// A small HTTP/1.1 server on Boost.Beast for the control plane's JSON API: keep-alive, a body limit, read
// timeouts, a fixed pool of threads. Routing and JSON live in api.cpp; Beast stays inside http_server.cpp.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  std::string request_id;  // the X-Request-Id header as sent (whether to trust it is the API's decision)
  int64_t received_ns =
      0;  // steady clock, when the whole request had been read (before it waited for a worker)
};

class DeferredResponse;

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers{};  // more response headers (the page's CSP)
  // Set: the answer comes later (a held request, the node feed): the server sends what the handler's side
  // gives DeferredResponse::complete(), and nothing of this response.
  std::shared_ptr<DeferredResponse> deferred{};
};

// An answer given later, from any thread, exactly once (later calls are ignored).
class DeferredResponse {
 public:
  void complete(HttpResponse response);
  // The server's side: `send` runs once with the answer (at once if it is already there).
  void on_ready(std::function<void(HttpResponse)> send);

 private:
  std::mutex mutex_;
  std::optional<HttpResponse> ready_;
  std::function<void(HttpResponse)> send_;
  bool done_ = false;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string listen = "127.0.0.1:0";
  int threads = 2;  // network I/O
  int workers = 8;  // run the handler, which may wait on the database (size it like the connection pool)
  size_t body_limit = 64 * 1024;
  // Set: a request's own limit, decided from its head (method, path, authorization; no body yet) before its
  // body is read: an upload route takes more, and only from a caller who may upload (the scene catalogue).
  std::function<size_t(const HttpRequest& head)> body_limit_for{};
  std::string tls_cert_file{};  // both set: HTTPS only
  std::string tls_key_file{};
  // Set: tried first on the network thread, where it must not block; nullopt sends the request on to a
  // worker (the handler). For requests answered from memory, which then skip two thread hand-offs (each a
  // futex wake-up and context switch, the control plane's main cost under a fleet's feed requests).
  std::function<std::optional<HttpResponse>(const HttpRequest&)> try_without_blocking{};
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
