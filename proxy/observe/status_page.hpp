// The live status page served at /: one self-contained HTML document (inline CSS and JS, no
// external assets) that polls /status.json every second.
#pragma once

#include <string_view>

namespace seedproxy::proxy {

[[nodiscard]] std::string_view status_page_html() noexcept;

}  // namespace seedproxy::proxy
