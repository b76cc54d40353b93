// Where the primary is, in machine-readable form: what a node that is not
// the primary says besides FAILED_PRECONDITION and its message.
//
// On the wire it is gRPC trailing metadata, which any gRPC client reads
// without extra packages:
//
//   ringlog-primary   HOST:PORT of the primary; absent when the node knows none
//   ringlog-epoch     the latest epoch the node knows, in decimal; present on
//                     every "not the primary" answer, so it marks one
//
// Inside a process the same two values travel as absl::Status payloads under
// the same keys: a server part makes the status with NotPrimary(), and
// to_grpc(status, ctx) in grpc_status.h moves the payloads into the call's
// trailing metadata where the call finishes. A client reads them with
// redirect_from(ctx) (or gets them back as payloads from from_grpc(s, ctx))
// and never from the message, which is for people.
//
//   return NotPrimary(hint, epoch, "this node is a replica; append to the primary at " + hint);
//   ...
//   if (std::optional<Redirect> r = redirect_of(status); r && !r->primary.empty()) go(r->primary);
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ringlog {

inline constexpr char kPrimaryKey[] = "ringlog-primary";
inline constexpr char kEpochKey[] = "ringlog-epoch";

struct Redirect {
  std::string primary;  // HOST:PORT; empty when the answering node knows no primary
  uint64_t epoch = 0;   // the latest epoch the answering node knows
};

// Puts `r` on `s` as payloads (s must not be OK).
inline void set_redirect(absl::Status* s, const Redirect& r) {
  if (!r.primary.empty()) s->SetPayload(kPrimaryKey, absl::Cord(r.primary));
  s->SetPayload(kEpochKey, absl::Cord(absl::StrCat(r.epoch)));
}

// "Not the primary": FAILED_PRECONDITION with `message`, naming the primary
// (empty: unknown) and the epoch in machine-readable form.
inline absl::Status NotPrimary(absl::string_view primary, uint64_t epoch, absl::string_view message) {
  absl::Status s = absl::FailedPreconditionError(message);
  set_redirect(&s, Redirect{std::string(primary), epoch});
  return s;
}

// The redirect a status carries, if it is a "not the primary" answer.
inline std::optional<Redirect> redirect_of(const absl::Status& s) {
  const auto epoch = s.GetPayload(kEpochKey);  // absl::optional<absl::Cord>
  Redirect r;
  if (!epoch || !absl::SimpleAtoi(std::string(*epoch), &r.epoch)) return std::nullopt;
  if (const auto p = s.GetPayload(kPrimaryKey)) r.primary = std::string(*p);
  return r;
}

}  // namespace ringlog
