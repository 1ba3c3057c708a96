"""The experiment's numbers: per-arm means with 95% confidence intervals over seeds (Student's t), the
difference of each arm from raw (paired by seed: the same seed gives the same initial weights and data
order), FLOPs, a markdown table and a plot."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from proxkit.flops import training_flops

# the headline metrics: (key, label, higher is better)
HEADLINE = (
    ("bits_per_byte", "WikiText-2 bits/byte", False),
    ("word_perplexity", "WikiText-2 word ppl", False),
    ("average_accuracy", "avg zero-shot acc", True),
)


def mean_interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% confidence interval); the half-width is NaN for a single value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    from scipy.stats import t

    return mean, float(t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values)))


def run_metrics(run: dict) -> dict[str, float]:
    """One run's numbers: perplexity metrics, each task's accuracy (acc_norm where the task has it, as the
    paper's lighteval suite reports), and their average."""
    metrics: dict[str, float] = {}
    accuracies = {}
    for task, scores in run["scores"].items():
        if "bits_per_byte" in scores:
            metrics["bits_per_byte"] = scores["bits_per_byte"]
            metrics["word_perplexity"] = scores["word_perplexity"]
        elif "acc" in scores:
            accuracies[task] = scores.get("acc_norm", scores["acc"])
    metrics |= {f"acc:{task}": value for task, value in sorted(accuracies.items())}
    if accuracies:
        metrics["average_accuracy"] = statistics.fmean(accuracies.values())
    return metrics


def summarize(runs: list[dict], corpora: dict[str, dict], refine_stats: dict) -> dict:
    arms = list(dict.fromkeys(run["arm"] for run in runs))
    per_arm: dict[str, dict] = {}
    for arm in arms:
        mine = sorted((run for run in runs if run["arm"] == arm), key=lambda run: run["seed"])
        metrics = [run_metrics(run) for run in mine]
        train = mine[0]["train"]
        per_arm[arm] = {
            "seeds": len(mine),
            "corpus": corpora[arm] | {"token_share": corpora[arm]["tokens"] / max(1, corpora["raw"]["tokens"])},
            "train": {key: train[key] for key in ("steps", "tokens", "parameters", "flops")}
            | {"epochs": train["epochs"], "final_loss": mean_interval([run["train"]["final_loss"] for run in mine])},
            "metrics": {key: mean_interval([m[key] for m in metrics]) for key in metrics[0]},
            "by_seed": {key: [m[key] for m in metrics] for key in metrics[0]},
        }
    baseline = per_arm.get("raw")
    for arm, values in per_arm.items():
        if baseline is None or arm == "raw":
            continue
        values["vs_raw"] = {}
        for key, _, _ in HEADLINE:
            pairs = list(zip(values["by_seed"].get(key, []), baseline["by_seed"].get(key, []), strict=False))
            if pairs:
                values["vs_raw"][key] = mean_interval([mine - raw for mine, raw in pairs])
    train = per_arm[arms[0]]["train"]
    return {
        "arms": per_arm,
        "flops": {
            "refining": refine_stats.get("flops", {}).get("refining"),
            "training_per_model": training_flops(train["parameters"], train["tokens"]),
        },
    }


def _cell(value: tuple[float, float], digits: int = 3) -> str:
    mean, half = value
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def markdown(summary: dict) -> str:
    arms = summary["arms"]
    lines = [
        "| corpus | documents | tokens (share of raw) | train tokens | steps | epochs | "
        + " | ".join(label for _, label, _ in HEADLINE)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(HEADLINE),
    ]
    for arm, values in arms.items():
        corpus, train = values["corpus"], values["train"]
        cells = [_cell(values["metrics"][key], 2 if key == "word_perplexity" else 3) for key, _, _ in HEADLINE]
        lines.append(
            f"| {arm} | {corpus['documents']} | {corpus['tokens']:,} ({corpus['token_share']:.0%}) | "
            f"{train['tokens']:,} | {train['steps']} | {train['epochs']:.2f} | " + " | ".join(cells) + " |"
        )
    compared = [(arm, values["vs_raw"]) for arm, values in arms.items() if "vs_raw" in values]
    if compared:
        lines += [
            "",
            "| difference from raw (paired by seed) | " + " | ".join(label for _, label, _ in HEADLINE) + " |",
        ]
        lines.append("|---|" + "---|" * len(HEADLINE))
        for arm, differences in compared:
            cells = [_cell(differences[key], 3) if key in differences else "" for key, _, _ in HEADLINE]
            lines.append(f"| {arm} - raw | " + " | ".join(cells) + " |")
    tasks = [key for key in next(iter(arms.values()))["metrics"] if key.startswith("acc:")]
    lines += ["", "| corpus | " + " | ".join(task.removeprefix("acc:") for task in tasks) + " |"]
    lines.append("|---|" + "---|" * len(tasks))
    for arm, values in arms.items():
        lines.append(f"| {arm} | " + " | ".join(_cell(values["metrics"][task], 3) for task in tasks) + " |")
    flops = summary["flops"]
    refining = f"{flops['refining']:.3g}" if flops["refining"] is not None else "unknown"
    lines += [
        "",
        f"Mean ± 95% confidence interval over {next(iter(arms.values()))['seeds']} seeds. Accuracy: acc_norm where "
        "the task has it, else acc (lm-eval). FLOPs: refining the pool "
        f"{refining} (2·N·(D_raw + D_doc)); training each model {flops['training_per_model']:.3g} (6·N·D).",
    ]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(summary["arms"])
    figure, axes = plt.subplots(1, len(HEADLINE), figsize=(4 * len(HEADLINE), 3.4))
    for axis, (key, label, higher) in zip(axes, HEADLINE, strict=True):
        means = [summary["arms"][arm]["metrics"][key][0] for arm in arms]
        halves = [summary["arms"][arm]["metrics"][key][1] for arm in arms]
        errors = [0 if math.isnan(half) else half for half in halves]
        axis.bar(arms, means, yerr=errors, capsize=4, color=["#999999", "#6b8fb3", "#d9822b"][: len(arms)])
        axis.set_title(f"{label} ({'higher' if higher else 'lower'} is better)", fontsize=9)
        low = min(m - e for m, e in zip(means, errors, strict=True))
        high = max(m + e for m, e in zip(means, errors, strict=True))
        margin = (high - low) * 0.3 or abs(high) * 0.05 or 1
        axis.set_ylim(max(low - margin, 0) if low >= 0 else low - margin, high + margin)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_outputs(summary: dict, output: Path) -> None:
    (output / "results.json").write_text(json.dumps(summary, indent=2))
    (output / "results.md").write_text(markdown(summary))
    plot(summary, output / "results.png")
