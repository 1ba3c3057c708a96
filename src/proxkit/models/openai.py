"""Any OpenAI-compatible completions endpoint (vLLM's server, `prox serve`, hosted APIs).

Prompts go out as token-id arrays, which the completions API accepts, so the server sees the exact ids of
PROX_SPEC §2. Requests run concurrently (bounded), time out, and are retried with exponential backoff on
timeouts, connection errors, 429 and 5xx (waiting at least what a `Retry-After` header asks, up to
MAX_RETRY_AFTER). A reply is untrusted: one that is not a completion, or is longer than `max_tokens`
allows, is an error. A prompt that fails comes back as a Generation with an error; the document it
belongs to then ends as failed, and the run goes on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence

from proxkit.models.writer import Generation, ProgramWriter

MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is cut to this
MAX_CHARS_PER_TOKEN = 64  # a reply longer than this per allowed token cannot be max_tokens tokens


class _Retryable(Exception):
    def __init__(self, message: str, wait: float = 0.0) -> None:
        super().__init__(message)
        self.wait = wait


def _retry_after(value: str | None) -> float:
    """The seconds a Retry-After header asks for (a number or an HTTP date), 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def read_completion(data: object, max_new_tokens: int) -> Generation:
    """A completions reply as a Generation; ValueError naming the field when it is not a valid one."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices[0] object in the reply")
    text = choices[0].get("text")
    if not isinstance(text, str):
        raise ValueError(f"choices[0].text is {type(text).__name__}, not a string")
    usage = data.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None  # some servers send null
    if tokens is not None and (type(tokens) is not int or tokens < 0):
        raise ValueError(f"usage.completion_tokens is {tokens!r}, not a count")
    if (tokens or 0) > max_new_tokens or len(text) > MAX_CHARS_PER_TOKEN * max_new_tokens:
        size = f"{tokens} tokens" if (tokens or 0) > max_new_tokens else f"{len(text)} characters"
        raise ValueError(f"the reply has {size}, over max_tokens={max_new_tokens}")
    return Generation(text, new_tokens=tokens or 0)


KEY_VARIABLE = "OPENAI_API_KEY"


class Secret:
    """A credential that is sent but never shown: its str and repr are masked, so the JSON a framework writes
    of a pipeline's settings (datatrove's `executor.json`), reprs and tracebacks hold `***`. A key that came
    from the environment (`variable`) pickles as the variable's name, read again where it is unpickled (a
    Slurm or Ray task); any other key pickles as itself, since the task needs it."""

    __slots__ = ("value", "variable")

    def __init__(self, value: str, variable: str | None = None) -> None:
        self.value = value
        self.variable = variable

    @classmethod
    def from_environment(cls, variable: str) -> Secret:
        return cls(os.environ.get(variable, ""), variable)

    def __reduce__(self):
        if self.variable and os.environ.get(self.variable) == self.value:
            return (Secret.from_environment, (self.variable,))
        return (Secret, (self.value,))

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def masked(api_key: str | Secret | None) -> Secret | None:
    """The key as a Secret, tied to `OPENAI_API_KEY` when that is where it came from; None when empty."""
    if isinstance(api_key, Secret) or not api_key:
        return api_key or None
    return Secret(api_key, KEY_VARIABLE if os.environ.get(KEY_VARIABLE) == api_key else None)


REQUEST_TIMEOUT = 60.0  # seconds for one reply
RETRIES = 3  # of a request that timed out or got 429/5xx


class OpenAIWriter(ProgramWriter):
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | Secret | None = None,
        concurrency: int = 16,
        timeout: float = REQUEST_TIMEOUT,
        retries: int = RETRIES,
        backoff: float = 0.5,
    ) -> None:
        if concurrency < 1 or retries < 0 or timeout <= 0:
            raise ValueError("concurrency must be >= 1, retries >= 0 and timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = masked(api_key)
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

        headers = {"Authorization": f"Bearer {self.api_key.value}"} if self.api_key else {}
        limit = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, headers=headers) as client:
            return list(
                await asyncio.gather(*(self._complete(client, limit, prompt, max_new_tokens) for prompt in prompts))
            )

    async def _complete(self, client, limit: asyncio.Semaphore, prompt: Sequence[int], max_new_tokens: int):
        import httpx

        payload = {"model": self.model, "prompt": list(prompt), "max_tokens": max_new_tokens, "temperature": 0.0}
        problem, wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(max(self.backoff * 2 ** (attempt - 1), wait))
            try:
                async with limit:
                    response = await client.post("/completions", json=payload)
                if response.status_code == 429 or response.status_code >= 500:
                    asked = _retry_after(response.headers.get("retry-after"))
                    raise _Retryable(f"HTTP {response.status_code}: {response.text[:200]}", asked)
                if response.status_code >= 400:
                    return Generation("", error=f"{self.base_url}: HTTP {response.status_code}: {response.text[:200]}")
                return read_completion(response.json(), max_new_tokens)
            except httpx.TimeoutException:
                problem, wait = f"timed out after {self.timeout}s", 0.0
            except _Retryable as error:
                problem, wait = str(error), error.wait
            except httpx.TransportError as error:
                problem, wait = str(error) or type(error).__name__, 0.0
            except ValueError as error:  # invalid JSON included
                return Generation("", error=f"{self.base_url}: unreadable completion: {error}")
        return Generation("", error=f"{self.base_url}: gave up after {self.retries + 1} attempts: {problem}")
