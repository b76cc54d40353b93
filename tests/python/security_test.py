#!/usr/bin/env python3
"""TLS and tokens as a client in another language sees them: stubs generated
from proto/ alone, gRPC's own TLS and access-token credentials, against a
real ringlogd serving TLS with --auth_tokens (certificates and tokens from
make_test_pki, the ctest fixture TLS.pki).

    security_test.py RINGLOGD PROTO_DIR PKI_DIR
"""
import os
import shutil
import sys
import tempfile
import unittest

RINGLOGD, PROTO_DIR, PKI = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]

try:
    import grpc
    from ringlog_testing import Node, generate_stubs, record
except ImportError as e:
    sys.exit("security_test: needs python3-grpcio, python3-grpc-tools and "
             "python3-pkg-resources (%s)" % e)


def read(name):
    with open(os.path.join(PKI, name), "rb") as f:
        return f.read()


def token(name):
    return read(name).decode().strip()


class Security(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ringlog-pysec-")
        generate_stubs(PROTO_DIR, os.path.join(cls.tmp, "stubs"), ["ringlog/v1/ringlog.proto"])
        global pb, rpc
        from ringlog.v1 import ringlog_pb2 as pb, ringlog_pb2_grpc as rpc
        cls.node = Node(RINGLOGD, cls.tmp,
                        ["--segment_bytes=1048576", "--ring_bytes=8388608",
                         "--tls_cert=" + os.path.join(PKI, "node.pem"),
                         "--tls_key=" + os.path.join(PKI, "node.key"),
                         "--auth_tokens=" + os.path.join(PKI, "tokens")])
        cls.target = cls.node.target

    @classmethod
    def tearDownClass(cls):
        cls.node.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def stub(self, token_name=None, ca="ca.pem"):
        creds = grpc.ssl_channel_credentials(root_certificates=read(ca))
        if token_name is not None:
            creds = grpc.composite_channel_credentials(
                creds, grpc.access_token_call_credentials(token(token_name)))
        channel = grpc.secure_channel(self.target, creds)
        self.addCleanup(channel.close)
        return rpc.EventLogStub(channel)

    def append(self, stub, payloads):
        req = pb.AppendRequest(records=b"".join(record(p) for p in payloads), batch_id=1)
        return list(stub.Append(iter([req]), timeout=10))

    def replay(self, stub):
        out = []
        for r in stub.Replay(pb.ReplayRequest(from_start=True), timeout=10):
            out.append(r)
        return out

    def code(self, fn):
        with self.assertRaises(grpc.RpcError) as e:
            fn()
        return e.exception

    def test_right_tokens_append_and_replay(self):
        acks = self.append(self.stub("token-append"), [b"py-a", b"py-b"])
        self.assertEqual(len(acks), 1)
        self.assertEqual(acks[0].last_seq - acks[0].first_seq, 1)
        self.assertTrue(self.replay(self.stub("token-replay")))
        self.assertTrue(self.replay(self.stub("token")))

    def test_missing_role_is_permission_denied_naming_it(self):
        e = self.code(lambda: self.replay(self.stub("token-append")))
        self.assertEqual(e.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("replay", e.details())
        e = self.code(lambda: self.append(self.stub("token-replay"), [b"x"]))
        self.assertEqual(e.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn("append", e.details())
        self.assertNotIn(token("token-replay"), e.details())

    def test_no_or_unknown_token_is_unauthenticated(self):
        e = self.code(lambda: self.replay(self.stub()))
        self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED)
        creds = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=read("ca.pem")),
            grpc.access_token_call_credentials("not-a-token-this-node-knows-0123"))
        channel = grpc.secure_channel(self.target, creds)
        self.addCleanup(channel.close)
        e = self.code(lambda: self.replay(rpc.EventLogStub(channel)))
        self.assertEqual(e.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertNotIn("not-a-token-this-node-knows-0123", e.details())

    def test_untrusted_node_certificate_is_unavailable(self):
        e = self.code(lambda: self.replay(self.stub("token", ca="other-ca.pem")))
        self.assertEqual(e.code(), grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
