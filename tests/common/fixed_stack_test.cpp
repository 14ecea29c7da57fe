// run_on_fixed_stack: the work runs to completion on a stack of the size asked for, far beyond
// the caller's, and what it throws reaches the caller.
#include "common/fixed_stack.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

namespace {

// Recursion that really uses its frames (the volatile array cannot be optimised away).
int descend(int levels) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(levels);
  return levels == 0 ? frame[0] : descend(levels - 1) + 1;
}

}  // namespace

TEST_CASE("work needing 64 MiB of stack runs on a 96 MiB stack") {
  int reached = 0;
  CHECK(seedproxy::run_on_fixed_stack(96u << 20, [&] { reached = descend(64 * 1024); }));
  CHECK(reached == 64 * 1024);
}

TEST_CASE("an exception thrown by the work is rethrown to the caller") {
  CHECK_THROWS_AS(
      (void)seedproxy::run_on_fixed_stack(1u << 20, [] { throw std::runtime_error("boom"); }),
      std::runtime_error);
}
