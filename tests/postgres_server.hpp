#pragma once
// The tests' PostgreSQL: the project's one throwaway-server helper (devdb/dev_database.hpp), also behind
// `kairo devdb` and the demo.
#include "core/free_port.hpp"
#include "devdb/dev_database.hpp"

namespace kairo::test {

using PostgresServer = DevDatabase;
using kairo::free_tcp_port;

}  // namespace kairo::test
