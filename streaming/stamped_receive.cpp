#include "streaming/stamped_receive.hpp"

#include <time.h>

#include <array>
#include <cstring>

#include "core/clock.hpp"

namespace kairo {

bool enable_receive_timestamps(int fd) {
  const int on = 1;
  return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == 0;
}

StampedDatagram receive_stamped(int fd, std::span<uint8_t> buffer, sockaddr_storage* from) {
  iovec vector{buffer.data(), buffer.size()};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(timespec))> control{};
  msghdr message{};
  message.msg_name = from;
  message.msg_namelen = from != nullptr ? sizeof(sockaddr_storage) : 0;
  message.msg_iov = &vector;
  message.msg_iovlen = 1;
  message.msg_control = control.data();
  message.msg_controllen = control.size();
  const ssize_t n = ::recvmsg(fd, &message, MSG_DONTWAIT);
  const int64_t now = steady_now_ns();
  if (n < 0) return {};
  StampedDatagram out{.size = size_t(n), .arrival_ns = now, .from_size = message.msg_namelen, .ok = true};
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    // The kernel stamps in the real-time clock: its age now, read against the same clock, moves the
    // steady reading back (the two clocks do not drift apart within the microseconds that matter).
    timespec stamp{};
    std::memcpy(&stamp, CMSG_DATA(c), sizeof(stamp));
    timespec real{};
    clock_gettime(CLOCK_REALTIME, &real);
    const int64_t age_ns = (int64_t(real.tv_sec) - int64_t(stamp.tv_sec)) * 1'000'000'000 +
                           (int64_t(real.tv_nsec) - int64_t(stamp.tv_nsec));
    if (age_ns > 0 && age_ns < 1'000'000'000) out.arrival_ns = now - age_ns;
  }
  return out;
}

}  // namespace kairo
