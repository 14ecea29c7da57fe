// Line-by-line parsing of PgBouncer's userlist format, with an error per offending line.
#include "proxy/auth/userlist.hpp"

namespace seedproxy::auth {
namespace {

bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

void skip_blanks(std::string_view line, std::size_t& at) noexcept {
  while (at < line.size() && is_blank(line[at])) ++at;
}

// A quoted field starting at `at` (which is a '"'), unescaping "" to ". Appends to `out`.
// nullopt on success, else the error.
std::optional<std::string> read_quoted(std::string_view line, std::size_t& at, std::string& out,
                                       std::size_t limit, std::string_view what) {
  ++at;  // opening quote
  for (;;) {
    if (at >= line.size()) return "unterminated quoted " + std::string(what);
    const bool escaped_quote = line[at] == '"' && at + 1 < line.size() && line[at + 1] == '"';
    if (line[at] == '"' && !escaped_quote) {
      ++at;
      return std::nullopt;
    }
    if (out.size() >= limit)
      return std::string(what) + " longer than " + std::to_string(limit) + " bytes";
    out += line[at];
    at += escaped_quote ? 2 : 1;
  }
}

// After the two fields: more quoted fields, blanks, or a comment.
std::optional<std::string> check_rest(std::string_view line, std::size_t at) {
  for (;;) {
    skip_blanks(line, at);
    if (at >= line.size() || line[at] == ';') return std::nullopt;
    if (line[at] != '"') return "unexpected text after the secret (a missing quote?)";
    std::string ignored;
    ignored.reserve(max_userlist_secret_length);
    if (auto error = read_quoted(line, at, ignored, max_userlist_secret_length, "field"))
      return error;
    cleanse(ignored);
  }
}

}  // namespace

struct UserlistParser {
  UserlistParse result;

  void error(std::size_t line, std::string message) {
    if (result.errors.size() < max_userlist_errors)
      result.errors.push_back({line, std::move(message)});
  }

  // Parses one line that is neither blank nor a comment; `at` is its first non-blank character.
  void parse_line(std::string_view line, std::size_t at, std::size_t number) {
    if (line[at] != '"') return error(number, "expected a quoted user name");
    std::string user, secret;
    // Reserved so that growing never leaves a partial copy of the secret in freed memory.
    secret.reserve(max_userlist_secret_length);
    auto failure = read_quoted(line, at, user, max_userlist_user_length, "user name");
    if (!failure) {
      skip_blanks(line, at);
      if (at >= line.size() || line[at] != '"')
        failure = "expected a quoted secret after the user name";
      else
        failure = read_quoted(line, at, secret, max_userlist_secret_length, "secret");
    }
    if (!failure) failure = check_rest(line, at);
    if (!failure && user.empty()) failure = "empty user name";
    std::optional<StoredSecret> stored;
    if (!failure) {
      std::string why;
      stored = StoredSecret::classify(secret, why);
      if (!stored) failure = std::move(why);
    }
    cleanse(secret);
    if (!stored) return error(number, *failure);
    if (const auto* earlier = result.users.find(user))
      return error(
          number, "user \"" + user + "\" already defined on line " + std::to_string(earlier->line));
    auto key = user;
    result.users.entries_.emplace(std::move(key),
                                  UserlistEntry{std::move(user), std::move(*stored), number});
  }
};

std::string describe(const UserlistError& error, std::string_view file_name) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on ":" + to_string().
  std::string out(file_name);
  if (error.line > 0) {
    out += ':';
    out += std::to_string(error.line);
  }
  out += ": ";
  out += error.message;
  return out;
}

const UserlistEntry* Userlist::find(std::string_view user) const {
  const auto found = entries_.find(user);
  return found == entries_.end() ? nullptr : &found->second;
}

UserlistParse parse_userlist(std::string_view text) {
  UserlistParser parser;
  if (text.size() > max_userlist_size) {
    parser.error(0, "file larger than " + std::to_string(max_userlist_size) + " bytes");
    return std::move(parser.result);
  }
  std::size_t number = 0;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const auto line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++number;
    if (line.find('\0') != std::string_view::npos) {
      parser.error(number, "NUL byte in line");
      continue;
    }
    std::size_t at = 0;
    skip_blanks(line, at);
    if (at >= line.size() || line[at] == ';') continue;
    parser.parse_line(line, at, number);
  }
  return std::move(parser.result);
}

}  // namespace seedproxy::auth
