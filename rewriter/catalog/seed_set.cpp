// Compiling seeds: expression templates bound per alias, lookups, and the cheap pre-filter.
#include "rewriter/catalog/seed_set.hpp"

#include <algorithm>

#include "common/identifiers.hpp"
#include "common/text.hpp"
#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/parse/pg_parser.hpp"

namespace seedproxy::rewriter {
namespace {

constexpr std::string_view expression_prefix = "SELECT ";

enum class CutKind : std::uint8_t { column, local, local_slot, literal };

struct Cut {
  int begin;
  int end;
  std::string text;  // the column, the local range variable, or replacement SQL
  CutKind kind = CutKind::column;
};

bool has_column(const Relation& relation, const std::string& column) {
  return std::find(relation.columns.begin(), relation.columns.end(), column) !=
         relation.columns.end();
}

// A column seedproxy's materialization added to the relation (it carries the mark).
bool has_marked_column(const Relation& relation, const std::string& column) {
  const auto at = std::find(relation.columns.begin(), relation.columns.end(), column);
  return at != relation.columns.end() &&
         relation.added_by_seedproxy(static_cast<std::size_t>(at - relation.columns.begin()));
}

void add_filter_word(std::vector<std::string>& words, std::string_view word) {
  std::string lower;
  for (char c : word) lower += text::ascii_lower(c);
  if (std::find(words.begin(), words.end(), lower) == words.end())
    words.push_back(std::move(lower));
}

// Finds the references to the entity's columns, minding subqueries that bring their own
// relations into scope (their columns and aliases shadow the entity's), and every spelling of
// those subqueries' range variables, so binding can rename them if they collide.
class ReferenceFinder {
 public:
  ReferenceFinder(const Relation& entity, const Catalog& catalog, const std::vector<Token>& tokens,
                  std::string_view text)
      : entity_(entity), catalog_(catalog), tokens_(tokens), text_(text) {}

  void walk(const Json& node) {
    if (node.is_array()) {
      for (const auto& child : node) walk(child);
      return;
    }
    if (!node.is_object()) return;
    if (const auto it = node.find("ColumnRef"); it != node.end() && node.size() == 1) {
      visit_column_ref(*it);
      return;
    }
    if (const auto it = node.find("SelectStmt"); it != node.end() && node.size() == 1) {
      select(*it);
      return;
    }
    for (const auto& [key, child] : node.items()) walk(child);
  }

  std::vector<Cut> cuts;
  std::vector<std::string> locals;
  bool cross_table = false;
  std::string error;

 private:
  struct Local {
    std::string refname;
    const Relation* relation;
  };

  void select(const Json& body) {
    cross_table = true;
    if (body.value("op", "SETOP_NONE") != "SETOP_NONE") {
      select(node_at(body, "larg"));  // set operation branches are untagged bodies
      select(node_at(body, "rarg"));
      return;
    }
    std::vector<Local> frame;
    collect_locals(list_at(body, "fromClause"), frame);
    locals_.push_back(std::move(frame));
    for (const auto& [key, child] : body.items())
      if (key != "fromClause") walk(child);
    walk(list_at(body, "fromClause"));
    locals_.pop_back();
  }

  void collect_locals(const Json& from, std::vector<Local>& frame) {
    for (const auto& item : from) collect_locals_of(item, frame);
  }

  void collect_locals_of(const Json& item, std::vector<Local>& frame) {
    for_tagged(item, [&](std::string_view kind, const Json& body) {
      if (kind == "RangeVar") {
        range_var(body, frame);
      } else if (kind == "JoinExpr") {
        for (const char* side : {"larg", "rarg"}) collect_locals_of(node_at(body, side), frame);
      } else if (body.contains("alias")) {
        frame.push_back({string_at(body["alias"], "aliasname"), nullptr});
      }
    });
  }

  void range_var(const Json& body, std::vector<Local>& frame) {
    const auto schema = string_at(body, "schemaname");
    const auto name = string_at(body, "relname");
    const auto alias = body.contains("alias") ? string_at(body["alias"], "aliasname") : "";
    const Relation* relation = schema.empty()
                                   ? catalog_.resolve(std::vector<std::string>{"public"}, name)
                                   : catalog_.find(schema, name);
    const int location = body.value("location", -1);
    const auto name_end = reference_end(tokens_, location, schema.empty() ? 1 : 2);
    // "name *" and "ONLY ( name )": an alias, or room for one, comes after the '*' or ')'.
    const auto extent = relation_extent(text_, tokens_, location, schema.empty() ? 1 : 2,
                                        !body.value("inh", false));
    frame.push_back({alias.empty() ? name : alias, relation});
    locals.push_back(frame.back().refname);
    if (!name_end || !extent) return;
    // Schema-qualify, so a client's CTE or search_path never changes what the expression reads.
    if (schema.empty() && relation)
      cuts.push_back(
          {location, *name_end,
           pg::quote_identifier(relation->schema) + "." + pg::quote_identifier(relation->name),
           CutKind::literal});
    if (alias.empty()) {
      cuts.push_back({extent->end, extent->end, name, CutKind::local_slot});
      return;
    }
    auto next = std::lower_bound(tokens_.begin(), tokens_.end(), extent->end,
                                 [](const Token& t, int at) { return t.start < at; });
    if (next != tokens_.end() && token_is(text_, *next, "as")) ++next;
    if (next != tokens_.end()) cuts.push_back({next->start, next->end, alias, CutKind::local});
  }

  bool local_column(const std::string& column) const {
    for (const auto& frame : locals_)
      for (const auto& local : frame)
        if (local.relation && has_column(*local.relation, column)) return true;
    return false;
  }

  bool local_refname(const std::string& name) const {
    for (const auto& frame : locals_)
      for (const auto& local : frame)
        if (local.refname == name) return true;
    return false;
  }

  void visit_column_ref(const Json& body) {
    const auto ref = read_column_ref(body);
    if (ref.names.empty()) return;
    const auto& names = ref.names;
    // A local range variable as qualifier: "t.amount", "public.txn.amount".
    if (names.size() >= 2 || (ref.star && !names.empty())) {
      const std::size_t qualifier = ref.star ? names.size() : names.size() - 1;
      const std::string& local = names[qualifier - 1];
      if (local_refname(local)) {
        const auto end = reference_end(tokens_, ref.location, qualifier);
        if (end) cuts.push_back({ref.location, *end, local, CutKind::local});
        return;
      }
    }
    if (ref.star) return;
    const std::string& column = names.back();
    bool entity_ref = false;
    if (names.size() == 1) {
      entity_ref = !local_column(column);
    } else if (names.size() == 2) {
      entity_ref = names[0] == entity_.name;
    } else if (names.size() == 3) {
      entity_ref = names[0] == entity_.schema && names[1] == entity_.name;
    }
    if (!entity_ref) return;
    if (!has_column(entity_, column)) {
      error =
          "column \"" + column + "\" of " + entity_.schema + "." + entity_.name + " does not exist";
      return;
    }
    const auto end = reference_end(tokens_, ref.location, names.size());
    if (!end) {
      error = "could not locate a column reference in the expression";
      return;
    }
    cuts.push_back({ref.location, *end, column, CutKind::column});
  }

  const Relation& entity_;
  const Catalog& catalog_;
  const std::vector<Token>& tokens_;
  std::string_view text_;
  std::vector<std::vector<Local>> locals_;
};

// Whether a node is built only from column references, constants, casts and strict built-in
// arithmetic or comparison operators: then any NULL input makes the whole value NULL.
bool strictly_built(const Json& node) {
  if (node.is_array()) {
    for (const auto& child : node)
      if (!strictly_built(child)) return false;
    return true;
  }
  if (!node.is_object()) return true;
  if (node.size() != 1) {
    for (const auto& [key, child] : node.items())
      if (!strictly_built(child)) return false;
    return true;
  }
  const auto it = node.begin();
  const std::string_view kind = it.key();
  const Json& body = it.value();
  if (kind == "ResTarget") return strictly_built(node_at(body, "val"));
  if (kind == "ColumnRef" || kind == "A_Const") return true;
  if (kind == "TypeCast") return strictly_built(node_at(body, "arg"));
  if (kind == "A_Expr") {
    if (string_at(body, "kind") != "AEXPR_OP") return false;
    const auto& name = list_at(body, "name");
    if (name.size() != 1) return false;
    static const char* const strict_operators[] = {"+", "-",  "*",  "/", "%",  "^", "<",
                                                   ">", "<=", ">=", "=", "<>", "!="};
    const auto op = string_at(node_at(name[0], "String"), "sval");
    if (std::find(std::begin(strict_operators), std::end(strict_operators), op) ==
        std::end(strict_operators))
      return false;
    return strictly_built(node_at(body, "lexpr")) && strictly_built(node_at(body, "rexpr"));
  }
  return false;
}

}  // namespace

std::string_view to_string(Phase phase) noexcept {
  switch (phase) {
    case Phase::declared:
      return "declared";
    case Phase::virtual_:
      return "virtual";
    case Phase::materializing:
      return "materializing";
    case Phase::materialized:
      return "materialized";
    case Phase::rolled_back:
      return "rolled_back";
  }
  return "unknown";
}

std::optional<Phase> phase_from_string(std::string_view text) noexcept {
  for (const Phase phase : all_phases)
    if (to_string(phase) == text) return phase;
  return std::nullopt;
}

std::string ExpressionTemplate::compile(std::string_view expression, const Relation& entity,
                                        const Catalog& catalog) {
  const std::string text = std::string(expression_prefix) + std::string(expression);
  // Through the thread's memo: a snapshot after DDL compiles the same expressions again.
  const auto shared = parse_sql_shared(text);
  const ParsedSql& parsed = *shared;
  if (parsed.failure) {
    const int at = parsed.failure->position - static_cast<int>(expression_prefix.size());
    return "expression does not parse: " + parsed.failure->message +
           (at > 0 ? " at character " + std::to_string(at) : "");
  }
  const auto& statements = list_at(parsed.tree.root(), "stmts");
  const Json* select = nullptr;
  if (statements.size() == 1) {
    const auto& stmt = node_at(statements[0], "stmt");
    if (const auto it = stmt.find("SelectStmt"); it != stmt.end()) select = &*it;
  }
  // Exactly "SELECT <one unnamed target>": no FROM, WHERE, second target or trailing clause.
  if (!select || list_at(*select, "targetList").size() != 1 || select->size() != 3 ||
      node_at(list_at(*select, "targetList")[0], "ResTarget").contains("name"))
    return "expression must be exactly one scalar expression";
  ReferenceFinder finder(entity, catalog, parsed.tokens, text);
  finder.walk(list_at(*select, "targetList"));
  if (!finder.error.empty()) return finder.error;

  std::stable_sort(finder.cuts.begin(), finder.cuts.end(),
                   [](const Cut& a, const Cut& b) { return a.begin < b.begin; });
  pieces_.clear();
  int at = static_cast<int>(expression_prefix.size());
  for (const auto& cut : finder.cuts) {
    if (cut.begin < at) continue;
    pieces_.push_back(
        {text.substr(static_cast<std::size_t>(at), static_cast<std::size_t>(cut.begin - at)),
         PieceKind::literal,
         {}});
    const PieceKind kind = cut.kind == CutKind::column       ? PieceKind::column
                           : cut.kind == CutKind::local      ? PieceKind::local
                           : cut.kind == CutKind::local_slot ? PieceKind::local_slot
                                                             : PieceKind::literal;
    // A local stays as the seed spells it unless it must be renamed.
    pieces_.push_back({cut.text, kind,
                       text.substr(static_cast<std::size_t>(cut.begin),
                                   static_cast<std::size_t>(cut.end - cut.begin))});
    at = cut.end;
  }
  pieces_.push_back({text.substr(static_cast<std::size_t>(at)), PieceKind::literal, {}});
  locals_ = std::move(finder.locals);
  cross_table_ = finder.cross_table;
  null_propagating_ = !finder.cuts.empty() && strictly_built(list_at(*select, "targetList"));
  return {};
}

std::string ExpressionTemplate::bind(std::string_view alias) const { return bind(alias, {}); }

std::string ExpressionTemplate::bind(
    std::string_view alias, std::span<const std::pair<std::string, std::string>> renamed) const {
  // A range variable of the expression's own subqueries spelled like `alias` would capture
  // "alias"."column"; it gets a fresh name.
  std::string fresh;
  if (std::find(locals_.begin(), locals_.end(), alias) != locals_.end()) {
    for (int n = 1; fresh.empty() || fresh == alias ||
                    std::find(locals_.begin(), locals_.end(), fresh) != locals_.end();
         ++n)
      fresh = std::string(alias) + "_" + std::to_string(n);
  }
  const std::string qualifier = pg::quote_identifier(alias) + ".";
  std::string out;
  for (const auto& piece : pieces_) {
    switch (piece.kind) {
      case PieceKind::literal:
        out += piece.text;
        break;
      case PieceKind::column: {
        std::string_view column = piece.text;
        for (const auto& [from, to] : renamed)
          if (from == column) column = to;
        out += qualifier;
        out += pg::quote_identifier(column);
        break;
      }
      case PieceKind::local:
        out += !fresh.empty() && piece.text == alias ? pg::quote_identifier(fresh) : piece.written;
        break;
      case PieceKind::local_slot:
        if (!fresh.empty() && piece.text == alias) out += " AS " + pg::quote_identifier(fresh);
        break;
    }
  }
  return out;
}

std::vector<std::string> ExpressionTemplate::columns() const {
  std::vector<std::string> out;
  for (const auto& piece : pieces_)
    if (piece.kind == PieceKind::column &&
        std::find(out.begin(), out.end(), piece.text) == out.end())
      out.push_back(piece.text);
  return out;
}

SeedSet SeedSet::compile(const std::vector<SeedDefinition>& definitions, const Catalog& catalog,
                         std::uint64_t version, std::vector<std::string>& errors) {
  SeedSet set;
  set.version_ = version;
  for (const auto& definition : definitions) {
    const std::string name =
        definition.schema + "." + definition.table + "." + definition.attribute;
    const Relation* entity = catalog.find(definition.schema, definition.table);
    if (definition.phase == Phase::rolled_back) {
      // Unknown to clients. But while the engine has not dropped its column (or this catalog has
      // not seen it dropped) the table's '*' must be spelled out without it (table_shape).
      if (entity && has_marked_column(*entity, definition.attribute))
        add_filter_word(set.filter_words_, definition.table);
      continue;
    }
    if (!entity) {
      errors.push_back(name + ": relation " + definition.schema + "." + definition.table +
                       " does not exist");
      continue;
    }
    VirtualAttribute attribute{definition.schema, definition.table, definition.attribute,
                               definition.type,   definition.phase, {},
                               definition.place};
    // Materializing and materialized attributes already have their column upstream.
    if (attribute.phase == Phase::virtual_ && has_column(*entity, definition.attribute)) {
      // DDL that did not go through a proxy (through one it is refused): say what to do.
      errors.push_back(name + ": " + definition.table + " has a real column \"" +
                       definition.attribute +
                       "\" that seedproxy did not add, so clients read that column, not the seed; "
                       "drop the column (directly on the database) to serve the seed again, or "
                       "roll the seed back (ROLLBACK " +
                       name + " on the admin console) to keep the column");
      continue;
    }
    if (auto error = attribute.expression.compile(definition.expression, *entity, catalog);
        !error.empty()) {
      errors.push_back(name + ": " + error);
      continue;
    }
    if (attribute.live()) {
      add_filter_word(set.filter_words_, definition.attribute);
      add_filter_word(set.filter_words_, definition.table);
    }
    set.attributes_.push_back(std::move(attribute));
  }
  for (std::size_t i = 0; i < set.filter_words_.size(); ++i) {
    const auto first = static_cast<unsigned char>(set.filter_words_[i].front());
    const auto index = static_cast<std::uint32_t>(i);
    set.words_by_first_byte_[first].push_back(index);
    if (first >= 'a' && first <= 'z') set.words_by_first_byte_[first - 'a' + 'A'].push_back(index);
  }
  return set;
}

const VirtualAttribute* SeedSet::find(std::string_view schema, std::string_view table,
                                      std::string_view attribute) const {
  for (const auto& a : attributes_)
    if (a.schema == schema && a.table == table && a.name == attribute) return &a;
  return nullptr;
}

std::vector<const VirtualAttribute*> SeedSet::resolved_for(std::string_view schema,
                                                           std::string_view table) const {
  std::vector<const VirtualAttribute*> out;
  for (const auto& a : attributes_)
    if (a.schema == schema && a.table == table && a.resolved_by_proxy()) out.push_back(&a);
  return out;
}

std::vector<const VirtualAttribute*> SeedSet::live_for(std::string_view schema,
                                                       std::string_view table) const {
  std::vector<const VirtualAttribute*> out;
  for (const auto& a : attributes_)
    if (a.schema == schema && a.table == table && a.live()) out.push_back(&a);
  return out;
}

bool SeedSet::might_apply(std::string_view sql) const noexcept {
  // Same answer as searching for each word in turn (a case-insensitive substring match), in one
  // pass: at each byte only the words starting with it are compared.
  const std::size_t size = sql.size();
  for (std::size_t i = 0; i < size; ++i) {
    for (const auto index : words_by_first_byte_[static_cast<unsigned char>(sql[i])]) {
      const std::string& word = filter_words_[index];
      if (word.size() > size - i) continue;
      std::size_t j = 1;
      while (j < word.size() && text::ascii_lower(sql[i + j]) == word[j]) ++j;
      if (j == word.size()) return true;
    }
  }
  return false;
}

}  // namespace seedproxy::rewriter
