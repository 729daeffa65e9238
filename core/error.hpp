#pragma once
// One error type for set-up and input validation across Kairo. Hot paths return status values instead.
#include <stdexcept>
#include <string>

namespace kairo {

// What went wrong decides the process exit code of the `kairo` command.
enum class ErrorKind {
  kInvalidInput = 2,  // the caller gave something malformed: bad file, flag, pose, trace line
  kRuntime = 1,       // the environment failed us: no Vulkan device, I/O error, driver failure
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

[[noreturn]] void throw_invalid_input(const std::string& message);
[[noreturn]] void throw_runtime(const std::string& message);

}  // namespace kairo
