// SIGTERM under load, again and again. A primary with every kind of stream
// open stops: Append streams of several producers, two of them streams of
// one producer sending the same batches (a client that reconnected while
// its old stream was still being read), Replay --follow streams, a live
// replica's Replication.Follow, and, frozen with SIGSTOP so that they hold
// their streams open and read nothing, a `ringlogctl load`, a `ringlogctl
// replay --follow` and a second replica. Each round the primary exits with
// status 0 within 10 s by the ordinary path (its log says it stopped
// cleanly, not that a watchdog ended it), the restart on the same data
// directory succeeds (the lock was released), and the log holds every
// acknowledged event exactly once and no event twice. (A round whose frozen
// replica had a write in flight takes about 5.5 s: gRPC closes that
// connection when the ping sent with the shutdown goes unanswered.)
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "kit/append_stream.h"
#include "kit/binaries.h"
#include "kit/events.h"
#include "kit/load.h"
#include "kit/nodes.h"
#include "kit/support.h"
#include "ringlog/client.h"

namespace ringlog::fault_test {
namespace {

using testkit::kRinglogctl;
using testkit::kRinglogd;
using testkit::wait_until;

constexpr int kRounds = 10;
// The test's events; `ringlogctl load` writes 64-byte payloads, which a
// check tells apart by their size.
constexpr size_t kPayloadBytes = 24;
constexpr uint64_t kResendBatch = 50;  // events per batch of the resending producer
constexpr absl::Duration kStopBound = absl::Seconds(10);

std::vector<std::string> node_flags() {
  return {"--segment_bytes=2097152", "--ring_bytes=8388608", "--fsync=10ms"};
}

// A command running in the background, its output in `log`; SIGKILLed (and
// woken first, if frozen) when destroyed.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
      }
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  void freeze() { kill(pid_, SIGSTOP); }

 private:
  pid_t pid_ = -1;
};

// Two Append streams of one producer sending the same batches, each with
// up to 16 unacknowledged, until the node ends them. Batch `seq` holds events
// [(seq - 1) * kResendBatch, seq * kResendBatch) of `stream`.
class ResendingProducer {
 public:
  ResendingProducer(const std::string& address, uint64_t stream)
      : stream_(stream), producer_("resender-" + std::to_string(stream)) {
    for (int i = 0; i < 2; ++i) {
      streams_.push_back(std::make_unique<testkit::RawAppendStream>(address));
    }
    for (int i = 0; i < 2; ++i) {
      threads_.emplace_back([this, s = streams_[i].get()] {
        for (uint64_t seq = 1; seq <= 100'000 && !stop_.load(); ++seq) {
          if (!s->wait_in_flight_below(16)) return;
          const std::string records = testkit::encode_events(
              stream_, (seq - 1) * kResendBatch, kResendBatch, kPayloadBytes);
          if (!s->send(seq, records, producer_, seq)) return;
          uint64_t sent = sent_.load();
          while (seq > sent && !sent_.compare_exchange_weak(sent, seq)) {}
        }
      });
    }
  }
  ~ResendingProducer() { stop(); }

  // Acknowledgements on both streams so far.
  size_t acks() const { return streams_[0]->acks().size() + streams_[1]->acks().size(); }
  // Stops sending; waits for both streams to end (the node stopped).
  void stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    for (auto& s : streams_) (void)s->wait_end(absl::Seconds(30));
  }
  // The seqs acknowledged on either stream (valid after stop()).
  std::set<uint64_t> acked_seqs() const {
    std::set<uint64_t> out;
    for (const auto& s : streams_) {
      for (const v1::AppendResponse& a : s->acks()) out.insert(a.batch_id());
    }
    return out;
  }
  uint64_t stream() const { return stream_; }
  uint64_t sent_events() const { return sent_.load() * kResendBatch; }

 private:
  const uint64_t stream_;
  const std::string producer_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sent_{0};  // the highest seq sent on either stream
  std::vector<std::unique_ptr<testkit::RawAppendStream>> streams_;
  std::vector<std::thread> threads_;  // last: start once the streams exist
};

// A Replay --follow stream read by a thread of its own until cancelled.
class FollowingReplay {
 public:
  explicit FollowingReplay(const std::string& address) {
    ClientOptions o;
    o.endpoints = {address};
    absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
    if (!c.ok()) throw std::runtime_error("replay client: " + c.status().ToString());
    client_ = std::move(*c);
    ReplayOptions r;
    r.follow = true;
    r.from_end = true;
    r.resume_for = absl::ZeroDuration();  // ends when the node goes
    replayer_ = client_->replay(r);
    thread_ = std::thread([this] {
      while (replayer_->next()) events_.fetch_add(1);
    });
  }
  ~FollowingReplay() {
    replayer_->cancel();
    thread_.join();
  }
  uint64_t events() const { return events_.load(); }

 private:
  std::unique_ptr<Client> client_;
  std::unique_ptr<Replayer> replayer_;
  std::atomic<uint64_t> events_{0};
  std::thread thread_;  // last
};

// What one stream of test events must look like in the log.
struct Expected {
  uint64_t acked = 0;      // events [0, acked) acknowledged: each exactly once
  uint64_t sent = 0;       // no index at or past it
  bool in_order = true;    // one producer stream at a time: indices rise
  std::set<uint64_t> acked_batches;  // resending producer: acknowledged seqs
};

class FaultSigterm : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) testkit::print_log_tails(dir_.path(), 40);
  }

  // On `port` if set (a restart: the replica's ROLE file names the address
  // it follows), after NodeProcess's --listen=127.0.0.1:0: the last one wins.
  tools::NodeProcess& start_primary(int port = 0) {
    std::vector<std::string> args = node_flags();
    args.push_back("--min_replica_acks=1");
    if (port != 0) args.push_back(absl::StrCat("--listen=127.0.0.1:", port));
    return nodes_.start("p", kRinglogd, args);
  }
  tools::NodeProcess& start_replica(const std::string& name) {
    std::vector<std::string> args = node_flags();
    args.push_back("--role=replica");
    args.push_back("--primary=" + nodes_.at("p").address());
    return nodes_.start(name, kRinglogd, args);
  }
  absl::StatusOr<v1::NodeStatus> primary_status() {
    return channels_.status(nodes_.at("p").address());
  }
  bool primary_shows(const std::function<bool(const v1::NodeStatus&)>& pred) {
    absl::StatusOr<v1::NodeStatus> st = primary_status();
    return st.ok() && pred(*st);
  }
  int connected_replicas(const v1::NodeStatus& st) {
    int n = 0;
    for (const v1::ReplicaInfo& r : st.replicas()) n += r.connected() ? 1 : 0;
    return n;
  }

  // Replays the log from `from_seq` (committed: after convergence) and checks
  // the test events of each stream in `expected` against it.
  ::testing::AssertionResult log_holds(Client& client, uint64_t from_seq,
                                       const std::map<uint64_t, Expected>& expected) {
    ReplayOptions r;
    r.from_seq = from_seq;
    std::unique_ptr<Replayer> replayer = client.replay(r);
    std::map<uint64_t, std::vector<uint64_t>> seen;  // stream -> indices in log order
    while (std::optional<ReplayEvent> ev = replayer->next()) {
      uint64_t stream = 0, index = 0;
      if (!testkit::parse_event_payload(ev->view.payload, kPayloadBytes, &stream, &index)) {
        continue;  // ringlogctl load's events
      }
      if (!expected.count(stream)) {
        return ::testing::AssertionFailure() << "seq " << ev->seq << " holds event " << index
                                             << " of stream " << stream << ", not of this round";
      }
      seen[stream].push_back(index);
    }
    if (!replayer->status().ok()) {
      return ::testing::AssertionFailure() << "replay: " << replayer->status();
    }
    for (const auto& [stream, want] : expected) {
      const std::vector<uint64_t>& got = seen[stream];
      std::set<uint64_t> once;
      for (size_t i = 0; i < got.size(); ++i) {
        if (!once.insert(got[i]).second) {
          return ::testing::AssertionFailure() << "stream " << stream << ": event " << got[i]
                                               << " is in the log twice";
        }
        if (got[i] >= want.sent) {
          return ::testing::AssertionFailure() << "stream " << stream << ": event " << got[i]
                                               << " was never sent (" << want.sent << " were)";
        }
        if (want.in_order && i > 0 && got[i] < got[i - 1]) {
          return ::testing::AssertionFailure() << "stream " << stream << ": event " << got[i]
                                               << " after event " << got[i - 1];
        }
      }
      for (uint64_t i = 0; i < want.acked; ++i) {
        if (!once.count(i)) {
          return ::testing::AssertionFailure() << "stream " << stream << ": acknowledged event "
                                               << i << " of " << want.acked << " is lost";
        }
      }
      for (uint64_t seq : want.acked_batches) {
        for (uint64_t i = (seq - 1) * kResendBatch; i < seq * kResendBatch; ++i) {
          if (!once.count(i)) {
            return ::testing::AssertionFailure() << "stream " << stream << ": event " << i
                                                 << " of acknowledged batch " << seq
                                                 << " is lost";
          }
        }
      }
    }
    uint64_t acknowledged = 0;
    for (const auto& [stream, want] : expected) {
      acknowledged += want.acked + want.acked_batches.size() * kResendBatch;
    }
    testkit::report_fault("sigterm_under_load", acknowledged, 0, 0);  // checked just above
    return ::testing::AssertionSuccess();
  }

  testkit::TempDir dir_{"ringlog-fault-"};  // first: removed after the nodes are gone
  testkit::NodeSet nodes_{dir_.path()};
  testkit::Channels channels_;
};

TEST_F(FaultSigterm, UnderLoadWithEveryStreamOpenExitsCleanlyAndKeepsEveryAck) {
  start_primary();
  start_replica("r");
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string p = nodes_.at("p").address();
    absl::StatusOr<v1::NodeStatus> before = primary_status();
    ASSERT_TRUE(before.ok()) << before.status();
    const uint64_t round_start = before->next_seq();

    // A second replica, frozen once it follows: its stream stays open.
    const std::string frozen_replica = absl::StrCat("frozen-", round);
    tools::NodeProcess& fr = start_replica(frozen_replica);
    ASSERT_TRUE(wait_until([&] {
      return primary_shows([&](const v1::NodeStatus& st) { return connected_replicas(st) == 2; });
    })) << "the second replica did not connect";
    ASSERT_EQ(kill(fr.pid(), SIGSTOP), 0);

    // Producers: two Appenders (they fail over, resending what was not
    // acknowledged) and the resending pair of streams.
    const uint64_t base = 1000 + static_cast<uint64_t>(round) * 10;
    std::vector<std::unique_ptr<testkit::BackgroundLoad>> loads;
    for (uint64_t k = 0; k < 2; ++k) {
      loads.push_back(std::make_unique<testkit::BackgroundLoad>(testkit::LoadOptions{
          .endpoints = {p},
          .payload_bytes = kPayloadBytes,
          .stream = base + k,
          .events_per_second = 40'000,
          .failover_timeout = absl::Seconds(1),
          .drain_each_burst = true}));
    }
    ResendingProducer resender(p, base + 2);
    // Replays following the commit, in process and as frozen ringlogctl.
    FollowingReplay replay1(p), replay2(p);
    Background frozen_load({kRinglogctl, "load", "--nodes=" + p, "--rate=20000", "--payload=64"},
                           dir_.path() + "/ctl-load.log");
    Background frozen_replay({kRinglogctl, "replay", "--follow", "--node=" + p, "--format=raw"},
                             dir_.path() + "/ctl-replay.log");
    ASSERT_TRUE(wait_until([&] {
      return primary_shows([](const v1::NodeStatus& st) {
        // 2 Appenders, the 2 resending streams, ringlogctl load; 2 + 1 replays.
        return st.active_append_streams() >= 5 && st.active_replay_streams() >= 3;
      });
    })) << "not every stream opened";
    frozen_load.freeze();
    frozen_replay.freeze();
    // The load goes on beside the frozen peers.
    ASSERT_TRUE(wait_until([&] {
      return loads[0]->acked() >= 10'000 && loads[1]->acked() >= 10'000 &&
             resender.acks() >= 100 && replay1.events() > 0 && replay2.events() > 0;
    })) << "acked " << loads[0]->acked() << " and " << loads[1]->acked() << ", resender "
        << resender.acks() << ", replays " << replay1.events() << " and " << replay2.events();
    for (const auto& l : loads) ASSERT_FALSE(l->failed());

    const size_t log_before = nodes_.output("p").size();
    const absl::Time t0 = absl::Now();
    // Killed (and reported) if it has not exited within the bound.
    const absl::StatusOr<int> exit_code = nodes_.at("p").stop(SIGTERM, kStopBound);
    const absl::Duration took = absl::Now() - t0;
    ASSERT_TRUE(exit_code.ok()) << exit_code.status();
    EXPECT_EQ(*exit_code, 0);
    EXPECT_LT(took, kStopBound);
    const std::string stop_log = nodes_.output("p").substr(log_before);
    EXPECT_NE(stop_log.find("stopped cleanly"), std::string::npos)
        << "the stop did not take the ordinary path:\n" << stop_log;
    std::printf("round %d: SIGTERM to exit %.0f ms\n", round, absl::ToDoubleMilliseconds(took));

    // Everyone else ends: the producers' streams were ended by the node.
    std::map<uint64_t, Expected> expected;
    for (uint64_t k = 0; k < loads.size(); ++k) {
      (void)loads[k]->stop();  // fails: the node is gone
      expected[base + k] = Expected{.acked = loads[k]->acked(), .sent = loads[k]->appended(),
                                    .in_order = true, .acked_batches = {}};
    }
    resender.stop();
    expected[base + 2] = Expected{
        .acked = 0, .sent = resender.sent_events(), .in_order = false,
        .acked_batches = resender.acked_seqs()};
    nodes_.erase(frozen_replica);  // SIGKILL
    std::filesystem::remove_all(nodes_.data_dir(frozen_replica));
    ASSERT_GT(expected[base].acked, 0u);

    // The restart on the same directory succeeds; once the replica has
    // reconnected (the commit needs its ack), every acknowledged event is
    // there once.
    start_primary(nodes_.at("p").port());
    ASSERT_TRUE(testkit::wait_converged(channels_, nodes_.at("p").address(),
                                        {nodes_.at("r").address()}, absl::Seconds(60), {}));
    ClientOptions o;
    o.endpoints = {nodes_.at("p").address()};
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(o);
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE(log_holds(**client, round_start, expected));
  }
  ASSERT_EQ(nodes_.stop("p", SIGTERM).value_or(-1), 0);
  ASSERT_EQ(nodes_.stop("r", SIGTERM).value_or(-1), 0);
}

}  // namespace
}  // namespace ringlog::fault_test
