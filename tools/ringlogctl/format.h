// How ringlogctl prints events (replay and dump share it).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include "absl/strings/string_view.h"

#include "ringlog/event.h"

namespace ringlog::ctl {

enum class Format { kText, kJson, kRaw };
bool parse_format(const std::string& s, Format* f);

// Seqs first..last, both included.
struct SeqRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

// Writes one event to `out` in `f`; `skipped`, when not null, are the seqs
// left out just before it (control records), which the text format notes on
// a line of its own starting with '#' and the JSON format lists in
// "skippedSeqs".
//
// JSON follows the protobuf JSON mapping: 64-bit integers (seq, timestamp)
// are strings, so that no JSON reader rounds them to a double; the payload is
// base64 in "payload", always, with "text" beside it when it is printable
// UTF-8:
//   {"seq":"5","timestamp":"1764410400000000000","time":"2025-11-29T10:00:00.000000000Z",
//    "type":7,"flags":0,"payload":"YWxwaGE=","text":"alpha"}
void print_event(std::FILE* out, Format f, uint64_t seq, const EventView& ev,
                 const SeqRange* skipped = nullptr);

// `s` as a JSON string, quotes included.
std::string json_string(absl::string_view s);

}  // namespace ringlog::ctl
