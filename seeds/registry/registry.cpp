// Seed definitions and declarations in the registry: conflicts are refused, never merged.
#include "seeds/registry/registry.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include "common/identifiers.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/registry/seed_dependencies.hpp"

namespace seedproxy::seeds {
namespace {

using Key = std::tuple<std::string, std::string, std::string>;  // schema, table, attribute

// database.schema.table.attribute, each part quoted when it needs to be.
std::string seed_label(const std::string& database, const Key& key) {
  const auto part = [](const std::string& name) { return pg::quote_identifier_if_needed(name); };
  return part(database) + "." + part(std::get<0>(key)) + "." + part(std::get<1>(key)) + "." +
         part(std::get<2>(key));
}

struct Declaration {
  std::string instance;
  std::string definition;
};

// What this instance does with one seed it declares.
struct Write {
  enum class Kind { keep, insert, update } kind = Kind::keep;
  const DeclaredSeed* seed;
  Key key;
  std::string definition;  // definition_text() of the declaration
};

// The seeds the registry holds, by name.
std::map<Key, RegistrySeed> registry_rows(ControlConnection& connection) {
  std::map<Key, RegistrySeed> rows;
  for (auto& seed : read_registry(connection, registry_schema_version))
    rows.emplace(Key{seed.schema, seed.table, seed.attribute}, std::move(seed));
  return rows;
}

// Every other instance's declarations, by seed name.
std::multimap<Key, Declaration> other_declarations(ControlConnection& connection,
                                                   const std::string& instance) {
  std::multimap<Key, Declaration> others;
  auto result = connection.query(
      "reading other proxies' seed declarations",
      R"sql(SELECT "schema_name", "table_name", "attribute_name", "instance", "definition"
FROM "seedproxy"."declarations" WHERE "instance" <> $1 ORDER BY "instance")sql",
      {instance});
  for (int row = 0; row < PQntuples(result.get()); ++row)
    others.emplace(Key{text_at(result, row, 0), text_at(result, row, 1), text_at(result, row, 2)},
                   Declaration{text_at(result, row, 3), text_at(result, row, 4)});
  return others;
}

// Sorts every declared seed into a write, or refuses it: another instance declares it
// differently, or its registered definition may not change in its phase.
std::vector<Write> plan_writes(const std::string& database, const std::string& instance,
                               const std::vector<DeclaredSeed>& declared,
                               const std::map<Key, RegistrySeed>& rows,
                               const std::multimap<Key, Declaration>& others,
                               std::vector<std::string>& refusals) {
  std::vector<Write> writes;
  for (const auto& seed : declared) {
    const auto& d = seed.validated.definition;
    const Key key{d.schema, d.table, d.attribute};
    const auto& m = seed.spec.materialize;
    const std::string mine =
        definition_text(d.type, d.expression, m.policy, m.reads, m.window_seconds);
    const std::string label = seed_label(database, key);
    bool conflict = false;
    for (auto [at, end] = others.equal_range(key); at != end; ++at) {
      if (at->second.definition == mine) continue;
      conflict = true;
      refusals.push_back("seed " + label + " conflicts between proxy instances: \"" + instance +
                         "\" declares " + mine + ", but \"" + at->second.instance + "\" declares " +
                         at->second.definition +
                         "; conflicting definitions are never merged: make the configuration "
                         "files agree (or remove the seed from one of them)");
    }
    if (conflict) continue;
    Write write{Write::Kind::insert, &seed, key, mine};
    if (const auto row = rows.find(key); row != rows.end()) {
      const auto& r = row->second;
      const std::string theirs =
          definition_text(r.type, r.expression, r.policy, r.reads, r.window_seconds);
      if (theirs == mine) {
        write.kind = Write::Kind::keep;
      } else if (r.phase == rewriter::Phase::materializing ||
                 r.phase == rewriter::Phase::materialized) {
        refusals.push_back("seed " + label + " is " + std::string(rewriter::to_string(r.phase)) +
                           " with " + theirs + "; its definition cannot change to " + mine +
                           " while it is; roll it back first (ROLLBACK " + d.table + "." +
                           d.attribute + " on the admin console), then apply the new definition");
        continue;
      } else {
        write.kind = Write::Kind::update;
      }
    }
    writes.push_back(std::move(write));
  }
  return writes;
}

// Inserts or updates the seed as planned and records this instance's declaration of it. Returns
// whether seedproxy.seeds changed.
bool write_seed(ControlConnection& connection, const std::string& instance, const Write& write) {
  const auto& d = write.seed->validated.definition;
  const auto& m = write.seed->spec.materialize;
  const std::vector<std::string> parameters{d.schema,
                                            d.table,
                                            d.attribute,
                                            d.type,
                                            d.expression,
                                            write.seed->validated.cross_table ? "true" : "false",
                                            text_array_literal(write.seed->validated.key_columns),
                                            std::string(config::to_string(m.policy)),
                                            std::to_string(m.reads),
                                            std::to_string(m.window_seconds),
                                            instance};
  if (write.kind == Write::Kind::insert) {
    // Inserted in the file's order, so the sequence keeps it for seeds declared together.
    (void)connection.query("registering a seed", std::string(R"sql(INSERT INTO "seedproxy"."seeds"
  ("schema_name", "table_name", "attribute_name", "type", "expression", "phase", "cross_table",
   "key_columns", "materialize_policy", "materialize_reads", "materialize_window_seconds",
   "declared_by", "declared_after_attnum")
VALUES ($1, $2, $3, $4, $5, 'virtual', $6::boolean, $7::text[], $8, $9::bigint, $10::bigint, $11,
        )sql") + declared_after_attnum_sql + ")",
                           parameters);
  } else if (write.kind == Write::Kind::update) {
    // Only virtual and rolled-back seeds get here; both come back as virtual. A virtual seed
    // keeps its place; a rolled-back one is declared anew, at the table's end as it is now.
    (void)connection.query("updating a seed's definition",
                           std::string(R"sql(UPDATE "seedproxy"."seeds"
SET "type" = $4, "expression" = $5, "phase" = 'virtual', "cross_table" = $6::boolean,
    "key_columns" = $7::text[], "materialize_policy" = $8, "materialize_reads" = $9::bigint,
    "materialize_window_seconds" = $10::bigint, "declared_by" = $11, "updated_at" = now(),
    "declaration_order" = CASE WHEN "phase" = 'rolled_back'
      THEN nextval('"seedproxy"."declaration_order"') ELSE "declaration_order" END,
    "declared_after_attnum" = CASE WHEN "phase" = 'rolled_back' THEN )sql") +
                               declared_after_attnum_sql + R"sql( ELSE "declared_after_attnum" END
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3
  AND "phase" IN ('virtual', 'rolled_back'))sql",
                           parameters);
  }
  record_dependencies(connection, write.seed->validated);
  (void)connection.query("recording this proxy's seed declaration", R"sql(
INSERT INTO "seedproxy"."declarations"
  ("instance", "schema_name", "table_name", "attribute_name", "definition_hash", "definition",
   "last_applied")
VALUES ($1, $2, $3, $4, md5($5), $5, now())
ON CONFLICT ("instance", "schema_name", "table_name", "attribute_name") DO UPDATE
SET "definition_hash" = excluded."definition_hash", "definition" = excluded."definition",
    "last_applied" = excluded."last_applied")sql",
                         {instance, d.schema, d.table, d.attribute, write.definition});
  return write.kind != Write::Kind::keep;
}

// Declarations of seeds this instance no longer declares: the seeds stay, the claim goes.
void withdraw_declarations(ControlConnection& connection, const std::string& instance,
                           const std::vector<Write>& kept) {
  std::vector<std::string> schemas, tables, attributes;
  for (const auto& write : kept) {
    schemas.push_back(std::get<0>(write.key));
    tables.push_back(std::get<1>(write.key));
    attributes.push_back(std::get<2>(write.key));
  }
  (void)connection.query("removing this proxy's withdrawn seed declarations", R"sql(
DELETE FROM "seedproxy"."declarations" d
WHERE d."instance" = $1
  AND NOT EXISTS (SELECT FROM unnest($2::text[], $3::text[], $4::text[]) AS k(s, t, a)
                  WHERE k.s = d."schema_name" AND k.t = d."table_name"
                    AND k.a = d."attribute_name"))sql",
                         {instance, text_array_literal(schemas), text_array_literal(tables),
                          text_array_literal(attributes)});
}

}  // namespace

rewriter::Phase registry_phase(std::string_view text) noexcept {
  return rewriter::phase_from_string(text).value_or(rewriter::Phase::virtual_);
}

config::MaterializePolicy registry_policy(std::string_view text) noexcept {
  return config::policy_from_string(text).value_or(config::MaterializePolicy::manual);
}

std::string definition_text(const std::string& type, const std::string& expression,
                            config::MaterializePolicy policy, std::uint64_t reads,
                            std::uint64_t window_seconds) {
  std::string text = "type " + type + ", expression " + expression + ", materialize " +
                     std::string(config::to_string(policy));
  if (policy == config::MaterializePolicy::threshold)
    text += " (" + std::to_string(reads) + " reads in " + std::to_string(window_seconds) + " s)";
  return text;
}

std::vector<RegistrySeed> read_registry(ControlConnection& connection, int version) {
  // Before places were kept, seeds were shown in name order after the columns (the order of
  // their rows here), or at their own column's attnum.
  const bool placed = version >= seed_places_version;
  const std::string place = placed ? R"sql(s."declared_after_attnum", s."declaration_order")sql"
                                   : R"sql(NULL::integer, 0::bigint)sql";
  const std::string order = placed ? R"sql(1, 2, 14, 3)sql" : R"sql(1, 2, 3)sql";
  auto result = connection.query("reading the seed registry",
                                 R"sql(
SELECT s."schema_name", s."table_name", s."attribute_name", s."type", s."expression", s."phase",
       s."cross_table", s."materialize_policy", s."materialize_reads",
       s."materialize_window_seconds", s."declared_by",
       coalesce((SELECT sum(r."reads") FROM "seedproxy"."read_counts" r
                 WHERE r."schema_name" = s."schema_name" AND r."table_name" = s."table_name"
                   AND r."attribute_name" = s."attribute_name"
                   AND r."minute" >= now() - s."materialize_window_seconds" * interval '1 second'),
                0),
       )sql" + place + ", " + optional_seed_column("s", "dependencies") +
                                     ", " + optional_seed_column("s", "materialize_refusal") +
                                     ", " + optional_seed_column("s", "dependency_error") + R"sql(
FROM "seedproxy"."seeds" s
ORDER BY )sql" + order);
  std::vector<RegistrySeed> out;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    RegistrySeed seed;
    seed.schema = text_at(result, row, 0);
    seed.table = text_at(result, row, 1);
    seed.attribute = text_at(result, row, 2);
    seed.type = text_at(result, row, 3);
    seed.expression = text_at(result, row, 4);
    seed.phase = registry_phase(text_at(result, row, 5));
    seed.cross_table = text_at(result, row, 6) == "t";
    seed.policy = registry_policy(text_at(result, row, 7));
    seed.reads = count_at(result, row, 8);
    seed.window_seconds = count_at(result, row, 9);
    seed.declared_by = text_at(result, row, 10);
    seed.reads_in_window = count_at(result, row, 11);
    if (!PQgetisnull(result.get(), row, 12))
      seed.place.after_attnum = std::stoi(text_at(result, row, 12));
    seed.place.order = placed ? std::stoll(text_at(result, row, 13)) : row + 1;
    seed.dependencies = text_at(result, row, 14);
    seed.materialize_refusal = text_at(result, row, 15);
    seed.dependency_error = text_at(result, row, 16);
    out.push_back(std::move(seed));
  }
  return out;
}

std::vector<std::string> apply_declarations(ControlConnection& connection,
                                            const std::string& database,
                                            const std::string& instance,
                                            const std::vector<DeclaredSeed>& declared,
                                            bool& changed) {
  changed = false;
  std::vector<std::string> refusals;
  const auto rows = registry_rows(connection);
  const auto others = other_declarations(connection, instance);
  const auto writes = plan_writes(database, instance, declared, rows, others, refusals);
  if (!refusals.empty()) return refusals;
  for (const auto& write : writes)
    if (write_seed(connection, instance, write)) changed = true;
  withdraw_declarations(connection, instance, writes);
  return refusals;
}

}  // namespace seedproxy::seeds
