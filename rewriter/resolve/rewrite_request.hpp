// What the resolver is asked (a statement text with the catalog, seeds and search_path to read it
// against) and the two things it answers with besides edits: PostgreSQL-style errors and reads.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"

namespace seedproxy::rewriter {

// A PostgreSQL-style error the client must receive instead of running the statement.
struct SqlError {
  std::string sqlstate;
  std::string message;
  std::string detail;
  int position = 0;  // 1-based character position in the client's text; 0 when none
};

struct AttributeRead {
  const VirtualAttribute* attribute = nullptr;
};

struct RewriteRequest {
  std::string_view sql;
  const Catalog& catalog;
  const SeedSet& seeds;
  std::span<const std::string> search_path;  // schemas, "$user" already expanded
  // The session's temporary tables and views: an unqualified name among them means the temporary
  // relation wherever PostgreSQL searches pg_temp (first, unless search_path places it), and a
  // temporary relation has no seeds. The catalog cannot see them (they live in the session).
  std::span<const std::string> temp_tables = {};
};

}  // namespace seedproxy::rewriter
