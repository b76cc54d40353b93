// Helpers shared by the client's parts; not part of its interface.
#pragma once

#include <chrono>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "ringlog/grpc_status.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog::client_internal {

inline constexpr int kMaxMessageBytes = 64 << 20;

inline std::chrono::system_clock::time_point deadline_after(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

// Errors after which a replay reconnects and resumes. CANCELLED here comes
// from the server going away (our own cancel() is checked first).
inline bool resumable(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::ABORTED ||
         s.error_code() == grpc::StatusCode::CANCELLED ||
         s.error_code() == grpc::StatusCode::INTERNAL;
}

// Admin.GetStatus of the node at the end of `channel`.
absl::StatusOr<v1::NodeStatus> status_of(std::shared_ptr<grpc::Channel> channel,
                                         absl::Duration timeout);

}  // namespace ringlog::client_internal
