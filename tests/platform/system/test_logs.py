"""No secret in a log line: the api's logs never hold an access token, even from WebSocket handshakes
(browsers can only send the token in the query string)."""

from __future__ import annotations

import json
import logging

import websockets

from soa_platform.logs import RedactTokens, redact
from tests.platform.system.conftest import Stack


def test_the_filter_redacts_tokens_in_messages_and_arguments() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/v1/events?access_token=abc.def.ghi&last_seq=3"), None)  # fmt: skip
    assert RedactTokens().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /v1/events?access_token=[redacted]&last_seq=3" [accepted]'
    assert redact("nothing to hide") == "nothing to hide"


async def test_a_websocket_handshake_does_not_log_the_token(stack: Stack) -> None:
    api = await stack.start_api()
    (member,) = await stack.members("amina")
    url = f"ws://127.0.0.1:{stack.api_port}/v1/events?access_token={member.token}"
    async with websockets.connect(url) as socket:
        hello = json.loads(await socket.recv())
    assert hello["type"] == "hello"
    log = api.log_text()
    assert "/v1/events" in log  # the handshake is logged …
    assert member.token not in log  # … without its token
    assert member.token.split(".")[2] not in log
