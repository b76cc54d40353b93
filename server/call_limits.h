// Bounds on what clients can make a node hold: open calls per client address
// and per node (counted here, refused with RESOURCE_EXHAUSTED), and the
// transport's limits that gRPC enforces itself (streams per connection,
// idle and old connections, slow handshakes, message size).
//
// gRPC 1.51 has no cap on the number of connections. A connection is bounded
// instead by what it can hold: one that never completes its handshake is
// closed after handshake_timeout, one without a call after
// max_connection_idle, and one with calls holds at least one of its client's
// max_calls_per_client. docs/errors.md says what this does and does not bound.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace grpc {
class ServerBuilder;
}

namespace ringlog {

struct CallLimitOptions {
  // Open calls from one client address (--max_calls_per_client) and on the
  // whole node (--max_calls); 0: no limit.
  uint32_t max_calls_per_client = 512;
  uint32_t max_calls = 4096;
};

// Counts the open calls of the node's services by client address. Call
// set-up only (a short lock per call start and end), never the append path.
class CallLimits {
 public:
  // One admitted call; gives its place back when it goes (or at reset()).
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& o) noexcept : owner_(o.owner_), client_(std::move(o.client_)) {
      o.owner_ = nullptr;
    }
    Ticket& operator=(Ticket&& o) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { reset(); }
    void reset();
    bool held() const { return owner_ != nullptr; }

   private:
    friend class CallLimits;
    CallLimits* owner_ = nullptr;
    std::string client_;
  };

  struct Stats {
    uint64_t open = 0;                // calls holding a ticket
    uint64_t clients = 0;             // addresses with a call open
    uint64_t refused_per_client = 0;  // over max_calls_per_client
    uint64_t refused_node = 0;        // over max_calls
  };

  explicit CallLimits(CallLimitOptions options) : options_(options) {}

  // Takes a place for a call from `peer` (grpc::ServerContext::peer(), e.g.
  // "ipv4:10.0.0.5:51234") into *ticket; or RESOURCE_EXHAUSTED naming the
  // limit, its flag and the client, and *ticket left empty.
  absl::Status admit(absl::string_view peer, Ticket* ticket);
  Stats stats() const;
  const CallLimitOptions& options() const { return options_; }

  // The client address of a gRPC peer string: its IP address without the
  // port ("ipv6:[::1]:5" gives "::1"; an IPv4-mapped IPv6 address gives the
  // IPv4 one), or the whole string for another kind of peer.
  static std::string client_of(absl::string_view peer);

 private:
  void release(const std::string& client);

  const CallLimitOptions options_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> open_by_client_;  // mu_
  uint64_t open_ = 0;                                          // mu_
  std::atomic<uint64_t> refused_per_client_{0};
  std::atomic<uint64_t> refused_node_{0};
};

// The limits gRPC enforces on each connection (flags of the same names).
struct TransportLimits {
  uint32_t max_streams_per_connection = 1000;  // HTTP/2 MAX_CONCURRENT_STREAMS; 0: gRPC's
  absl::Duration max_connection_idle = absl::Minutes(10);  // inf: never
  absl::Duration max_connection_age = absl::Hours(24);     // inf: never
  absl::Duration handshake_timeout = absl::Seconds(5);
};

// Room for an AppendRequest's other fields and for gRPC's framing above
// --max_batch_bytes: requests up to that size reach the Append reactor,
// which refuses an oversized batch with INVALID_ARGUMENT naming the flag.
inline constexpr uint64_t kReceiveSlackBytes = uint64_t{64} << 20;

// Sets `limits` and the largest message received (max_batch_bytes +
// kReceiveSlackBytes) on a server being built.
void apply_transport_limits(grpc::ServerBuilder& builder, const TransportLimits& limits,
                            uint64_t max_batch_bytes);

// Raises the soft limit of open files to the hard one: every connection
// is a file descriptor, and running out would refuse good clients along
// with a flood. Logs what it did.
void raise_open_files_limit();

}  // namespace ringlog
