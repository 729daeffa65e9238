#include "control-plane/http_server.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <spdlog/spdlog.h>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "control-plane/tls_context.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/names.hpp"
#include "streaming/udp_address.hpp"

namespace kairo::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Connections whose answer comes later (a held request): nothing else owns them while they wait, so the
// server does, until the answer is sent or the server stops (they are closed then, while the I/O context
// they use still exists). The answer's sender holds only this and a weak reference to its connection.
struct HeldConnections {
  std::mutex mutex;
  bool open = true;
  std::map<const void*, std::shared_ptr<void>> held;
};

HttpResponse error_response(int status, const char* code, const char* message) {
  return {status, std::string(R"({"error":{"code":")") + code + R"(","message":")" + message + "\"}}",
          "application/json"};
}

// One connection: read a request, answer it, repeat while the client keeps the connection alive.
template <typename Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(Stream stream, const HttpHandler& handler, asio::thread_pool& workers,
             std::shared_ptr<HeldConnections> held, const HttpServerOptions& options, std::string remote)
      : stream_(std::move(stream)),
        handler_(handler),
        workers_(workers),
        held_(std::move(held)),
        options_(options),
        remote_(std::move(remote)) {}

  void start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(15));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code error) {
                                if (!error) self->read();
                              });
    } else {
      read();
    }
  }

 private:
  void read() {
    parser_.emplace();
    // With a limit per request, Beast must not refuse a long Content-Length while reading the head (it checks
    // it there): read_body checks it against the request's own limit.
    parser_->body_limit(options_.body_limit_for ? std::numeric_limits<uint64_t>::max() : options_.body_limit);
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(15));
    if (!options_.body_limit_for) {
      http::async_read(
          stream_, buffer_, *parser_,
          [self = this->shared_from_this()](beast::error_code error, size_t) { self->on_read(error); });
      return;
    }
    // The head first: its limit decides how much body may follow.
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code error, size_t) {
                              if (error) return self->on_read(error);
                              self->read_body();
                            });
  }

  void read_body() {
    HttpRequest head;
    const auto& request = parser_->get();
    head.method = std::string(request.method_string());
    const std::string target(request.target());
    head.path = target.substr(0, target.find('?'));
    head.authorization = std::string(request[http::field::authorization]);
    head.content_type = std::string(request[http::field::content_type]);
    head.remote_address = remote_;
    size_t limit = options_.body_limit;
    try {
      limit = options_.body_limit_for(head);
    } catch (const std::exception&) {
      // the default limit stands
    }
    const auto declared = parser_->content_length();
    if (declared && *declared > limit) return refuse_body();
    parser_->body_limit(limit);  // a chunked body counts down from here
    // A large upload gets time in proportion (at least 1 MB/s), the usual 15 s otherwise.
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(15 + limit / (1 << 20)));
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code error, size_t) { self->on_read(error); });
  }

  void on_read(beast::error_code error) {
    if (error == http::error::end_of_stream || error == beast::error::timeout) return close();
    if (error == http::error::body_limit) return refuse_body();
    if (error) return respond(error_response(400, "bad_request", "malformed HTTP request"), false);
    const auto& request = parser_->get();
    // RFC 9112 6.1: a Transfer-Encoding other than chunked leaves the body's length unknown, and a proxy in
    // front may frame it differently (request smuggling). Only exactly "chunked" is accepted; anything else
    // gets 400 and the connection is closed, so nothing behind it on the connection is read.
    const auto te = request.equal_range(http::field::transfer_encoding);
    const auto te_count = std::distance(te.first, te.second);
    if (te_count > 1 || (te_count == 1 && !beast::iequals(te.first->value(), "chunked")))
      return respond(error_response(400, "bad_request", "unsupported Transfer-Encoding"), false);
    HttpRequest in;
    in.method = std::string(request.method_string());
    const std::string target(request.target());
    const size_t question = target.find('?');
    in.path = target.substr(0, question);
    if (question != std::string::npos) in.query = target.substr(question + 1);
    in.authorization = std::string(request[http::field::authorization]);
    in.content_type = std::string(request[http::field::content_type]);
    in.body = std::move(parser_->get().body());  // an upload may be hundreds of MB: moved, not copied
    in.remote_address = remote_;
    in.request_id = std::string(request["X-Request-Id"]);
    in.received_ns = steady_now_ns();
    const bool keep_alive = request.keep_alive();
    if (options_.try_without_blocking) {
      std::optional<HttpResponse> quick;
      try {
        quick = options_.try_without_blocking(in);
      } catch (const std::exception& e) {
        spdlog::error("http {} {}: {}", escape_for_log(in.method), escape_for_log(in.path),
                      escape_for_log(e.what()));
        quick = error_response(500, "internal", "internal error");
      }
      if (quick) return deliver(std::move(*quick), keep_alive);
    }
    // The handler may wait on the database: it runs on a worker, never on the network threads, and its
    // answer comes back to this connection's strand (or later, for a held request).
    asio::post(workers_, [self = this->shared_from_this(), in = std::move(in), keep_alive] {
      HttpResponse out;
      try {
        out = self->handler_(in);
      } catch (const std::exception& e) {
        spdlog::error("http {} {}: {}", escape_for_log(in.method), escape_for_log(in.path),
                      escape_for_log(e.what()));
        out = error_response(500, "internal", "internal error");
      }
      self->deliver(std::move(out), keep_alive);
    });
  }

  // Sends the answer on this connection's strand (at once when already there), or registers the connection
  // as held until a deferred answer is given.
  void deliver(HttpResponse out, bool keep_alive) {
    if (!out.deferred) {
      asio::dispatch(stream_.get_executor(),
                     [self = this->shared_from_this(), keep_alive, answer = std::move(out)]() mutable {
                       self->respond(std::move(answer), keep_alive);
                     });
      return;
    }
    {
      std::lock_guard lock(held_->mutex);
      if (!held_->open) return;  // stopping: the connection just closes
      held_->held[this] = this->shared_from_this();
    }
    const std::shared_ptr<DeferredResponse> deferred = std::move(out.deferred);
    deferred->on_ready([weak = std::weak_ptr<Connection>(this->shared_from_this()), held = held_,
                        keep_alive](HttpResponse answer) {
      std::lock_guard lock(held->mutex);
      const auto connection = weak.lock();
      if (!held->open || !connection) return;
      held->held.erase(connection.get());
      asio::post(connection->stream_.get_executor(),
                 [connection, keep_alive, answer = std::move(answer)]() mutable {
                   connection->respond(std::move(answer), keep_alive);
                 });
    });
  }

  void respond(HttpResponse out, bool keep_alive) {
    response_ = {};
    response_.version(11);
    response_.result(static_cast<http::status>(out.status));
    response_.set(http::field::server, "kairo");
    response_.set(http::field::content_type, out.content_type);
    response_.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : out.headers) response_.set(name, value);
    response_.keep_alive(keep_alive);
    response_.body() = std::move(out.body);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = this->shared_from_this(), keep_alive](beast::error_code error, size_t) {
                        if (!error && keep_alive) {
                          self->read();
                        } else if (!error && self->draining_) {
                          self->close();  // our side is done; theirs may still be sending
                          beast::get_lowest_layer(self->stream_).expires_after(std::chrono::seconds(10));
                          self->drain_then_close();
                        } else {
                          self->close();
                        }
                      });
  }

  void close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  // 413, then the rest of the body read and dropped for a few seconds before closing: a client still
  // writing its upload would otherwise see a connection reset (the kernel's answer to data arriving on a
  // closed socket) instead of the answer. Memory stays one small buffer.
  void refuse_body() {
    draining_ = true;
    respond(error_response(413, "body_too_large", "request body too large"), false);
  }
  void drain_then_close() {
    beast::get_lowest_layer(stream_).socket().async_read_some(
        asio::buffer(drain_buffer_), [self = this->shared_from_this()](beast::error_code error, size_t) {
          if (error) return self->close();
          self->drain_then_close();
        });
  }

  Stream stream_;
  const HttpHandler& handler_;
  asio::thread_pool& workers_;
  std::shared_ptr<HeldConnections> held_;
  const HttpServerOptions& options_;
  std::string remote_;
  beast::flat_buffer buffer_;
  bool draining_ = false;
  std::array<char, 16 * 1024> drain_buffer_{};
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  // One I/O context per network thread, each connection on one of them (taken in turn): a thread never
  // contends for another's scheduler lock nor wakes another to run its handlers. A shared context's lock
  // and wake-ups were a futex call per event between the two threads under a fleet's requests (issue 14).
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  size_t next_context = 0;  // used by accept() only: at start, then on the acceptor's thread
  std::unique_ptr<asio::thread_pool> workers;
  std::shared_ptr<HeldConnections> held = std::make_shared<HeldConnections>();
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::ssl::context> tls;
  std::vector<std::thread> threads;

  void accept() {
    asio::io_context& context = *contexts[next_context++ % contexts.size()];
    acceptor->async_accept(asio::make_strand(context), [this](beast::error_code error, tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error) {
        beast::error_code ignored;
        const auto remote = socket.remote_endpoint(ignored).address().to_string();
        if (tls) {
          std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(
              beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *tls), handler,
              *workers, held, options, remote)
              ->start();
        } else {
          std::make_shared<Connection<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), handler,
                                                          *workers, held, options, remote)
              ->start();
        }
      }
      accept();
    });
  }
};

HttpServer::HttpServer(const HttpServerOptions& options, HttpHandler handler)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->handler = std::move(handler);
  impl_->workers = std::make_unique<asio::thread_pool>(size_t(std::max(1, options.workers)));
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    if (options.tls_cert_file.empty() || options.tls_key_file.empty())
      throw_invalid_input("TLS needs both --tls-cert and --tls-key");
    impl_->tls.emplace(make_tls_server_context(options.tls_cert_file, options.tls_key_file));
  }
  const auto udp_endpoint = resolve_udp(options.listen, "--listen");  // same HOST:PORT syntax
  const tcp::endpoint at(udp_endpoint.address(), udp_endpoint.port());
  for (int i = 0; i < std::max(1, options.threads); ++i)
    impl_->contexts.push_back(std::make_unique<asio::io_context>(1));  // 1: one thread runs it
  impl_->acceptor.emplace(*impl_->contexts.front());
  tcp::acceptor& acceptor = *impl_->acceptor;
  boost::system::error_code error;
  acceptor.open(at.protocol(), error);
  acceptor.set_option(asio::socket_base::reuse_address(true), error);
  acceptor.bind(at, error);
  if (error) throw_runtime("cannot listen on " + options.listen + ": " + error.message());
  acceptor.listen(asio::socket_base::max_listen_connections, error);
  impl_->accept();
  for (auto& context : impl_->contexts)
    impl_->threads.emplace_back([&context] {
      // Runs until the server stops, even while it has no connection.
      const auto keep = asio::make_work_guard(*context);
      context->run();
    });
}

HttpServer::~HttpServer() {
  for (auto& context : impl_->contexts) context->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->workers->join();  // handlers in progress finish; their answers go nowhere now
  std::map<const void*, std::shared_ptr<void>> held;
  {
    std::lock_guard lock(impl_->held->mutex);
    impl_->held->open = false;
    held.swap(impl_->held->held);
  }
  held.clear();  // held connections close while the I/O context they use still exists
}

void DeferredResponse::complete(HttpResponse response) {
  std::function<void(HttpResponse)> send;
  {
    std::lock_guard lock(mutex_);
    if (done_ || ready_) return;
    if (!send_) {
      ready_ = std::move(response);
      return;
    }
    done_ = true;
    send = std::move(send_);
  }
  send(std::move(response));
}

void DeferredResponse::on_ready(std::function<void(HttpResponse)> send) {
  std::optional<HttpResponse> ready;
  {
    std::lock_guard lock(mutex_);
    if (!ready_) {
      send_ = std::move(send);
      return;
    }
    done_ = true;
    ready = std::move(ready_);
    ready_.reset();
  }
  send(std::move(*ready));
}

uint16_t HttpServer::port() const {
  return impl_->acceptor->local_endpoint().port();
}
bool HttpServer::tls() const {
  return impl_->tls.has_value();
}

}  // namespace kairo::control
