"""The fake Bot API at PTB's transport layer: `Bot(token, request=FakeTransport())`."""

from __future__ import annotations

from typing import Any

from telegram.request import BaseRequest, RequestData

from bot.fakeapi.core import FakeBotApi, dumps


class FakeTransport(FakeBotApi, BaseRequest):
    """PTB's HTTP client replaced by `FakeBotApi`, answering in this process."""

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        if "/file/bot" in url:
            return self.download(url.split("/file/bot", 1)[1].split("/", 1)[-1])
        params: dict[str, Any] = dict(request_data.parameters) if request_data else {}
        files: dict[str, tuple[str, bytes]] = {}
        if request_data is not None and request_data.contains_files:
            for name, part in (request_data.multipart_data or {}).items():
                filename, content = part[0], part[1]
                raw = content if isinstance(content, bytes) else content.read()
                files[name] = (str(filename), raw)
        status, payload = self.answer(url.rsplit("/", 1)[-1], params, files)
        return status, dumps(payload)
