// Counting the sessions still logging in: one mutex, a total and a count per address.
#include "proxy/session/login_gate.hpp"

#include <utility>

namespace seedproxy::proxy {

LoginGate::Ticket::Ticket(Ticket&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)), address_(other.address_) {}

LoginGate::Ticket& LoginGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    gate_ = std::exchange(other.gate_, nullptr);
    address_ = other.address_;
  }
  return *this;
}

LoginGate::Ticket::~Ticket() { release(); }

void LoginGate::Ticket::release() noexcept {
  if (gate_) std::exchange(gate_, nullptr)->leave(address_);
}

LoginGate::Entry LoginGate::enter(const boost::asio::ip::address& address, Limits limits) {
  std::lock_guard lock(mutex_);
  if (total_ >= limits.total) return {{}, Refusal::total};
  const auto found = per_address_.find(address);
  if (found != per_address_.end() && found->second >= limits.per_address)
    return {{}, Refusal::per_address};
  ++total_;
  ++per_address_[address];
  return {Ticket(this, address), Refusal::none};
}

void LoginGate::leave(const boost::asio::ip::address& address) noexcept {
  std::lock_guard lock(mutex_);
  --total_;
  const auto found = per_address_.find(address);
  if (found != per_address_.end() && --found->second == 0) per_address_.erase(found);
}

std::uint32_t LoginGate::logging_in() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::uint32_t LoginGate::logging_in_from(const boost::asio::ip::address& address) const {
  std::lock_guard lock(mutex_);
  const auto found = per_address_.find(address);
  return found == per_address_.end() ? 0 : found->second;
}

}  // namespace seedproxy::proxy
