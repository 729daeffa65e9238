#pragma once
// "HOST:PORT" and "[IPv6]:PORT" to a UDP endpoint; numeric addresses and "localhost" only (no DNS lookups on
// the hot path or in tests). Private to streaming/ and the kairo command: includes Boost.Asio.
#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/ip/udp.hpp>
#include <string>

namespace kairo {

boost::asio::ip::udp::endpoint resolve_udp(const std::string& host_port, const char* what);

}  // namespace kairo
