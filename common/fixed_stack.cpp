// A thread per call, created with the stack size asked for and joined at once; an exception
// thrown by the work is rethrown on the caller's thread.
#include "common/fixed_stack.hpp"

#include <pthread.h>

#include <exception>

namespace seedproxy {
namespace {

struct Call {
  const std::function<void()>& work;
  std::exception_ptr thrown;
};

void* run(void* argument) {
  auto* call = static_cast<Call*>(argument);
  try {
    call->work();
  } catch (...) {
    call->thrown = std::current_exception();
  }
  return nullptr;
}

}  // namespace

bool run_on_fixed_stack(std::size_t stack_bytes, const std::function<void()>& work) {
  pthread_attr_t attributes;
  if (pthread_attr_init(&attributes) != 0) return false;
  Call call{work, nullptr};
  pthread_t thread{};
  const bool started = pthread_attr_setstacksize(&attributes, stack_bytes) == 0 &&
                       pthread_create(&thread, &attributes, run, &call) == 0;
  pthread_attr_destroy(&attributes);
  if (!started) return false;
  pthread_join(thread, nullptr);
  if (call.thrown) std::rethrow_exception(call.thrown);
  return true;
}

}  // namespace seedproxy
