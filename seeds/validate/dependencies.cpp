// The dependency analysis of a cross-table seed: the subqueries of its analysed tree, the
// equalities among their tables and the seed's row, and for every table the shortest chain of
// equalities to the seed's row. Structure first (oids and attnums), then one catalog read for
// names, kinds and operators, then the chains.
#include "seeds/validate/dependencies.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

#include "seeds/validate/node_tree.hpp"

namespace seedproxy::seeds {
namespace {

constexpr int kSeed = -1;  // the seed's row, as a node of a subquery's equality graph

// PostgreSQL 15's RTEKind and JoinType values, as the tree writes them.
constexpr long long rte_relation = 0, rte_subquery = 1, rte_join = 2, rte_function = 3;
constexpr long long join_inner = 0, join_left = 1, join_full = 2, join_right = 3;
constexpr long long sublink_exists = 0, sublink_expr = 4;

// A column of a subquery's table (`rel` indexes Scope::rels) or of the seed's row (kSeed).
struct ColumnRef {
  int rel = kSeed;
  int attnum = 0;
};

// `a` compared with `b` by operator `opno`; usable from a's table toward b's (and back when
// `both_ways`): a row of the first can only matter where a row of the second matches.
struct Equality {
  ColumnRef a, b;
  std::string opno;
  bool both_ways = true;
  bool a_left = true;  // `a` is the operator's left argument
};

struct Rel {
  int rtindex = 0;
  std::string oid;
  std::string relkind;
  std::string alias;
};

// One subquery: its tables, their equalities and the columns it reads. A lookup nested in its
// WHERE (`r.id = (SELECT c.region_id FROM customer c WHERE ...)`) joins the same scope: while it
// is read, `query` and `rel_of_rtindex` are the nested query's, `depth` is 1, and the outer
// query's are kept in `outer_query` and `outer_rel_of_rtindex`.
struct Scope {
  const PgNode* query = nullptr;
  std::vector<Rel> rels;
  std::map<int, int> rel_of_rtindex;
  int depth = 0;
  int nested_first_rel = 0;  // at depth 1: the first of the nested query's rels
  const PgNode* outer_query = nullptr;
  std::map<int, int> outer_rel_of_rtindex;
  std::vector<Equality> equalities;
  std::map<int, std::set<int>> columns;  // rel → attnums read (0: the whole row)
};

struct OperatorInfo {
  bool equality = false;
  std::string left_type, right_type, left_hash, right_hash, sql, shown;
};

struct RelationInfo {
  std::string schema, name, relkind;
  bool has_children = false;
  std::map<int, std::string> columns;  // attnum → name
};

[[nodiscard]] const PgNode* strip_relabel(const PgNode* node) {
  while (node && node->kind == "RELABELTYPE") node = node->child("arg");
  return node;
}

class Analysis {
 public:
  Analysis(ControlConnection& connection, const std::string& entity_oid)
      : connection_(connection), entity_oid_(entity_oid) {}

  SeedDependencies run(std::string_view tree);

 private:
  void refuse(const std::string& why) {
    if (out_.refusal.empty()) out_.refusal = why;
  }
  void read_top(const PgNode& query);
  void note_seed_column(int attnum) { seed_attnums_.insert(attnum); }
  void read_subquery(const PgNode& sublink);
  [[nodiscard]] bool shape_allows(const PgNode& query, int depth);
  [[nodiscard]] bool read_nested_lookups(Scope& scope);
  [[nodiscard]] bool read_lookup(Scope& scope, const PgNode* compare, const PgNode& sublink);
  [[nodiscard]] bool read_rtable(Scope& scope);
  std::set<int> read_join_tree(Scope& scope, const PgNode* node);
  void read_conditions(Scope& scope, const PgNode* qual, const std::set<int>* nullable);
  [[nodiscard]] std::optional<ColumnRef> resolve(const Scope& scope, const PgNode* var) const;
  void note_var(Scope& scope, const PgNode& var);
  void read_columns(Scope& scope);

  void load_catalog();
  [[nodiscard]] bool check_relations();
  void bound(const Scope& scope);
  [[nodiscard]] std::optional<DependencyMapping> mapping(const Scope& scope, int rel);
  [[nodiscard]] std::string column_name(const std::string& oid, int attnum) const;
  [[nodiscard]] std::string shown(const Scope& scope, const ColumnRef& ref) const;
  TableDependency& table(const std::string& oid);
  void finish();

  ControlConnection& connection_;
  const std::string& entity_oid_;
  int entity_rtindex_ = 0;
  std::set<int> seed_attnums_;  // 0: the whole row
  std::vector<Scope> scopes_;
  std::map<std::string, OperatorInfo> operators_;
  std::map<std::string, RelationInfo> relations_;
  std::map<std::string, TableDependency> tables_;  // by oid
  SeedDependencies out_;
};

SeedDependencies Analysis::run(std::string_view tree) {
  const TreeValue root = read_node_tree(tree);
  const PgNode* query = nullptr;
  if (root.kind == TreeValue::Kind::list && root.items.size() == 1) query = root.items[0].as_node();
  if (!query || query->kind != "QUERY")
    throw std::runtime_error("the check view's stored rule is not one query");
  read_top(*query);
  if (!out_.refusal.empty()) return std::move(out_);
  load_catalog();
  if (!check_relations()) return std::move(out_);
  for (const auto& scope : scopes_) {
    bound(scope);
    if (!out_.refusal.empty()) return std::move(out_);
  }
  finish();
  out_.refusal = chain_refusal(out_);
  return std::move(out_);
}

// The view's query: its one target is the expression; the entity is the range entry with its oid.
void Analysis::read_top(const PgNode& query) {
  const auto rtable = query.items("rtable");
  for (std::size_t i = 0; i < rtable.size(); ++i)
    if (const PgNode* rte = rtable[i].as_node();
        rte && rte->scalar("relid") == entity_oid_ && rte->scalar("inFromCl") == "true")
      entity_rtindex_ = static_cast<int>(i) + 1;
  const auto targets = query.items("targetList");
  if (entity_rtindex_ == 0 || targets.empty() || !targets[0].as_node())
    throw std::runtime_error("the check view's stored rule does not read the seed's table");
  const TreeValue* expression = targets[0].as_node()->field("expr");
  if (!expression) throw std::runtime_error("the check view's stored rule has no expression");
  walk_nodes(*expression, [&](const PgNode& node) {
    if (node.kind == "SUBLINK") {
      read_subquery(node);
      return false;
    }
    if (node.kind == "VAR" && node.integer("varlevelsup") == 0 &&
        node.integer("varno") == entity_rtindex_)
      note_seed_column(static_cast<int>(node.integer("varattno")));
    return true;
  });
}

void Analysis::read_subquery(const PgNode& sublink) {
  if (!out_.refusal.empty()) return;
  const long long type = sublink.integer("subLinkType", -1);
  if (type != sublink_expr && type != sublink_exists) {
    refuse(
        "it uses a subquery with IN, ANY, ALL, ARRAY or a row comparison; only scalar "
        "subqueries (SELECT ...) and EXISTS (SELECT ...) correlated by equalities can be kept "
        "exact by triggers");
    return;
  }
  const PgNode* query = sublink.child("subselect");
  if (!query || query->kind != "QUERY")
    throw std::runtime_error("a subquery of the check view has no query");
  if (!shape_allows(*query, 0)) return;
  Scope scope;
  scope.query = query;
  if (!read_rtable(scope)) return;
  const PgNode* join_tree = query->child("jointree");
  (void)read_join_tree(scope, join_tree);
  read_columns(scope);
  if (query->scalar("hasSubLinks") == "true" && !read_nested_lookups(scope)) return;
  scopes_.push_back(std::move(scope));
}

// The subqueries nested in a subquery, each read into the same scope: a lookup compared at the
// top of its WHERE (`r.id = (SELECT c.region_id FROM customer c WHERE c.id = account.customer_id)`)
// ties the compared table to the looked-up one; any other (`(SELECT count(*) FROM txn t WHERE
// t.customer_id = c.id)` in its SELECT list) must be tied by its own correlations.
bool Analysis::read_nested_lookups(Scope& scope) {
  std::map<const PgNode*, const PgNode*> compared;  // sublink -> its comparison
  const PgNode* join_tree = scope.query->child("jointree");
  const PgNode* qual = join_tree ? join_tree->child("quals") : nullptr;
  std::vector<const PgNode*> conjuncts;
  if (qual && qual->kind == "BOOLEXPR" && qual->scalar("boolop") == "and") {
    for (const auto& arg : qual->items("args")) conjuncts.push_back(arg.as_node());
  } else {
    conjuncts.push_back(qual);
  }
  for (const PgNode* conjunct : conjuncts) {
    if (!conjunct || conjunct->kind != "OPEXPR" || conjunct->items("args").size() != 2) continue;
    for (const auto& arg : conjunct->items("args"))
      if (const PgNode* node = strip_relabel(arg.as_node()); node && node->kind == "SUBLINK")
        compared[node] = conjunct;
  }
  std::vector<const PgNode*> sublinks;
  for (const auto& [name, value] : scope.query->fields) {
    if (name == "rtable") continue;
    walk_nodes(value, [&](const PgNode& node) {
      if (node.kind == "SUBLINK") sublinks.push_back(&node);
      return node.kind != "SUBLINK";
    });
  }
  for (const PgNode* sublink : sublinks) {
    const auto found = compared.find(sublink);
    if (!read_lookup(scope, found == compared.end() ? nullptr : found->second, *sublink))
      return false;
  }
  return true;
}

// One nested subquery: its tables, conditions and columns join the scope at depth 1. For a
// lookup `x = (SELECT t.col FROM t ...)` (`compare`), `x` is tied to `t.col` in that direction only
// (x's rows matter only where they equal the looked-up value; t's rows are read whatever x holds).
bool Analysis::read_lookup(Scope& scope, const PgNode* compare, const PgNode& sublink) {
  const PgNode* inner = sublink.child("subselect");
  if (!inner || inner->kind != "QUERY")
    throw std::runtime_error("a nested subquery of the check view has no query");
  const long long type = sublink.integer("subLinkType", -1);
  if (type != sublink_expr && type != sublink_exists) {
    refuse(
        "a nested subquery uses IN, ANY, ALL, ARRAY or a row comparison; only scalar "
        "subqueries and EXISTS correlated by equalities can be kept exact by triggers");
    return false;
  }
  if (!shape_allows(*inner, compare ? 2 : 1)) return false;
  std::optional<ColumnRef> outer;
  bool sublink_left = false;
  if (compare) {
    const auto args = compare->items("args");
    sublink_left = strip_relabel(args[0].as_node()) == &sublink;
    outer = resolve(scope, strip_relabel(args[sublink_left ? 1 : 0].as_node()));
  }
  const PgNode* outer_query = scope.query;
  std::map<int, int> outer_rels = std::move(scope.rel_of_rtindex);
  scope.outer_query = outer_query;
  scope.outer_rel_of_rtindex = outer_rels;
  scope.rel_of_rtindex.clear();
  scope.query = inner;
  scope.depth = 1;
  scope.nested_first_rel = static_cast<int>(scope.rels.size());
  const bool read = read_rtable(scope);
  std::optional<ColumnRef> looked_up;
  if (read) {
    (void)read_join_tree(scope, inner->child("jointree"));
    read_columns(scope);
    const PgNode* value = nullptr;
    int values = 0;
    for (const auto& item : inner->items("targetList"))
      if (const PgNode* target = item.as_node(); target && target->scalar("resjunk") != "true") {
        ++values;
        value = strip_relabel(target->child("expr"));
      }
    if (values == 1 && value && value->kind == "VAR" && value->integer("varlevelsup", -1) == 0)
      looked_up = resolve(scope, value);
  }
  scope.query = outer_query;
  scope.rel_of_rtindex = std::move(outer_rels);
  scope.depth = 0;
  scope.outer_query = nullptr;
  scope.outer_rel_of_rtindex.clear();
  if (!read) return false;
  if (!compare) return true;
  if (!looked_up) {
    refuse(
        "a subquery compares a column with a nested subquery that returns something other than "
        "one column of its table, so the rows it reads are not tied by an equality");
    return false;
  }
  if (outer && outer->rel != kSeed)
    scope.equalities.push_back(
        {*outer, *looked_up, std::string(compare->scalar("opno")), false, !sublink_left});
  return true;
}

// Clauses that make the rows a subquery reads depend on more than the equalities with the row.
bool Analysis::shape_allows(const PgNode& query, int depth) {
  const auto present = [&](std::string_view field) {
    const TreeValue* value = query.field(field);
    return value && value->kind != TreeValue::Kind::null;
  };
  const char* why = nullptr;
  if (present("limitCount") || present("limitOffset"))
    why = "a subquery has LIMIT or OFFSET, so which rows it reads depends on the others";
  else if (present("sortClause"))
    why = "a subquery has ORDER BY, so which row it returns depends on the others";
  else if (query.scalar("hasWindowFuncs") == "true")
    why = "a subquery uses a window function, whose value for one row depends on all the others";
  else if (query.scalar("hasTargetSRFs") == "true")
    why = "a subquery calls a set-returning function over another table";
  else if (present("setOperations"))
    why = "a subquery uses UNION, INTERSECT or EXCEPT";
  else if (present("cteList"))
    why = "a subquery has a WITH clause";
  else if (present("groupingSets"))
    why = "a subquery uses GROUPING SETS, ROLLUP or CUBE";
  else if (depth > 0 && query.scalar("hasSubLinks") == "true")
    why =
        "a subquery nested in a subquery contains another subquery (a chain of lookups deeper "
        "than one middle table)";
  else if (depth > 1 &&
           (query.scalar("hasAggs") == "true" || present("groupClause") || present("havingQual")))
    why =
        "a subquery compares a column with a nested subquery that aggregates; only a lookup of "
        "one column (`r.id = (SELECT c.region_id FROM customer c WHERE ...)`) ties the tables";
  if (why) refuse(why);
  return why == nullptr;
}

bool Analysis::read_rtable(Scope& scope) {
  const auto rtable = scope.query->items("rtable");
  for (std::size_t i = 0; i < rtable.size(); ++i) {
    const PgNode* rte = rtable[i].as_node();
    if (!rte) continue;
    const long long kind = rte->integer("rtekind", -1);
    if (kind == rte_join) continue;
    if (kind == rte_relation) {
      if (rte->field("tablesample") && rte->field("tablesample")->kind != TreeValue::Kind::null) {
        refuse("a subquery reads a table with TABLESAMPLE, which picks rows at random");
        return false;
      }
      const PgNode* alias = rte->child("eref");
      scope.rel_of_rtindex[static_cast<int>(i) + 1] = static_cast<int>(scope.rels.size());
      scope.rels.push_back({static_cast<int>(i) + 1, std::string(rte->scalar("relid")),
                            std::string(rte->scalar("relkind")),
                            alias ? std::string(alias->scalar("aliasname")) : std::string()});
      continue;
    }
    refuse(kind == rte_subquery ? "a subquery reads from another subquery (in FROM)"
           : kind == rte_function
               ? "a subquery reads from a function in FROM (a set-returning function)"
               : "a subquery reads from something other than tables (VALUES, a CTE, ...)");
    return false;
  }
  return true;
}

// The subquery's join tree: returns the tables under `node` and records the equalities of its
// conditions, each usable in the directions its join allows.
std::set<int> Analysis::read_join_tree(Scope& scope, const PgNode* node) {
  std::set<int> rels;
  if (!node) return rels;
  if (node->kind == "RANGETBLREF") {
    const auto found = scope.rel_of_rtindex.find(static_cast<int>(node->integer("rtindex")));
    if (found != scope.rel_of_rtindex.end()) rels.insert(found->second);
  } else if (node->kind == "FROMEXPR") {
    for (const auto& item : node->items("fromlist")) {
      const auto part = read_join_tree(scope, item.as_node());
      rels.insert(part.begin(), part.end());
    }
    read_conditions(scope, node->child("quals"), nullptr);
  } else if (node->kind == "JOINEXPR") {
    const auto left = read_join_tree(scope, node->child("larg"));
    const auto right = read_join_tree(scope, node->child("rarg"));
    rels.insert(left.begin(), left.end());
    rels.insert(right.begin(), right.end());
    const long long type = node->integer("jointype", -1);
    if (type == join_inner)
      read_conditions(scope, node->child("quals"), nullptr);
    else if (type == join_left)
      read_conditions(scope, node->child("quals"), &right);
    else if (type == join_right)
      read_conditions(scope, node->child("quals"), &left);
    // FULL JOIN: its condition restricts neither side.
    (void)join_full;
  }
  return rels;
}

// The conjuncts of `qual` that compare two columns of different tables (or a table and the
// seed's row). Under an outer join (`nullable` is its nullable side) a condition ties a nullable
// table to a preserved one in that direction only.
void Analysis::read_conditions(Scope& scope, const PgNode* qual, const std::set<int>* nullable) {
  if (!qual) return;
  if (qual->kind == "BOOLEXPR" && qual->scalar("boolop") == "and") {
    for (const auto& arg : qual->items("args")) read_conditions(scope, arg.as_node(), nullable);
    return;
  }
  if (qual->kind != "OPEXPR") return;
  const auto args = qual->items("args");
  if (args.size() != 2) return;
  const auto a = resolve(scope, strip_relabel(args[0].as_node()));
  const auto b = resolve(scope, strip_relabel(args[1].as_node()));
  if (!a || !b || a->rel == b->rel) return;
  Equality equality{*a, *b, std::string(qual->scalar("opno")), true, true};
  // In a nested subquery, a condition between its table and the outer subquery's ties the inner
  // row to the outer one only: the outer rows are read whatever the inner subquery finds.
  const auto inner = [&](const ColumnRef& ref) {
    return scope.depth == 1 && ref.rel != kSeed && ref.rel >= scope.nested_first_rel;
  };
  if (inner(*a) != inner(*b) && a->rel != kSeed && b->rel != kSeed) {
    equality.both_ways = false;
    if (inner(*b)) {
      std::swap(equality.a, equality.b);
      equality.a_left = false;
    }
  }
  if (nullable) {
    const bool a_null = a->rel != kSeed && nullable->count(a->rel);
    const bool b_null = b->rel != kSeed && nullable->count(b->rel);
    if (!a_null && !b_null) return;
    if (a_null != b_null) {
      equality.both_ways = false;
      if (b_null) {  // from the nullable side
        std::swap(equality.a, equality.b);
        equality.a_left = false;
      }
    }
  }
  scope.equalities.push_back(equality);
}

// The base table column (or seed row column) a Var reads, through join aliases.
std::optional<ColumnRef> Analysis::resolve(const Scope& scope, const PgNode* var) const {
  if (!var || var->kind != "VAR") return std::nullopt;
  const long long up = var->integer("varlevelsup", -1);
  const int varno = static_cast<int>(var->integer("varno"));
  const int attnum = static_cast<int>(var->integer("varattno"));
  if (attnum <= 0) return std::nullopt;
  if (up == scope.depth + 1) {
    if (varno != entity_rtindex_) return std::nullopt;
    return ColumnRef{kSeed, attnum};
  }
  if (up == 1 && scope.depth == 1) {  // a nested lookup's correlation with the outer subquery
    const auto found = scope.outer_rel_of_rtindex.find(varno);
    if (found == scope.outer_rel_of_rtindex.end()) return std::nullopt;
    return ColumnRef{found->second, attnum};
  }
  if (up != 0) return std::nullopt;
  if (const auto found = scope.rel_of_rtindex.find(varno); found != scope.rel_of_rtindex.end())
    return ColumnRef{found->second, attnum};
  const auto rtable = scope.query->items("rtable");
  if (varno < 1 || varno > static_cast<int>(rtable.size())) return std::nullopt;
  const PgNode* rte = rtable[static_cast<std::size_t>(varno) - 1].as_node();
  if (!rte || rte->integer("rtekind", -1) != rte_join) return std::nullopt;
  const auto aliases = rte->items("joinaliasvars");
  if (attnum > static_cast<int>(aliases.size())) return std::nullopt;
  return resolve(scope, strip_relabel(aliases[static_cast<std::size_t>(attnum) - 1].as_node()));
}

// Records the columns a Var reads: of a table, of the seed's row, or all those behind a join's.
void Analysis::note_var(Scope& scope, const PgNode& var) {
  const long long up = var.integer("varlevelsup", -1);
  const int varno = static_cast<int>(var.integer("varno"));
  const int attnum = static_cast<int>(var.integer("varattno"));
  if (up == scope.depth + 1) {
    if (varno == entity_rtindex_) note_seed_column(attnum);
    return;
  }
  if (up == 1 && scope.depth == 1) {
    if (const auto found = scope.outer_rel_of_rtindex.find(varno);
        found != scope.outer_rel_of_rtindex.end())
      scope.columns[found->second].insert(attnum);
    return;
  }
  if (up != 0) return;
  if (const auto found = scope.rel_of_rtindex.find(varno); found != scope.rel_of_rtindex.end()) {
    scope.columns[found->second].insert(attnum);
    return;
  }
  const auto rtable = scope.query->items("rtable");
  if (varno < 1 || varno > static_cast<int>(rtable.size())) return;
  const PgNode* rte = rtable[static_cast<std::size_t>(varno) - 1].as_node();
  if (!rte) return;
  const auto aliases = rte->items("joinaliasvars");
  for (std::size_t i = 0; i < aliases.size(); ++i) {
    if (attnum != 0 && static_cast<int>(i) + 1 != attnum) continue;
    walk_nodes(aliases[i], [&](const PgNode& inner) {
      if (inner.kind == "VAR") note_var(scope, inner);
      return true;
    });
  }
}

void Analysis::read_columns(Scope& scope) {
  for (const auto& [name, value] : scope.query->fields) {
    if (name == "rtable") continue;  // join alias lists name every column, read or not
    walk_nodes(value, [&](const PgNode& node) {
      if (node.kind == "VAR") note_var(scope, node);
      return node.kind != "SUBLINK";  // a nested lookup's columns are read at its own level
    });
  }
}

// Names and kinds of every table, names of their columns, and what each compared operator is:
// an equality of a btree or hash family, with the hash function of each input type.
void Analysis::load_catalog() {
  std::set<std::string> oids{entity_oid_};
  std::set<std::string> opnos;
  for (const auto& scope : scopes_) {
    for (const auto& rel : scope.rels) oids.insert(rel.oid);
    for (const auto& equality : scope.equalities) opnos.insert(equality.opno);
  }
  const auto relations = connection_.query(
      "reading the tables a seed's expression reads",
      "SELECT c.oid::text, n.nspname, c.relname, c.relkind::text, EXISTS (SELECT 1 FROM "
      "pg_catalog.pg_inherits i WHERE i.inhparent = c.oid) FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::oid[])",
      {text_array_literal({oids.begin(), oids.end()})});
  for (int row = 0; row < PQntuples(relations.get()); ++row)
    relations_[text_at(relations, row, 0)] = {text_at(relations, row, 1),
                                              text_at(relations, row, 2),
                                              text_at(relations, row, 3),
                                              text_at(relations, row, 4) == "t",
                                              {}};
  const auto columns =
      connection_.query("reading the columns a seed's expression reads",
                        "SELECT attrelid::text, attnum, attname FROM pg_catalog.pg_attribute "
                        "WHERE attrelid = ANY ($1::oid[]) AND attnum > 0 AND NOT attisdropped",
                        {text_array_literal({oids.begin(), oids.end()})});
  for (int row = 0; row < PQntuples(columns.get()); ++row)
    relations_[text_at(columns, row, 0)].columns[std::stoi(text_at(columns, row, 1))] =
        text_at(columns, row, 2);
  if (opnos.empty()) return;
  // The hash support function of a type in the operator's hash family, as "schema"."name".
  const std::string hash_of =
      "(SELECT pg_catalog.quote_ident(pn.nspname) || '.' || pg_catalog.quote_ident(p.proname) "
      "FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_am am ON am.oid = ao.amopmethod "
      "JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily = ao.amopfamily AND ap.amprocnum = 1 "
      "AND ap.amproclefttype = %1 AND ap.amprocrighttype = %1 "
      "JOIN pg_catalog.pg_proc p ON p.oid = ap.amproc "
      "JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace "
      "WHERE ao.amopopr = o.oid AND am.amname = 'hash' LIMIT 1)";
  const auto with = [&](const char* type) {
    std::string out = hash_of;
    for (std::size_t at; (at = out.find("%1")) != std::string::npos;) out.replace(at, 2, type);
    return out;
  };
  const auto operators = connection_.query(
      "reading the operators of a seed's correlations",
      "SELECT o.oid::text, EXISTS (SELECT 1 FROM pg_catalog.pg_amop ao JOIN pg_catalog.pg_am am "
      "ON am.oid = ao.amopmethod WHERE ao.amopopr = o.oid AND ((am.amname = 'btree' AND "
      "ao.amopstrategy = 3) OR (am.amname = 'hash' AND ao.amopstrategy = 1))), "
      "pg_catalog.format_type(o.oprleft, NULL), pg_catalog.format_type(o.oprright, NULL), " +
          with("o.oprleft") + ", " + with("o.oprright") +
          ", 'OPERATOR(' || pg_catalog.quote_ident(n.nspname) || '.' || o.oprname || ')', "
          "o.oid::pg_catalog.regoperator::text FROM pg_catalog.pg_operator o "
          "JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace WHERE o.oid = ANY ($1::oid[])",
      {text_array_literal({opnos.begin(), opnos.end()})});
  for (int row = 0; row < PQntuples(operators.get()); ++row)
    operators_[text_at(operators, row, 0)] = {
        text_at(operators, row, 1) == "t", text_at(operators, row, 2), text_at(operators, row, 3),
        text_at(operators, row, 4),        text_at(operators, row, 5), text_at(operators, row, 6),
        text_at(operators, row, 7)};
}

// Only plain tables fire the triggers that keep a column exact for every write.
bool Analysis::check_relations() {
  for (const auto& scope : scopes_)
    for (const auto& rel : scope.rels) {
      const auto found = relations_.find(rel.oid);
      if (found == relations_.end())
        throw std::runtime_error("a table the seed's expression reads disappeared while checking");
      const RelationInfo& info = found->second;
      const std::string name = info.schema + "." + info.name;
      const char* why = nullptr;
      if (rel.oid == entity_oid_)
        why = " is the seed's own table: a value computed from other rows of it";
      else if (info.relkind == "v")
        why = " is a view, whose underlying writes no trigger on it would see";
      else if (info.relkind == "m")
        why = " is a materialized view, which REFRESH rewrites without row triggers";
      else if (info.relkind == "f")
        why = " is a foreign table, written elsewhere without triggers here";
      else if (info.relkind == "p")
        why = " is a partitioned table, whose partitions can be written directly";
      else if (info.relkind != "r")
        why = " is not a table";
      else if (info.has_children)
        why = " has inheritance children, whose writes its triggers would not see";
      if (why) {
        refuse("the expression reads " + name + ", which" + why);
        return false;
      }
    }
  return true;
}

std::string Analysis::column_name(const std::string& oid, int attnum) const {
  const auto relation = relations_.find(oid);
  if (relation == relations_.end()) return "?";
  const auto column = relation->second.columns.find(attnum);
  return column == relation->second.columns.end() ? "?" : column->second;
}

// "t.account_id" / "account.id", as the expression's own aliases name them.
std::string Analysis::shown(const Scope& scope, const ColumnRef& ref) const {
  if (ref.rel == kSeed) {
    const auto entity = relations_.find(entity_oid_);
    return (entity == relations_.end() ? std::string("?") : entity->second.name) + "." +
           column_name(entity_oid_, ref.attnum);
  }
  const Rel& rel = scope.rels[static_cast<std::size_t>(ref.rel)];
  return rel.alias + "." + column_name(rel.oid, ref.attnum);
}

TableDependency& Analysis::table(const std::string& oid) {
  auto [it, fresh] = tables_.try_emplace(oid);
  if (fresh) {
    const RelationInfo& info = relations_.at(oid);
    it->second.schema = info.schema;
    it->second.table = info.name;
  }
  return it->second;
}

// For every table of the subquery: the shortest chain of equalities to the seed's row.
void Analysis::bound(const Scope& scope) {
  for (int rel = 0; rel < static_cast<int>(scope.rels.size()); ++rel) {
    auto found = mapping(scope, rel);
    if (!out_.refusal.empty()) return;
    if (!found) {
      std::string compared;
      for (const auto& e : scope.equalities)
        if (e.a.rel == rel || e.b.rel == rel)
          compared +=
              (compared.empty() ? "" : ", ") + shown(scope, e.a) + " with " + shown(scope, e.b);
      const Rel& r = scope.rels[static_cast<std::size_t>(rel)];
      const RelationInfo& info = relations_.at(r.oid);
      refuse("the rows it reads from " + info.schema + "." + info.name + " (as " + r.alias +
             ") are not tied to the seed's row by a chain of equalities between columns" +
             (compared.empty() ? std::string() : " (it only compares " + compared + ")") +
             ", so no trigger could tell which rows a change to that table affects");
      return;
    }
    TableDependency& dependency = table(scope.rels[static_cast<std::size_t>(rel)].oid);
    if (std::find(dependency.mappings.begin(), dependency.mappings.end(), *found) ==
        dependency.mappings.end())
      dependency.mappings.push_back(std::move(*found));
  }
}

// The chain from table `rel` to the seed's row with the fewest tables between, following only
// equalities of btree or hash families in the directions their joins allow; nullopt when none.
std::optional<DependencyMapping> Analysis::mapping(const Scope& scope, int rel) {
  const int seed = static_cast<int>(scope.rels.size());
  const auto node = [&](const ColumnRef& ref) { return ref.rel == kSeed ? seed : ref.rel; };
  const auto usable = [&](const Equality& e) {
    const auto op = operators_.find(e.opno);
    return op != operators_.end() && op->second.equality;
  };
  std::vector<int> previous(static_cast<std::size_t>(seed) + 1, -2);
  std::deque<int> queue{rel};
  previous[static_cast<std::size_t>(rel)] = -1;
  while (!queue.empty() && previous[static_cast<std::size_t>(seed)] == -2) {
    const int at = queue.front();
    queue.pop_front();
    for (const auto& e : scope.equalities) {
      if (!usable(e)) continue;
      int next = -1;
      if (node(e.a) == at)
        next = node(e.b);
      else if (e.both_ways && node(e.b) == at)
        next = node(e.a);
      if (next < 0 || previous[static_cast<std::size_t>(next)] != -2) continue;
      previous[static_cast<std::size_t>(next)] = at;
      queue.push_back(next);
    }
  }
  if (previous[static_cast<std::size_t>(seed)] == -2) return std::nullopt;
  std::vector<int> chain;  // rel, ..., seed
  for (int at = seed; at != -1; at = previous[static_cast<std::size_t>(at)]) chain.push_back(at);
  std::reverse(chain.begin(), chain.end());

  // Every usable equality from `from` toward `to`, as (from's column, to's column, operator,
  // whether from's column is the operator's left argument).
  struct Pair {
    ColumnRef from, to;
    const OperatorInfo* op;
    bool from_left;
  };
  const auto between = [&](int from, int to) {
    std::vector<Pair> out;
    for (const auto& e : scope.equalities) {
      if (!usable(e)) continue;
      const OperatorInfo* op = &operators_.at(e.opno);
      if (node(e.a) == from && node(e.b) == to)
        out.push_back({e.a, e.b, op, e.a_left});
      else if (e.both_ways && node(e.b) == from && node(e.a) == to)
        out.push_back({e.b, e.a, op, !e.a_left});
    }
    return out;
  };
  DependencyMapping out;
  for (std::size_t i = 1; i + 1 < chain.size(); ++i) {
    const Rel& step_rel = scope.rels[static_cast<std::size_t>(chain[i])];
    const RelationInfo& info = relations_.at(step_rel.oid);
    JoinStep step{info.schema, info.name, {}, {}, {}};
    const Rel& from_rel = scope.rels[static_cast<std::size_t>(chain[i - 1])];
    for (const auto& p : between(chain[i - 1], chain[i])) {
      step.on.emplace_back(column_name(from_rel.oid, p.from.attnum),
                           column_name(step_rel.oid, p.to.attnum));
      step.operators_sql.push_back(p.op->sql);
      const OperatorInfo& op = *p.op;
      step.equalities.push_back({p.from_left ? op.left_type : op.right_type,
                                 p.from_left ? op.right_type : op.left_type,
                                 p.from_left ? op.left_hash : op.right_hash,
                                 p.from_left ? op.right_hash : op.left_hash, p.from_left});
    }
    out.path.push_back(std::move(step));
  }
  const Rel& last = scope.rels[static_cast<std::size_t>(chain[chain.size() - 2])];
  for (const auto& p : between(chain[chain.size() - 2], seed)) {
    const OperatorInfo& op = *p.op;
    KeyEquality key;
    key.seed_column = column_name(entity_oid_, p.to.attnum);
    key.column = column_name(last.oid, p.from.attnum);
    key.seed_type = p.from_left ? op.right_type : op.left_type;
    key.type = p.from_left ? op.left_type : op.right_type;
    key.seed_hash = p.from_left ? op.right_hash : op.left_hash;
    key.hash = p.from_left ? op.left_hash : op.right_hash;
    key.operator_sql = op.sql;
    if (key.seed_hash.empty() || key.hash.empty()) {
      refuse("its correlation " + shown(scope, p.from) + " = " + shown(scope, p.to) + " uses " +
             op.shown +
             ", which belongs to no hash operator family, so writers of both tables could not "
             "agree on which seed rows to lock");
      return std::nullopt;
    }
    out.key.push_back(std::move(key));
  }
  return out;
}

// The tables by name, each with the columns the subqueries read of it; the seed's inputs.
void Analysis::finish() {
  std::map<std::string, std::set<int>> read;  // oid → attnums
  for (const auto& scope : scopes_)
    for (const auto& [rel, attnums] : scope.columns)
      read[scope.rels[static_cast<std::size_t>(rel)].oid].insert(attnums.begin(), attnums.end());
  const auto names = [&](const std::string& oid, const std::set<int>& attnums) {
    std::vector<std::string> out;
    for (const auto& [attnum, name] : relations_.at(oid).columns)
      if (attnums.count(0) || attnums.count(attnum)) out.push_back(name);
    return out;
  };
  for (auto& [oid, dependency] : tables_) {
    dependency.columns = names(oid, read[oid]);
    out_.tables.push_back(std::move(dependency));
  }
  std::sort(out_.tables.begin(), out_.tables.end(), [](const auto& a, const auto& b) {
    return std::tie(a.schema, a.table) < std::tie(b.schema, b.table);
  });
  out_.seed_columns = names(entity_oid_, seed_attnums_);
}

}  // namespace

std::string SeedDependencies::describe(std::string_view seed_table) const {
  std::string out;
  for (const auto& dependency : tables) {
    out += (out.empty() ? "" : "; ") + dependency.schema + "." + dependency.table + ":";
    std::string mappings;
    for (const auto& mapping : dependency.mappings) {
      std::string chain;
      std::string previous = dependency.table;
      for (const auto& step : mapping.path) {
        for (const auto& [from, to] : step.on)
          chain +=
              (chain.empty() ? "" : ", ") + step.table + "." + to + " = " + previous + "." + from;
        previous = step.table;
      }
      for (const auto& key : mapping.key)
        chain += (chain.empty() ? "" : ", ") + previous + "." + key.column + " = " +
                 std::string(seed_table) + "." + key.seed_column;
      mappings += (mappings.empty() ? " " : " or ") + chain;
    }
    out += mappings;
  }
  return out;
}

std::string chain_refusal(const SeedDependencies& dependencies) {
  for (const auto& table : dependencies.tables) {
    const std::string name = table.schema + "." + table.table;
    bool direct = false, chained = false;
    for (const auto& mapping : table.mappings) {
      if (mapping.path.size() > 1)
        return "it reaches " + name + " through " + std::to_string(mapping.path.size()) +
               " middle tables (a chain of lookups deeper than one); a change to a middle table "
               "would have to lock join keys at every level, which the materializer does only "
               "for one middle table";
      direct = direct || mapping.path.empty();
      chained = chained || mapping.path.size() == 1;
      for (const auto& step : mapping.path)
        for (std::size_t i = 0; i < step.equalities.size(); ++i)
          if (step.equalities[i].from_hash.empty() || step.equalities[i].to_hash.empty())
            return "its join " + step.table + "." + step.on[i].second + " = " + table.table + "." +
                   step.on[i].first +
                   " uses an operator of no hash operator family, so writers of both tables "
                   "could not agree on which keys to lock";
    }
    if (direct && chained)
      return "it reads " + name +
             " both directly and through a chain of lookups; the two would take their key "
             "locks in different orders, so write the expression so that each table is reached "
             "one way";
  }
  return {};
}

SeedDependencies analyse_dependencies(ControlConnection& connection, std::string_view tree,
                                      const std::string& entity_oid) {
  return Analysis(connection, entity_oid).run(tree);
}

}  // namespace seedproxy::seeds
