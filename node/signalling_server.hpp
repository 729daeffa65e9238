#pragma once
// The node's WebSocket for browser sessions' signalling (docs/web-client.md): the browser connects to
// ws://HOST:PORT/signal, says hello with its session id, the one-session credential the control plane gave
// it (streaming/session_credential.hpp; never in the URL) and its first head pose; then receives the offer
// and ICE candidates and sends its answer and candidates. A wrong or other session's credential, a message
// over 64 KiB, malformed JSON or garbage SDP gets an error message and the socket is closed; other sessions
// never notice. One io thread; the sessions' transports are looked up by id under one short lock.
#include <cstdint>
#include <memory>
#include <string>

#include "node/webrtc_transport.hpp"
#include "streaming/datagram_crypto.hpp"

namespace kairo {

struct SignallingCounters {
  uint64_t connections = 0, authenticated = 0, refused_credential = 0, refused_message = 0;
};

struct SignallingOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT (port 0: any)
  // Both set: WSS (TLS 1.2+), on any address. Neither: plain WebSocket, loopback only (a browser elsewhere
  // needs a secure context; a TLS-terminating proxy in front is the other way, docs/web-client.md).
  std::string tls_cert_file{}, tls_key_file{};
};

class SignallingServer {
 public:
  explicit SignallingServer(const SignallingOptions& options);  // binds; throws kairo::Error
  ~SignallingServer();
  uint16_t port() const;
  bool tls() const;
  // The session answers on the socket from now until remove(). The transport is held weakly.
  void add(const std::string& session_id, const SessionKey& key, std::weak_ptr<WebRtcTransport> transport);
  void remove(const std::string& session_id);
  SignallingCounters counters() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo
