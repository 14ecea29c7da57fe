// The sessions still logging in, counted in total and per client address, so that clients which
// never finish their login cannot hold more than limits.max_authenticating backends (and
// limits.max_authenticating_per_address from one address).
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <map>
#include <mutex>

namespace seedproxy::proxy {

class LoginGate {
 public:
  struct Limits {
    std::uint32_t total = 64;
    std::uint32_t per_address = 16;
  };
  // Which limit turned a client away.
  enum class Refusal { none, total, per_address };

  // One session's place among those logging in; given back on release() (once logged in) or
  // when destroyed. An empty ticket holds nothing.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();
    void release() noexcept;
    [[nodiscard]] bool held() const noexcept { return gate_ != nullptr; }

   private:
    friend class LoginGate;
    Ticket(LoginGate* gate, boost::asio::ip::address address) : gate_(gate), address_(address) {}
    LoginGate* gate_ = nullptr;
    boost::asio::ip::address address_;
  };

  struct Entry {
    Ticket ticket;  // empty when refused
    Refusal refusal = Refusal::none;
  };

  LoginGate() = default;
  LoginGate(const LoginGate&) = delete;
  LoginGate& operator=(const LoginGate&) = delete;

  // Counts a new client from `address`, or refuses it when either limit is reached. Any thread.
  [[nodiscard]] Entry enter(const boost::asio::ip::address& address, Limits limits);
  [[nodiscard]] std::uint32_t logging_in() const;
  [[nodiscard]] std::uint32_t logging_in_from(const boost::asio::ip::address& address) const;

 private:
  void leave(const boost::asio::ip::address& address) noexcept;

  mutable std::mutex mutex_;
  std::uint32_t total_ = 0;
  std::map<boost::asio::ip::address, std::uint32_t> per_address_;  // only addresses above zero
};

}  // namespace seedproxy::proxy
