#include "kit/nodes.h"

#include <chrono>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kit/support.h"
#include "ringlog/client.h"
#include "ringlog/grpc_status.h"

namespace ringlog::testkit {

// ---- NodeSet ----

tools::NodeProcess& NodeSet::start(const std::string& name, const std::string& binary,
                                   const std::vector<std::string>& args) {
  nodes_.erase(name);  // a previous process on this directory must be gone (SIGKILL if not)
  absl::StatusOr<tools::NodeProcess> p = tools::NodeProcess::Start(binary, data_dir(name), args);
  if (!p.ok()) {
    throw std::runtime_error(absl::StrCat("cannot start ", name, ": ", p.status().ToString(), "\n",
                                          output(name)));
  }
  auto& slot = nodes_[name];
  slot = std::make_unique<tools::NodeProcess>(*std::move(p));
  return *slot;
}

absl::StatusOr<int> NodeSet::stop(const std::string& name, int sig) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return absl::NotFoundError("no node " + name);
  return it->second->stop(sig);
}

std::vector<std::string> NodeSet::running() const {
  std::vector<std::string> out;
  for (const auto& [name, n] : nodes_) {
    if (n->pid() > 0) out.push_back(name);
  }
  return out;
}

std::string NodeSet::output(const std::string& name) const {
  return read_file(data_dir(name) + ".log");
}

// ---- Channels ----

std::shared_ptr<grpc::Channel> Channels::get(const std::string& address) {
  std::lock_guard l(mu_);
  std::shared_ptr<grpc::Channel>& ch = channels_[address];
  if (!ch) ch = make_channel(address, security_);
  return ch;
}

absl::StatusOr<v1::NodeStatus> Channels::status(const std::string& address,
                                                absl::Duration timeout) {
  std::unique_ptr<v1::Admin::Stub> stub = v1::Admin::NewStub(get(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  v1::NodeStatus out;
  const grpc::Status s = stub->GetStatus(&ctx, v1::GetStatusRequest(), &out);
  if (!s.ok()) return from_grpc(s);
  return out;
}

// ---- Convergence ----

namespace {

// Why the primary's status `p` (at `address`) is not converged, or "".
std::string primary_gap(const std::string& address, const v1::NodeStatus& p,
                        const ConvergeRules& rules) {
  const uint64_t end = p.log_end_offset();
  if ((rules.roles_and_commit && p.role() != v1::ROLE_PRIMARY) || p.durable_offset() != end ||
      p.commit_offset() != end) {
    return absl::StrFormat("primary %s: role %d end %d durable %d commit %d", address, p.role(),
                           end, p.durable_offset(), p.commit_offset());
  }
  return "";
}

// Why replica status `s` (at `address`) has not converged on `primary`'s
// log, which ends at `end`, or "".
std::string replica_gap(const std::string& address, const v1::NodeStatus& s,
                        const std::string& primary, uint64_t end, const ConvergeRules& rules) {
  bool ok = s.replica_state() == v1::REPLICA_STATE_STREAMING && s.applied_offset() == end;
  if (rules.replica_end) ok = ok && s.log_end_offset() == end;
  if (rules.roles_and_commit) {
    ok = ok && s.role() == v1::ROLE_REPLICA && s.primary() == primary && s.commit_offset() == end;
  }
  if (ok) return "";
  return absl::StrFormat(
      "replica %s: role %d primary \"%s\" state %s end %d applied %d commit %d; primary end %d (%s)",
      address, s.role(), s.primary(), v1::ReplicaState_Name(s.replica_state()), s.log_end_offset(),
      s.applied_offset(), s.commit_offset(), end, s.replication_error());
}

}  // namespace

::testing::AssertionResult wait_converged(Channels& channels, const std::string& primary,
                                          const std::vector<std::string>& replicas,
                                          absl::Duration timeout, const ConvergeRules& rules) {
  std::string why;
  const bool ok = wait_until(
      [&] {
        absl::StatusOr<v1::NodeStatus> p = channels.status(primary, rules.status_timeout);
        why = p.ok() ? primary_gap(primary, *p, rules)
                     : absl::StrCat("primary ", primary, ": ", p.status().ToString());
        if (!why.empty()) return false;
        for (const std::string& r : replicas) {
          absl::StatusOr<v1::NodeStatus> s = channels.status(r, rules.status_timeout);
          why = s.ok() ? replica_gap(r, *s, primary, p->log_end_offset(), rules)
                       : absl::StrCat("replica ", r, ": ", s.status().ToString());
          if (!why.empty()) return false;
        }
        return true;
      },
      timeout);
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not converged within " << absl::FormatDuration(timeout)
                                       << ": " << why;
}

}  // namespace ringlog::testkit
