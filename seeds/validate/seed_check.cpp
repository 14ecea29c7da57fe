// One control connection per seeded database; every seed validated, every refusal kept.
#include "seeds/validate/seed_check.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <variant>

#include "seeds/control/control_connection.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {

SeedCheckReport check_seeds(const config::Config& config) {
  SeedCheckReport report;
  const ControlTarget target = control_target(config);
  std::vector<std::string> databases;
  for (const auto& seed : config.seeds)
    if (std::find(databases.begin(), databases.end(), seed.database) == databases.end())
      databases.push_back(seed.database);
  // Without seeds the control credentials are still checked: the proxy needs them to run.
  if (databases.empty()) databases.emplace_back("postgres");
  std::vector<std::string> unreachable;
  for (const auto& database : databases) {
    std::unique_ptr<ControlConnection> connection;
    try {
      connection = std::make_unique<ControlConnection>(target, database);
      for (const auto& seed : config.seeds) {
        if (seed.database != database) continue;
        auto outcome =
            validate_seed(*connection, seed, ValidationOptions{false, config.validation});
        if (const auto* refusal = std::get_if<Refusal>(&outcome)) {
          report.refusals.push_back(refusal->message);
          continue;
        }
        ++report.validated;
        for (const auto& warning : std::get<ValidatedSeed>(outcome).warnings)
          report.warnings.push_back(warning);
      }
    } catch (const ConnectError& e) {
      if (e.authentication_failed())
        report.errors.push_back(std::string(e.what()) +
                                " (check control.user and control.password)");
      else
        report.notes.push_back("database \"" + database + "\" not reachable (" + e.what() +
                               "): seeds checked for syntax only");
    } catch (const std::exception& e) {
      // Seeds of this database not validated before the failure were checked for syntax only.
      report.notes.push_back("database \"" + database + "\" not reachable (" + e.what() +
                             "): seeds checked for syntax only");
    }
  }
  return report;
}

}  // namespace seedproxy::seeds
