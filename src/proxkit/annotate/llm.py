"""`prox annotate`: seed annotation by a strong LLM behind any OpenAI-compatible chat endpoint, following
the ProX recipe (PROX_SPEC §5).

Doc level: two additive 0-5 scores, educational value and extraction (format) quality, each answered
with a short justification and a last line `Educational score: N` / `Extraction Quality Score: N`; keep
when edu ≥ 3, or edu = 2 and format ≥ 4. Chunk level: three few-shot prompts over `[doc] [NNN]… [/doc]`
chunks (menus at the top; buttons, HTML leftovers and links; footers), answered with a python block of
`untouch_doc()` / `remove_lines(start, end)` / `normalize(source_str, target_str)`; the three programs are
read by the strict parser, merged, and dropped when they would remove more than a share of the chunk.
With `rewrite`, each chunk is instead copied out cleaned by the endpoint, and only the deletions the copy
implies become the program (`remove_lines`, and `normalize` to "" inside kept lines), the way the human gold
does: the RefineX recipe (arXiv 2507.03253), free of the edits a model would invent.

Every answer is cached by the hash of its request, so an interrupted run resumes without asking again.
The prompt wording is ours; the structure follows the paper's appendix.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from proxkit.annotate.human import aligned_words, chunk_example, words
from proxkit.program import KeepChunk, Normalize, Program, RemoveLines, Stage, parse_program
from proxkit.prompts import number_line
from proxkit.train.seed import SeedExample

SUBSET = "llm"  # the subset (and default collection) of every example an LLM labelled

EDU_PROMPT = """Below is an extract from a web page. Judge how useful it would be for teaching, from primary school to \
college, with an additive 5-point scale:
- Add 1 point if it gives some basic information on an educational topic, even mixed with ads or unrelated text.
- Add another point if it covers parts of a topic clearly but is disorganised or incomplete.
- Add a third point if it explains key concepts coherently and would suit an introduction to the subject.
- Add a fourth point if it is focused, well organised and close to a textbook section, with little noise.
- Add a fifth point if it is outstanding teaching material, clear and deep, with nothing extraneous.

The extract:
<document>
{document}
</document>

Justify your total in at most 100 words, then end with a line of the form "Educational score: <points>"."""

FORMAT_PROMPT = """Below is text extracted from a web page. Judge how cleanly it was extracted, with an additive \
5-point scale:
- Add 1 point if the main content can be found at all.
- Add another point if most menus, buttons and links are gone, though some remain.
- Add a third point if the content reads continuously, with only small leftovers such as a share line or a footer.
- Add a fourth point if nearly no boilerplate, HTML residue or broken formatting remains.
- Add a fifth point if the text is as clean as a well-edited article.

The text:
<document>
{document}
</document>

Justify your total in at most 100 words, then end with a line of the form "Extraction Quality Score: <points>"."""

_CHUNK_INSTRUCTIONS = """You clean web text for training language models. The text comes as numbered lines between \
[doc] and [/doc]. Answer with a python code block that calls, one per line:
- untouch_doc() when nothing needs to change;
- remove_lines(start, end) to delete lines start..end (inclusive, the numbers shown);
- normalize(source_str, target_str="") to replace a noisy string inside a line that is otherwise kept.
Comment each call with #. Change nothing that is real content. This time, look only for {focus}.

Example:
[doc]
{example}
[/doc]
```python
{answer}
```

Now the text to clean:
[doc]
{chunk}
[/doc]"""

CHUNK_PROMPTS = {
    "navigation": {
        "focus": "navigation menus, site headers and breadcrumbs at the top of the page",
        "example": "[000]Home | Products | Blog | Contact\n[001]You are here: Home > Blog\n[002]How to plant tulips",
        "answer": "remove_lines(0, 1)  # menu and breadcrumb",
    },
    "buttons": {
        "focus": "buttons, HTML leftovers, link lists and calls to action inside the page",
        "example": "[010]Plant the bulbs in autumn, 15 cm deep. Click here to buy bulbs!\n[011]Share | Tweet | Pin",
        "answer": 'normalize(source_str=" Click here to buy bulbs!", target_str="")  # ad\n'
        "remove_lines(11, 11)  # share buttons",
    },
    "footer": {
        "focus": "footers: copyright lines, legal links, contact details and newsletter boxes at the end",
        "example": "[020]Water them once a week in spring.\n[021]© 2024 Garden Co. | Privacy | Terms",
        "answer": "remove_lines(21, 21)  # footer",
    },
}
_SCORE = {"edu": re.compile(r"Educational score:\s*(\d)"), "format": re.compile(r"Extraction Quality Score:\s*(\d)")}
REWRITE_PROMPT = """Below is text extracted from a web page, between <document> tags. Copy it out with the noise \
removed: navigation menus, buttons, share and login prompts, ads, cookie notices, links to other pages, bylines \
and dates stuck to the text, footers and copyright lines. Only delete: do not reword, correct, summarise, reorder \
or add anything; every line or piece of a line you keep must be copied exactly as it is. Answer with the cleaned \
text only, between <clean> and </clean>.

<document>
{document}
</document>"""

_CLEAN = re.compile(r"<clean>\n?(.*?)\n?</clean>", re.DOTALL)
_CODE = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


def parse_score(answer: str, kind: str) -> int | None:
    """The last stated score of that kind in an answer (0-5), or None."""
    found = _SCORE[kind].findall(answer)
    return min(int(found[-1]), 5) if found else None


def keep_by_scores(edu: int | None, format_score: int | None) -> bool:
    """The paper's doc-level label: keep when edu ≥ 3, or edu = 2 and format ≥ 4."""
    if edu is None:
        return False
    return edu >= 3 or (edu == 2 and (format_score or 0) >= 4)


def chunk_prompt_text(chunk: str, kind: str) -> str:
    return _CHUNK_INSTRUCTIONS.format(chunk=chunk, **CHUNK_PROMPTS[kind])


def program_from_answer(answer: str) -> Program:
    """The calls of the answer's python block (or of the whole answer), read by the strict parser."""
    blocks = _CODE.findall(answer)
    return parse_program("\n".join(blocks) if blocks else answer, Stage.CHUNK)


def rewritten_text(answer: str) -> str:
    """The cleaned copy in a rewrite answer: between <clean> tags, else the whole answer without code fences."""
    if match := _CLEAN.search(answer):
        return match.group(1)
    return re.sub(r"^```\w*\n?|\n?```$", "", answer.strip())


def merge_programs(programs: Sequence[Program], first_line: int, last_line: int, max_removed: float) -> Program:
    """One chunk program from several: the union of the ranges within the chunk, each normalize once.
    When more than `max_removed` of the chunk's lines would go, the removals are dropped (normalizes stay)."""
    removed = [False] * (last_line - first_line + 1)
    normalizes: list[Normalize] = []
    for program in programs:
        for call in program.calls:
            if isinstance(call, RemoveLines):
                for line in range(max(call.start, first_line), min(call.end, last_line) + 1):
                    removed[line - first_line] = True
            elif isinstance(call, Normalize) and call not in normalizes:
                normalizes.append(call)
    if sum(removed) > max_removed * len(removed):
        removed = [False] * len(removed)
    removals = Program.removing(removed, first_line).calls
    calls = tuple(call for call in removals if not isinstance(call, KeepChunk)) + tuple(normalizes)
    return Program(calls or (KeepChunk(),))


@dataclass
class AnnotateConfig:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 8
    timeout: float = 120.0
    retries: int = 3
    chunk_lines: int = 40  # lines per chunk shown to the annotator
    max_removed: float = 0.8  # removal-ratio cap of a merged chunk program
    max_tokens: int = 512
    rewrite: bool = False  # chunk labels from a cleaned copy of each chunk instead of the three prompts


class Annotator:
    """Runs the annotation prompts through a chat endpoint, with an on-disk answer cache."""

    def __init__(self, config: AnnotateConfig, cache: Path) -> None:
        self.config = config
        cache.parent.mkdir(parents=True, exist_ok=True)
        self.answers: dict[str, str] = {}
        if cache.exists():
            for line in cache.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                    self.answers[entry["key"]] = entry["answer"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut off by a crash
        self._cache = cache.open("a", encoding="utf-8")

    def close(self) -> None:
        self._cache.close()

    def ask(self, prompts: Sequence[str], max_tokens: int | None = None) -> list[str | None]:
        """The answers to every prompt (None where the endpoint kept failing); `max_tokens` per answer
        (default: the config's)."""
        keys = [hashlib.sha1(f"{self.config.model}\0{p}".encode()).hexdigest() for p in prompts]
        missing = [i for i, key in enumerate(keys) if key not in self.answers]
        fresh = asyncio.run(self._chat_all([prompts[i] for i in missing], max_tokens or self.config.max_tokens))
        for index, answer in zip(missing, fresh, strict=True):
            if answer is not None:
                self.answers[keys[index]] = answer
                self._cache.write(json.dumps({"key": keys[index], "answer": answer}) + "\n")
        self._cache.flush()
        return [self.answers.get(key) for key in keys]

    async def _chat_all(self, prompts: Sequence[str], max_tokens: int) -> list[str | None]:
        import httpx

        config = self.config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        limit = asyncio.Semaphore(config.concurrency)
        async with httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"), timeout=config.timeout, headers=headers
        ) as client:

            async def one(prompt: str) -> str | None:
                payload = {
                    "model": config.model,
                    "messages": [{"role": "user", "content": prompt}],
                    "temperature": 0.0,
                    "max_tokens": max_tokens,
                }
                for attempt in range(config.retries + 1):
                    if attempt:
                        await asyncio.sleep(0.5 * 2 ** (attempt - 1))
                    try:
                        async with limit:
                            response = await client.post("/chat/completions", json=payload)
                        if response.status_code == 200:
                            return response.json()["choices"][0]["message"]["content"]
                        if response.status_code < 500 and response.status_code != 429:
                            return None
                    except (httpx.HTTPError, ValueError, KeyError, IndexError):
                        continue
                return None

            return list(await asyncio.gather(*(one(prompt) for prompt in prompts)))

    def annotate(self, source: str, text: str) -> list[dict]:
        """Seed examples for one document: a doc example, and a chunk example when it is kept."""
        lines = text.split("\n")
        edu_answer, format_answer = self.ask([EDU_PROMPT.format(document=text), FORMAT_PROMPT.format(document=text)])
        if edu_answer is None or format_answer is None:
            return []  # the endpoint failed: nothing is labelled, a rerun asks again
        edu, fmt = parse_score(edu_answer, "edu"), parse_score(format_answer, "format")
        if edu is None or fmt is None:
            return []  # an answer without its score line labels nothing
        keep = keep_by_scores(edu, fmt)
        program = "keep_doc()" if keep else "drop_doc()"
        scores = {"edu": edu, "format": fmt}
        examples = [SeedExample(source, SUBSET, source, "doc", text, program, label=int(keep), scores=scores).to_dict()]
        if not keep:
            return examples
        chunk = self.rewrite_example(source, lines) if self.config.rewrite else self.program_example(source, lines)
        return examples + ([chunk] if chunk is not None else [])

    def program_example(self, source: str, lines: list[str]) -> dict | None:
        """The chunk example of the ProX recipe: three prompts per chunk of lines, their programs merged (None
        when an answer is missing)."""
        merged: list[Program] = []
        step = self.config.chunk_lines
        for first in range(0, len(lines), step):
            last = min(first + step, len(lines)) - 1
            chunk = "\n".join(number_line(i, lines[i]) for i in range(first, last + 1))
            answers = self.ask([chunk_prompt_text(chunk, kind) for kind in CHUNK_PROMPTS])
            if any(answer is None for answer in answers):
                return None
            programs = [program_from_answer(answer) for answer in answers]
            merged.append(merge_programs(programs, first, last, self.config.max_removed))
        removed = [False] * len(lines)
        for program in merged:
            for call in program.calls:
                if isinstance(call, RemoveLines):
                    removed[call.start : call.end + 1] = [True] * (call.end + 1 - call.start)
        program = "\n".join(p.render() for p in merged)
        labels = [int(not gone) for gone in removed]
        return SeedExample(source, SUBSET, source, "chunk", "\n".join(lines), program, labels=labels).to_dict()

    def rewrite_example(self, source: str, lines: list[str]) -> dict | None:
        """The chunk example of a cleaned copy (the RefineX way): each chunk of lines rewritten by the endpoint,
        and only the deletions the copies imply kept, by the alignment the human gold goes through
        (`chunk_example`: `remove_lines` for lines gone, safe `normalize` calls for noise inside kept lines);
        what a copy holds beyond deletions is never taken. `scores` records the copy's words and how many
        of them were not deletions (invented, reworded or moved). None when an answer is missing."""
        copies = []
        for first in range(0, len(lines), self.config.chunk_lines):
            chunk = "\n".join(lines[first : first + self.config.chunk_lines])
            room = max(self.config.max_tokens, len(chunk) // 3 + 64)  # a copy is about as long as its chunk
            [answer] = self.ask([REWRITE_PROMPT.format(document=chunk)], room)
            if answer is None:
                return None
            copies.append(rewritten_text(answer))
        clean = "\n".join(copies)
        aligned = aligned_words(lines, clean)
        matched = sum(sum(flags) for flags in aligned)  # the alignment pairs words one to one
        total = len(words(clean))
        example = chunk_example(source, SUBSET, source, lines, clean, aligned)
        example.scores = {"rewrite_words": total, "rewrite_words_not_deleted": total - matched}
        return example.to_dict()


def annotate_corpus(
    config: AnnotateConfig,
    inputs: Sequence[str],
    output: Path,
    text_key: str = "text",
    id_key: str = "id",
    limit: int = 0,
) -> dict[str, int]:
    """`prox annotate`: every readable document of `inputs` labelled (`Annotator.annotate`) into the seed
    JSONL `output`, its answers cached beside it (`OUTPUT.cache.jsonl`, so a rerun resumes); returns counts
    (with `rewrite`, also the copies' words, the share of them that were not deletions, and the normalize
    calls written)."""
    from proxkit.outcome import is_pending
    from proxkit.readers import RecordReader

    annotator = Annotator(config, output.with_suffix(".cache.jsonl"))
    reader = RecordReader([str(path) for path in inputs], text_key, id_key, limit or -1)
    counts = {"documents": 0, "doc_examples": 0, "chunk_examples": 0, "unanswered": 0}
    if config.rewrite:
        counts |= {"rewrite_words": 0, "rewrite_words_not_deleted": 0, "normalize_calls": 0}
    try:
        with output.open("w", encoding="utf-8") as file:
            for document in reader.run():
                counts["documents"] += 1
                readable = is_pending(document) and document.text.strip()  # not a failed or empty record
                examples = annotator.annotate(document.id, document.text) if readable else []
                counts["unanswered"] += not examples
                for example in examples:
                    counts[f"{example['stage']}_examples"] += 1
                    if config.rewrite and example["stage"] == "chunk":
                        for key in ("rewrite_words", "rewrite_words_not_deleted"):
                            counts[key] += example["scores"][key]
                        counts["normalize_calls"] += example["program"].count("normalize(")
                    file.write(json.dumps(example, ensure_ascii=False) + "\n")
    finally:
        annotator.close()
    if config.rewrite:
        share = counts["rewrite_words_not_deleted"] / counts["rewrite_words"] if counts["rewrite_words"] else 0.0
        counts["rewrite_share_not_deleted"] = round(share, 4)
    return counts
