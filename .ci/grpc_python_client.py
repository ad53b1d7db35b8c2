"""A Python grpcio client generated from proto/ shares and reveals against a running burnbox.

Usage: grpc_python_client.py GENERATED_DIR HOST:PORT
(GENERATED_DIR holds the output of grpc_tools.protoc for proto/burnbox/v1/secrets.proto.)
"""

import sys

import grpc

sys.path.insert(0, sys.argv[1])
from burnbox.v1 import secrets_pb2, secrets_pb2_grpc  # noqa: E402


def main() -> None:
    channel = grpc.insecure_channel(sys.argv[2])
    grpc.channel_ready_future(channel).result(timeout=10)
    client = secrets_pb2_grpc.SecretsStub(channel)

    assert client.Status(secrets_pb2.StatusRequest()).status == "nominal"
    receipt = client.ShareSecret(secrets_pb2.ShareSecretRequest(secret="from python", ttl=300))
    assert receipt.state == "new" and receipt.ttl == 300, receipt
    revealed = client.RevealSecret(secrets_pb2.RevealSecretRequest(key=receipt.secret_key))
    assert revealed.value == "from python", revealed
    try:
        client.RevealSecret(secrets_pb2.RevealSecretRequest(key=receipt.secret_key))
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.NOT_FOUND, err
    else:
        raise AssertionError("a second reveal succeeded")
    print("python grpcio client: share, reveal, second reveal NOT_FOUND: ok")


if __name__ == "__main__":
    main()
