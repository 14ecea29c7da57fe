// The end watch's loop: a timer on the sessions' own thread, so the list needs no lock.
#include "proxy/session/end_watch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace seedproxy::proxy {

boost::asio::awaitable<void> watch_session_ends(SessionList& list) {
  namespace asio = boost::asio;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_after(end_watch_interval);
    const auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    // Checks only cancel reads (their completions run later): no session leaves the list here.
    for (Session* session : list.sessions) session->check_for_ends();
  }
}

}  // namespace seedproxy::proxy
