// Runs a function to completion on a thread of its own whose stack has a known, fixed size, for
// work whose stack use grows with untrusted input (PostgreSQL's parser on a deeply nested text).
#pragma once

#include <cstddef>
#include <functional>

namespace seedproxy {

// Calls `work` on a new thread with a `stack_bytes` stack (reserved, committed only as touched)
// and waits for it. The caller's thread blocks meanwhile; use it for work that would run on that
// thread anyway. False, without calling `work`, when the thread cannot be created; what `work`
// throws is rethrown here.
[[nodiscard]] bool run_on_fixed_stack(std::size_t stack_bytes, const std::function<void()>& work);

}  // namespace seedproxy
