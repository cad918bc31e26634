"""An instant OpenAI-compatible model server for the LiteLLM proxy comparison: the counterpart of Cairn's
`instant` inference backend. `POST .../chat/completions` answers at once with a fixed completion and
token usage estimated from the prompt; `GET /stats` says how many completions it has answered. Stdlib
only (asyncio streams, HTTP/1.1 with keep-alive), so it costs as little CPU as a server can.

    python benchmarks/litellm_stub.py --port 8999
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

COMPLETION = "This is the benchmark stub's fixed answer."
_served = {"chat_completions": 0}


def completion(request: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion answering `request` with the fixed text."""
    prompt_words = sum(len(str(m.get("content", "")).split()) for m in request.get("messages", []))
    answer_words = len(COMPLETION.split())
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": COMPLETION},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": answer_words,
            "total_tokens": prompt_words + answer_words,
        },
    }


def respond(method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for one request."""
    path = path.split("?", 1)[0]
    if method == "POST" and path.endswith("/chat/completions"):
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}
        _served["chat_completions"] += 1
        return 200, completion(request)
    if method == "GET" and path == "/stats":
        return 200, dict(_served)
    if method == "GET" and path.endswith("/models"):
        return 200, {"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": "bench"}]}
    return 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}}


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return b"".join(chunks)
            chunks.append(chunk[:-2])
    return await reader.readexactly(int(headers.get("content-length", "0")))


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer requests on one keep-alive connection until the client closes it."""
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, version = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            status, payload = respond(method, target, await read_body(reader, headers))
            data = json.dumps(payload).encode()
            close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
            writer.write(
                f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                f"content-type: application/json\r\ncontent-length: {len(data)}\r\n"
                f"connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
            if close:
                return
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve_connection, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args().port))
