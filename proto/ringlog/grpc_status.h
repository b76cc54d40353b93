// absl::Status <-> grpc::Status, in one place for every part that speaks gRPC,
// with the redirect of a "not the primary" answer (redirect.h) moved between
// absl::Status payloads and the call's trailing metadata.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "ringlog/redirect.h"

namespace ringlog {

inline grpc::Status to_grpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // The numeric codes are the same by design (both follow google.rpc.Code).
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

inline absl::Status from_grpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// Server side, for a call's Finish: `s`, with its redirect (if any) added to
// the call's trailing metadata. Call it once per call, before Finish.
inline grpc::Status to_grpc(const absl::Status& s, grpc::ServerContextBase* ctx) {
  if (std::optional<Redirect> r = redirect_of(s)) {
    if (!r->primary.empty()) ctx->AddTrailingMetadata(kPrimaryKey, r->primary);
    ctx->AddTrailingMetadata(kEpochKey, absl::StrCat(r->epoch));
  }
  return to_grpc(s);
}

// Client side, once a call has finished: the redirect in its trailing
// metadata, if the node answered "not the primary". The one place that reads
// those keys.
inline std::optional<Redirect> redirect_from(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  const auto epoch = trailers.find(kEpochKey);
  Redirect r;
  if (epoch == trailers.end() ||
      !absl::SimpleAtoi(absl::string_view(epoch->second.data(), epoch->second.size()), &r.epoch)) {
    return std::nullopt;
  }
  if (const auto p = trailers.find(kPrimaryKey); p != trailers.end()) {
    r.primary.assign(p->second.data(), p->second.size());
  }
  return r;
}

// Client side, once a call has finished: its status, carrying the redirect
// of its trailing metadata as payloads (see redirect_of).
inline absl::Status from_grpc(const grpc::Status& s, const grpc::ClientContext& ctx) {
  absl::Status out = from_grpc(s);
  if (out.ok()) return out;
  if (std::optional<Redirect> r = redirect_from(ctx)) set_redirect(&out, *r);
  return out;
}

}  // namespace ringlog
