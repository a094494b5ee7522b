#!/usr/bin/env python3
"""Precision, recall and F1 of app.extract on the labelled set tests/data/entities.jsonl.

    python scripts/eval_extract.py             # tables: whole set, held-out part, fresh set
    python scripts/eval_extract.py --errors    # the mistakes and table of the tuning part only

A prediction is right ("exact") when a labelled entity of its sentence has the same type and
the same text; "partial" also counts a prediction whose span overlaps a labelled entity of the
same type ("Cook" for "Tim Cook"). The last 30% of the file is held out: rules are tuned on
the first 70% and its mistakes are never printed, so its figures show how the rules do on
sentences they were not fitted to. A second file, tests/data/entities_fresh.jsonl, was
written after the rules existed and is only ever scored, never tuned on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.extract import ENTITY_TYPES, Entity, extract  # noqa: E402

DATA = ROOT / "tests" / "data" / "entities.jsonl"
# written after the rules, never tuned on (see docs/extraction.md)
FRESH = ROOT / "tests" / "data" / "entities_fresh.jsonl"
HELD_OUT_SHARE = 0.3


@dataclass
class Row:
    text: str
    gold: list[tuple[str, str]]


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    partial_tp: int = 0  # predictions overlapping a labelled entity of their type
    partial_found: int = 0  # labelled entities overlapped by a prediction of their type

    def add(self, other: Counts) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.partial_tp += other.partial_tp
        self.partial_found += other.partial_found

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def partial_precision(self) -> float:
        predicted = self.tp + self.fp
        return self.partial_tp / predicted if predicted else 1.0

    @property
    def partial_recall(self) -> float:
        gold = self.tp + self.fn
        return self.partial_found / gold if gold else 1.0


@dataclass
class Report:
    per_type: dict[str, Counts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    sentences: int = 0

    @property
    def overall(self) -> Counts:
        total = Counts()
        for counts in self.per_type.values():
            total.add(counts)
        return total


def load(path: Path = DATA) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            gold = [(e["type"], e["value"]) for e in obj["entities"]]
            for kind, value in gold:
                if kind not in ENTITY_TYPES or value not in obj["text"]:
                    raise ValueError(f"{path}:{n}: bad label {kind}={value!r}")
            rows.append(Row(obj["text"], gold))
    return rows


def split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(tuning part, held-out part): the held-out part is the last 30% of the file."""
    cut = len(rows) - round(len(rows) * HELD_OUT_SHARE)
    return rows[:cut], rows[cut:]


def _spans(text: str, gold: list[tuple[str, str]]) -> list[tuple[str, int, int]]:
    """Where each labelled value is in the text: the n-th label of a text (of any type: a
    person "Austin" then a location "Austin") at its n-th place."""
    seen: Counter[str] = Counter()
    out = []
    for kind, value in gold:
        start = -1
        for _ in range(seen[value] + 1):
            start = text.find(value, start + 1)
        seen[value] += 1
        out.append((kind, start, start + len(value)))
    return out


def score_row(row: Row, predicted: list[Entity], report: Report) -> None:
    gold = Counter(row.gold)
    got = Counter((e.entity_type, e.value) for e in predicted)
    gold_spans = _spans(row.text, row.gold)
    for kind in ENTITY_TYPES:
        c = report.per_type.setdefault(kind, Counts())
        g = Counter({k: n for k, n in gold.items() if k[0] == kind})
        p = Counter({k: n for k, n in got.items() if k[0] == kind})
        tp = sum((g & p).values())
        c.tp += tp
        c.fp += sum(p.values()) - tp
        c.fn += sum(g.values()) - tp
        mine = [e for e in predicted if e.entity_type == kind]
        theirs = [(s, e) for k, s, e in gold_spans if k == kind]
        c.partial_tp += sum(any(e.start < ge and gs < e.end for gs, ge in theirs) for e in mine)
        c.partial_found += sum(any(e.start < ge and gs < e.end for e in mine) for gs, ge in theirs)
    missed = gold - got
    extra = got - gold
    if missed or extra:
        line = row.text
        for kind, value in sorted(missed.elements()):
            line += f"\n    missed {kind}: {value!r}"
        for kind, value in sorted(extra.elements()):
            line += f"\n    wrong  {kind}: {value!r}"
        report.errors.append(line)


def evaluate(rows: list[Row]) -> Report:
    report = Report(sentences=len(rows))
    for row in rows:
        started = time.perf_counter()
        predicted = extract(row.text)
        report.seconds += time.perf_counter() - started
        score_row(row, predicted, report)
    return report


def timing(rows: list[Row], repeat: int = 20) -> tuple[float, float]:
    """(mean µs per labelled sentence, mean µs per 200-character text), best of `repeat`."""
    texts = [r.text for r in rows]
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            extract(text)
        best = min(best, (time.perf_counter() - started) / len(texts))
    joined = " ".join(texts)
    chunks = [joined[i : i + 200] for i in range(0, len(joined) - 200, 200)]
    best200 = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in chunks:
            extract(text)
        best200 = min(best200, (time.perf_counter() - started) / len(chunks))
    return best * 1e6, best200 * 1e6


def table(report: Report, title: str) -> str:
    lines = [
        f"{title}: {report.sentences} sentences",
        "",
        "| type | gold | predicted | precision | recall | F1 | partial P | partial R |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(kind, report.per_type[kind]) for kind in ENTITY_TYPES]
    rows.append(("**overall**", report.overall))
    for kind, c in rows:
        lines.append(
            f"| {kind} | {c.tp + c.fn} | {c.tp + c.fp} | {c.precision:.3f} | {c.recall:.3f}"
            f" | {c.f1:.3f} | {c.partial_precision:.3f} | {c.partial_recall:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--fresh", type=Path, default=FRESH)
    parser.add_argument(
        "--errors", action="store_true", help="print the tuning part's mistakes and its table only"
    )
    args = parser.parse_args()
    rows = load(args.data)
    tuning, held_out = split(rows)
    if args.errors:
        report = evaluate(tuning)
        print("\n".join(report.errors))
        print()
        print(table(report, "Tuning part (first 70%)"))
        return
    print(table(evaluate(rows), f"Whole set ({args.data.name})"))
    print()
    print(table(evaluate(held_out), "Held-out part (its last 30%, never tuned on)"))
    if args.fresh.exists():
        print()
        print(table(evaluate(load(args.fresh)), f"Fresh set ({args.fresh.name})"))
    per_sentence, per_200 = timing(rows)
    mean_chars = sum(len(r.text) for r in rows) / len(rows)
    print()
    print(
        f"Time: {per_sentence:.0f} µs per labelled sentence (mean {mean_chars:.0f} characters),"
        f" {per_200:.0f} µs per 200-character text"
    )


if __name__ == "__main__":
    main()
