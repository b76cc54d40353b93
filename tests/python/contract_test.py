#!/usr/bin/env python3
"""The gRPC API as a client in another language sees it: stubs generated at
test time from proto/ alone (Debian's grpc_tools), records encoded by hand
from docs/format.md, against a real ringlogd.

    contract_test.py RINGLOGD PROTO_DIR
"""
import os
import shutil
import sys
import tempfile
import unittest

RINGLOGD, PROTO_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

try:
    import grpc
    from ringlog_testing import Node, decode, generate_stubs, record, records
except ImportError as e:
    sys.exit("contract_test: needs python3-grpcio, python3-grpc-tools and "
             "python3-pkg-resources (%s)" % e)


class Contract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ringlog-py-")
        generate_stubs(PROTO_DIR, os.path.join(cls.tmp, "stubs"),
                       ["ringlog/v1/ringlog.proto", "third_party/grpc/health/v1/health.proto"])
        global pb, rpc, hpb, hrpc
        from ringlog.v1 import ringlog_pb2 as pb, ringlog_pb2_grpc as rpc
        from third_party.grpc.health.v1 import health_pb2 as hpb, health_pb2_grpc as hrpc

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.node = Node(RINGLOGD, tempfile.mkdtemp(dir=self.tmp),
                         ["--segment_bytes=4194304", "--ring_bytes=16777216"])
        self.channel = grpc.insecure_channel(self.node.target)
        self.log_stub = rpc.EventLogStub(self.channel)

    def tearDown(self):
        self.channel.close()
        self.node.stop()

    def append(self, requests):
        return list(self.log_stub.Append(iter(requests), timeout=10))

    def test_every_health_service_answers(self):
        health = hrpc.HealthStub(self.channel)
        for service in ["", "ringlog.v1.EventLog", "ringlog.v1.EventLog/Append",
                        "ringlog.v1.Replication"]:
            r = health.Check(hpb.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(r.status, hpb.HealthCheckResponse.SERVING, service)

    def test_duplicates_get_the_originals_range_in_request_order(self):
        reqs = []
        for seq in range(1, 6):
            reqs.append(pb.AppendRequest(records=records([b"e%d-%d" % (seq, i) for i in range(3)]),
                                         batch_id=seq, producer_id="py", producer_seq=seq))
            if seq % 2 == 0:  # resent right behind itself
                reqs.append(pb.AppendRequest(records=reqs[-1].records, batch_id=100 + seq,
                                             producer_id="py", producer_seq=seq))
        acks = self.append(reqs)
        self.assertEqual([a.batch_id for a in acks], [r.batch_id for r in reqs])
        by_id = {a.batch_id: a for a in acks}
        for seq in (2, 4):
            first, again = by_id[seq], by_id[100 + seq]
            self.assertFalse(first.duplicate)
            self.assertTrue(again.duplicate)
            self.assertEqual((again.first_seq, again.last_seq, again.first_offset,
                              again.end_offset),
                             (first.first_seq, first.last_seq, first.first_offset,
                              first.end_offset))
            self.assertEqual(first.last_seq - first.first_seq, 2)
        # Seq 0 is not idempotent: appended each time.
        zero = self.append([pb.AppendRequest(records=records([b"z"]), batch_id=1,
                                             producer_id="py", producer_seq=0)] * 2)
        self.assertEqual([a.duplicate for a in zero], [False, False])
        self.assertNotEqual(zero[0].first_seq, zero[1].first_seq)

    def test_a_seq_gap_is_refused_naming_the_expected_seq(self):
        self.append([pb.AppendRequest(records=records([b"a"]), producer_id="g", producer_seq=1)])
        with self.assertRaises(grpc.RpcError) as e:
            self.append([pb.AppendRequest(records=records([b"b"]), producer_id="g",
                                          producer_seq=3)])
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("out of sequence: expected 2", e.exception.details())

    def test_expected_epoch_zero_is_a_value(self):
        req = pb.AppendRequest(records=records([b"a"]), expected_epoch=0)
        self.assertTrue(req.HasField("expected_epoch"))
        self.assertEqual(len(self.append([req])), 1)  # the node is in epoch 0
        with self.assertRaises(grpc.RpcError) as e:
            self.append([pb.AppendRequest(records=records([b"a"]), expected_epoch=1)])
        self.assertEqual(e.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)

    def test_a_malformed_frame_is_invalid_argument(self):
        raw = self.channel.stream_stream("/ringlog.v1.EventLog/Append",
                                         request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as e:
            list(raw(iter([b"\x0a\x64abc"]), timeout=10))
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_replay_returns_the_records_within_max_batch_bytes(self):
        payloads = [bytes([i]) * 100 for i in range(50)]
        self.append([pb.AppendRequest(records=records(payloads[:25])),
                     pb.AppendRequest(records=records(payloads[25:]))])
        got = []
        for r in self.log_stub.Replay(pb.ReplayRequest(from_start=True, max_batch_bytes=1000),
                                      timeout=10):
            self.assertLessEqual(len(r.records), 1000)
            got += decode(r.records)
        self.assertEqual([p for _, _, p in got], payloads)
        self.assertTrue(all(t == 7 and f == 0 for t, f, _ in got))


if __name__ == "__main__":
    unittest.main(verbosity=2)
