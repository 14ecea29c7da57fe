// Unit tests of the text phases, policies, requests and steps have where the registry stores them
// and operators read them: every value reads back as itself, unknown text as documented.
#include <doctest/doctest.h>

#include "config/config.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/materialize/materialization_registry.hpp"
#include "seeds/materialize/progress.hpp"
#include "seeds/registry/registry.hpp"

using seedproxy::config::MaterializePolicy;
using seedproxy::rewriter::Phase;
using namespace seedproxy::seeds;

TEST_CASE("phases read back as themselves; an unknown one reads as virtual") {
  for (const Phase phase : seedproxy::rewriter::all_phases) {
    CHECK(seedproxy::rewriter::phase_from_string(seedproxy::rewriter::to_string(phase)) == phase);
    CHECK(registry_phase(seedproxy::rewriter::to_string(phase)) == phase);
  }
  CHECK(seedproxy::rewriter::to_string(Phase::rolled_back) == "rolled_back");
  CHECK_FALSE(seedproxy::rewriter::phase_from_string("frozen"));
  CHECK(registry_phase("frozen") == Phase::virtual_);
}

TEST_CASE("policies read back as themselves; an unknown one reads as manual") {
  for (const auto policy :
       {MaterializePolicy::threshold, MaterializePolicy::never, MaterializePolicy::manual})
    CHECK(registry_policy(seedproxy::config::to_string(policy)) == policy);
  CHECK_FALSE(seedproxy::config::policy_from_string("sometimes"));
  CHECK(registry_policy("sometimes") == MaterializePolicy::manual);
}

TEST_CASE("requests: none is the registry's NULL (empty text)") {
  for (const auto request : {SeedRequest::none, SeedRequest::materialize, SeedRequest::rollback})
    CHECK(request_from_string(to_string(request)) == request);
  CHECK(to_string(SeedRequest::none).empty());
  CHECK_FALSE(request_from_string("pause"));
}

TEST_CASE("a requested rollback shows as such until an engine begins it") {
  MaterializationStatus status;
  status.step = MaterializationStep::backfilling;
  CHECK(step_text(status) == "backfilling");
  CHECK(status.at_step(MaterializationStep::backfilling));
  status.rollback_requested = true;
  CHECK(step_text(status) == "rollback requested");
  CHECK_FALSE(status.at_step(MaterializationStep::backfilling));
  CHECK(step_from_string("switching_to_column") == MaterializationStep::switching_to_column);
  CHECK_FALSE(step_from_string("rollback requested"));
}

TEST_CASE("a definition names its policy, and the threshold only for policy threshold") {
  CHECK(definition_text("int", "a + 1", MaterializePolicy::threshold, 100, 60) ==
        "type int, expression a + 1, materialize threshold (100 reads in 60 s)");
  CHECK(definition_text("int", "a + 1", MaterializePolicy::manual, 100, 60) ==
        "type int, expression a + 1, materialize manual");
}
