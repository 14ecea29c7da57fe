// DDL seeds (config ddl_seeds), the session's side: a client's Query or Parse whose text is one
// `ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS (...) STORED` is registered as a seed by the
// control thread while the session waits; PostgreSQL then runs a stand-in statement with the same
// outcome (ALTER TABLE, or an error through a refusal marker) so the session's transaction and
// pipeline state stay exactly PostgreSQL's. Rules and limits: docs/seeds.md.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/wire/frame_codec.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "seeds/registry/ddl_seed_request.hpp"

namespace seedproxy::seeds {
class SnapshotSource;
}

namespace seedproxy::proxy {

class StatementRewriting;

class DdlSeeds {
 public:
  DdlSeeds(seeds::SnapshotSource& snapshots, std::string database, std::size_t max_statement_bytes);

  // For a client 'Q' or 'P': a replacement, or nullopt to go on as usual. A recognised statement
  // starts a registration and returns nullopt with waiting() true: the caller must co_await
  // wait() and then hand in the same message again, which returns its replacement (or nullopt
  // when PostgreSQL is to answer the original itself).
  [[nodiscard]] std::optional<std::vector<std::byte>> client_message(
      protocol::Bytes message, const StatementRewriting& rewriting, char transaction_status);
  // True from the start of a registration until the message is handed in again (whether or not
  // the verdict is in yet).
  [[nodiscard]] bool waiting() const noexcept { return job_ != nullptr; }
  // Until the registration is answered or `timeout_seconds` pass (then the statement is refused).
  boost::asio::awaitable<void> wait();

  // A replacement for a server 'N' or 'E' answering a stand-in statement (an empty one drops the
  // message), or nullopt to forward it.
  [[nodiscard]] std::optional<std::vector<std::byte>> server_message(protocol::Bytes message);

  static constexpr double timeout_seconds = 30.0;

 private:
  [[nodiscard]] bool verdict_pending() const noexcept;
  [[nodiscard]] std::string stand_in(const seeds::DdlSeedVerdict& verdict);

  seeds::SnapshotSource& snapshots_;
  std::string database_;
  std::size_t max_statement_bytes_;
  std::shared_ptr<seeds::DdlSeedJob> job_;
  bool timed_out_ = false;
  std::vector<std::string> quiet_notices_;  // stand-in table names whose notice is dropped
  std::vector<std::pair<std::string, rewriter::SqlError>> refusals_;  // marker, client's error
};

}  // namespace seedproxy::proxy
