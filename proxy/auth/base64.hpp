// Base64 (RFC 4648, standard alphabet, padded) as SCRAM messages and PostgreSQL secrets use it.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

[[nodiscard]] std::string base64_encode(ByteSpan bytes);

// The decoded length of `text`, or nullopt when it is not base64: its length must be a multiple
// of 4, padding ("=" or "==") only at the end, no whitespace. Like PostgreSQL's pg_b64_decode,
// unused low bits of the last symbol are not checked.
[[nodiscard]] std::optional<std::size_t> base64_decoded_size(std::string_view text) noexcept;
// Decodes into `out`, whose size must equal base64_decoded_size(text); false when it does not
// or `text` is not base64.
[[nodiscard]] bool base64_decode_into(std::string_view text, std::span<std::byte> out) noexcept;
[[nodiscard]] std::optional<std::vector<std::byte>> base64_decode(std::string_view text);
// Decodes a 32-byte key directly into secret storage; false unless `text` holds exactly 32 bytes.
[[nodiscard]] bool base64_decode_key(std::string_view text, SecretKey& out) noexcept;

}  // namespace seedproxy::auth
