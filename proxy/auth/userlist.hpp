// PgBouncer's auth_file format (userlist.txt), as auth.file reads it: one `"user" "secret"` per
// line, `""` for a quote inside a field, `;` starting a comment line. Secrets are classified like
// rolpassword (StoredSecret): SCRAM secret, md5 hash, or plain text.
//
// Stricter than PgBouncer, so that a typo is an error with a line number instead of a silently
// different user: a field may not span lines; after the two fields only more quoted fields
// (ignored, as PgBouncer ignores the rest of the line), blanks or a `;` comment may follow;
// a user may appear once; text starting like a SCRAM secret must parse as one.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/stored_secret.hpp"

namespace seedproxy::auth {

// PgBouncer's MAX_USERNAME and MAX_PASSWORD.
inline constexpr std::size_t max_userlist_user_length = 128;
inline constexpr std::size_t max_userlist_secret_length = 2048;
inline constexpr std::size_t max_userlist_size = 16u << 20;
inline constexpr std::size_t max_userlist_errors = 20;

struct UserlistEntry {
  std::string user;
  StoredSecret secret;
  std::size_t line = 0;
};

struct UserlistError {
  std::size_t line = 0;  // 1-based; 0 for the file as a whole
  std::string message;
};

// "file:line: message", for the log line that names what was refused.
[[nodiscard]] std::string describe(const UserlistError& error, std::string_view file_name);

class Userlist {
 public:
  [[nodiscard]] const UserlistEntry* find(std::string_view user) const;
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] const std::map<std::string, UserlistEntry, std::less<>>& entries() const noexcept {
    return entries_;
  }

 private:
  friend struct UserlistParser;
  std::map<std::string, UserlistEntry, std::less<>> entries_;
};

struct UserlistParse {
  Userlist users;
  std::vector<UserlistError> errors;  // any error: refuse the whole file, keep the old list
  [[nodiscard]] bool ok() const noexcept { return errors.empty(); }
};

// Parses the file's text. The caller should wipe its copy of the text afterwards (cleanse()):
// it holds whatever plain-text passwords the file has.
[[nodiscard]] UserlistParse parse_userlist(std::string_view text);

}  // namespace seedproxy::auth
