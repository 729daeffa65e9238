#include "node/signalling_server.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <spdlog/spdlog.h>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "control-plane/tls_context.hpp"
#include "core/error.hpp"
#include "streaming/session_credential.hpp"
#include "streaming/udp_address.hpp"

namespace kairo {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {
constexpr size_t kMaxMessageBytes = 64 * 1024;  // an SDP answer is a few KiB
constexpr size_t kMaxQueuedMessages = 256;      // to one browser; beyond it the socket is too slow: closed
constexpr auto kHelloDeadline = std::chrono::seconds(5);

struct Entry {
  SessionKey key;
  std::weak_ptr<WebRtcTransport> transport;
};
}  // namespace

struct SignallingServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::optional<asio::ssl::context> tls;  // set: WSS
  std::thread thread;
  mutable std::mutex mutex;
  std::map<std::string, Entry> sessions;  // guarded by mutex
  std::atomic<uint64_t> connections{0}, authenticated{0}, refused_credential{0}, refused_message{0};

  std::optional<Entry> find(const std::string& id) {
    std::lock_guard lock(mutex);
    const auto it = sessions.find(id);
    if (it == sessions.end()) return std::nullopt;
    return it->second;
  }

  void accept();
};

namespace {

// One browser's socket, over TCP (loopback) or TLS (WSS). Writes are queued on the io thread, one in flight.
template <typename Next>
class Connection final : public SignallingChannel, public std::enable_shared_from_this<Connection<Next>> {
  using std::enable_shared_from_this<Connection<Next>>::shared_from_this;
  static constexpr bool kTls = std::is_same_v<Next, beast::ssl_stream<beast::tcp_stream>>;

 public:
  // `server` outlives every connection: they run on its io thread, which it joins before it goes.
  template <typename... StreamArgs>
  Connection(SignallingServer::Impl* server, StreamArgs&&... stream)
      : ws_(std::forward<StreamArgs>(stream)...), hello_timer_(ws_.get_executor()), server_(server) {}

  ~Connection() override {
    if (auto transport = transport_.lock()) transport->detach(this);
  }

  void start() {
    ws_.read_message_max(kMaxMessageBytes);
    websocket::stream_base::timeout timeouts =
        websocket::stream_base::timeout::suggested(beast::role_type::server);
    timeouts.handshake_timeout = std::chrono::seconds(5);
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& r) { r.set(http::field::server, "kairo-node"); }));
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(5));
    request_.body_limit(0);
    request_.header_limit(8 * 1024);
    if constexpr (kTls) {
      ws_.next_layer().async_handshake(asio::ssl::stream_base::server,
                                       [self = shared_from_this()](beast::error_code e) {
                                         if (!e) self->read_request();
                                       });
    } else {
      read_request();
    }
  }

  // From any thread (the transport's GStreamer threads): queued for the io thread.
  void send(std::string text) override {
    asio::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text)]() mutable {
      self->queue(std::move(text));
    });
  }

 private:
  void read_request() {
    http::async_read(ws_.next_layer(), buffer_, request_,
                     [self = shared_from_this()](beast::error_code e, size_t) { self->on_request(e); });
  }

  void on_request(beast::error_code e) {
    if (e) return;
    beast::get_lowest_layer(ws_).expires_never();
    const auto& request = request_.get();
    if (!websocket::is_upgrade(request) || request.target() != "/signal") {
      // Not a WebSocket upgrade to /signal: a plain 404 and the socket closes.
      auto response = std::make_shared<http::response<http::string_body>>(http::status::not_found, 11);
      response->set(http::field::content_type, "text/plain");
      response->body() = "not found\n";
      response->prepare_payload();
      http::async_write(ws_.next_layer(), *response,
                        [self = shared_from_this(), response](beast::error_code, size_t) {});
      return;
    }
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code e2) {
      if (e2) return;
      self->hello_timer_.expires_after(kHelloDeadline);
      self->hello_timer_.async_wait([self](beast::error_code timer_error) {
        if (!timer_error && !self->attached_) self->refuse("timeout", "no hello within 5 s");
      });
      self->read();
    });
  }

  void read() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code e, size_t) { self->on_read(e); });
  }

  void on_read(beast::error_code e) {
    if (e) {
      // message_too_big: Beast has closed the socket with code 1009 already.
      if (e == websocket::error::message_too_big) ++server_->refused_message;
      hello_timer_.cancel();
      return;
    }
    const std::string text = beast::buffers_to_string(in_.data());
    in_.consume(in_.size());
    const auto message = nlohmann::json::parse(text, nullptr, false);
    if (!ws_.got_text() || !message.is_object() || !message.contains("type") || !message["type"].is_string())
      return refuse("malformed", "a signalling message is a JSON object with a \"type\"");
    const std::string& type = message["type"].get_ref<const std::string&>();
    if (!attached_) {
      if (type != "hello") return refuse("unauthorised", "say hello first");
      return hello(message);
    }
    const auto transport = transport_.lock();
    if (!transport) return refuse("ended", "the session has ended");
    const auto text_field = [&](const char* key) -> std::optional<std::string_view> {
      if (!message.contains(key) || !message[key].is_string()) return std::nullopt;
      return std::string_view(message[key].get_ref<const std::string&>());
    };
    std::optional<std::string> error;
    if (type == "answer") {
      const auto sdp = text_field("sdp");
      error = sdp ? transport->remote_answer(*sdp) : std::optional<std::string>("an answer needs \"sdp\"");
    } else if (type == "ice") {
      const auto candidate = text_field("candidate");
      const auto& index = message.contains("sdpMLineIndex") ? message["sdpMLineIndex"] : nlohmann::json();
      if (!candidate || !index.is_number_unsigned())
        error = "a candidate needs \"candidate\" and \"sdpMLineIndex\"";
      else
        error = transport->remote_candidate(unsigned(std::min<uint64_t>(index.get<uint64_t>(), 1000)),
                                            *candidate);
    } else {
      error = "unknown message type";
    }
    if (error) return refuse("bad_signalling", *error);
    read();
  }

  // hello: {"type":"hello","session_id":...,"credential":...,"pose":{"p":[x,y,z],"q":[x,y,z,w]}}
  void hello(const nlohmann::json& message) {
    const auto string_field = [&](const char* key) -> std::string {
      return message.contains(key) && message[key].is_string() ? message[key].get<std::string>() : "";
    };
    const std::string id = string_field("session_id"), credential = string_field("credential");
    const auto entry = server_->find(id);
    // One answer for an unknown session and a wrong credential: the socket is no oracle for session ids.
    // A session the node has not picked up yet (it polls) is "not_ready": the page retries.
    if (!entry) return refuse("not_ready", "no such session on this node (yet)");
    if (!signalling_credential_matches(entry->key, credential)) {
      ++server_->refused_credential;
      return refuse("unauthorised", "this credential does not open this session");
    }
    auto transport = entry->transport.lock();
    if (!transport) return refuse("not_ready", "no such session on this node (yet)");
    wire::PoseMessage pose;
    const auto& p = message.contains("pose") ? message["pose"] : nlohmann::json();
    bool pose_ok = p.is_object() && p.contains("p") && p.contains("q") && p["p"].is_array() &&
                   p["q"].is_array() && p["p"].size() == 3 && p["q"].size() == 4;
    for (size_t i = 0; pose_ok && i < 7; ++i) {
      const auto& v = i < 3 ? p["p"][i] : p["q"][i - 3];
      pose_ok = v.is_number();
      if (pose_ok) (i < 3 ? pose.position[i] : pose.orientation[i - 3]) = v.get<float>();
    }
    // Checked as any pose from the network is: through the wire format's reader.
    uint8_t bytes[wire::PoseMessage::kSize];
    wire::write(pose, bytes);
    const auto checked = pose_ok ? wire::read_pose(bytes) : std::nullopt;
    if (!checked)
      return refuse("malformed", "hello needs a valid head pose (p: 3 numbers, q: a unit quaternion)");
    if (!transport->attach(shared_from_this(), *checked))
      return refuse("busy", "another browser is connected to this session");
    transport_ = transport;
    attached_ = true;
    ++server_->authenticated;
    hello_timer_.cancel();
    queue(R"({"type":"welcome"})");
    read();
  }

  void refuse(const char* code, const std::string& why) {
    if (std::string_view(code) != "unauthorised") ++server_->refused_message;
    queue(nlohmann::json{{"type", "error"}, {"code", code}, {"message", why}}.dump());
    closing_ = true;
  }

  void queue(std::string text) {
    if (out_.size() >= kMaxQueuedMessages) {
      beast::get_lowest_layer(ws_).close();  // a browser that does not read: let it go
      return;
    }
    out_.push_back(std::move(text));
    if (out_.size() == 1) write_next();
  }

  void write_next() {
    ws_.text(true);
    ws_.async_write(asio::buffer(out_.front()), [self = shared_from_this()](beast::error_code e, size_t) {
      self->out_.pop_front();
      if (e) return;
      if (!self->out_.empty()) return self->write_next();
      if (self->closing_)
        self->ws_.async_close(websocket::close_code::policy_error, [self](beast::error_code) {});
    });
  }

  websocket::stream<Next> ws_;
  beast::flat_buffer buffer_, in_;
  http::request_parser<http::empty_body> request_;
  asio::steady_timer hello_timer_;
  SignallingServer::Impl* server_;
  // Weak: the transport holds this channel while it is attached; the session's end frees the transport.
  std::weak_ptr<WebRtcTransport> transport_;
  bool attached_ = false;
  std::deque<std::string> out_;
  bool closing_ = false;
};

}  // namespace

void SignallingServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code e, tcp::socket socket) {
    if (e == asio::error::operation_aborted) return;
    if (!e) {
      ++connections;
      if (tls)
        std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(this, std::move(socket), *tls)
            ->start();
      else
        std::make_shared<Connection<beast::tcp_stream>>(this, std::move(socket))->start();
    }
    accept();
  });
}

SignallingServer::SignallingServer(const SignallingOptions& options) : impl_(std::make_unique<Impl>()) {
  const std::string& listen = options.listen;
  // The same HOST:PORT rule as every other listener (numeric or localhost).
  const auto udp = resolve_udp(listen, "--listen-signalling");
  const auto ip = udp.address();
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty())
    impl_->tls.emplace(control::make_tls_server_context(options.tls_cert_file, options.tls_key_file));
  else if (!ip.is_loopback())
    throw_invalid_input("--listen-signalling " + listen +
                        ": beyond loopback browsers need WSS (WebXR needs a secure context): give "
                        "--signalling-tls-cert and --signalling-tls-key, or a TLS proxy in front");
  const tcp::endpoint endpoint(ip, udp.port());
  beast::error_code e;
  impl_->acceptor.open(endpoint.protocol(), e);
  if (!e) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), e);
  if (!e) impl_->acceptor.bind(endpoint, e);
  if (!e) impl_->acceptor.listen(asio::socket_base::max_listen_connections, e);
  if (e) throw_runtime("signalling socket " + listen + ": " + e.message());
  impl_->accept();
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

SignallingServer::~SignallingServer() {
  impl_->io.stop();
  impl_->thread.join();
}

uint16_t SignallingServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}
bool SignallingServer::tls() const {
  return impl_->tls.has_value();
}

void SignallingServer::add(const std::string& session_id, const SessionKey& key,
                           std::weak_ptr<WebRtcTransport> transport) {
  std::lock_guard lock(impl_->mutex);
  impl_->sessions[session_id] = Entry{key, std::move(transport)};
}

void SignallingServer::remove(const std::string& session_id) {
  std::lock_guard lock(impl_->mutex);
  impl_->sessions.erase(session_id);
}

SignallingCounters SignallingServer::counters() const {
  return {impl_->connections.load(), impl_->authenticated.load(), impl_->refused_credential.load(),
          impl_->refused_message.load()};
}

}  // namespace kairo
