#pragma once
// An error the API returns as {"error":{"code":...,"message":...}} with its HTTP status.
#include <stdexcept>
#include <string>

namespace kairo::control {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

}  // namespace kairo::control
