#pragma once
// The fixture of the end-to-end tests: one real PostgreSQL per test binary, a fresh schema and control plane
// per test, and the reference client's options for a small, quick session.
#include <gtest/gtest.h>

#include <memory>

#include "client/reference_client.hpp"
#include "control-plane/database.hpp"
#include "tests/fleet_harness.hpp"
#include "tests/postgres_server.hpp"

namespace kairo {

using test::ControlPlane;

class NodeEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pg = new test::PostgresServer(); }
  static void TearDownTestSuite() {
    delete pg;
    pg = nullptr;
  }
  void SetUp() override {
    pg->reset();  // a fresh database per test: nothing the previous test created
    control = std::make_unique<ControlPlane>(pg->url());
  }
  ClientOptions client_options(double duration) {
    return ClientOptions{.control_url = control->url(),
                         .user = "admin",
                         .password = "admin-password",
                         .scene = "vr-room",
                         .eye_width = 256,
                         .eye_height = 256,
                         .fps = 30,
                         .duration_s = duration};
  }
  static inline test::PostgresServer* pg = nullptr;
  std::unique_ptr<ControlPlane> control;
};

}  // namespace kairo
