#include "kit/append_stream.h"

#include <chrono>

#include "ringlog/client.h"

namespace ringlog::testkit {

RawAppendStream::RawAppendStream(const std::shared_ptr<grpc::Channel>& channel,
                                 absl::Duration deadline)
    : stub_(v1::EventLog::NewStub(channel)) {
  ctx_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(deadline));
  stream_ = stub_->Append(&ctx_);
  reader_ = std::thread([this] { read_loop(); });
}

RawAppendStream::RawAppendStream(const std::string& address, absl::Duration deadline)
    : RawAppendStream(make_channel(address), deadline) {}

RawAppendStream::~RawAppendStream() {
  ctx_.TryCancel();
  if (reader_.joinable()) reader_.join();
}

void RawAppendStream::read_loop() {
  v1::AppendResponse r;
  while (stream_->Read(&r)) {
    std::lock_guard l(mu_);
    acks_.push_back(r);
    cv_.notify_all();
  }
  // Read failed: the call has ended, and Finish only collects its status.
  const grpc::Status s = stream_->Finish();
  std::lock_guard l(mu_);
  end_ = s;
  cv_.notify_all();
}

bool RawAppendStream::send(uint64_t batch_id, const std::string& records,
                           const std::string& producer_id, uint64_t producer_seq) {
  v1::AppendRequest req;
  req.set_batch_id(batch_id);
  req.set_records(records);
  req.set_producer_id(producer_id);
  req.set_producer_seq(producer_seq);
  return send(req);
}

bool RawAppendStream::send(const v1::AppendRequest& req) {
  {
    std::lock_guard l(mu_);
    ++sent_;
  }
  return stream_->Write(req);
}

bool RawAppendStream::wait_in_flight_below(size_t max) {
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return sent_ - acks_.size() < max || end_; });
  return !end_;
}

std::optional<v1::AppendResponse> RawAppendStream::wait_ack(size_t n, absl::Duration timeout) {
  std::unique_lock l(mu_);
  cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return acks_.size() >= n || end_; });
  if (n > 0 && acks_.size() >= n) return acks_[n - 1];
  return std::nullopt;
}

std::optional<grpc::Status> RawAppendStream::wait_end(absl::Duration timeout) {
  std::unique_lock l(mu_);
  cv_.wait_for(l, absl::ToChronoNanoseconds(timeout), [&] { return end_.has_value(); });
  return end_;
}

grpc::Status RawAppendStream::finish() {
  if (!writes_done_) {
    writes_done_ = true;
    stream_->WritesDone();
  }
  std::unique_lock l(mu_);
  cv_.wait(l, [&] { return end_.has_value(); });
  return *end_;
}

std::vector<v1::AppendResponse> RawAppendStream::acks() const {
  std::lock_guard l(mu_);
  return acks_;
}

size_t RawAppendStream::sent() const {
  std::lock_guard l(mu_);
  return sent_;
}

}  // namespace ringlog::testkit
