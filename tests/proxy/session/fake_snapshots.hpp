// A SnapshotSource for session tests: hand-built snapshots (catalog + compiled seeds), refresh
// tickets answered when the test says so, DDL-seed jobs kept for the test to answer. Plus the
// wire helpers those tests share: client messages in, the messages of a replacement out.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/progress_signal.hpp"
#include "proxy/wire/frame_codec.hpp"
#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "rewriter/statements/catalog_effect.hpp"
#include "seeds/registry/ddl_seed_request.hpp"
#include "seeds/registry/snapshot_source.hpp"
#include "seeds/registry/snapshots.hpp"
#include "tests/proxy/wire/wire_bytes.hpp"

namespace seedproxy::test {

class FakeSnapshots final : public seeds::SnapshotSource {
 public:
  static std::uint64_t unique_version() {
    static std::uint64_t next = 1000;
    return ++next;
  }
  explicit FakeSnapshots(std::string database = "app") : database_(std::move(database)) {}

  // Publishes `relations` and `seeds` as the database's newest snapshot. Versions are unique in
  // the process, as the registry's are: the rewrite cache is per thread and keyed by them.
  std::uint64_t publish(std::vector<rewriter::Relation> relations,
                        const std::vector<rewriter::SeedDefinition>& seeds) {
    auto snapshot = std::make_shared<seeds::DatabaseSnapshot>();
    snapshot->version = unique_version();
    snapshot->catalog = rewriter::Catalog(std::move(relations), snapshot->version);
    std::vector<std::string> errors;
    snapshot->seeds =
        rewriter::SeedSet::compile(seeds, snapshot->catalog, snapshot->version, errors);
    REQUIRE_MESSAGE(errors.empty(), (errors.empty() ? "" : errors.front()));
    snapshot->registry = true;
    snapshot->active = !seeds.empty();
    for (const auto& seed : seeds) {
      seeds::SeedStatus status;
      status.schema = seed.schema;
      status.table = seed.table;
      status.attribute = seed.attribute;
      status.phase = seed.phase;
      snapshot->statuses.push_back(std::move(status));
    }
    snapshot_ = std::move(snapshot);
    return snapshot_->version;
  }
  // Every refresh asked for so far has been answered.
  void answer_refreshes() { answered_.advance_to(requested_); }

  bool covers(std::string_view database) const noexcept override { return database == database_; }
  std::uint64_t watch(std::string_view database) noexcept override {
    ++watches;
    return database == database_ && !snapshot_ ? ++requested_ : 0;
  }
  void unwatch(std::string_view) noexcept override { ++unwatches; }
  std::shared_ptr<const seeds::DatabaseSnapshot> current(
      std::string_view database) const noexcept override {
    return database == database_ ? snapshot_ : nullptr;
  }
  std::uint64_t next_version() noexcept override { return unique_version(); }
  std::uint64_t request_refresh(std::string_view database) noexcept override {
    refreshes_requested.emplace_back(database);
    effects_requested.push_back(rewriter::CatalogEffect{true, {}, {}});
    return ++requested_;
  }
  std::uint64_t request_refresh(std::string_view database, const rewriter::CatalogEffect& effect,
                                bool /*confirm_only*/) noexcept override {
    if (effect.empty()) return 0;
    refreshes_requested.emplace_back(database);
    effects_requested.push_back(effect);
    return ++requested_;
  }
  bool trusted(std::string_view) const noexcept override { return trusted_; }
  seeds::SnapshotTrust trust(std::string_view) const override {
    return {trusted_, trusted_ ? 0.0 : 3.5, trusted_ ? "" : "registry connection refused"};
  }
  // The lease in the database's registry ran out (false) or was renewed (true).
  void set_trusted(bool trusted) { trusted_ = trusted; }
  bool refreshed(std::string_view, std::uint64_t ticket) const noexcept override {
    return ticket <= answered_.value();
  }
  std::uint64_t outstanding(std::string_view) const noexcept override {
    return requested_ > answered_.value() ? requested_ : 0;
  }
  boost::asio::awaitable<bool> wait_refreshed(
      std::string, std::uint64_t ticket, std::chrono::steady_clock::duration timeout) override {
    ++waits;  // the caller co_awaits it at once
    return answered_.wait_for(ticket, timeout);
  }
  void submit_ddl_seed(std::shared_ptr<seeds::DdlSeedJob> job) override {
    jobs.push_back(std::move(job));
  }

  int watches = 0;
  int unwatches = 0;
  int waits = 0;  // wait_refreshed calls: a session waiting for the catalog
  std::vector<std::string> refreshes_requested;
  std::vector<rewriter::CatalogEffect> effects_requested;  // full reloads as `everything`
  std::vector<std::shared_ptr<seeds::DdlSeedJob>> jobs;

 private:
  std::string database_;
  std::shared_ptr<const seeds::DatabaseSnapshot> snapshot_;
  std::uint64_t requested_ = 0;
  ProgressSignal answered_;
  bool trusted_ = true;
};

// The messages of a replacement (or of any run of whole messages): type and body.
struct WireMessage {
  char type = 0;
  ByteVector body;
  [[nodiscard]] protocol::Bytes bytes() const noexcept { return body; }
};
inline std::vector<WireMessage> split_messages(const ByteVector& bytes) {
  std::vector<WireMessage> out;
  protocol::Bytes rest(bytes);
  while (!rest.empty()) {
    const auto frame = protocol::decode_message(rest, protocol::default_max_message_length);
    REQUIRE(frame.status == protocol::Status::frame);
    out.push_back({frame.message.header.type,
                   ByteVector(frame.message.body.begin(), frame.message.body.end())});
    rest = rest.subspan(frame.message.header.total());
  }
  return out;
}
inline std::string types_of(const std::vector<WireMessage>& messages) {
  std::string out;
  for (const auto& m : messages) out += m.type;
  return out;
}

// Client messages as a client library sends them.
inline ByteVector query(std::string_view sql) { return Body().cstring(sql).message('Q'); }
inline ByteVector parse(std::string_view name, std::string_view sql) {
  return Body().cstring(name).cstring(sql).u16(0).message('P');
}
inline ByteVector bind(std::string_view portal, std::string_view statement) {
  return Body().cstring(portal).cstring(statement).u16(0).u16(0).u16(0).message('B');
}
inline ByteVector describe_statement(std::string_view name) {
  return Body().u8('S').cstring(name).message('D');
}
inline ByteVector execute(std::string_view portal) {
  return Body().cstring(portal).u32(0).message('E');
}
inline ByteVector close_statement(std::string_view name) {
  return Body().u8('S').cstring(name).message('C');
}
inline ByteVector sync_message() { return Body().message('S'); }

// Server messages.
inline ByteVector parse_complete() { return Body().message('1'); }
inline ByteVector close_complete() { return Body().message('3'); }
inline ByteVector command_complete(std::string_view tag) {
  return Body().cstring(tag).message('C');
}
inline ByteVector ready_for_query(char status) {
  return Body().u8(static_cast<std::uint8_t>(status)).message('Z');
}
// An ErrorResponse ('E') or NoticeResponse ('N') as PostgreSQL words it.
inline ByteVector server_error(std::string_view code, std::string_view message, char type = 'E') {
  return Body()
      .u8('S')
      .cstring(type == 'E' ? "ERROR" : "NOTICE")
      .u8('V')
      .cstring(type == 'E' ? "ERROR" : "NOTICE")
      .u8('C')
      .cstring(code)
      .u8('M')
      .cstring(message)
      .u8('P')
      .cstring("8")
      .u8(0)
      .message(type);
}

// The identifier that starts with `prefix` in `sql`, up to its closing double quote.
inline std::string quoted_name_from(std::string_view sql, std::string_view prefix) {
  const auto at = sql.find(prefix);
  REQUIRE(at != std::string_view::npos);
  const auto end = sql.find('"', at);
  REQUIRE(end != std::string_view::npos);
  return std::string(sql.substr(at, end - at));
}

}  // namespace seedproxy::test
