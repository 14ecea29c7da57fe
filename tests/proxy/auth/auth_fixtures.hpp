// Known exchanges and secrets shared by the authentication tests.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "proxy/auth/base64.hpp"
#include "proxy/auth/scram_secret.hpp"
#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::test::rfc7677 {

// RFC 7677 §3: user "user", password "pencil".
inline constexpr std::string_view password = "pencil";
inline constexpr std::string_view client_nonce = "rOprNGfwEbeRWgbNEkqO";
inline constexpr std::string_view server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
inline constexpr std::string_view salt_base64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
inline constexpr std::string_view client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
inline constexpr std::string_view server_first =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
inline constexpr std::string_view client_final =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
inline constexpr std::string_view server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
// The same secret as PostgreSQL would store it (computed independently with Python's hashlib).
inline constexpr std::string_view stored_secret =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
inline constexpr std::string_view client_key_base64 =
    "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=";

inline auth::ScramSecret secret() { return *auth::parse_scram_secret(stored_secret); }

}  // namespace seedproxy::test::rfc7677

namespace seedproxy::test::postgres15 {

// Written by PostgreSQL 15.18 (CREATE ROLE ... PASSWORD with password_encryption set), read back
// from pg_authid.rolpassword.
inline constexpr std::string_view scram_user = "scram_user";
inline constexpr std::string_view scram_password = "pencil-Secret!";
inline constexpr std::string_view scram_secret =
    "SCRAM-SHA-256$4096:TDZaPygSGpe1xmSZbYeiMg==$LNZ2g7bXym90vOSSZMhanxDRa1abDtcXWhOcw35kBX4=:"
    "M4CF5vlBh7dTcnKoFUDoe6vAQqlPoYcT55Yjw+3iVQo=";
inline constexpr std::string_view md5_user = "md5_user";
inline constexpr std::string_view md5_password = "md5 secret with spaces";
inline constexpr std::string_view md5_secret = "md57a8f979a5ccc77e4b3150f6781dcbfbf";

}  // namespace seedproxy::test::postgres15

namespace seedproxy::test {

inline auth::SecretKey key_of(std::string_view base64) {
  auth::SecretKey key;
  if (!auth::base64_decode_key(base64, key)) throw std::invalid_argument("not a 32-byte key");
  return key;
}

inline auth::SecretKey test_mock_nonce() {
  auth::SecretKey nonce;
  auto bytes = nonce.data();
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + 1);
  return nonce;
}

}  // namespace seedproxy::test
