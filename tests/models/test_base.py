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


def test_auto_dtype_is_bf16_only_where_the_cpu_has_bf16_matrix_units(monkeypatch, tmp_path):
    import builtins

    import torch

    from proxkit.models import base

    real_open = builtins.open
    cases = (
        ("fpu avx2 avx512f", torch.float32),
        ("fpu avx512f avx512_bf16", torch.float32),
        ("fpu avx512f avx512_bf16 amx_bf16 amx_tile", torch.bfloat16),
    )
    for flags, expected in cases:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(
            builtins,
            "open",
            lambda path, *a, _c=cpuinfo, **k: real_open(_c if path == "/proc/cpuinfo" else path, *a, **k),
        )
        assert base.auto_dtype("cpu") is expected
    monkeypatch.setattr(builtins, "open", real_open)
