// A recursive reader for PostgreSQL's node text: {NODE :field value ...}, (lists), "strings",
// <> for null, and a Const's datum bytes in [ ... ].
#include "seeds/validate/node_tree.hpp"

#include <cstdlib>
#include <stdexcept>

namespace seedproxy::seeds {
namespace {

// PostgreSQL limits its own nesting by max_stack_depth; a tree deeper than this is not one it
// wrote for a seed's check view.
constexpr int max_depth = 4000;

[[nodiscard]] bool token_end(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\t' || c == '(' || c == ')' || c == '{' || c == '}' ||
         c == '"';
}

class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  TreeValue value(int depth) {
    if (depth > max_depth) fail("nests too deeply");
    skip_spaces();
    if (at_ >= text_.size()) fail("ends where a value was expected");
    const char c = text_[at_];
    if (c == '{') return node(depth);
    if (c == '(') return list(depth);
    if (c == '"') return string();
    if (text_.substr(at_, 2) == "<>") {
      at_ += 2;
      return {};
    }
    return scalar();
  }

  void expect_end() {
    skip_spaces();
    if (at_ != text_.size()) fail("has text after its last value");
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error("the stored query tree " + std::string(what) + " (at byte " +
                             std::to_string(at_) + ")");
  }

  void skip_spaces() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\t'))
      ++at_;
  }

  // A token up to a space or bracket; backslash escapes are kept out of the structure.
  std::string token() {
    std::string out;
    while (at_ < text_.size() && !token_end(text_[at_])) {
      if (text_[at_] == '\\' && at_ + 1 < text_.size()) ++at_;
      out += text_[at_++];
    }
    return out;
  }

  TreeValue scalar() {
    TreeValue out;
    out.kind = TreeValue::Kind::scalar;
    out.text = token();
    if (out.text.empty()) fail("has an empty token");
    // A Const's datum: ":constvalue 4 [ 1 0 0 0 0 0 0 0 ]".
    std::size_t look = at_;
    while (look < text_.size() && text_[look] == ' ') ++look;
    if (look < text_.size() && text_[look] == '[') {
      const std::size_t close = text_.find(']', look);
      if (close == std::string_view::npos) fail("leaves a datum's [ open");
      out.text += ' ';
      out.text.append(text_.substr(look, close + 1 - look));
      at_ = close + 1;
    }
    return out;
  }

  TreeValue string() {
    ++at_;  // the opening quote
    TreeValue out;
    out.kind = TreeValue::Kind::scalar;
    while (at_ < text_.size() && text_[at_] != '"') {
      if (text_[at_] == '\\' && at_ + 1 < text_.size()) ++at_;
      out.text += text_[at_++];
    }
    if (at_ >= text_.size()) fail("leaves a string open");
    ++at_;
    return out;
  }

  TreeValue list(int depth) {
    ++at_;  // (
    TreeValue out;
    out.kind = TreeValue::Kind::list;
    skip_spaces();
    // Typed lists start with their tag: (i 1 2), (o 16 23), (b 8 9).
    if (at_ + 1 < text_.size() && (text_[at_] == 'i' || text_[at_] == 'o' || text_[at_] == 'b') &&
        (text_[at_ + 1] == ' ' || text_[at_ + 1] == ')')) {
      out.text = std::string(1, text_[at_]);
      ++at_;
    }
    for (;;) {
      skip_spaces();
      if (at_ >= text_.size()) fail("leaves a list open");
      if (text_[at_] == ')') break;
      out.items.push_back(value(depth + 1));
    }
    ++at_;
    return out;
  }

  TreeValue node(int depth) {
    ++at_;  // {
    TreeValue out;
    out.kind = TreeValue::Kind::node;
    out.node = std::make_unique<PgNode>();
    out.node->kind = token();
    for (;;) {
      skip_spaces();
      if (at_ >= text_.size()) fail("leaves a node open");
      if (text_[at_] == '}') break;
      if (text_[at_] != ':') fail("has a node field without ':'");
      ++at_;
      std::string name = token();
      out.node->fields.emplace_back(std::move(name), value(depth + 1));
    }
    ++at_;
    return out;
  }

  std::string_view text_;
  std::size_t at_ = 0;
};

}  // namespace

const TreeValue* PgNode::field(std::string_view name) const noexcept {
  for (const auto& [key, value] : fields)
    if (key == name) return &value;
  return nullptr;
}

std::string_view PgNode::scalar(std::string_view name) const noexcept {
  const TreeValue* value = field(name);
  if (!value || value->kind != TreeValue::Kind::scalar) return {};
  return value->text;
}

long long PgNode::integer(std::string_view name, long long fallback) const noexcept {
  const std::string text(scalar(name));
  if (text.empty()) return fallback;
  char* end = nullptr;
  const long long out = std::strtoll(text.c_str(), &end, 10);
  return end && *end == '\0' ? out : fallback;
}

const PgNode* PgNode::child(std::string_view name) const noexcept {
  const TreeValue* value = field(name);
  return value ? value->as_node() : nullptr;
}

std::span<const TreeValue> PgNode::items(std::string_view name) const noexcept {
  const TreeValue* value = field(name);
  if (!value || value->kind != TreeValue::Kind::list) return {};
  return value->items;
}

TreeValue read_node_tree(std::string_view text) {
  Reader reader(text);
  TreeValue out = reader.value(0);
  reader.expect_end();
  return out;
}

}  // namespace seedproxy::seeds
