#pragma once
// The TLS settings of every Kairo listener (the control plane's HTTPS, the node's WSS signalling): TLS 1.2 or
// later, forward secrecy and AEAD only. Includes Boost.Asio's SSL: for .cpp files, never a widely included
// header.
#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/ssl/context.hpp>
#include <string>

namespace kairo::control {

// Throws kairo::Error (invalid input) when the certificate chain or key cannot be loaded.
boost::asio::ssl::context make_tls_server_context(const std::string& cert_file, const std::string& key_file);

}  // namespace kairo::control
