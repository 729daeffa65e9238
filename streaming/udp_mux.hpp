#pragma once
// One UDP socket for every session of a node: a receive thread reads each datagram's clear header and hands
// it to the StreamServer registered for its session id (StreamServer::deliver), which authenticates it.
// Sessions send through the same socket. Datagrams for unknown sessions are counted and dropped.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace kairo {

class StreamServer;

struct UdpMuxStats {
  uint64_t datagrams = 0, unknown_session = 0, malformed = 0;
};

class UdpMux {
 public:
  explicit UdpMux(const std::string& listen);  // HOST:PORT; throws kairo::Error when it cannot bind
  ~UdpMux();
  uint16_t port() const;
  int socket_fd() const;  // for StreamServerConfig::shared_socket_fd
  // False when the id is already taken (the caller fails the new session rather than mix two streams).
  bool add(uint32_t session_id, StreamServer* server);
  // After remove() returns, no datagram is being or will be delivered to that server.
  void remove(uint32_t session_id);
  UdpMuxStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kairo
