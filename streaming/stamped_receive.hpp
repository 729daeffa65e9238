#pragma once
// Datagrams with the time the kernel received them (SO_TIMESTAMPNS), in the steady clock: what a receiver
// that measures the network needs rather than the time its thread got round to each datagram. On a busy
// machine a thread wakes late and works through a burst one datagram at a time; stamping them then spreads a
// packet train by the receiver's own CPU (the link capacity read ~40 Mbit/s through a relay that carries
// 2 Gbit/s, and the relay delayed each datagram from when it happened to read it).
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>

namespace kairo {

// Asks the kernel to stamp every datagram the socket receives. False when it refuses (never seen on Linux):
// receive_stamped() then stamps on reception.
bool enable_receive_timestamps(int fd);

struct StampedDatagram {
  size_t size = 0;          // bytes received (0 with ok false)
  int64_t arrival_ns = 0;   // steady clock; never later than the call
  socklen_t from_size = 0;  // bytes of the sender's address written to `from`
  bool ok = false;          // false: nothing waiting (EAGAIN), or an error such as ICMP port unreachable
};

// One datagram without blocking. `from` (may be null) receives the sender's address.
StampedDatagram receive_stamped(int fd, std::span<uint8_t> buffer, sockaddr_storage* from = nullptr);

}  // namespace kairo
