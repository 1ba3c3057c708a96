"""Any OpenAI-compatible completions endpoint (vLLM's server, `prox serve`, hosted APIs).

Prompts go out as token-id arrays, which the completions API accepts, so the server sees the exact ids of
PROX_SPEC §2. Requests run concurrently (bounded), time out, and are retried with exponential backoff on
timeouts, connection errors, 429 and 5xx. A prompt that still fails comes back as a Generation with an
error; the document it belongs to then ends as failed, and the run goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from proxkit.models.base import Generation, ProgramWriter


class _Retryable(Exception):
    pass


class OpenAIWriter(ProgramWriter):
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise ValueError("concurrency must be >= 1, retries >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    def generate(
        self, prompts: Sequence[Sequence[int]], max_new_tokens: int, grammar: str | None = None
    ) -> list[Generation]:
        """Completions of every prompt; `grammar` is not sent (the completions API has no standard field for
        it), so a weak model's answer may not parse and counts as a program error."""
        return asyncio.run(self._generate_all(prompts, max_new_tokens))

    async def _generate_all(self, prompts: Sequence[Sequence[int]], max_new_tokens: int) -> list[Generation]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limit = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, headers=headers) as client:
            return list(
                await asyncio.gather(*(self._complete(client, limit, prompt, max_new_tokens) for prompt in prompts))
            )

    async def _complete(self, client, limit: asyncio.Semaphore, prompt: Sequence[int], max_new_tokens: int):
        import httpx

        payload = {"model": self.model, "prompt": list(prompt), "max_tokens": max_new_tokens, "temperature": 0.0}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                async with limit:
                    response = await client.post("/completions", json=payload)
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}")
                if response.status_code >= 400:
                    return Generation("", error=f"{self.base_url}: HTTP {response.status_code}: {response.text[:200]}")
                data = response.json()
                text = data["choices"][0]["text"]
                return Generation(text, new_tokens=int(data.get("usage", {}).get("completion_tokens", 0)))
            except httpx.TimeoutException:
                problem = f"timed out after {self.timeout}s"
            except (httpx.TransportError, _Retryable) as error:
                problem = str(error) or type(error).__name__
            except (ValueError, KeyError, IndexError, TypeError) as error:
                return Generation("", error=f"{self.base_url}: unreadable completion: {error!r}")
        return Generation("", error=f"{self.base_url}: gave up after {self.retries + 1} attempts: {problem}")
