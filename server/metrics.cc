#include "metrics.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ringlog/pipeline.h"

namespace ringlog {
namespace {

std::once_flag g_init;

void gauge(std::string* out, const char* name, const char* help, double v,
           const std::string& labels = "") {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s gauge\n%s%s %.17g\n", name, help, name, name,
                        labels, v);
}

void counter(std::string* out, const char* name, const char* help, double v) {
  absl::StrAppendFormat(out, "# HELP %s %s\n# TYPE %s counter\n%s %.17g\n", name, help, name, name, v);
}

std::string escape_label(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

int handle_metrics(mg_connection* conn, void* data) {
  auto* node = static_cast<Node*>(data);
  const std::string body = MetricsServer::render(*node);
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            body.size());
  mg_write(conn, body.data(), body.size());
  return 200;
}

}  // namespace

std::string MetricsServer::render(Node& node) {
  v1::NodeStatus st;
  node.fill_status(&st);
  const NodeCounters c = node.counters();
  std::string out;
  absl::StrAppendFormat(&out, "# HELP ringlog_info Node identity.\n# TYPE ringlog_info gauge\n"
                              "ringlog_info{node_id=\"%s\",role=\"%s\"} 1\n",
                        escape_label(st.node_id()), st.role() == v1::ROLE_PRIMARY ? "primary" : "replica");
  gauge(&out, "ringlog_epoch", "Current epoch.", static_cast<double>(st.epoch()));
  gauge(&out, "ringlog_uptime_seconds", "Seconds since start.", st.uptime_seconds());
  counter(&out, "ringlog_events_appended_total", "Events appended by this node as primary.",
          static_cast<double>(c.events_appended));
  counter(&out, "ringlog_bytes_appended_total", "Record bytes appended by this node as primary.",
          static_cast<double>(c.bytes_appended));
  gauge(&out, "ringlog_ring_used_bytes", "Bytes waiting in the ring.", static_cast<double>(st.ring_used_bytes()));
  gauge(&out, "ringlog_ring_capacity_bytes", "Ring capacity.", static_cast<double>(st.ring_capacity_bytes()));
  counter(&out, "ringlog_ring_full_total",
          "Times a remote batch found the ring full and waited (backpressure).",
          static_cast<double>(c.ring_full));
  gauge(&out, "ringlog_log_start_offset", "Offset of the oldest record kept.", static_cast<double>(st.log_start_offset()));
  gauge(&out, "ringlog_log_end_offset", "Offset after the last record.", static_cast<double>(st.log_end_offset()));
  gauge(&out, "ringlog_durable_offset", "Everything before it is durable here.", static_cast<double>(st.durable_offset()));
  gauge(&out, "ringlog_commit_offset", "Everything before it is committed.", static_cast<double>(st.commit_offset()));
  gauge(&out, "ringlog_next_seq", "Seq of the next event.", static_cast<double>(st.next_seq()));
  gauge(&out, "ringlog_segments", "Segment files.", static_cast<double>(st.segment_count()));
  gauge(&out, "ringlog_segment_bytes", "Bytes of all segment files.", static_cast<double>(st.segment_bytes()));
  gauge(&out, "ringlog_append_streams", "Open Append streams.", st.active_append_streams());
  gauge(&out, "ringlog_replay_streams", "Open Replay streams.", st.active_replay_streams());
  gauge(&out, "ringlog_storage_error", "1 while a storage error (e.g. a full disk) stops appends.",
        st.storage_error().empty() ? 0 : 1);
  gauge(&out, "ringlog_lost_bytes",
        "Log bytes this node held once (durable or committed) and lacks now: damaged or deleted "
        "files found at start. A primary takes no appends while it is above 0.",
        static_cast<double>(st.lost_to_offset() - st.lost_from_offset()));
  gauge(&out, "ringlog_disk_full",
        "1 while this node's disk cannot take the log's next segment (appends or replication wait).",
        st.disk_full().empty() ? 0 : 1);
  gauge(&out, "ringlog_disk_free_bytes", "Free bytes on the data directory's filesystem.",
        static_cast<double>(st.disk_free_bytes()));
  gauge(&out, "ringlog_write_ready",
        "1 while appends are taken (the health of ringlog.v1.EventLog/Append).",
        node.write_ready() ? 1 : 0);
  gauge(&out, "ringlog_appends_refusing",
        "1 while appends are refused with RESOURCE_EXHAUSTED (a full disk here or on the replicas).",
        st.append_refusal().empty() ? 0 : 1);
  counter(&out, "ringlog_appends_refused_total",
          "Append batches refused with RESOURCE_EXHAUSTED (a full disk here or on the replicas).",
          static_cast<double>(st.appends_refused()));
  const ProducerStats ps = node.producer_stats();
  gauge(&out, "ringlog_producers",
        "Idempotent producers this node remembers (at most --max_producers; forgotten after "
        "--producer_expiry idle).",
        static_cast<double>(ps.producers));
  counter(&out, "ringlog_producer_duplicates_total",
          "Batches sent again (same producer_id and producer_seq) and answered as duplicates "
          "with the original's range, not appended.",
          static_cast<double>(ps.duplicates));
  counter(&out, "ringlog_producer_out_of_sequence_total",
          "Idempotent batches refused with FAILED_PRECONDITION: producer_seq past the one expected.",
          static_cast<double>(ps.out_of_sequence));
  counter(&out, "ringlog_producer_too_old_total",
          "Idempotent batches refused with ALREADY_EXISTS: sent before, but older than the batches "
          "remembered for their producer.",
          static_cast<double>(ps.too_old));
  counter(&out, "ringlog_producers_evicted_total",
          "Producers forgotten because --max_producers were remembered.",
          static_cast<double>(ps.evicted));
  counter(&out, "ringlog_producers_expired_total",
          "Producers forgotten after --producer_expiry without a batch.",
          static_cast<double>(ps.expired));
  const CallLimits::Stats calls = node.call_limits().stats();
  gauge(&out, "ringlog_calls_open",
        "Open calls of EventLog, Admin and Replication (at most --max_calls).",
        static_cast<double>(calls.open));
  gauge(&out, "ringlog_call_clients", "Client addresses with a call open.",
        static_cast<double>(calls.clients));
  absl::StrAppendFormat(
      &out,
      "# HELP ringlog_calls_refused_total Calls refused with RESOURCE_EXHAUSTED by a call limit: "
      "--max_calls_per_client (limit=\"per_client\") or --max_calls (limit=\"node\").\n"
      "# TYPE ringlog_calls_refused_total counter\n"
      "ringlog_calls_refused_total{limit=\"per_client\"} %d\n"
      "ringlog_calls_refused_total{limit=\"node\"} %d\n",
      calls.refused_per_client, calls.refused_node);
  out += "# HELP ringlog_replica_lag_bytes Log bytes a replica has not acknowledged.\n"
         "# TYPE ringlog_replica_lag_bytes gauge\n";
  for (const v1::ReplicaInfo& r : st.replicas()) {
    absl::StrAppendFormat(&out, "ringlog_replica_lag_bytes{replica=\"%s\"} %d\n",
                          escape_label(r.node_id()), r.lag_bytes());
  }
  out += "# HELP ringlog_replica_lag_seconds How long a replica has been behind (0 when caught up).\n"
         "# TYPE ringlog_replica_lag_seconds gauge\n";
  for (const ReplicaLag& l : node.replica_lag_seconds()) {
    absl::StrAppendFormat(&out, "ringlog_replica_lag_seconds{replica=\"%s\"} %.6f\n",
                          escape_label(l.node_id), l.seconds);
  }
  out += "# HELP ringlog_replica_connected 1 while the replica's stream is open.\n"
         "# TYPE ringlog_replica_connected gauge\n";
  for (const v1::ReplicaInfo& r : st.replicas()) {
    absl::StrAppendFormat(&out, "ringlog_replica_connected{replica=\"%s\"} %d\n",
                          escape_label(r.node_id()), r.connected() ? 1 : 0);
  }
  out += "# HELP ringlog_replica_disk_full 1 while the replica reports that it cannot store.\n"
         "# TYPE ringlog_replica_disk_full gauge\n";
  for (const v1::ReplicaInfo& r : st.replicas()) {
    absl::StrAppendFormat(&out, "ringlog_replica_disk_full{replica=\"%s\"} %d\n",
                          escape_label(r.node_id()), r.storage_error().empty() ? 0 : 1);
  }
  out += "# HELP ringlog_fsync_seconds Latency of fdatasync of the log.\n"
         "# TYPE ringlog_fsync_seconds histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < kFsyncBucketCount; ++i) {
    cum += c.fsync_buckets[i];
    if (i < std::size(kFsyncBuckets)) {
      absl::StrAppendFormat(&out, "ringlog_fsync_seconds_bucket{le=\"%g\"} %d\n", kFsyncBuckets[i], cum);
    } else {
      absl::StrAppendFormat(&out, "ringlog_fsync_seconds_bucket{le=\"+Inf\"} %d\n", cum);
    }
  }
  absl::StrAppendFormat(&out, "ringlog_fsync_seconds_sum %.9f\nringlog_fsync_seconds_count %d\n",
                        c.fsync_seconds, cum);
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(Node* node,
                                                                    const std::string& listen) {
  std::call_once(g_init, [] { mg_init_library(0); });
  std::string port = listen;
  // civetweb takes "HOST:PORT" for IPv4 hosts.
  const char* options[] = {"listening_ports", port.c_str(), "num_threads", "2", nullptr};
  mg_callbacks cb;
  std::memset(&cb, 0, sizeof cb);
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->node_ = node;
  m->ctx_ = mg_start(&cb, nullptr, options);
  if (m->ctx_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen));
  }
  mg_set_request_handler(m->ctx_, "/metrics", handle_metrics, node);
  mg_server_port ports[4];
  const int n = mg_get_server_ports(m->ctx_, 4, ports);
  m->port_ = n > 0 ? ports[0].port : 0;
  return m;
}

MetricsServer::~MetricsServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

}  // namespace ringlog
