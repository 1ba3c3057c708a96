"""Length-sorted batching."""

from proxkit.models import length_batches


def test_batches_are_sorted_by_length_and_bounded():
    lengths = [50, 10, 30, 20, 40, 500]
    batches = list(length_batches(lengths, max_batch=2, max_tokens=100))
    assert batches == [[1, 3], [2, 4], [0], [5]]
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 2
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 100


def test_no_prompts_no_batches():
    assert list(length_batches([], max_batch=4, max_tokens=100)) == []


def test_auto_dtype_is_bf16_only_where_the_cpu_runs_it_faster(monkeypatch, tmp_path):
    import builtins

    import torch

    from proxkit.models import writer

    real_open = builtins.open
    monkeypatch.setenv("PROXKIT_CACHE", str(tmp_path / "cache"))
    cases = (  # flags, measured float32/bfloat16 time ratio (None: not measured), expected
        ("fpu avx2 avx512f", None, torch.float32),
        ("fpu avx512f avx512_bf16", 0.65, torch.float32),  # slower in bfloat16 on some such CPUs
        ("fpu avx512f avx512_bf16", 2.2, torch.bfloat16),  # faster on others
        ("fpu avx512f avx512_bf16 amx_bf16 amx_tile", 4.0, torch.bfloat16),
    )
    for index, (flags, ratio, expected) in enumerate(cases):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: cpu {index}\nflags\t\t: {flags}\n")
        monkeypatch.setattr(
            builtins,
            "open",
            lambda path, *a, _c=cpuinfo, **k: real_open(_c if path == "/proc/cpuinfo" else path, *a, **k),
        )
        measured = []
        seconds = {torch.float32: ratio or 1.0, torch.bfloat16: 1.0}
        timer = lambda dtype, _s=seconds, _m=measured: _m.append(dtype) or _s[dtype]  # noqa: E731
        monkeypatch.setattr(writer, "_matmul_seconds", timer)
        writer.cpu_bfloat16_pays.cache_clear()
        assert writer.auto_dtype("cpu") is expected
        assert bool(measured) == (ratio is not None)
        writer.cpu_bfloat16_pays.cache_clear()
        assert writer.auto_dtype("cpu") is expected and len(measured) == (2 if ratio else 0)  # remembered on disk
    monkeypatch.setattr(builtins, "open", real_open)
    writer.cpu_bfloat16_pays.cache_clear()
