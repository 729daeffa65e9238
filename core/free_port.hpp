#pragma once
// A loopback port that was free a moment ago (bind to port 0, read it back, close): for a process that must
// be told its port before it starts (PostgreSQL, a spawned `kairo node`). In-process servers bind port 0 and
// read their port instead, which cannot race.
namespace kairo {

int free_tcp_port();
int free_udp_port();

}  // namespace kairo
