"""Properties that must hold for every input (hypothesis)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxkit.program import (
    DropDoc,
    Guards,
    KeepChunk,
    KeepDoc,
    Mode,
    Normalize,
    Program,
    RemoveAllLines,
    RemoveLines,
    Stage,
    execute,
    execute_chunk,
    parse_program,
)

NO_GUARDS = Guards(min_word_ratio=0.0, min_words=0, max_errors=None)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments of real and broken model output, glued at random: much nearer the parser's edge cases than
# uniform text.
_FRAGMENTS = [
    "remove_lines(",
    "normalize(",
    "keep_chunk()",
    "drop_doc()",
    "keep_doc()",
    "untouch_doc()",
    "line_start=",
    "line_end=",
    "start=",
    "end=",
    "source_str=",
    "target_str=",
    "all=True",
    '"',
    "'",
    ",",
    ")",
    "(",
    "=",
    "#",
    "\n",
    " ",
    "\\",
    "```",
    ";",
    "-1",
    "0",
    "3",
    "99999999999999999999",
    "drop",
    "lambda",
    "__import__",
]
program_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=5)), max_size=40).map("".join),
)
document = st.lists(st.text(alphabet=st.characters(exclude_characters="\n"), max_size=30), max_size=25).map("\n".join)
modes = st.sampled_from(list(Mode))


@FAST
@given(text=program_text, stage=st.sampled_from(list(Stage)), mode=modes)
def test_no_program_text_makes_the_parser_raise(text, stage, mode):
    program = parse_program(text, stage, mode)
    assert all(call.stage is stage for call in program.calls)
    assert all(error.line >= 1 for error in program.errors)


@FAST
@given(text=document, doc_program=program_text, chunk_program=program_text, mode=modes)
def test_no_program_makes_the_executor_raise_and_runs_are_deterministic(text, doc_program, chunk_program, mode):
    first = execute(text, doc_program, chunk_program, mode=mode)
    second = execute(text, doc_program, chunk_program, mode=mode)
    assert first == second
    assert first.dropped == (first.reason is not None)
    assert not first.dropped or first.text == ""


@st.composite
def document_and_ranges(draw):
    lines = draw(st.integers(min_value=1, max_value=40))
    ranges = draw(
        st.lists(
            st.tuples(st.integers(0, lines + 5), st.integers(0, lines + 5)).map(sorted).map(tuple),
            max_size=8,
        )
    )
    return lines, ranges


@FAST
@given(case=document_and_ranges())
def test_removed_lines_are_exactly_the_union_of_the_valid_ranges(case):
    count, ranges = case
    text = "\n".join(f"line{i} word" for i in range(count))
    program = "\n".join(f"remove_lines(line_start={start}, line_end={end})" for start, end in ranges)
    result = execute_chunk(text, program, guards=NO_GUARDS)
    expected = {line for start, end in ranges for line in range(start, min(end, count - 1) + 1)}
    remaining = {int(line.split()[0][4:]) for line in result.text.split("\n") if line}
    assert remaining == set(range(count)) - expected
    assert result.stats.lines_removed == len(expected)
    assert len(result.errors) == sum(end >= count for _, end in ranges)


_CHUNK_CALLS = st.one_of(
    st.just(KeepChunk()),
    st.just(RemoveAllLines()),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(sorted).map(lambda pair: RemoveLines(*pair)),
    st.builds(Normalize, st.text(min_size=1).filter(str.strip), st.text()),
)


@FAST
@given(calls=st.lists(_CHUNK_CALLS, max_size=12))
def test_rendering_then_parsing_gives_the_program_back(calls):
    program = Program(tuple(calls))
    assert parse_program(program.render(), Stage.CHUNK) == program


@given(decision=st.sampled_from([KeepDoc(), DropDoc()]))
def test_doc_calls_render_and_parse_back(decision):
    assert parse_program(Program((decision,)).render(), Stage.DOC).calls == (decision,)


@FAST
@given(
    start=st.integers(0, 10**12),
    end=st.integers(0, 10**12),
    spelling=st.sampled_from(
        ["remove_lines({0}, {1})", "remove_lines(line_start={0}, line_end={1})", "remove_lines(start={0}, end={1})"]
    ),
)
def test_the_fast_path_reads_like_the_syntax_tree(start, end, spelling):
    line = spelling.format(start, end)
    fast = parse_program(line, Stage.CHUNK)
    tree = parse_program(line + "  # read by ast", Stage.CHUNK)  # a comment forces the ast path
    assert fast == tree


plain_text = st.text(st.characters(exclude_characters='"\\\n', exclude_categories=["Cc", "Cs"]), max_size=20)


@FAST
@given(
    source=plain_text,
    target=plain_text,
    spelling=st.sampled_from(
        [
            'normalize(source_str="{0}", target_str="{1}")',
            'normalize(source_str="{0}")',
            'normalize("{0}", "{1}")',
            'normalize("{0}",target_str="{1}")',
            'normalize("{0}")',
        ]
    ),
)
def test_the_normalize_fast_path_reads_like_the_syntax_tree(source, target, spelling):
    line = spelling.format(source, target)
    assert parse_program(line, Stage.CHUNK) == parse_program(line + "  # read by ast", Stage.CHUNK)


# --- untrusted programs within a memory and time budget --------------------------------------------------

_source = st.text(alphabet="ab \n", min_size=1, max_size=4)


@st.composite
def hostile_chunk_program(draw) -> str:
    """Programs of the grammar built to grow, repeat and overlap (repeated, as a looping model would)."""
    calls = draw(
        st.lists(
            st.one_of(
                st.builds(Normalize, _source, st.text(alphabet="ab\n", max_size=64)),
                st.builds(RemoveLines, st.integers(0, 50), st.integers(50, 10**12)),
                st.just(RemoveAllLines()),
                st.just(KeepChunk()),
            ),
            min_size=1,
            max_size=6,
        )
    )
    return "\n".join(call.render() for call in calls * draw(st.integers(1, 40)))


_bytes_program = st.binary(max_size=300).map(lambda raw: raw.decode("utf-8", "replace"))
_big_document = st.lists(st.text(alphabet="ab \n", min_size=1, max_size=60), max_size=40).map("".join)


@FAST
@given(text=_big_document, chunk_program=st.one_of(hostile_chunk_program(), _bytes_program), mode=modes)
def test_every_program_runs_within_a_memory_and_time_budget(text, chunk_program, mode):
    import time
    import tracemalloc

    tracemalloc.start()
    started = time.perf_counter()
    result = execute(text, "keep_doc()", chunk_program, mode=mode)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(result.text) <= 2 * len(text) + 1_000  # Bounds(): the text at most doubles, plus slack
    assert peak <= 64 * len(chunk_program) + 40 * len(text) + 2_000_000
    assert seconds < 2.0
