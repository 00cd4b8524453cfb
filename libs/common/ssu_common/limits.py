"""Request body limits: a JSON body and a CSV import each have a ceiling (413 past it)."""

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssu_common.problems import PROBLEM_JSON, Problem

# Files (CSV imports, treasury results) are larger than any JSON command.
_FILE_SUFFIXES = ("/import", "/reconciliation")


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes", limit=limit)


class BodyLimit:
    """Refuse bodies over the limit, by Content-Length or while they stream in."""

    def __init__(self, app: ASGIApp, *, json_limit: int, file_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.file_limit = file_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.file_limit if path.endswith(_FILE_SUFFIXES) else self.json_limit
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_problem(send, BodyTooLarge(limit), path)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


async def _send_problem(send: Send, problem: Problem, path: str) -> None:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": path,
        **problem.extensions,
    }
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(raw)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
