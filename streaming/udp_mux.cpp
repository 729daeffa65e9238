#include "streaming/udp_mux.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "core/error.hpp"
#include "streaming/stream_server.hpp"
#include "streaming/udp_address.hpp"
#include "streaming/wire.hpp"

namespace kairo {

struct UdpMux::Impl {
  int fd = -1;
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  // Read-mostly: the receive thread takes it shared per datagram; only session start and end write.
  mutable std::shared_mutex sessions_mutex;
  std::unordered_map<uint32_t, StreamServer*> sessions;
  std::atomic<uint64_t> datagrams{0}, unknown_session{0}, malformed{0};
  std::thread thread;

  void receive_loop() {
    std::array<uint8_t, wire::kMaxDatagram> buffer{};
    sockaddr_storage from{};
    while (!stopping) {
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (::poll(&p, 1, 100) <= 0) continue;  // wakes every 100 ms to notice stop()
      for (int burst = 0; burst < 64; ++burst) {
        socklen_t from_length = sizeof(from);
        const ssize_t n = ::recvfrom(fd, buffer.data(), buffer.size(), MSG_DONTWAIT,
                                     reinterpret_cast<sockaddr*>(&from), &from_length);
        if (n < 0) break;
        ++datagrams;
        const auto header = wire::read_header(std::span(buffer.data(), size_t(n)));
        if (!header) {
          ++malformed;
          continue;
        }
        std::shared_lock lock(sessions_mutex);
        const auto it = sessions.find(header->session_id);
        if (it == sessions.end()) {
          ++unknown_session;
          continue;
        }
        it->second->deliver(std::span(buffer.data(), size_t(n)), &from, from_length);
      }
    }
  }
};

UdpMux::UdpMux(const std::string& listen) : impl_(std::make_unique<Impl>()) {
  const auto endpoint = resolve_udp(listen, "UDP listen address");
  impl_->fd = ::socket(endpoint.protocol().family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (impl_->fd < 0) throw_runtime(std::string("cannot open a UDP socket: ") + std::strerror(errno));
  const int buffer_bytes = 4 << 20;
  ::setsockopt(impl_->fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
  ::setsockopt(impl_->fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  if (::bind(impl_->fd, endpoint.data(), socklen_t(endpoint.size())) != 0) {
    const std::string reason = std::strerror(errno);
    ::close(impl_->fd);
    throw_runtime("cannot bind UDP " + listen + ": " + reason);
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(impl_->fd, reinterpret_cast<sockaddr*>(&bound), &length);
  impl_->port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl_->thread = std::thread([this] { impl_->receive_loop(); });
}

UdpMux::~UdpMux() {
  impl_->stopping = true;
  impl_->thread.join();
  ::close(impl_->fd);
}

uint16_t UdpMux::port() const {
  return impl_->port;
}
int UdpMux::socket_fd() const {
  return impl_->fd;
}

bool UdpMux::add(uint32_t session_id, StreamServer* server) {
  std::unique_lock lock(impl_->sessions_mutex);
  return impl_->sessions.emplace(session_id, server).second;
}

void UdpMux::remove(uint32_t session_id) {
  std::unique_lock lock(impl_->sessions_mutex);  // waits out a deliver() in progress
  impl_->sessions.erase(session_id);
}

UdpMuxStats UdpMux::stats() const {
  return {impl_->datagrams.load(), impl_->unknown_session.load(), impl_->malformed.load()};
}

}  // namespace kairo
