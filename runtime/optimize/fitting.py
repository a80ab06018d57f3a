"""Budget-driven search: the most accurate int8 model that fits a board.

Candidates are the dense int8 model (post-training quantization), the model
pruned with fine-tuning at several sparsity levels, and students of several
widths distilled from the model.  Each is converted to int8, measured on the
held-out data with tinyrt's C backend, and checked against the board's RAM,
flash and latency budgets with `runtime.validate.report` -- the same report as
`python -m runtime.validate`.  The winner is the most accurate candidate whose
every budget passes; ties go to the smaller model (fewer flash bytes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _tf
from .arch import ArchSpec, parse_spec
from .data import Dataset
from .measure import accuracy, weight_sparsity
from .progress import say


@dataclass
class Candidate:
    name: str
    technique: str  # "int8", "prune", "distill"
    tflite: bytes
    accuracy: float
    sparsity: float
    report: dict[str, Any]

    @property
    def fits(self) -> bool:
        return bool(self.report["fits"])

    @property
    def failed(self) -> list[str]:
        return [b["name"] for b in self.report["budgets"] if not b["ok"]]


@dataclass
class FitResult:
    board: str
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def best(self) -> Candidate | None:
        fitting = [c for c in self.candidates if c.fits]
        if not fitting:
            return None
        return max(fitting, key=lambda c: (round(c.accuracy, 9), -c.report["flash_bytes"]))

    def table(self) -> str:
        head = (f"{'candidate':<22} {'accuracy':>8} {'sparsity':>8} {'weights B':>10} {'arena B':>8} "
                f"{'RAM B':>8} {'flash B':>8} {'latency ms':>10}  verdict")
        lines = [f"board {self.board}", head, "-" * len(head)]
        best = self.best
        for c in self.candidates:
            r = c.report
            verdict = "fits" if c.fits else "over " + ", ".join(c.failed)
            mark = "  <- best" if c is best else ""
            lines.append(
                f"{c.name:<22} {c.accuracy * 100:>7.2f}% {c.sparsity:>8.3f} {r['weight_bytes']:>10,} "
                f"{r['arena_bytes']:>8,} {r['ram_bytes']:>8,} {r['flash_bytes']:>8,} {r['latency_ms']:>10.3f}  "
                f"{verdict}{mark}"
            )
        if best is None:
            lines.append("no candidate fits this board")
        return "\n".join(lines)


def budget_report(tflite: bytes, board: str, latency_budget_ms: float | None) -> dict[str, Any]:
    """validate's report without its private plan object (kept small in the result)."""
    from .. import validate

    r = validate.report(tflite, board, latency_budget_ms=latency_budget_ms)
    return {k: v for k, v in r.items() if not k.startswith("_")}


def spec_of(model: Any) -> ArchSpec:
    """The cnn:/mlp: spec closest to a Keras classifier: its Conv2D filter counts and
    hidden Dense widths (the output layer excluded).  Used to size students as
    fractions of the teacher when no student spec is given."""
    convs = [int(layer.filters) for layer in model.layers if type(layer).__name__ == "Conv2D"]
    dense = [int(layer.units) for layer in model.layers if type(layer).__name__ == "Dense"][:-1]
    return ArchSpec("cnn" if convs else "mlp", tuple(convs), tuple(dense))


def fit(
    model: Any,
    board: str,
    data: Dataset,
    *,
    evaluation: Dataset | None = None,
    sparsities: Sequence[float] = (0.5, 0.8, 0.9),
    widths: Sequence[float] = (0.5, 0.25),
    students: Sequence[str] = (),
    block: tuple[int, int] | str = (1, 1),
    prune_epochs: int = 20,
    distill_epochs: int = 60,
    temperature: float = 4.0,
    alpha: float = 0.7,
    mixup: bool = False,
    latency_budget_ms: float | None = None,
    progress: bool = True,
    seed: int = 0,
) -> FitResult:
    """Build, measure and budget-check every candidate; `result.best` is the answer.

    evaluation: held-out data for the accuracies; without it 20% of `data` is held
    out (stratified, seeded) and the rest trains."""
    from .distillation import distill, teacher_logits
    from .pruning import prune
    from .quantization import convert_int8

    if isinstance(model, (str, os.PathLike)):
        model = _tf.load_keras_model(model)
    if evaluation is None:
        data, evaluation = data.split(0.2, seed=seed)
        say(f"no evaluation data given: holding out {len(evaluation)} of the training samples", progress)
    # Fail on a bad board name before any training.
    from ..boards import load_board

    result = FitResult(board=load_board(board).name)

    def add(name: str, technique: str, tflite: bytes) -> None:
        acc = accuracy(tflite, evaluation)
        report = budget_report(tflite, board, latency_budget_ms)
        c = Candidate(name, technique, tflite, acc, weight_sparsity(tflite), report)
        result.candidates.append(c)
        say(f"candidate {name}: accuracy {acc * 100:.2f}%, "
            f"{'fits' if c.fits else 'over ' + ', '.join(c.failed)} on {board}", progress)

    add("int8", "int8", convert_int8(model, data, progress=progress, seed=seed))
    for s in sparsities:
        pr = prune(model, data, sparsity=s, block=block, epochs=prune_epochs, progress=progress, seed=seed)
        add(f"prune {s:.0%}", "prune", pr.tflite)
    specs = [parse_spec(s) for s in students]
    if not specs:
        base = spec_of(model)
        specs = [base.scaled(w) for w in widths]
    if specs:
        logits = None if mixup else teacher_logits(model, data, progress=progress)
        for spec in specs:
            student = distill(model, str(spec), data, temperature=temperature, alpha=alpha, epochs=distill_epochs,
                              mixup=mixup, progress=progress, seed=seed, logits=logits)
            add(f"distill {spec}", "distill", convert_int8(student, data, progress=progress, seed=seed))
    return result
