// Unit tests of the materializer's persisted vocabulary and in-memory store. No database.
#include <doctest/doctest.h>

#include "seeds/materialize/materializer.hpp"

using namespace seedproxy::seeds;

TEST_CASE("every step name round-trips, unknown names are refused") {
  for (int i = 0; i <= static_cast<int>(MaterializationStep::rolled_back); ++i) {
    const auto step = static_cast<MaterializationStep>(i);
    CAPTURE(to_string(step));
    CHECK(step_from_string(to_string(step)) == step);
  }
  CHECK(to_string(MaterializationStep::backfilling) == "backfilling");
  CHECK(!step_from_string("Backfilling").has_value());
  CHECK(!step_from_string("").has_value());
}

TEST_CASE("the in-memory store keeps the last saved state") {
  InMemoryMaterializationStore store;
  CHECK(!store.load().has_value());
  MaterializationState state;
  state.step = MaterializationStep::backfilling;
  state.watermark = {"it's", "42"};
  state.rows_done = 7;
  store.save(state);
  state.rows_done = 8;
  store.save(state);
  CHECK(store.load() == state);
  CHECK(store.saves() == 2);
}
