// Pipeline on a full disk: a batch goes into the log whole or not at all,
// the storage thread retries until space is back, and ring 0's producer can
// have what the ring holds dropped unstored once the pipeline refuses.
//
// The disk is a small tmpfs mounted on the test's directory (as root); where
// mounting is refused, the tests skip and say why.
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "ringlog/pipeline.h"
#include "test_util.h"

namespace ringlog {
namespace {

using namespace ringlog_test;

constexpr uint64_t kSegment = 1 << 20;
constexpr size_t kPayload = 48;  // 64-byte records

// `n` records of kPayload bytes, timestamps from `first`.
std::string records(uint64_t first, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const std::string p = payload_for(first + i, kPayload);
    const std::vector<std::byte> rec = encode(header_for(first + i, 1, p), p);
    out.append(reinterpret_cast<const char*>(rec.data()), rec.size());
  }
  return out;
}

ByteSpan span_of(const std::string& s) {
  return ByteSpan(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

// Polls `pred` for up to 20 s.
bool eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 4000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

class PipelineStallTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    disk_ = path("disk");
    ASSERT_EQ(mkdir(disk_.c_str(), 0755), 0) << std::strerror(errno);
  }
  void TearDown() override {
    pipeline_.reset();  // closes the files before the unmount
    if (mounted_ && umount2(disk_.c_str(), 0) != 0) (void)umount2(disk_.c_str(), MNT_DETACH);
    TempDirTest::TearDown();
  }
  // Mounts (or remounts) a tmpfs of `mib` MiB on disk_.
  bool mount_disk(int mib) {
    const std::string opts = "size=" + std::to_string(mib) + "m";
    const unsigned long flags = mounted_ ? MS_REMOUNT : 0;
    if (mount("tmpfs", disk_.c_str(), "tmpfs", flags, opts.c_str()) != 0) {
      why_ = "mounting a tmpfs was refused (" + std::string(std::strerror(errno)) +
             "): these tests need root";
      return false;
    }
    mounted_ = true;
    return true;
  }
  PipelineOptions options() {
    PipelineOptions o;
    o.ring_bytes = 8 << 20;
    o.rings = 2;
    o.log.segment_bytes = kSegment;
    o.log.prepare_ahead = false;  // every segment file is made when needed
    o.error_retry = absl::Milliseconds(20);
    o.on_append = [this](const AppendedChunk& c) {
      std::lock_guard l(mu_);
      appended_.push_back(c);
    };
    return o;
  }
  std::vector<AppendedChunk> appended() {
    std::lock_guard l(mu_);
    return appended_;
  }

  std::string disk_;
  std::string why_;
  bool mounted_ = false;
  std::mutex mu_;
  std::vector<AppendedChunk> appended_;  // guarded by mu_
  std::unique_ptr<Pipeline> pipeline_;
};

// A 2.5 MiB batch needs two new segments; the disk holds one more. The
// first roll succeeds, the second fails: what went in is cut back, so the
// log ends where it did and nothing of the batch is served. With space back,
// the batch goes in whole, once.
TEST_F(PipelineStallTest, ABatchThatDoesNotFitGoesInWholeOnceSpaceIsBack) {
  if (!mount_disk(2)) GTEST_SKIP() << why_;
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Open(disk_, options());
  ASSERT_TRUE(p.ok()) << p.status();
  pipeline_ = std::move(*p);
  const std::string batch = records(0, (5 << 20) / 2 / 64);
  ASSERT_TRUE(pipeline_->producer(0).write_records(span_of(batch)));
  ASSERT_TRUE(eventually([&] { return pipeline_->stall().stalled; }));
  const StorageStall st = pipeline_->stall();
  EXPECT_EQ(st.error.code(), absl::StatusCode::kResourceExhausted) << st.error;
  EXPECT_EQ(pipeline_->log().end().offset, 0u);
  EXPECT_EQ(pipeline_->durable().offset, 0u);
  EXPECT_TRUE(appended().empty());

  ASSERT_TRUE(mount_disk(8));
  ASSERT_TRUE(eventually([&] { return !pipeline_->stall().stalled; }));
  ASSERT_EQ(appended().size(), 1u);
  EXPECT_EQ(appended()[0].first.offset, 0u);
  EXPECT_EQ(pipeline_->log().end().offset, batch.size());
  EXPECT_EQ(pipeline_->stall().episodes, 1u);
  EXPECT_TRUE(pipeline_->error().ok());
}

// With refuse_after, a stall makes the pipeline refuse: ring 0's producer
// asks for a drop at its position and the storage thread drops what ring 0
// holds up to there, unstored, and reports it. Ring 1 (an in-process
// producer) keeps its events. Once space is back the pipeline stops
// refusing, ring 1's events go in, and ring 0 is written and stored again.
TEST_F(PipelineStallTest, RefusingDropsRingZeroButKeepsTheOtherRings) {
  if (!mount_disk(2)) GTEST_SKIP() << why_;
  std::atomic<int> refusing_calls{0};
  std::atomic<uint64_t> refused_at{0};
  PipelineOptions o = options();
  o.refuse_after = absl::Milliseconds(100);
  o.on_refusing = [&] { refusing_calls.fetch_add(1); };
  o.on_refused = [&](const RefusedChunk& c) {
    EXPECT_EQ(c.error.code(), absl::StatusCode::kResourceExhausted);
    refused_at.store(c.ring_position);
  };
  absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Open(disk_, o);
  ASSERT_TRUE(p.ok()) << p.status();
  pipeline_ = std::move(*p);
  SpscRingBuffer::Producer& ring0 = pipeline_->producer(0);
  uint64_t ts = 0;
  // 256 KiB batches until the log stops taking them.
  while (!pipeline_->stall().stalled) {
    const std::string b = records(ts, 4096);
    if (ring0.write_records(span_of(b))) ts += 4096;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const std::string kept = records(1'000'000, 10);
  ASSERT_TRUE(pipeline_->producer(1).write_records(span_of(kept)));
  ASSERT_TRUE(eventually([&] { return pipeline_->refusing(); }));
  EXPECT_EQ(refusing_calls.load(), 1);
  const uint64_t end_before = pipeline_->log().end().offset;

  const uint64_t w = ring0.written();
  pipeline_->refuse_to(w);
  ASSERT_TRUE(eventually([&] { return pipeline_->refused_to() == w; }));
  EXPECT_EQ(refused_at.load(), w);
  EXPECT_EQ(pipeline_->ring_used(0), 0u);
  EXPECT_EQ(pipeline_->log().end().offset, end_before);
  EXPECT_TRUE(pipeline_->refusing());

  ASSERT_TRUE(mount_disk(16));
  ASSERT_TRUE(eventually([&] { return !pipeline_->refusing() && !pipeline_->stall().stalled; }));
  ASSERT_TRUE(eventually([&] { return pipeline_->log().end().offset == end_before + kept.size(); }));
  const std::string after = records(2'000'000, 10);
  ASSERT_TRUE(ring0.write_records(span_of(after)));
  ASSERT_TRUE(eventually([&] {
    return pipeline_->log().end().offset == end_before + kept.size() + after.size();
  }));
  // The log holds exactly the chunks reported appended, each whole.
  uint64_t total = 0;
  for (const AppendedChunk& c : appended()) total += c.end.offset - c.first.offset;
  EXPECT_EQ(total, pipeline_->log().end().offset);
}

}  // namespace
}  // namespace ringlog
