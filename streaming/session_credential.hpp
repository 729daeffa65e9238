#pragma once
// The one-session credential a browser presents on the node's signalling socket. Derived from the session's
// key (keyed BLAKE2b over a fixed label), so the control plane hands the browser a credential for this one
// session without handing it the datagram key, and the node checks it without another round trip: a
// credential for one session never opens another.
#include <string>
#include <string_view>

#include "streaming/datagram_crypto.hpp"

namespace kairo {

// 64 lowercase hex digits.
std::string signalling_credential(const SessionKey& key);
// Constant time; false for any malformed input.
bool signalling_credential_matches(const SessionKey& key, std::string_view presented);

}  // namespace kairo
