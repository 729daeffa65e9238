#include "node/admin_socket.hpp"

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <cstring>
#include <filesystem>
#include <thread>

#include "core/error.hpp"

namespace kairo {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

// Only the node's own user (or root) may drive it: another user on the host who reached the file anyway
// (a looser umask, a shared directory) is refused.
bool peer_allowed(int fd) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return false;
  return credentials.uid == 0 || credentials.uid == ::geteuid();
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(local::socket socket, const std::function<void()>& drain,
             const std::function<std::string()>& status)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), drain_(drain), status_(status) {}

  void start() {
    if (!peer_allowed(socket_.native_handle())) {
      spdlog::warn("admin socket: refused a process of another user");
      return;
    }
    timer_.expires_after(std::chrono::seconds(2));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code error) {
      if (!error) self->socket_.close();
    });
    asio::async_read_until(
        socket_, asio::dynamic_buffer(line_, 64), '\n',
        [self = shared_from_this()](boost::system::error_code error, size_t n) { self->on_line(error, n); });
  }

 private:
  void on_line(boost::system::error_code error, size_t n) {
    timer_.cancel();
    if (error) return;
    const std::string command = line_.substr(0, n - 1);
    if (command == "drain") {
      drain_();
      answer_ = status_() + "\n";
    } else if (command == "status") {
      answer_ = status_() + "\n";
    } else {
      answer_ = R"({"error":"unknown command: drain or status"})"
                "\n";
    }
    asio::async_write(socket_, asio::buffer(answer_), [self = shared_from_this()](auto, size_t) {});
  }

  local::socket socket_;
  asio::steady_timer timer_;
  const std::function<void()>& drain_;
  const std::function<std::string()>& status_;
  std::string line_, answer_;
};

}  // namespace

struct AdminSocket::Impl {
  std::string path;
  std::function<void()> drain;
  std::function<std::string()> status;
  asio::io_context io;
  local::acceptor acceptor{io};
  std::thread thread;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code error, local::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error) std::make_shared<Connection>(std::move(socket), drain, status)->start();
      accept();
    });
  }
};

AdminSocket::AdminSocket(const std::string& path, std::function<void()> drain,
                         std::function<std::string()> status)
    : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.path = path;
  d.drain = std::move(drain);
  d.status = std::move(status);
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path))
    throw_invalid_input("the admin socket path must be 1 to " +
                        std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " characters: " + path);
  std::error_code ignored;
  if (std::filesystem::exists(path, ignored)) {
    // A live node answers on it: refuse to steal its socket. Nobody answering: a stale file, replaced.
    local::socket probe(d.io);
    boost::system::error_code error;
    probe.connect(local::endpoint(path), error);
    if (!error) throw_runtime("another node serves the admin socket " + path);
    std::filesystem::remove(path, ignored);
  }
  // The file is created with the process umask tightened, so it is never reachable by others, even briefly.
  const mode_t previous = ::umask(0177);
  boost::system::error_code error;
  d.acceptor.open(local(), error);
  if (!error) d.acceptor.bind(local::endpoint(path), error);
  ::umask(previous);
  if (!error) d.acceptor.listen(8, error);
  if (error) throw_runtime("cannot serve the admin socket " + path + ": " + error.message());
  d.accept();
  d.thread = std::thread([&d] { d.io.run(); });
}

AdminSocket::~AdminSocket() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  std::error_code ignored;
  std::filesystem::remove(impl_->path, ignored);
}

const std::string& AdminSocket::path() const {
  return impl_->path;
}

std::string admin_request(const std::string& path, const std::string& command, double timeout_s) {
  // Plain POSIX calls: a blocking Asio read would wait forever for a node that accepted and hung.
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    throw_invalid_input("admin socket path too long: " + path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_runtime("cannot create a unix socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
    throw_runtime("cannot reach the node's admin socket " + path + ": " + std::strerror(errno));
  const std::string request = command + "\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size()))
    throw_runtime("cannot write to the node's admin socket " + path);
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  char buffer[512];
  while (line.find('\n') == std::string::npos && line.size() < 4096) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    if (left.count() <= 0 || ::poll(&p, 1, int(left.count())) <= 0) break;
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    line.append(buffer, size_t(n));
  }
  if (line.find('\n') == std::string::npos)
    throw_runtime("the node's admin socket " + path + " did not answer (another user's node?)");
  return line.substr(0, line.find('\n'));
}

}  // namespace kairo
