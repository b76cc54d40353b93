// A corrupt chunk is refused and the replica recovers. The replica follows a
// proxy in this process that relays Replication.Follow to the real primary
// and flips one byte in the records of one chunk, once.
#include <fstream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replication_harness.h"
#include "ringlog/storage.h"

namespace ringlog::testing {
namespace {

using ::testing::HasSubstr;

class CorruptingProxy final : public v1::Replication::Service {
 public:
  // Which chunk to corrupt: called for each chunk with records, with how
  // many such chunks came before it, until it says yes once.
  using Pick = std::function<bool(const v1::Chunk&, int index)>;

  struct Corruption {
    uint64_t chunk_start = 0;  // the chunk's start offset
    uint64_t offset = 0;       // log offset of the flipped byte
    char original = 0;
    char flipped = 0;
    int stream = 0;  // which Follow stream (0-based) carried it
  };

  CorruptingProxy(std::string upstream, Pick pick)
      : upstream_(make_channel(upstream)), pick_(std::move(pick)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.SetMaxReceiveMessageSize(64 << 20);
    b.SetMaxSendMessageSize(64 << 20);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~CorruptingProxy() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  bool ok() const { return server_ != nullptr && port_ != 0; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  std::optional<Corruption> corruption() const {
    std::lock_guard l(mu_);
    return corruption_;
  }
  // The log end offset each Follow stream's hello gave, in order.
  std::vector<uint64_t> hellos() const {
    std::lock_guard l(mu_);
    return hellos_;
  }

  grpc::Status Follow(grpc::ServerContext* ctx,
                      grpc::ServerReaderWriter<v1::FollowResponse, v1::FollowRequest>* down) override {
    int stream;
    {
      std::lock_guard l(mu_);
      stream = streams_++;
    }
    std::unique_ptr<v1::Replication::Stub> stub = v1::Replication::NewStub(upstream_);
    grpc::ClientContext up_ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::FollowRequest, v1::FollowResponse>> up =
        stub->Follow(&up_ctx);
    // Replica -> primary, on a thread of its own.
    std::thread pump([&] {
      v1::FollowRequest req;
      while (down->Read(&req)) {
        if (req.has_hello()) {
          std::lock_guard l(mu_);
          hellos_.push_back(req.hello().log_end_offset());
        }
        if (!up->Write(req)) break;
      }
      up_ctx.TryCancel();  // the replica is gone: end the primary's side
    });
    // Primary -> replica, corrupting one chunk once.
    v1::FollowResponse resp;
    while (up->Read(&resp)) {
      if (resp.has_chunk() && !resp.chunk().records().empty()) maybe_corrupt(resp, stream);
      if (!down->Write(resp)) break;
    }
    up_ctx.TryCancel();
    ctx->TryCancel();  // ends the pump's Read
    pump.join();
    return up->Finish();
  }

 private:
  void maybe_corrupt(v1::FollowResponse& resp, int stream) {
    std::lock_guard l(mu_);
    const int index = chunks_++;
    if (corruption_ || !pick_(resp.chunk(), index)) return;
    std::string* records = resp.mutable_chunk()->mutable_records();
    // A payload byte of the middle record.
    std::vector<size_t> starts;
    for (size_t p = 0; p + kHeaderSize <= records->size();
         p += header_at(reinterpret_cast<const std::byte*>(records->data() + p))->padded_size()) {
      starts.push_back(p);
    }
    const size_t at = starts[starts.size() / 2] + kHeaderSize + 5;
    Corruption c;
    c.chunk_start = resp.chunk().start_offset();
    c.offset = c.chunk_start + at;
    c.original = (*records)[at];
    c.flipped = static_cast<char>(~c.original);
    c.stream = stream;
    (*records)[at] = c.flipped;
    corruption_ = c;
  }

  std::shared_ptr<grpc::Channel> upstream_;
  Pick pick_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mu_;
  int streams_ = 0;
  int chunks_ = 0;
  std::vector<uint64_t> hellos_;
  std::optional<Corruption> corruption_;
};

class ReplicationCorruptChunk : public ReplicationTest {
 protected:
  // Follows `p` through a proxy that corrupts the chunk `pick` chooses while
  // 300k events are appended, then checks that the chunk was refused, the
  // replica reconnected from just before it, and converged.
  void run(CorruptingProxy::Pick pick) {
    constexpr uint64_t kEvents = 300'000;
    tools::NodeProcess& p = start_primary("p");
    ASSERT_TRUE(append_events(p, 0, kEvents / 2).ok());
    CorruptingProxy proxy(p.address(), std::move(pick));
    ASSERT_TRUE(proxy.ok());
    tools::NodeProcess& r = start_replica("r", proxy.address());
    ASSERT_TRUE(append_events(p, kEvents / 2, kEvents / 2).ok());
    ASSERT_TRUE(wait_converged(p, {&r}));

    const std::optional<CorruptingProxy::Corruption> c = proxy.corruption();
    ASSERT_TRUE(c.has_value()) << "no chunk was corrupted";
    // The replica dropped the stream that carried the bad chunk and came back
    // with its log ending exactly where that chunk began: nothing of it was
    // applied.
    const std::vector<uint64_t> hellos = proxy.hellos();
    ASSERT_GE(hellos.size(), static_cast<size_t>(c->stream) + 2) << "the replica did not reconnect";
    EXPECT_EQ(hellos[c->stream + 1], c->chunk_start);
    EXPECT_THAT(node_output("r"), HasSubstr(absl::StrCat("corrupt chunk at offset ", c->chunk_start)));
    const v1::NodeStatus rs = status_now(r);
    const v1::NodeStatus ps = status_now(p);
    EXPECT_EQ(rs.replica_state(), v1::REPLICA_STATE_STREAMING);
    // The replica still holds the whole log, not only what came after the bad chunk.
    EXPECT_EQ(rs.log_start_offset(), ps.log_start_offset());
    EXPECT_EQ(rs.segment_count(), ps.segment_count());
    const uint64_t end = ps.log_end_offset();
    EXPECT_GE(end, kEvents * kRecordBytes);
    stop_all();

    EXPECT_EQ(byte_at("r", c->offset), c->original);
    EXPECT_TRUE(logs_identical("p", "r", end));
  }

  // The byte at log offset `offset` in a stopped node's segment files.
  char byte_at(const std::string& name, uint64_t offset) {
    for (const std::string& f : segment_files(name)) {
      const std::string path = data_dir(name) + "/" + f;
      std::ifstream in(path, std::ios::binary);
      FileHeader h;
      in.read(reinterpret_cast<char*>(&h), sizeof h);
      if (offset < h.base_offset || offset >= h.base_offset + h.file_size - sizeof h) continue;
      in.seekg(static_cast<std::streamoff>(sizeof h + (offset - h.base_offset)));
      char b = 0;
      in.read(&b, 1);
      if (offset < h.base_offset + (h.sealed() ? h.write_offset : h.file_size)) return b;
    }
    ADD_FAILURE() << "offset " << offset << " is in no segment of " << name;
    return 0;
  }
};

TEST_F(ReplicationCorruptChunk, CorruptRecordsAreRefusedAndReplicaRecovers) {
  run([](const v1::Chunk& c, int index) { return index >= 2 && !c.has_segment(); });
}

TEST_F(ReplicationCorruptChunk, CorruptChunkStartingASegmentIsRefusedAndReplicaRecovers) {
  run([](const v1::Chunk& c, int) { return c.has_segment() && c.start_offset() != 0; });
}

}  // namespace
}  // namespace ringlog::testing
