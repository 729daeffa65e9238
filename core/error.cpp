#include "core/error.hpp"

namespace kairo {

void throw_invalid_input(const std::string& message) {
  throw Error(ErrorKind::kInvalidInput, message);
}
void throw_runtime(const std::string& message) {
  throw Error(ErrorKind::kRuntime, message);
}

}  // namespace kairo
