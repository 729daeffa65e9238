#pragma once
// The SQL migrations in control-plane/migrations/NNN_*.sql, in order, embedded at build time.
#include <string>
#include <vector>

namespace kairo::control {
const std::vector<std::string>& migrations();
}
