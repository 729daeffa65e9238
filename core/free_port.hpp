#pragma once
// A loopback port that was free a moment ago (bind to port 0, read it back, close): only for a program that
// takes its port as configuration and cannot report one the kernel chose (PostgreSQL, Prometheus). Another
// process may take the port before that program binds it, so its caller retries the start on another port
// when the bind fails (DevDatabase, the end-to-end tests' Prometheus). Kairo's own listeners bind port 0 and
// say which port they got (a method, or their start-up log line), which cannot race.
namespace kairo {

int free_tcp_port();

}  // namespace kairo
