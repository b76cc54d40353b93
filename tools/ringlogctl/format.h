// How ringlogctl prints events (replay and dump share it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "ringlog/event.h"

namespace ringlog::ctl {

enum class Format { kText, kJson, kRaw };
bool parse_format(const std::string& s, Format* f);

// Writes one event to `out` in `f`.
void print_event(std::FILE* out, Format f, uint64_t seq, const EventView& ev);

}  // namespace ringlog::ctl
