#include "disk_full_support.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "kit/append_stream.h"
#include "kit/events.h"
#include "ringlog/client.h"

namespace ringlog::disk_full_test {

// ---- Tmpfs ----

Tmpfs::Tmpfs(std::string dir, int mib) : dir_(std::move(dir)) {
  const std::string opts = absl::StrCat("size=", mib, "m,mode=0755");
  if (mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    error_ = absl::StrCat("mounting a tmpfs on ", dir_, " was refused (", std::strerror(errno),
                          "): these tests need root, or CAP_SYS_ADMIN");
    return;
  }
  mounted_ = true;
}

Tmpfs::~Tmpfs() {
  if (mounted_ && umount2(dir_.c_str(), 0) != 0) (void)umount2(dir_.c_str(), MNT_DETACH);
}

bool Tmpfs::resize(int mib) {
  const std::string opts = absl::StrCat("size=", mib, "m");
  return mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_NOSUID | MS_NODEV, opts.c_str()) == 0;
}

// ---- Producer ----

std::string Batch::records() const { return testkit::encode_events(0, first, count, kPayloadBytes); }

Batch Producer::next() {
  Batch b{next_seq++, next_index, kBatchEvents};
  next_index += kBatchEvents;
  return b;
}

// ---- Appends ----

namespace {

constexpr size_t kWindow = 16;

// Checks that `acks` acknowledge `batches` from the first, in order.
bool acks_match(const std::vector<v1::AppendResponse>& acks, const std::vector<Batch>& batches,
                std::string* why) {
  for (size_t i = 0; i < acks.size(); ++i) {
    if (i >= batches.size() || acks[i].batch_id() != batches[i].seq) {
      *why = absl::StrCat("ack ", i, " is for batch ", acks[i].batch_id());
      return false;
    }
  }
  return true;
}

}  // namespace

SendRun send_until_refused(const std::string& address, Producer& producer) {
  testkit::RawAppendStream s(address, absl::Seconds(30));
  SendRun run;
  absl::Time last = absl::Now();
  size_t seen = 0;
  for (;;) {
    const bool open = s.wait_in_flight_below(kWindow);
    const size_t acked = s.acks().size();
    if (acked > seen) {
      seen = acked;
      last = absl::Now();
    }
    if (!open) break;
    run.sent.push_back(producer.next());
    const Batch& b = run.sent.back();
    if (!s.send(b.seq, b.records(), producer.id, b.seq)) break;
  }
  run.end = s.wait_end(absl::Seconds(30));
  run.waited = absl::Now() - last;
  const std::vector<v1::AppendResponse> acks = s.acks();
  std::string why;
  EXPECT_TRUE(acks_match(acks, run.sent, &why)) << why;
  for (const v1::AppendResponse& a : acks) EXPECT_FALSE(a.duplicate()) << "batch " << a.batch_id();
  run.acked = acks.size();
  return run;
}

Refusal send_one(const std::string& address, const std::string& producer_id, const Batch& batch) {
  testkit::RawAppendStream s(address, absl::Seconds(30));
  const absl::Time t0 = absl::Now();
  s.send(batch.seq, batch.records(), producer_id, batch.seq);
  std::optional<grpc::Status> end = s.wait_end(absl::Seconds(30));
  Refusal r;
  r.took = absl::Now() - t0;
  r.status = end ? *end : grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "no end in 30 s");
  return r;
}

Resent resend(const std::string& address, const Producer& producer,
              const std::vector<Batch>& batches) {
  testkit::RawAppendStream s(address, absl::Seconds(60));
  Resent out;
  for (const Batch& b : batches) {
    if (!s.wait_in_flight_below(kWindow) || !s.send(b.seq, b.records(), producer.id, b.seq)) break;
  }
  if (!s.wait_acks(batches.size(), absl::Seconds(30))) {
    const std::optional<grpc::Status> end = s.wait_end(absl::ZeroDuration());
    out.error = absl::StrCat(s.acks().size(), " of ", batches.size(), " acknowledged; ",
                             end ? end->error_message() : "the stream is still open");
    return out;
  }
  const std::vector<v1::AppendResponse> acks = s.acks();
  if (!acks_match(acks, batches, &out.error)) return out;
  for (const v1::AppendResponse& a : acks) out.duplicates += a.duplicate() ? 1 : 0;
  const grpc::Status end = s.finish();
  out.ok = end.ok();
  if (!end.ok()) out.error = end.error_message();
  return out;
}

bool append_more(const std::string& address, Producer& producer, uint64_t n) {
  std::vector<Batch> batches;
  for (uint64_t i = 0; i < n; ++i) batches.push_back(producer.next());
  const Resent r = resend(address, producer, batches);
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.duplicates, 0u);
  return r.ok && r.duplicates == 0;
}

// ---- Reading back ----

std::vector<uint64_t> replay_indices(const std::string& address) {
  std::vector<uint64_t> out;
  ClientOptions o;
  o.endpoints = {address};
  absl::StatusOr<std::unique_ptr<Client>> c = Client::Connect(o);
  if (!c.ok()) {
    ADD_FAILURE() << c.status();
    return out;
  }
  std::unique_ptr<Replayer> r = (*c)->replay(ReplayOptions{});
  while (std::optional<ReplayEvent> ev = r->next()) {
    uint64_t stream = 0;
    uint64_t index = 0;
    if (!testkit::parse_event_payload(ev->view.payload, kPayloadBytes, &stream, &index) || stream != 0) {
      ADD_FAILURE() << "not a test event at seq " << ev->seq;
      continue;
    }
    out.push_back(index);
  }
  EXPECT_TRUE(r->status().ok()) << r->status();
  return out;
}

std::vector<uint64_t> iota(uint64_t n) {
  std::vector<uint64_t> out(n);
  for (uint64_t i = 0; i < n; ++i) out[i] = i;
  return out;
}

std::string health(const std::string& address, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(make_channel(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service(service);
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) return absl::StrCat("error ", s.error_code(), ": ", s.error_message());
  return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
}

std::map<std::string, double> metrics(int port) {
  const std::string body = testkit::http_get(port, "/metrics");
  EXPECT_FALSE(body.empty()) << "GET /metrics on port " << port << " failed";
  return testkit::parse_metrics(body);
}

size_t count_lines(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) n += absl::StrContains(line, needle) ? 1 : 0;
  return n;
}

uint64_t free_bytes(const std::string& dir) {
  struct statvfs fs;
  return statvfs(dir.c_str(), &fs) == 0 ? static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize : 0;
}

// ---- Fixture ----

void DiskFull::TearDown() {
  if (HasFailure()) testkit::print_log_tails(tmp_.path(), 40);
}

Tmpfs* DiskFull::small_disk(const std::string& name, int mib) {
  const std::string dir = data_dir(name);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    skip_reason_ = absl::StrCat("cannot make ", dir, ": ", std::strerror(errno));
    return nullptr;
  }
  auto fs = std::make_unique<Tmpfs>(dir, mib);
  if (!fs->mounted()) {
    skip_reason_ = fs->error();
    return nullptr;
  }
  disks_.push_back(std::move(fs));
  return disks_.back().get();
}

tools::NodeProcess& DiskFull::start(const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--segment_bytes=1048576", "--ring_bytes=4194304",
                                   "--max_batch_bytes=262144"};
  args.insert(args.end(), extra.begin(), extra.end());
  return nodes_.start(name, testkit::kRinglogd, args);
}

int DiskFull::metrics_port(const std::string& name) {
  static const std::regex re(R"(metrics on http://\S+/metrics \(port (\d+)\))");
  int port = 0;
  wait_until([&] {
    std::smatch m;
    const std::string out = output(name);
    if (!std::regex_search(out, m, re)) return false;
    port = std::stoi(m[1]);
    return port > 0;
  });
  return port;
}

}  // namespace ringlog::disk_full_test
