#pragma once
// The node's local control: a unix-domain socket (mode 0600) on which `kairo node-drain`, the pod's preStop
// hook, asks the node to drain and reads how many sessions it still runs. Authentication is the file's
// permissions plus the peer's credentials (SO_PEERCRED): only the node's own user, or root, is answered.
// The metrics listener, reachable by Prometheus and so by the network, serves metrics only.
//
// Protocol: one line in ("drain" or "status"), one JSON line out ({"active_sessions":N,"draining":B}).
#include <functional>
#include <memory>
#include <string>

namespace kairo {

class AdminSocket {
 public:
  // Binds `path` (a stale file left by a node that died is replaced; a live node's socket is not: throws
  // kairo::Error). `drain` is called for "drain"; `status` answers both commands.
  AdminSocket(const std::string& path, std::function<void()> drain, std::function<std::string()> status);
  ~AdminSocket();  // stops serving and removes the file
  const std::string& path() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The client side (kairo node-drain): sends `command`, returns the answer line. Throws kairo::Error when the
// socket cannot be reached or answers nothing within `timeout_s`.
std::string admin_request(const std::string& path, const std::string& command, double timeout_s = 5);

}  // namespace kairo
