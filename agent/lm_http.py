"""The LM seam over HTTP: an OpenAI-compatible chat-completions server (vLLM, TGI, llama.cpp).

Standard library only (urllib): streaming is `stream=true` with server-sent events read line by
line, and closing the response is how a stop reaches the server (vLLM aborts the request when
its client goes away). Cancellation and the time limit are checked between events, which a
generating server sends every few tens of milliseconds.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.protocols import CancelToken, GenerationStats, LMError, Messages

_FINISH = {"stop": "eos", "length": "max_tokens"}


class OpenAICompatibleLM:
    """Chat completions from a server at `base_url` ("http://host:8000" or ".../v1")."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_workers: int = 4,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must look like http://host:8000/v1, got {base_url!r}")
        if timeout <= 0 or max_workers < 1:
            raise ValueError("timeout must be positive and max_workers at least 1")
        root = base_url.rstrip("/")
        self.base_url = root[: -len("/v1")] if root.endswith("/v1") else root
        self.model = model or None  # None: ask the server which model it serves, on first use
        self.api_key = api_key
        self.timeout = timeout
        self.max_workers = max_workers
        self.name = f"{self.base_url}/v1#{model}" if model else f"{self.base_url}/v1"

    def count_tokens(self, text: str) -> int:
        """An estimate (the server's tokenizer is not here): UTF-8 bytes / 3.5, rounded up.

        English runs about 4 bytes a token and Chinese about 3 bytes (one character) for
        0.7 to 1 token in current multilingual vocabularies, so this errs on the high side.
        """
        return math.ceil(len(text.encode("utf-8")) / 3.5)

    def stream(
        self,
        messages: Messages,
        *,
        max_new_tokens: int = 512,
        time_limit_s: float | None = None,
        cancel: CancelToken | None = None,
        stats: list[GenerationStats] | None = None,
    ) -> Generator[str, None, None]:
        start = time.monotonic()
        deadline = None if time_limit_s is None else start + time_limit_s
        body = self._body(messages, max_new_tokens) | {
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # A read that waits past the time limit ends the stream rather than failing it.
        wait = self.timeout if time_limit_s is None else max(0.01, min(self.timeout, time_limit_s))
        prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        pieces, new_tokens, first, stopped = 0, None, None, "eos"
        finished = False  # a finish_reason or [DONE] came: the answer is whole
        response = self._post(body, wait)
        try:
            for event in _events(response, self._url("chat/completions")):
                if event is _END:
                    finished = True
                    break
                if usage := event.get("usage"):
                    prompt_tokens = usage.get("prompt_tokens", prompt_tokens)
                    new_tokens = usage.get("completion_tokens", new_tokens)
                for choice in event.get("choices") or []:
                    if piece := (choice.get("delta") or {}).get("content"):
                        first = first or time.monotonic()
                        pieces += 1
                        yield piece
                    if choice.get("finish_reason"):
                        finished = True
                        stopped = _FINISH.get(choice["finish_reason"], stopped)
                if cancel is not None and cancel.cancelled:
                    stopped = "cancelled"
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    stopped = "time_limit"
                    break
        except TimeoutError:
            if deadline is None or time.monotonic() < deadline:
                raise LMError(
                    f"{self._url('chat/completions')} sent nothing for {wait:.0f} s; "
                    "raise timeout= or check the server's load"
                ) from None
            stopped = "time_limit"
        except (http.client.HTTPException, ConnectionError) as e:
            raise LMError(
                f"{self._url('chat/completions')} dropped the connection mid-answer ({e!r}); "
                "is the server still running?"
            ) from e
        except GeneratorExit:
            stopped = "cancelled"  # the caller stopped reading
            raise
        else:
            if not finished and stopped not in ("cancelled", "time_limit"):
                # The body ended without a finish_reason or [DONE]: the server went away.
                raise LMError(
                    f"{self._url('chat/completions')} ended the answer before finishing it; "
                    "is the server still running?"
                )
        finally:
            response.close()  # the server sees the client leave and stops generating
            if stats is not None:
                end = time.monotonic()
                ttft = (first or end) - start
                # Without a usage report (or when stopped before it), one piece counts as one token.
                tokens = pieces if new_tokens is None else new_tokens
                stats.append(GenerationStats(prompt_tokens, tokens, ttft, end - start, stopped))

    def generate_batch(
        self, conversations: Sequence[Messages], *, max_new_tokens: int = 512
    ) -> list[str]:
        def one(messages: Messages) -> str:
            body = self._body(messages, max_new_tokens) | {"stream": False}
            with self._post(body, self.timeout) as response:
                reply = _json(response.read(), self._url("chat/completions"))
            try:
                return reply["choices"][0]["message"]["content"] or ""
            except (KeyError, IndexError, TypeError) as e:
                raise LMError(f"unexpected reply from {self.base_url}: {str(reply)[:300]}") from e

        with ThreadPoolExecutor(self.max_workers) as pool:
            return list(pool.map(one, conversations))

    def _body(self, messages: Messages, max_new_tokens: int) -> dict[str, Any]:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        return {
            "model": self._model(),
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "max_tokens": max_new_tokens,
            "temperature": 0,  # greedy, as the local backend decodes
        }

    def _model(self) -> str:
        if self.model is None:
            url = self._url("models")
            with self._open(
                urllib.request.Request(url, headers=self._headers()), self.timeout
            ) as r:
                listing = _json(r.read(), url)
            served = [m.get("id") for m in listing.get("data") or [] if isinstance(m, dict)]
            if not served or not served[0]:
                raise LMError(f"{url} lists no model; pass model= with the name the server serves")
            self.model = str(served[0])
            self.name = f"{self.base_url}/v1#{self.model}"
        return self.model

    def _post(self, body: dict[str, Any], wait: float) -> Any:
        request = urllib.request.Request(
            self._url("chat/completions"),
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers=self._headers() | {"Content-Type": "application/json"},
            method="POST",
        )
        return self._open(request, wait)

    def _open(self, request: urllib.request.Request, wait: float) -> Any:
        url = request.full_url
        try:
            return urllib.request.urlopen(request, timeout=wait)
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode("utf-8", "replace").strip()
            hint = {
                401: "; check api_key",
                403: "; check api_key",
                404: "; check base_url (it ends before /v1) and the model name",
            }.get(e.code, "")
            raise LMError(f"{url} answered HTTP {e.code}: {detail}{hint}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, ConnectionRefusedError):
                raise LMError(
                    f"cannot connect to {url}: connection refused; is the server running and "
                    f"listening at {self.base_url}? (e.g. `vllm serve MODEL --port PORT`)"
                ) from e
            raise LMError(f"cannot reach {url}: {e.reason}; check the address and network") from e
        except TimeoutError as e:
            raise LMError(f"{url} did not answer within {wait:.0f} s; raise timeout=") from e

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _url(self, path: str) -> str:
        return f"{self.base_url}/v1/{path}"


_END: dict[str, Any] = {}  # what `_events` yields for "[DONE]"


def _events(response: Any, url: str) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, then `_END` at "[DONE]"; a body that
    ends without it just ends (the caller tells a finished answer from a lost server)."""
    for raw in response:  # one line at a time; http.client undoes chunked transfer encoding
        line = raw.decode("utf-8").strip()
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping") and event names
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            yield _END
            return
        event = _json(data.encode("utf-8"), url)
        if "error" in event:
            raise LMError(f"{url} reported an error mid-stream: {str(event['error'])[:300]}")
        yield event


def _json(data: bytes, url: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        snippet = data[:200].decode("utf-8", "replace")
        raise LMError(f"{url} sent something that is not JSON: {snippet!r}") from e
