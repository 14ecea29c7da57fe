// The OpenSSL primitives authentication is built from: SHA-256, HMAC-SHA-256, PBKDF2, MD5 and
// the CSPRNG. None of them can fail on account of their input; an OpenSSL failure (out of memory,
// broken provider) throws std::runtime_error, except for the CSPRNG, whose failure is a value.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>

#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

[[nodiscard]] SecretKey sha256(ByteSpan data);
[[nodiscard]] SecretKey hmac_sha256(ByteSpan key, ByteSpan data);
// PBKDF2-HMAC-SHA-256 with a 32-byte output (SCRAM's Hi()); iterations >= 1.
[[nodiscard]] SecretKey pbkdf2_sha256(ByteSpan password, ByteSpan salt, std::uint32_t iterations);
// MD5 of the concatenated parts as 32 lowercase hex digits (PostgreSQL's pg_md5_hash).
[[nodiscard]] SecretBytes md5_hex(std::initializer_list<ByteSpan> parts);
// Fills `out` from OpenSSL's CSPRNG; false if it could not (no entropy): never use `out` then.
[[nodiscard]] bool fill_random(std::span<std::byte> out) noexcept;

}  // namespace seedproxy::auth
