// Spelling the parts of a DDL seed's entity the way a configuration file would.
#include "seeds/registry/ddl_seed_request.hpp"

#include <algorithm>

#include "common/identifiers.hpp"

namespace seedproxy::seeds {

std::string entity_part(const std::string& name) {
  const bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                     });
  return plain ? name : pg::quote_identifier(name);
}

}  // namespace seedproxy::seeds
