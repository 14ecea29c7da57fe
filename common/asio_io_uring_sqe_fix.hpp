// Force-included into every translation unit of the io_uring build (CMakeLists.txt,
// SEEDPROXY_IO_URING), never #included: works around a bug of Boost 1.81's Asio io_uring backend
// (issue 16; docs/benchmarks.md, "The io_uring build loses sessions").
//
// io_uring_service::get_sqe() hands out a submission entry without clearing its user_data, and
// liburing 2.3's io_uring_prep_* leave the field alone too, so the cancellation entries Asio
// submits without io_uring_sqe_set_data (a socket's cancel() or close() with an operation in the
// kernel, a cancellation slot's emit) carry whatever user_data that ring slot last held: often
// the operation queue of another, live socket. The cancellation's completion (0, -ENOENT or
// -EALREADY) is then applied to that socket's pending operation: a read "completes" with 0
// bytes, an end of stream that never happened. Asio 1.27 (Boost 1.82) clears user_data in
// get_sqe() (chriskohlhoff/asio commit 0080ec1c9, pull request 1215); this does the same by
// routing get_sqe()'s calls to io_uring_get_sqe through a function that clears it, and a
// completion with null user_data is one Asio ignores.
#pragma once

#include <liburing.h>

#include <boost/version.hpp>

#if BOOST_VERSION < 108200
inline io_uring_sqe* seedproxy_io_uring_get_sqe_cleared(io_uring* ring) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe != nullptr) io_uring_sqe_set_data(sqe, nullptr);
  return sqe;
}
// liburing.h is already included (its guard keeps it so), so only later calls are renamed: those
// in Asio's io_uring_service.ipp, the only caller.
#define io_uring_get_sqe seedproxy_io_uring_get_sqe_cleared
#endif
