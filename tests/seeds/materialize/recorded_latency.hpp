// Transactions recorded by hand into the clients' latency histogram, for the guard's and the
// history's unit tests.
#pragma once

#include <chrono>

#include "seeds/materialize/application_latency.hpp"

namespace seedproxy::seeds::testing {

inline void record(ApplicationLatency& latency, std::chrono::nanoseconds each, int times) {
  for (int i = 0; i < times; ++i) latency.record(each);
}

}  // namespace seedproxy::seeds::testing
