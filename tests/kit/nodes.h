// The ringlogd processes of one test, and what tests ask of them: their
// status over gRPC and whether a primary and its replicas have converged.
//
//   testkit::NodeSet nodes(dir.path());
//   tools::NodeProcess& p = nodes.start("p", kRinglogd, {"--role=primary"});
//   testkit::Channels channels;
//   ASSERT_TRUE(testkit::wait_converged(channels, p.address(), {r.address()},
//                                       absl::Seconds(90), {}));
//
// Test's main thread only, except Channels (any thread).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/process.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ringlog/security.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog::testkit {

// Named nodes, node `name` keeping its data in <dir>/<name> and its output
// in <dir>/<name>.log (NodeProcess's convention). The destructor SIGKILLs
// every node still running.
class NodeSet {
 public:
  explicit NodeSet(std::string dir) : dir_(std::move(dir)) {}

  std::string data_dir(const std::string& name) const { return dir_ + "/" + name; }
  // Starts `binary` on data_dir(name) with `args`, replacing (SIGKILL) a
  // process still running there; a reference from an earlier start of
  // `name` is invalid afterwards. Throws std::runtime_error (which ends the
  // test, reported as a failure) when the node does not start.
  tools::NodeProcess& start(const std::string& name, const std::string& binary,
                            const std::vector<std::string>& args);
  // The node last started as `name` (it may have stopped since).
  tools::NodeProcess& at(const std::string& name) { return *nodes_.at(name); }
  const tools::NodeProcess& at(const std::string& name) const { return *nodes_.at(name); }
  bool contains(const std::string& name) const { return nodes_.count(name) != 0; }
  // Sends `sig` and waits for the exit; the exit status. The node stays
  // known (stopped) unless erased.
  absl::StatusOr<int> stop(const std::string& name, int sig);
  void erase(const std::string& name) { nodes_.erase(name); }
  void clear() { nodes_.clear(); }  // SIGKILL to every node still running
  // The names of the nodes still running, sorted.
  std::vector<std::string> running() const;
  // The node's output so far (every start's stdout and stderr).
  std::string output(const std::string& name) const;

 private:
  std::string dir_;
  std::map<std::string, std::unique_ptr<tools::NodeProcess>> nodes_;
};

// gRPC channels to nodes, one per address, made on first use, with
// `security` (null: the client library's default, from the environment).
// Any thread.
class Channels {
 public:
  explicit Channels(std::shared_ptr<const ChannelSecurity> security = nullptr)
      : security_(std::move(security)) {}
  std::shared_ptr<grpc::Channel> get(const std::string& address);
  // Admin.GetStatus on the node at `address`.
  absl::StatusOr<v1::NodeStatus> status(const std::string& address,
                                        absl::Duration timeout = absl::Seconds(5));

 private:
  const std::shared_ptr<const ChannelSecurity> security_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

// What converged means beyond the primary having its whole log durable and
// committed and each replica streaming and having applied all of it.
struct ConvergeRules {
  bool replica_end = true;        // each replica's log ends where the primary's does
  bool roles_and_commit = false;  // the roles are right, each replica follows this
                                  // primary and has committed all of the log
  absl::Duration status_timeout = absl::Seconds(5);  // for each GetStatus
};

// Waits until the node at `primary` and those at `replicas` converged.
::testing::AssertionResult wait_converged(Channels& channels, const std::string& primary,
                                          const std::vector<std::string>& replicas,
                                          absl::Duration timeout, const ConvergeRules& rules);

}  // namespace ringlog::testkit
