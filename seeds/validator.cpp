// Seed validation against the live database (work in progress: the checks land next).
#include "seeds/validator.hpp"

namespace seedproxy::seeds {

std::string seed_name(const config::SeedSpec& seed) {
  return seed.database + "." + seed.entity + "." + seed.attribute;
}

std::variant<ValidatedSeed, Refusal> validate_seed(ControlConnection&,
                                                   const config::SeedSpec& seed) {
  return Refusal{seed_name(seed), "internal",
                 "seed " + seed_name(seed) + ": validation is not implemented yet", 0};
}

}  // namespace seedproxy::seeds
