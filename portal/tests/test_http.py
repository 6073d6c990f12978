"""``portal.http.KeptAliveTransport`` against a real local HTTP/1.1 server: what is sent and answered,
connections kept and replaced, timeouts and refusals as httpx's errors, and nothing sent twice."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from portal.http import KeptAliveTransport


class Receiver:
    """Records each request and the connection it came on; ``mode`` shapes the next answers."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.connections = 0
        self.mode = "keep"  # keep | drop-after (closes without saying so) | slow | close (says so)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                receiver.connections += 1

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if receiver.mode == "slow":
                    time.sleep(0.5)
                answer = json.dumps({"message_id": f"m{len(receiver.requests)}"}).encode()
                self.send_response(201)
                self.send_header("content-type", "application/json")
                self.send_header("x-answer", "yes")
                self.send_header("content-length", str(len(answer)))
                if receiver.mode == "close":
                    self.send_header("connection", "close")
                self.end_headers()
                self.wfile.write(answer)
                if receiver.mode in ("drop-after", "close"):
                    self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    found = Receiver()
    yield found
    found.stop()


def post(transport: httpx.BaseTransport, url: str, body: bytes = b'{"a": 1}', *, read: float = 5.0) -> httpx.Response:
    headers = {"content-type": "application/json", "webhook-id": "msg_1"}
    request = httpx.Request("POST", url, content=body, headers=headers,
                            extensions={"timeout": httpx.Timeout(5.0, read=read).as_dict()})
    return transport.handle_request(request)


def test_a_post_goes_out_as_httpx_would_send_it_and_the_connection_is_kept(receiver):
    transport = KeptAliveTransport()
    first = post(transport, receiver.url + "/hook?tenant=a%20b", "卡片".encode())
    second = post(transport, receiver.url + "/hook")
    assert (first.status_code, first.json(), first.headers["x-answer"]) == (201, {"message_id": "m1"}, "yes")
    assert second.json() == {"message_id": "m2"}
    sent = receiver.requests[0]
    assert sent["path"] == "/hook?tenant=a%20b" and sent["body"] == "卡片".encode()
    assert sent["headers"]["webhook-id"] == "msg_1" and sent["headers"]["content-type"] == "application/json"
    assert sent["headers"]["Host"] == receiver.url.removeprefix("http://")
    assert receiver.connections == 1  # kept alive
    transport.close()


def test_a_connection_the_server_closed_while_idle_is_replaced_before_anything_is_written(receiver):
    transport = KeptAliveTransport()
    receiver.mode = "drop-after"  # no "Connection: close": the client only learns it from the socket
    assert post(transport, receiver.url + "/", b"one").status_code == 201
    time.sleep(0.1)
    receiver.mode = "keep"
    assert post(transport, receiver.url + "/", b"two").status_code == 201
    assert [r["body"] for r in receiver.requests] == [b"one", b"two"]  # each exactly once
    assert receiver.connections == 2


def test_an_answer_that_says_close_is_not_reused(receiver):
    transport = KeptAliveTransport()
    receiver.mode = "close"
    post(transport, receiver.url + "/")
    receiver.mode = "keep"
    post(transport, receiver.url + "/")
    assert receiver.connections == 2 and len(receiver.requests) == 2


def test_a_slow_receiver_is_a_read_timeout_and_the_next_post_gets_a_fresh_connection(receiver):
    transport = KeptAliveTransport()
    receiver.mode = "slow"
    with pytest.raises(httpx.ReadTimeout):
        post(transport, receiver.url + "/", read=0.1)
    receiver.mode = "keep"
    assert post(transport, receiver.url + "/").status_code == 201
    assert receiver.connections == 2


def test_nobody_listening_is_a_connect_error_and_a_foreign_scheme_is_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        post(KeptAliveTransport(), f"http://127.0.0.1:{port}/")
    with pytest.raises(httpx.UnsupportedProtocol):
        post(KeptAliveTransport(), "ftp://127.0.0.1/")


def test_the_webhook_adapter_sends_through_it(receiver, settings):
    from standardwebhooks import Webhook

    from im.cards import Card
    from im.platforms.webhook import adapter as webhook

    secret = "whsec_" + "dGVzdC13ZWJob29rLXNlY3JldC0zMi1ieXRlcyEhIQ=="
    sent = webhook.WebhookAdapter(url=receiver.url + "/im", secret=secret).send_card(
        "li.si", Card(topic="approval.1", title="T", status="pending", status_label="", link="", link_label="",
                      locale="en"), idempotency_key="k1")
    assert isinstance(webhook.shared_transport(), KeptAliveTransport)
    assert sent.message_id == "m1"
    request = receiver.requests[0]
    Webhook(secret).verify(request["body"], {k.lower(): v for k, v in request["headers"].items()})
