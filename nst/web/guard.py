"""What every request passes before it reaches the page's API: the Host it names (a page on 127.0.0.1 answers
only to local names, so a web site cannot reach it by DNS rebinding), the site it comes from (no other site may
post to it), the token when the server has one, and the size of its body."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.responses import JSONResponse

from nst.web.media import BadUpload

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


class Guard:
    """ASGI middleware: refuses with a one-line JSON error, or passes the request on with its body counted."""

    def __init__(self, app: Callable, token: str | None, local_only: bool, max_upload_mb: float) -> None:
        self.app, self.token, self.local_only = app, token, local_only
        self.max_body = int(2 * max_upload_mb * 2**20) + 2**20  # a photo and a painting, and the form's fields
        self.too_large = f"the upload is larger than this server's limit of {max_upload_mb:g} MB"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            return await JSONResponse({"error": message}, status)(scope, receive, send)
        received = 0

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise BadUpload(self.too_large, 413)
            return message

        await self.app(scope, counted, send)

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.local_only and name not in LOCAL_NAMES:
            return 403, f"this server answers only on 127.0.0.1 (not {host!r}); open http://127.0.0.1:<port>/"
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin and origin != "null" and urlsplit(origin).netloc != host:
            return 403, "requests from other web sites are refused"
        path = scope["path"]
        if self.token and path.startswith("/api/") and not self._has_token(scope, headers):
            return 401, "this server needs its token: open the page as http://HOST:PORT/?token=YOUR_TOKEN"
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            return 413, self.too_large
        return None

    def _has_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        given = headers.get("x-nst-token") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not given:
            given = (parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token") or [""])[0]
        return secrets.compare_digest(given.encode(), str(self.token).encode())
