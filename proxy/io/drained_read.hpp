// A socket read that can trust a short read: when a read returned fewer bytes than it had room
// for and its last bytes end the peer's turn, the next read waits for epoll to report new data
// instead of trying the socket first.
//
// Asio's epoll reactor (Boost 1.81) tries every async_read_some at once and queues it only when
// that attempt answers EAGAIN; it stops trying first only after end of file. A relay reads a whole
// arrival at a time and its next read always comes before the peer's next message, so that first
// attempt fails every time: one wasted recvfrom per message. PgBouncer (libevent) reads only
// after readiness. This read does the same through Asio's own reactor: its operation reports such
// a short read as "exhausted", which tells the reactor to queue the next read of the descriptor
// without trying it, until epoll reports the descriptor again.
//
// Why only when the peer's turn ended. Data is safe: a short read means the receive queue was
// empty when it returned, and every later arrival raises a new edge of the reactor's
// edge-triggered registration, which makes it try reads again. The end of the stream is not: a
// FIN (or reset) that arrived together with the last data is reported by the read after it, and
// raises no edge of its own once the data's edge was taken (the registration has no EPOLLRDHUP).
// So the caller says which endings leave the peer waiting for us (for a PostgreSQL server, a
// ReadyForQuery; for a client, a Query or a Sync), and whoever owns the socket calls
// check_for_end() now and then (the sessions' end watch, every quarter second): after a trusted
// read it peeks once, and if the end of the stream (or anything) is there after all, the waiting
// read is taken off the reactor's queue and reads at once, completing with what it finds (eof, as
// a rule). A peer that half-closes right after ending its turn is thus seen within about half a
// second instead of at once; the caller sees an ordinary read.
//
// The operation plugs into Asio's reactor through its detail interfaces (reactor_op, start_op,
// cancel_ops_by_key), which Debian 12's Boost 1.81 fixes; builds on another backend (io_uring)
// fall back to async_read_some.
#pragma once

#include <sys/socket.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "proxy/io/buffer_pool.hpp"
#include "proxy/io/context_socket.hpp"

#if defined(BOOST_ASIO_HAS_EPOLL) && !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && \
    !defined(BOOST_ASIO_HAS_IOCP)
#define SEEDPROXY_DRAINED_READS 1
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/query.hpp>
#endif

namespace seedproxy::proxy {

// True when `received` (the bytes of one read) ends the peer's turn: it sends nothing more until
// we do, and will not close without saying why first.
using TurnEnded = bool (*)(std::span<const std::byte> received) noexcept;

// What a RelaySocket knows about its drained reads (touched only on the socket's thread).
struct DrainState {
  bool trusted = false;     // the last read was trusted: the reactor waits before the next one
  bool waiting = false;     // a drained read is under way
  bool try_first = false;   // check_for_end() found something: the next read tries at once
  bool read_again = false;  // check_for_end() took the read under way off the reactor's queue
  int quiet_checks = 0;     // check_for_end() calls since the last read that returned data
};

// Where a drained read puts what it reads: a fixed space, or the free space of `buffer`, taken
// only when the read calls recv and given back when nothing came. A read waiting on the reactor
// then holds no storage: an idle session keeps no read buffer, as PgBouncer, which takes one
// from its pool only when data arrives.
struct ReadInto {
  boost::asio::mutable_buffer space;
  IoBuffer* buffer = nullptr;
  bool large = false;  // buffer->writable(large)

  // Where the read puts its bytes now: the fixed space, or the buffer's free space (taken from
  // the pool if the buffer holds none; throws when no storage can be had).
  [[nodiscard]] boost::asio::mutable_buffer take() const {
    if (!buffer) return space;
    const auto free = buffer->writable(large);
    return {free.data(), free.size()};
  }
};

#if defined(SEEDPROXY_DRAINED_READS)
namespace drained_detail {

namespace ad = boost::asio::detail;
using error_code = boost::system::error_code;

// The non-blocking recv; a short read that ends the peer's turn (or the end of the stream) is
// "exhausted".
class ReadOp : public ad::reactor_op {
 protected:
  ReadOp(ad::reactor* reactor, ad::reactor::per_descriptor_data* descriptor, int fd, ReadInto into,
         TurnEnded turn_ended, DrainState* state, func_type complete)
      : reactor_op(error_code(), &ReadOp::perform_read, complete),
        reactor_(reactor),
        descriptor_(descriptor),
        fd_(fd),
        into_(into),
        turn_ended_(turn_ended),
        state_(state) {}

  // Completing after check_for_end() took it off the queue: reads now. True when the read is
  // done; false when nothing was there after all and it waits on the reactor's queue again.
  bool read_now() {
    state_->read_again = false;
    ec_ = error_code();
    const status result = perform();
    state_->try_first = result == done;  // the reactor still will not try the next read
    if (result != not_done) return true;
    state_->waiting = true;
    reactor_->start_op(ad::reactor::read_op, fd_, *descriptor_, this, true, true);
    return false;
  }

 private:
  static status perform_read(reactor_op* base) {
    auto* op = static_cast<ReadOp*>(base);
    boost::asio::mutable_buffer space;
    try {
      space = op->into_.take();
    } catch (...) {
      op->bytes_transferred_ = 0;
      op->ec_ = boost::asio::error::no_memory;
      op->state_->trusted = false;
      return done;
    }
    for (;;) {
      const ssize_t n = ::recv(op->fd_, space.data(), space.size(), 0);
      if (n > 0) {
        const auto got = static_cast<std::size_t>(n);
        op->bytes_transferred_ = got;
        op->ec_ = error_code();
        const bool drained =
            got < space.size() &&
            op->turn_ended_(std::span(static_cast<const std::byte*>(space.data()), got));
        op->state_->trusted = drained;
        op->state_->quiet_checks = 0;
        return drained ? done_and_exhausted : done;
      }
      op->state_->trusted = false;
      const int error = n < 0 ? errno : 0;
      if (error == EINTR) continue;
      // Nothing came: the storage the space was taken from goes back until something does.
      if (op->into_.buffer) op->into_.buffer->release_if_empty();
      if (n == 0) {
        op->bytes_transferred_ = 0;
        op->ec_ = boost::asio::error::eof;
        return done_and_exhausted;
      }
      if (error == EAGAIN || error == EWOULDBLOCK) return not_done;
      op->bytes_transferred_ = 0;
      op->ec_ = error_code(error, boost::asio::error::get_system_category());
      return done;
    }
  }

  ad::reactor* reactor_;
  ad::reactor::per_descriptor_data* descriptor_;
  int fd_;
  ReadInto into_;
  TurnEnded turn_ended_;

 protected:
  DrainState* state_;  // the socket's
};

// Per-operation cancellation (a cancellation signal bound to the awaiting coroutine): takes this
// read off the reactor's queue, as Asio's own operations do.
class CancelRead {
 public:
  CancelRead(ad::reactor* reactor, ad::reactor::per_descriptor_data* data, int fd, void* key,
             DrainState* state)
      : reactor_(reactor), data_(data), fd_(fd), key_(key), state_(state) {}
  void operator()(boost::asio::cancellation_type_t type) {
    using boost::asio::cancellation_type;
    if (!!(type &
           (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total))) {
      // A cancellation of the caller's: no check_for_end() may take it for its own.
      state_->waiting = false;
      state_->read_again = false;
      reactor_->cancel_ops_by_key(fd_, *data_, ad::reactor::read_op, key_);
    }
  }

 private:
  ad::reactor* reactor_;
  ad::reactor::per_descriptor_data* data_;
  int fd_;
  void* key_;  // the socket: at most one drained read of it waits at a time
  DrainState* state_;
};

// Memory for one kind of operation, `Size` bytes each, kept per thread in a free list. Not Asio's
// recycling allocator: its per-thread cache hands back whatever block was freed last if it is
// big enough (an accept's, a coroutine's), so each idle pump's waiting read sat in a block up
// to twice its size. Here every block is the operation's own size. Sessions never change
// threads, so no lock.
template <std::size_t Size>
class OpBlocks {
 public:
  static constexpr std::size_t max_free = 1024;  // the reads that end at once on one thread
  static OpBlocks& mine() {
    thread_local OpBlocks blocks;
    return blocks;
  }
  OpBlocks() = default;
  OpBlocks(const OpBlocks&) = delete;
  OpBlocks& operator=(const OpBlocks&) = delete;
  ~OpBlocks() {
    for (void* block : free_) ::operator delete(block);
  }
  void* take() {
    if (free_.empty()) return ::operator new(Size);
    void* block = free_.back();
    free_.pop_back();
    return block;
  }
  void give(void* block) noexcept {
    if (free_.size() < max_free) {
      try {
        free_.push_back(block);
        return;
      } catch (...) {
        // Out of memory while keeping it: freed below.
      }
    }
    ::operator delete(block);
  }

 private:
  std::vector<void*> free_;
};

template <class Handler, class IoExecutor>
class HandlerReadOp final : public ReadOp {
 public:
  HandlerReadOp(ad::reactor* reactor, ad::reactor::per_descriptor_data* descriptor, int fd,
                ReadInto into, TurnEnded turn_ended, DrainState* state, Handler& handler,
                const IoExecutor& io_executor)
      : ReadOp(reactor, descriptor, fd, into, turn_ended, state, &HandlerReadOp::complete),
        handler_(std::move(handler)),
        work_(handler_, io_executor) {}

  template <class... Args>
  static HandlerReadOp* make(Args&&... args) {
    void* memory = OpBlocks<sizeof(HandlerReadOp)>::mine().take();
    return new (memory) HandlerReadOp(std::forward<Args>(args)...);
  }

 private:
  // `owner` is null when the reactor is being destroyed: free the operation, call nothing.
  static void complete(void* owner, ad::operation* base, const error_code&, std::size_t) {
    auto* op = static_cast<HandlerReadOp*>(base);
    if (owner && op->state_->read_again && !op->read_now()) return;  // queued again
    ad::handler_work<Handler, IoExecutor> work(std::move(op->work_));
    // The handler leaves the operation's memory before the call, so that the call may start the
    // next read in the same (recycled) memory.
    ad::binder2<Handler, error_code, std::size_t> bound(0, std::move(op->handler_), op->ec_,
                                                        op->bytes_transferred_);
    DrainState* state = op->state_;
    op->~HandlerReadOp();
    OpBlocks<sizeof(HandlerReadOp)>::mine().give(op);
    if (!owner) return;  // the socket may be gone already
    state->waiting = false;
    work.complete(bound, bound.handler_);
  }

  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

}  // namespace drained_detail
#endif

// A TCP socket with the drained read; everything else is the socket's.
class RelaySocket : public ContextSocket {
 public:
  using tcp = boost::asio::ip::tcp;
  explicit RelaySocket(ContextSocket&& socket) : ContextSocket(std::move(socket)) {
#if defined(SEEDPROXY_DRAINED_READS)
    // Looked up once: the registry's lookup takes a lock, too much for every read.
    reactor_ = &boost::asio::use_service<drained_detail::ad::reactor>(
        boost::asio::query(get_executor(), boost::asio::execution::context));
    context_ = &get_executor().context();
#endif
  }

  // As async_read_some (completes with the bytes read, or eof, or an error), except that after
  // a short read that `turn_ended` accepts, the next read waits for readiness before it calls
  // recv. The space (`into.space`, or `into.buffer`'s free space) must not be empty; a buffer's
  // bytes are not committed (the caller commits what the completion reports). One at a time.
  template <class Token>
  auto async_read_drained(ReadInto into, TurnEnded turn_ended, Token&& token) {
#if defined(SEEDPROXY_DRAINED_READS)
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, ReadInto to, TurnEnded ended) {
          start_drained_read(std::move(handler), to, ended);
        },
        token, into, turn_ended);
#else
    (void)turn_ended;
    return async_read_some(into.take(), std::forward<Token>(token));
#endif
  }

  // Never trusts a read (for a read that does not start at a message boundary).
  static bool never(std::span<const std::byte>) noexcept { return false; }

  // After a trusted read that has waited through two calls (so a busy peer is never looked at):
  // peeks once, without blocking, for what the reactor will not report by itself, an end of the
  // stream that came with the last data. If anything is there, the drained read under way reads
  // it at once (completing with eof, as a rule), or else the next read tries the socket first.
  void check_for_end() noexcept;
  // The caller cancels or closes: nothing of check_for_end()'s is pending any more.
  void forget_checks() noexcept { drain_ = DrainState{}; }

 private:
#if defined(SEEDPROXY_DRAINED_READS)
  template <class Handler>
  void start_drained_read(Handler handler, ReadInto into, TurnEnded turn_ended) {
    namespace ad = drained_detail::ad;
    // The operation keeps the io_context's own executor, not the socket's polymorphic one: 8
    // bytes instead of 56 in every read that waits (one per idle pump).
    using Op = drained_detail::HandlerReadOp<Handler, boost::asio::io_context::executor_type>;
    auto& impl = impl_.get_implementation();
    auto& reactor = *reactor_;
    const bool continuation = ::boost_asio_handler_cont_helpers::is_continuation(handler);
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    Op* op = Op::make(&reactor, &impl.reactor_data_, impl.socket_, into, turn_ended, &drain_,
                      handler, context_->get_executor());
    op->cancellation_key_ = this;
    if (slot.is_connected())
      slot.template emplace<drained_detail::CancelRead>(&reactor, &impl.reactor_data_, impl.socket_,
                                                        this, &drain_);
    drain_.waiting = true;
    if ((impl.state_ & ad::socket_ops::non_blocking) == 0 &&
        !ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, op->ec_)) {
      reactor.post_immediate_completion(op, continuation);
      return;
    }
    if (drain_.try_first) {
      // check_for_end() found something the reactor would not look for: try this read here.
      // A read that is not trusted leaves the next one trying first too, since the reactor
      // still will not.
      drain_.try_first = false;
      if (const auto status = op->perform()) {
        drain_.try_first = status != ad::reactor_op::done_and_exhausted;
        reactor.post_immediate_completion(op, continuation);
        return;
      }
    }
    reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, op, continuation,
                     true);
  }

  drained_detail::ad::reactor* reactor_ = nullptr;  // the socket's own (one per io_context)
  boost::asio::io_context* context_ = nullptr;      // the socket's
#endif
  DrainState drain_;
};

inline void RelaySocket::check_for_end() noexcept {
#if defined(SEEDPROXY_DRAINED_READS)
  if (!drain_.trusted || ++drain_.quiet_checks < 2 || !is_open()) return;
  drain_.trusted = false;  // one look per trusted read: a later end raises an edge of its own
  std::byte probe{};
  const ssize_t n = ::recv(native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  drain_.try_first = true;
  if (drain_.waiting) {
    // Taken off the queue as cancelled; its completion reads instead (ReadOp::read_now).
    drain_.waiting = false;
    drain_.read_again = true;
    auto& impl = impl_.get_implementation();
    reactor_->cancel_ops_by_key(impl.socket_, impl.reactor_data_,
                                drained_detail::ad::reactor::read_op, this);
  }
#endif
}

}  // namespace seedproxy::proxy
