"""Request guards applied before any route: body size ceilings (413) and NUL characters (422).

PostgreSQL text cannot hold NUL, so a NUL anywhere in a request would otherwise reach the
database as an error; it is refused here once for every route of every service.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ssu_common.problems import Problem

# Files (CSV imports, treasury results) are larger than any JSON command.
_FILE_SUFFIXES = ("/import", "/reconciliation")


class BodyTooLarge(Problem):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes", limit=limit)


class NulCharacter(Problem):
    def __init__(self, where: str) -> None:
        message = "NUL characters are not accepted"
        super().__init__(422, f"{where}: {message}", errors=[{"field": where, "message": message}])


_NUL_IN_JSON = b"\\u0000"


class BodyLimit:
    """Refuse bodies over the limit (by Content-Length or while they stream in) and NULs."""

    def __init__(self, app: ASGIApp, *, json_limit: int, file_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.file_limit = file_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        query: bytes = scope.get("query_string", b"")
        if "\x00" in path or b"%00" in query or b"\x00" in query:
            problem = NulCharacter("path" if "\x00" in path else "query")
            await problem.response(path)(scope, receive, send)
            return
        limit = self.file_limit if path.endswith(_FILE_SUFFIXES) else self.json_limit
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await BodyTooLarge(limit).response(path)(scope, receive, send)
            return
        received = 0
        tail = b""
        refused: Problem | None = None
        answered = False

        async def limited() -> Message:
            nonlocal received, tail, refused
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    refused = BodyTooLarge(limit)
                    raise refused
                # The tail of the previous chunk catches an escape split between two chunks.
                window = tail + chunk
                if b"\x00" in chunk or _NUL_IN_JSON in window:
                    refused = NulCharacter("body")
                    raise refused
                tail = window[-(len(_NUL_IN_JSON) - 1) :]
            return message

        async def answer(message: Message) -> None:
            nonlocal answered
            # FastAPI turns an error raised while it reads the body into its own 400: once the
            # body is refused here, the app's answer is dropped and this guard's is sent.
            if refused is not None:
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, answer)
        except Exception:
            if refused is None:
                raise
        if refused is not None and not answered:
            await refused.response(path)(scope, receive, send)
