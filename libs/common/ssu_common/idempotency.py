"""`Idempotency-Key` on POST (issue 14): a client that retries a POST after losing the answer
gets the first answer again instead of a second application, subscription or enrollment.

Per client (the API key presented) and key: the same request (method, path, query and body)
again replays the stored response with `Idempotent-Replayed: true`; another request under the
same key is a 422; while the first is still being answered, a 409. Answers of 5xx are not kept
(the retry runs again), nor answers to a request without a known key's client. Rows are kept
24 hours (`prune`, called by the retention loop). The answer is stored after the route's own
transaction committed, so a crash between the two leaves the key `in_progress`; after
`STALE_AFTER` a retry runs the request again.
"""

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssu_common.db import Connection
from ssu_common.jsontypes import OpenApiDocument
from ssu_common.problems import Problem

HEADER = b"idempotency-key"
KEEP_FOR = timedelta(hours=24)
STALE_AFTER = timedelta(minutes=2)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Headers of the first answer that a replay repeats; per-request ones (the correlation and
# trace ids, the date) are the replay's own.
_REPLAYED = (b"content-type", b"location", b"etag")


class BadIdempotencyKey(Problem):
    def __init__(self) -> None:
        message = "must be 1 to 255 visible ASCII characters"
        super().__init__(
            422,
            f"Idempotency-Key {message}",
            errors=[{"field": "header.idempotency-key", "message": message}],
        )


class KeyReused(Problem):
    def __init__(self) -> None:
        message = "was used with another request; use a new key for a new request"
        super().__init__(
            422,
            f"this Idempotency-Key {message}",
            errors=[{"field": "header.idempotency-key", "message": message}],
        )


class InProgress(Problem):
    def __init__(self) -> None:
        super().__init__(
            409,
            "a request with this Idempotency-Key is still being answered; retry shortly",
            headers={"Retry-After": "1"},
        )


def _client(headers: dict[bytes, bytes]) -> str | None:
    """Who asks: a digest of the bearer key presented (never the key itself)."""
    auth = headers.get(b"authorization", b"")
    if not auth.lower().startswith(b"bearer ") or len(auth) <= 7:
        return None
    return hashlib.sha256(auth[7:].strip()).hexdigest()


class Idempotency:
    """ASGI middleware keeping the first answer to each (client, Idempotency-Key) POST."""

    def __init__(self, app: ASGIApp, *, pool: Callable[[], asyncpg.Pool]) -> None:
        self.app = app
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(HEADER)
        client = _client(headers)
        if raw_key is None or client is None:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        key = raw_key.decode("latin-1")
        if not _KEY.match(key):
            await BadIdempotencyKey().response(path)(scope, receive, send)
            return
        body = await _read_body(receive)
        digest = hashlib.sha256(
            b"\n".join([b"POST", path.encode(), scope.get("query_string", b""), body])
        ).digest()
        async with self.pool().acquire() as conn:
            claimed = await conn.fetchval(
                """
                INSERT INTO idempotency_keys (client, key, request_hash, state)
                VALUES ($1, $2, $3, 'in_progress')
                ON CONFLICT (client, key) DO UPDATE
                    SET request_hash = EXCLUDED.request_hash, created_at = clock_timestamp()
                    WHERE idempotency_keys.state = 'in_progress'
                      AND idempotency_keys.request_hash = EXCLUDED.request_hash
                      AND idempotency_keys.created_at < clock_timestamp() - $4::interval
                RETURNING true
                """,
                client,
                key,
                digest,
                STALE_AFTER,
            )
            stored = (
                None
                if claimed
                else await conn.fetchrow(
                    "SELECT request_hash, state, status, headers, body FROM idempotency_keys"
                    " WHERE client = $1 AND key = $2",
                    client,
                    key,
                )
            )
        if stored is not None:
            if bytes(stored["request_hash"]) != digest:
                await KeyReused().response(path)(scope, receive, send)
            elif stored["state"] != "done":
                await InProgress().response(path)(scope, receive, send)
            else:
                await _replay(stored, send)
            return
        await self._answer_first(scope, body, send, client=client, key=key)

    async def _answer_first(
        self, scope: Scope, body: bytes, send: Send, *, client: str, key: str
    ) -> None:
        status = 500
        kept_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kept_headers.extend(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.lower() in _REPLAYED
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            await self._keep(client, key, status, kept_headers, b"".join(chunks))

    async def _keep(
        self, client: str, key: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        async with self.pool().acquire() as conn:
            if status >= 500 or status == 401:
                await conn.execute(
                    "DELETE FROM idempotency_keys WHERE client = $1 AND key = $2", client, key
                )
                return
            await conn.execute(
                "UPDATE idempotency_keys SET state = 'done', status = $3, headers = $4::jsonb,"
                " body = $5 WHERE client = $1 AND key = $2",
                client,
                key,
                status,
                json.dumps(headers),
                body,
            )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _replay(stored: asyncpg.Record, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(stored["headers"])]
    body = bytes(stored["body"])
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": stored["status"], "headers": headers})
    await send({"type": "http.response.body", "body": body})


def document_idempotency(openapi: OpenApiDocument) -> OpenApiDocument:
    """Every `/v1` POST takes the optional `Idempotency-Key` header."""
    parameter = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Retry-safe POST: the same key and request again replay the first "
        "answer (`Idempotent-Replayed: true`); another request under it is a 422; kept 24 h "
        "per client",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    }
    for path, operations in openapi.get("paths", {}).items():
        operation = operations.get("post")
        if operation is not None and path.startswith("/v1/"):
            operation.setdefault("parameters", []).append(parameter)
    return openapi


async def prune(conn: Connection, *, older_than: timedelta = KEEP_FOR) -> int:
    """Forget keys older than `older_than` (24 hours); how many went."""
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < clock_timestamp() - $1::interval",
        older_than,
    )
    return int(result.split()[-1])
