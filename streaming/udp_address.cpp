#include "streaming/udp_address.hpp"

#include <charconv>

#include "core/error.hpp"

namespace kairo {

boost::asio::ip::udp::endpoint resolve_udp(const std::string& host_port, const char* what) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw_invalid_input(std::string(what) + " must look like HOST:PORT, got \"" + host_port + "\"");
  std::string host = host_port.substr(0, colon);
  const std::string port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    throw_invalid_input(std::string(what) + ": bad port \"" + port_text + "\"");
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code error;
  const auto address = boost::asio::ip::make_address(host, error);
  if (error) throw_invalid_input(std::string(what) + ": \"" + host + "\" is not a numeric IP address");
  return {address, static_cast<uint16_t>(port)};
}

}  // namespace kairo
