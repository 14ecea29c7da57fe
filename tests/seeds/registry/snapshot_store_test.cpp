// Unit tests of the snapshot store: which databases are watched, refresh tickets answered by a
// published snapshot, the watcher woken once per wanted refresh, and what readers see. No database.
#include "seeds/registry/snapshot_store.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using seedproxy::seeds::DatabaseSnapshot;
using seedproxy::seeds::SeedStatus;
using seedproxy::seeds::SnapshotStore;

namespace {

struct Store {
  int wakes = 0;
  SnapshotStore store{[this] { ++wakes; }};
};

std::shared_ptr<DatabaseSnapshot> snapshot_with_seed(const std::string& database) {
  auto snapshot = std::make_shared<DatabaseSnapshot>();
  snapshot->registry = true;
  SeedStatus status;
  status.database = database;
  status.schema = "public";
  status.table = "orders";
  status.attribute = "total";
  status.phase = seedproxy::rewriter::Phase::materializing;
  snapshot->statuses.push_back(status);
  return snapshot;
}

}  // namespace

TEST_CASE("the admin console's database and templates are never watched") {
  Store s;
  for (const char* name : {"", "seedproxy", "template0", "template1"}) {
    CHECK(s.store.watch(name) == 0);
    CHECK(s.store.find(name) == nullptr);
  }
  CHECK(s.wakes == 0);
}

TEST_CASE("a first session's ticket is answered by the first published snapshot") {
  Store s;
  const auto ticket = s.store.watch("shop");
  REQUIRE(ticket == 1);
  CHECK(s.wakes >= 1);
  CHECK_FALSE(s.store.refreshed("shop", ticket));
  CHECK(s.store.current("shop") == nullptr);

  SnapshotStore::Watched* shop = s.store.find("shop");
  REQUIRE(shop != nullptr);
  const auto answered = shop->requested.load();
  shop->publish(snapshot_with_seed("shop"));
  shop->answer(answered, {});
  CHECK(s.store.refreshed("shop", ticket));
  REQUIRE(s.store.current("shop") != nullptr);
  // Published: the next session does not wait.
  CHECK(s.store.watch("shop") == 0);
  CHECK(s.store.seed_statuses().size() == 1);
  CHECK(s.store.databases_with_registry() == std::vector<std::string>{"shop"});
}

TEST_CASE("a refresh asked for after a reload began waits for the next one") {
  Store s;
  SnapshotStore::Watched* shop = s.store.find_or_add("shop");
  shop->refresh_wanted = false;
  const int wakes = s.wakes;
  const auto before = s.store.request_refresh("shop");
  const auto answered = shop->requested.load();  // a reload starts here
  const auto after = s.store.request_refresh("shop");
  CHECK(s.wakes == wakes + 1);  // woken once while the refresh is still wanted
  shop->answer(answered, {});
  CHECK(s.store.refreshed("shop", before));
  CHECK_FALSE(s.store.refreshed("shop", after));
  // A database nobody watches has nothing to wait for.
  CHECK(s.store.request_refresh("other") == 0);
  CHECK(s.store.refreshed("other", 7));
}

TEST_CASE("a failed reload answers its tickets and is reported until one succeeds") {
  Store s;
  const std::vector<std::string> configured{"shop"};
  SnapshotStore::Watched* shop = s.store.find_or_add("shop");
  const auto ticket = s.store.request_refresh("shop");
  shop->answer(shop->requested.load(), "connection refused");
  CHECK(s.store.refreshed("shop", ticket));
  CHECK(s.store.read_failure(configured) == "database \"shop\": connection refused");
  shop->answer(shop->requested.load(), {});
  CHECK(s.store.read_failure(configured).empty());
}

TEST_CASE("a database a client merely named never counts as a failure for health") {
  Store s;
  SnapshotStore::Watched* typo = s.store.find_or_add("no_such_db");
  typo->answer(typo->requested.load(), "database \"no_such_db\" does not exist");
  CHECK(s.store.read_failure({}).empty());
  // Configured, or read before with a registry: its failure is the proxy's problem.
  const std::vector<std::string> configured{"no_such_db"};
  CHECK_FALSE(s.store.read_failure(configured).empty());
  SnapshotStore::Watched* bank = s.store.find_or_add("bank");
  auto snapshot = std::make_shared<DatabaseSnapshot>();
  snapshot->registry = true;
  bank->publish(std::move(snapshot));
  bank->answer(bank->requested.load(), "permission denied for schema seedproxy");
  CHECK(s.store.read_failure({}) == "database \"bank\": permission denied for schema seedproxy");
}

TEST_CASE("snapshot versions are never reused") {
  Store s;
  const auto first = s.store.next_version();
  CHECK(s.store.next_version() > first);
}
