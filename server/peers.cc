#include "peers.h"

#include <algorithm>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "ringlog/client.h"
#include "ringlog/v1/ringlog.grpc.pb.h"

namespace ringlog {

std::vector<PeerStatus> query_peers(const std::vector<std::string>& addresses,
                                    const std::string& self_id, absl::Duration timeout) {
  std::vector<std::string> addrs = addresses;
  std::sort(addrs.begin(), addrs.end());
  addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
  struct Call {
    std::string address;
    std::unique_ptr<v1::Admin::Stub> stub;
    grpc::ClientContext ctx;
    v1::NodeStatus out;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::NodeStatus>> rpc;
  };
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Call>> calls;
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  for (const std::string& a : addrs) {
    auto c = std::make_unique<Call>();
    c->address = a;
    c->stub = v1::Admin::NewStub(make_channel(a));
    c->ctx.set_deadline(deadline);
    c->rpc = c->stub->AsyncGetStatus(&c->ctx, v1::GetStatusRequest(), &cq);
    c->rpc->Finish(&c->out, &c->status, c.get());
    calls.push_back(std::move(c));
  }
  std::vector<PeerStatus> out;
  for (size_t i = 0; i < calls.size(); ++i) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    auto* c = static_cast<Call*>(tag);
    if (ok && c->status.ok() && c->out.node_id() != self_id) out.push_back({c->address, c->out});
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return out;
}

}  // namespace ringlog
