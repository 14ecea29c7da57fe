// Admin console fuzzing: statements split to themselves; each is a command or a coded error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/admin/admin_command_parser.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace seedproxy::proxy;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool is_sqlstate(std::string_view code) {
  if (code.size() != 5) return false;
  for (char c : code)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return false;
  return true;
}

void check_command(const std::string& statement) {
  const auto parsed = parse_command(statement);
  // Whitespace around a statement never changes its meaning.
  const auto padded = parse_command(" \t\n" + statement + "\r\n ");
  FUZZ_CHECK(parsed.index() == padded.index(), "padding changed the answer");
  if (const auto* error = std::get_if<AdminError>(&parsed)) {
    FUZZ_CHECK(is_sqlstate(error->code),
               "an error with SQLSTATE \"" + seedproxy::fuzz::shown(error->code) + "\"");
    FUZZ_CHECK(!error->message.empty(), "an error without a message");
    FUZZ_CHECK(std::get<AdminError>(padded).message == error->message, "padding changed the error");
    // The error must encode as an ErrorResponse.
    const auto bytes = error_bytes(*error);
    FUZZ_CHECK(bytes.size() > 5 && bytes[0] == std::byte{'E'}, "not an ErrorResponse");
    return;
  }
  const auto& command = std::get<AdminCommand>(parsed);
  const auto& again = std::get<AdminCommand>(padded);
  FUZZ_CHECK(command.verb == again.verb && command.target == again.target,
             "padding changed the command");
  // KILL's target is a database name as PostgreSQL folds it: a quoted one may hold spaces.
  if (!command.target.empty() && command.verb != AdminVerb::kill)
    FUZZ_CHECK(!is_space(command.target.front()) && !is_space(command.target.back()),
               "an untrimmed target: " + seedproxy::fuzz::shown(command.target));
  if (command.verb == AdminVerb::materialize || command.verb == AdminVerb::rollback ||
      command.verb == AdminVerb::kill)
    FUZZ_CHECK(!command.target.empty(), "MATERIALIZE, ROLLBACK or KILL without a target");
  if (command.verb != AdminVerb::materialize && command.verb != AdminVerb::rollback &&
      command.verb != AdminVerb::pause && command.verb != AdminVerb::resume &&
      command.verb != AdminVerb::kill)
    FUZZ_CHECK(command.target.empty(), "a target on a command that takes none");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> statements = split_statements(query);
  for (const auto& statement : statements) {
    FUZZ_CHECK(!statement.empty(), "an empty statement");
    FUZZ_CHECK(!is_space(statement.front()) && !is_space(statement.back()),
               "an untrimmed statement: " + seedproxy::fuzz::shown(statement));
    // A statement is a fixed point: splitting it again gives itself back.
    const auto again = split_statements(statement);
    FUZZ_CHECK(again.size() == 1 && again.front() == statement,
               "a statement splits differently on its own: " + seedproxy::fuzz::shown(statement) +
                   " -> " + std::to_string(again.size()) + " statement(s)" +
                   (again.empty() ? "" : ", first " + seedproxy::fuzz::shown(again.front())));
    check_command(statement);
  }
  return 0;
}
