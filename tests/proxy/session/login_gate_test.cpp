// LoginGate: the total and per-address bounds on sessions still logging in, and tickets that
// give their place back exactly once.
#include "proxy/session/login_gate.hpp"

#include <doctest/doctest.h>

#include <utility>
#include <vector>

namespace seedproxy::proxy {
namespace {

const auto one = boost::asio::ip::make_address("10.0.0.1");
const auto two = boost::asio::ip::make_address("10.0.0.2");
const auto three = boost::asio::ip::make_address("::1");

}  // namespace

TEST_CASE("login gate: the per-address limit refuses one address and not another") {
  LoginGate gate;
  const LoginGate::Limits limits{10, 2};
  auto a = gate.enter(one, limits);
  auto b = gate.enter(one, limits);
  CHECK(a.ticket.held());
  CHECK(b.ticket.held());
  const auto refused = gate.enter(one, limits);
  CHECK_FALSE(refused.ticket.held());
  CHECK(refused.refusal == LoginGate::Refusal::per_address);
  const auto other = gate.enter(two, limits);
  CHECK(other.refusal == LoginGate::Refusal::none);
  CHECK(gate.logging_in() == 3);
  CHECK(gate.logging_in_from(one) == 2);
  // Logged in: the place is free again.
  a.ticket.release();
  CHECK(gate.logging_in_from(one) == 1);
  CHECK(gate.enter(one, limits).refusal == LoginGate::Refusal::none);
}

TEST_CASE("login gate: the total limit counts every address") {
  LoginGate gate;
  const LoginGate::Limits limits{2, 2};
  std::vector<LoginGate::Entry> held;
  held.push_back(gate.enter(one, limits));
  held.push_back(gate.enter(two, limits));
  CHECK(gate.enter(three, limits).refusal == LoginGate::Refusal::total);
  held.pop_back();  // a session that ended while logging in
  CHECK(gate.logging_in() == 1);
  CHECK(gate.logging_in_from(two) == 0);
  CHECK(gate.enter(three, limits).refusal == LoginGate::Refusal::none);
}

TEST_CASE("login gate: a released, moved or destroyed ticket gives its place back once") {
  LoginGate gate;
  const LoginGate::Limits limits{5, 5};
  {
    auto entry = gate.enter(one, limits);
    LoginGate::Ticket moved = std::move(entry.ticket);
    CHECK_FALSE(entry.ticket.held());
    CHECK(gate.logging_in() == 1);
    moved.release();
    moved.release();
    CHECK(gate.logging_in() == 0);
    auto again = gate.enter(two, limits);
    moved = std::move(again.ticket);
    CHECK(gate.logging_in() == 1);
  }
  CHECK(gate.logging_in() == 0);
  CHECK(gate.logging_in_from(two) == 0);
  // Lowered limits (a reload) apply to the next client; nobody already in is turned out.
  auto a = gate.enter(one, limits);
  auto b = gate.enter(one, limits);
  CHECK(gate.enter(one, {5, 1}).refusal == LoginGate::Refusal::per_address);
  CHECK(gate.logging_in() == 2);
}

}  // namespace seedproxy::proxy
