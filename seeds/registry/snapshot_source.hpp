// What a session needs from the seed registry, as an interface a test can fake: the newest
// snapshot of a database, following it and asking for a reload after DDL, and handing in DDL
// seeds. SnapshotRegistry (snapshots.hpp) implements it; sessions see nothing else of it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace seedproxy::rewriter {
struct CatalogEffect;
}  // namespace seedproxy::rewriter

namespace seedproxy::seeds {

// Defined with the registry (snapshots.hpp) and ddl_seed_request.hpp; a session that reads a
// snapshot's fields includes those.
struct DatabaseSnapshot;
struct DdlSeedJob;
struct SnapshotTrust;

class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;

  // Whether sessions to `database` need the resolver at all.
  [[nodiscard]] virtual bool covers(std::string_view database) const noexcept = 0;
  // A session to `database` begins: follows it if it is not followed yet. Returns 0 when a
  // followed snapshot is published, otherwise a ticket for refreshed() that is answered by the
  // first load. Matched by one unwatch() when the session ends.
  virtual std::uint64_t watch(std::string_view database) noexcept = 0;
  virtual void unwatch(std::string_view database) noexcept = 0;
  // The newest snapshot, or null while none could be loaded yet. Any thread, never blocks.
  [[nodiscard]] virtual std::shared_ptr<const DatabaseSnapshot> current(
      std::string_view database) const noexcept = 0;
  // Asks for a full reload soon; never blocks. Returns a ticket that refreshed() accepts once a
  // snapshot loaded after this request is published.
  virtual std::uint64_t request_refresh(std::string_view database) noexcept = 0;
  // Asks for the catalog entries DDL changed (`effect`) to be read again; 0 when nothing is to be
  // read. The same kind of ticket. `confirm_only`: the session predicted the change and waits for
  // nothing, so the refresh may come a few milliseconds later, together with others.
  virtual std::uint64_t request_refresh(std::string_view database,
                                        const rewriter::CatalogEffect& effect,
                                        bool confirm_only) noexcept = 0;
  // Whether statements that touch seeds may be served from the snapshot now: this proxy's lease
  // in the database's registry is fresh (or none applies). Cheap; any thread.
  [[nodiscard]] virtual bool trusted(std::string_view database) const noexcept = 0;
  // Why not, for the error a client gets (rare path).
  [[nodiscard]] virtual SnapshotTrust trust(std::string_view database) const = 0;
  // A snapshot version no snapshot of this process had before (for a session's own predicted
  // view of the catalog: the rewrite cache is keyed by versions). Any thread.
  [[nodiscard]] virtual std::uint64_t next_version() noexcept = 0;
  [[nodiscard]] virtual bool refreshed(std::string_view database,
                                       std::uint64_t ticket) const noexcept = 0;
  // The newest refresh ticket of `database` not answered yet, whichever session asked for it
  // (0: none). A statement that began after another session's DDL completed waits for it.
  [[nodiscard]] virtual std::uint64_t outstanding(std::string_view database) const noexcept = 0;
  // outstanding() == 0 and trusted(): what a session asks before every client read, where a
  // source can answer it with one look-up of the database.
  [[nodiscard]] virtual bool settled(std::string_view database) const noexcept {
    return outstanding(database) == 0 && trusted(database);
  }
  // Waits, on the caller's executor and without polling, until refreshed(database, ticket) or
  // `timeout`; true when the ticket was answered.
  [[nodiscard]] virtual boost::asio::awaitable<bool> wait_refreshed(
      std::string database, std::uint64_t ticket, std::chrono::steady_clock::duration timeout) = 0;
  // Hands a DDL seed to whoever registers it; `job->verdict` is filled in, then `job->done` set.
  // Never blocks; a job submitted while stopping is never answered.
  virtual void submit_ddl_seed(std::shared_ptr<DdlSeedJob> job) = 0;

 protected:
  SnapshotSource() = default;
  SnapshotSource(const SnapshotSource&) = default;
  SnapshotSource& operator=(const SnapshotSource&) = default;
};

}  // namespace seedproxy::seeds
