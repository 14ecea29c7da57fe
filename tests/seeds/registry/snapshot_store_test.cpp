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
  // Published and followed: the next session does not wait.
  shop->following = true;
  CHECK(s.store.watch("shop") == 0);
  CHECK(shop->sessions.load() == 2);
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

TEST_CASE("sessions are counted; the last one leaving wakes the watcher to let the database go") {
  Store s;
  (void)s.store.watch("shop");
  SnapshotStore::Watched* shop = s.store.find("shop");
  REQUIRE(shop != nullptr);
  shop->publish(snapshot_with_seed("shop"));
  shop->following = true;
  CHECK(s.store.watch("shop") == 0);
  const int wakes = s.wakes;
  s.store.unwatch("shop");
  CHECK(s.wakes == wakes);  // one session is still there
  s.store.unwatch("shop");
  CHECK(shop->sessions.load() == 0);
  CHECK(s.wakes == wakes + 1);
  // Let go (not followed any more): the next session waits for a fresh load.
  shop->following = false;
  CHECK(s.store.watch("shop") != 0);
}

TEST_CASE("a released database is followed again, after a fresh load, once a session comes") {
  Store s;
  SnapshotStore::Watched* shop = s.store.find_or_add("shop");
  shop->publish(snapshot_with_seed("shop"));
  shop->following = true;
  shop->released = true;
  CHECK(s.store.databases_with_live_seeds().empty());
  CHECK(s.store.watch("shop") != 0);
  CHECK_FALSE(shop->released.load());
}

TEST_CASE("targeted refreshes merge their names; everything is a full reload") {
  Store s;
  SnapshotStore::Watched* shop = s.store.find_or_add("shop");
  shop->refresh_wanted = false;
  seedproxy::rewriter::CatalogEffect a, b;
  a.add_name("orders");
  b.add_name("lines");
  CHECK(s.store.request_refresh("shop", seedproxy::rewriter::CatalogEffect{}) == 0);
  const auto first = s.store.request_refresh("shop", a);
  const auto second = s.store.request_refresh("shop", b);
  CHECK(second > first);
  CHECK(shop->catalog_wanted.load());
  CHECK_FALSE(shop->refresh_wanted.load());
  const auto taken = shop->take_effect();
  CHECK(taken.names == std::vector<std::string>{"lines", "orders"});
  CHECK_FALSE(shop->catalog_wanted.load());
  CHECK(shop->take_effect().empty());
  (void)s.store.request_refresh("shop", seedproxy::rewriter::CatalogEffect{true, {}, {}});
  CHECK(shop->refresh_wanted.load());
}

TEST_CASE("a refresh that only confirms a prediction is not urgent until one that is comes") {
  Store s;
  SnapshotStore::Watched* shop = s.store.find_or_add("shop");
  seedproxy::rewriter::CatalogEffect a;
  a.add_name("orders");
  const int before = s.wakes;
  (void)s.store.request_refresh("shop", a, true);
  CHECK(shop->catalog_wanted.load());
  CHECK_FALSE(shop->catalog_urgent.load());
  CHECK(s.wakes == before + 1);
  (void)s.store.request_refresh("shop", a, true);
  CHECK(s.wakes == before + 1);  // already wanted: the watcher knows
  (void)s.store.request_refresh("shop", a);
  CHECK(shop->catalog_urgent.load());
  CHECK(s.wakes == before + 2);  // urgent now: woken again
  (void)shop->take_effect();
  CHECK_FALSE(shop->catalog_urgent.load());
  CHECK_FALSE(shop->catalog_wanted.load());
}

TEST_CASE("sessions trust a snapshot until the lease runs out; why not, when asked") {
  Store s;
  SnapshotStore::Watched* shop = s.store.find_or_add("shop");
  CHECK(s.store.trusted("shop"));  // no lease applies yet
  const auto now = SnapshotStore::Clock::now();
  shop->trusted_until = (now + std::chrono::seconds(10)).time_since_epoch().count();
  CHECK(s.store.trusted("shop"));
  CHECK(s.store.trust("shop").trusted);
  shop->trusted_until = (now - std::chrono::seconds(2)).time_since_epoch().count();
  shop->answer(shop->requested.load(), "connection refused");
  CHECK_FALSE(s.store.trusted("shop"));
  const auto trust = s.store.trust("shop");
  CHECK_FALSE(trust.trusted);
  CHECK(trust.seconds_untrusted >= 2.0);
  CHECK(trust.why == "connection refused");
  CHECK(s.store.trusted("elsewhere"));  // not watched: nothing to distrust
}
