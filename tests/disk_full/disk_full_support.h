// The full-disk tests' fixture and tools: a tmpfs mounted as a node's data
// directory, ringlogd processes with small segments, a producer of
// idempotent test batches, a client that sends until its stream is refused,
// and what the tests read back (replays, health, metrics, logs).
//
//   Tmpfs* disk = small_disk("p", 6);            // 6 MiB; null: not allowed here
//   if (disk == nullptr) GTEST_SKIP() << skip_reason();
//   tools::NodeProcess& p = start("p", {});
//   Producer producer("id");
//   SendRun run = send_until_refused(p.address(), producer);
//   ASSERT_TRUE(disk->resize(64));
//   Resent again = resend(p.address(), producer, run.refused());
//
// Nothing here sleeps to synchronize: waits are for acknowledgements, the
// end of a call, or a condition polled with a deadline.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/process.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kit/binaries.h"
#include "kit/nodes.h"
#include "kit/support.h"

namespace ringlog::disk_full_test {

using testkit::wait_until;

// The nodes run with the default --disk_full_timeout (1 s). A refusal must
// come within it, one retry of the storage thread (100 ms) and the
// scheduling of a busy machine.
inline constexpr absl::Duration kBound = absl::Seconds(2);
inline constexpr char kAppendService[] = "ringlog.v1.EventLog/Append";
// Each batch: 1024 events of 16-byte payloads, 32 KiB of records.
inline constexpr uint64_t kBatchEvents = 1024;
inline constexpr size_t kPayloadBytes = 16;

// A tmpfs of `mib` MiB mounted on `dir` (which must exist); unmounted when
// this goes (lazily if a process still holds it).
class Tmpfs {
 public:
  Tmpfs(std::string dir, int mib);
  ~Tmpfs();
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }  // why it is not mounted
  // Remounts it with a new size (frees space when larger); errno on failure.
  bool resize(int mib);

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// A batch of test events (stream 0 of the kit's scheme) with its producer seq.
struct Batch {
  uint64_t seq = 0;
  uint64_t first = 0;  // index of its first event
  uint64_t count = 0;
  std::string records() const;
};

// An idempotent producer: each new batch takes the next seq and the next
// kBatchEvents event indices.
struct Producer {
  explicit Producer(std::string producer_id) : id(std::move(producer_id)) {}
  Batch next();
  std::string id;
  uint64_t next_seq = 1;
  uint64_t next_index = 0;
};

// One stream that sent batches until the node ended it.
struct SendRun {
  std::vector<Batch> sent;
  size_t acked = 0;  // sent[0, acked) were acknowledged, in order, none a duplicate
  std::optional<grpc::Status> end;  // nullopt: the stream never ended
  absl::Duration waited;  // from the last acknowledgement to the end
  uint64_t acked_events() const { return acked == 0 ? 0 : sent[acked - 1].first + sent[acked - 1].count; }
  std::vector<Batch> refused() const { return {sent.begin() + acked, sent.end()}; }
};

// Sends the producer's next batches, 16 in flight, until the stream ends
// (or 30 s pass: then end is nullopt); checks the acknowledgements.
SendRun send_until_refused(const std::string& address, Producer& producer);

struct Refusal {
  grpc::Status status;
  absl::Duration took;
};
// Sends `batch` alone on a new stream and waits for the stream's end.
Refusal send_one(const std::string& address, const std::string& producer_id, const Batch& batch);

struct Resent {
  bool ok = false;
  std::string error;
  uint64_t duplicates = 0;
};
// Sends `batches` again (same producer seqs) on a new stream; ok when each
// is acknowledged, in order.
Resent resend(const std::string& address, const Producer& producer,
              const std::vector<Batch>& batches);
// Appends `n` new batches; true when each is acknowledged.
bool append_more(const std::string& address, Producer& producer, uint64_t n);

// The indices of the test events a replay from the start returns, in order.
std::vector<uint64_t> replay_indices(const std::string& address);
std::vector<uint64_t> iota(uint64_t n);  // 0, 1, ..., n - 1
// The health the node at `address` gives for `service`: "SERVING",
// "NOT_SERVING", or the call's error.
std::string health(const std::string& address, const std::string& service);
// Prometheus text from http://127.0.0.1:port/metrics, by sample name.
std::map<std::string, double> metrics(int port);
size_t count_lines(const std::string& text, const std::string& needle);
uint64_t free_bytes(const std::string& dir);  // for an unprivileged user

// Fixture: a temporary directory, tmpfs mounts in it, nodes.
class DiskFull : public ::testing::Test {
 protected:
  void TearDown() override;  // prints the nodes' logs when the test failed

  // Mounts a tmpfs of `mib` MiB as node `name`'s data directory; null when
  // mounting is refused (skip_reason() says why).
  Tmpfs* small_disk(const std::string& name, int mib);
  const std::string& skip_reason() const { return skip_reason_; }
  // Starts ringlogd as `name` with small segments and ring, plus `extra`.
  tools::NodeProcess& start(const std::string& name, const std::vector<std::string>& extra);
  std::string data_dir(const std::string& name) const { return nodes_.data_dir(name); }
  std::string output(const std::string& name) const { return nodes_.output(name); }
  int metrics_port(const std::string& name);  // from the node's log

  // Declared in this order so that they go in the reverse one: the nodes
  // (SIGKILL), then the mounts, then the directory.
  testkit::TempDir tmp_{"ringlog-df-"};
  std::vector<std::unique_ptr<Tmpfs>> disks_;
  testkit::NodeSet nodes_{tmp_.path()};
  testkit::Channels channels_;

 private:
  std::string skip_reason_;
};

}  // namespace ringlog::disk_full_test
