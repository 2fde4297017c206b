"""Reading and validating labelled product-name CSVs, with errors that name the problem."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.core.config import PROJECT_ROOT

__all__ = [
    "LABEL_COLUMNS",
    "MIN_ROWS_PER_CLASS",
    "SHIPPED_DATASET",
    "TEXT_COLUMNS",
    "Dataset",
    "DatasetError",
    "merge",
    "parse_csv",
    "read_csv",
    "write_csv",
]

# Written by scripts/generate_products.py; what `python train.py` learns by default.
SHIPPED_DATASET = PROJECT_ROOT / "data" / "products.csv"

# Accepted header names, in order of preference (the original Garoupa-API data used
# `item_name` and `Fixed Category Code`).
TEXT_COLUMNS: tuple[str, ...] = ("product_name", "item_name", "name")
LABEL_COLUMNS: tuple[str, ...] = ("category", "label", "Fixed Category Code")
# A stratified 80/20 split plus 4-fold out-of-fold calibration on the training
# part needs every class in both parts and at least 4 training rows.
MIN_ROWS_PER_CLASS = 5
MAX_NAME_LENGTH = 300
# Warnings a job records about left-out categories, at most (then one summary line).
MAX_WARNINGS = 20


class DatasetError(ValueError):
    """A CSV that cannot be trained on; the message says why in one line."""


@dataclass(frozen=True)
class Dataset:
    """Distinct product names with one label each, in file order."""

    texts: list[str]
    labels: list[str]
    # Provenance for the registry: where the rows came from and how many each gave.
    sources: list[dict[str, object]] = field(default_factory=list)
    dropped_rows: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def class_counts(self) -> dict[str, int]:
        """Rows per label, largest first."""
        return dict(Counter(self.labels).most_common())

    def to_csv_bytes(self) -> bytes:
        """The canonical CSV (product_name,category) of exactly these rows."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("product_name", "category"))
        writer.writerows(zip(self.texts, self.labels, strict=True))
        return buffer.getvalue().encode("utf-8")

    @property
    def sha256(self) -> str:
        """Hash of the canonical CSV: equal rows give an equal hash whatever the source file."""
        return hashlib.sha256(self.to_csv_bytes()).hexdigest()

    def prepare_for_training(self, test_size: float) -> tuple[Dataset, list[str]]:
        """This dataset without the categories too small to train on, and a warning for each.

        One label nobody else uses (a feedback row, a typo in a CSV) must not make
        every job fail: such categories are left out of this job. DatasetError
        only when fewer than two categories remain or the split is impossible.
        """
        counts = Counter(self.labels)
        small = sorted(label for label, n in counts.items() if n < MIN_ROWS_PER_CLASS)
        kept = {label for label in counts if label not in small}
        if small and len(kept) < 2:
            found = ", ".join(repr(label) for label in sorted(kept)) or "none"
            listed = ", ".join(f"{label!r} ({counts[label]})" for label in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            raise DatasetError(
                f"the data needs at least 2 categories with {MIN_ROWS_PER_CLASS} or more rows "
                f"each; found {found}; too few rows for {listed}{more}"
            )
        if not small:
            self.validate_for_training(test_size)
            return self, []
        pairs = [(t, lbl) for t, lbl in zip(self.texts, self.labels, strict=True) if lbl in kept]
        prepared = Dataset(
            texts=[t for t, _ in pairs],
            labels=[lbl for _, lbl in pairs],
            sources=self.sources,
            dropped_rows=self.dropped_rows,
        )
        prepared.validate_for_training(test_size)
        warnings = [
            f"category {label!r} left out of this job: {counts[label]} row(s), "
            f"at least {MIN_ROWS_PER_CLASS} needed"
            for label in small[:MAX_WARNINGS]
        ]
        if len(small) > MAX_WARNINGS:
            warnings.append(f"{len(small) - MAX_WARNINGS} more categories left out likewise")
        return prepared, warnings

    def validate_for_training(self, test_size: float) -> None:
        """Raise DatasetError unless a stratified split and calibrated fit are possible."""
        counts = Counter(self.labels)
        if len(counts) < 2:
            found = next(iter(counts), None)
            detail = f"only {found!r}" if found is not None else "none"
            raise DatasetError(f"the data needs at least 2 categories; found {detail}")
        small = sorted(label for label, n in counts.items() if n < MIN_ROWS_PER_CLASS)
        if small:
            listed = ", ".join(f"{label!r} ({counts[label]})" for label in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            raise DatasetError(
                f"every category needs at least {MIN_ROWS_PER_CLASS} rows for a stratified "
                f"split; too few rows for {listed}{more}"
            )
        n_test = round(len(self) * test_size)
        if n_test < len(counts) or len(self) - n_test < len(counts):
            raise DatasetError(
                f"{len(self)} rows are too few to hold out {test_size:.0%} with every one of "
                f"the {len(counts)} categories on both sides"
            )


def _pick(header: Sequence[str], candidates: Sequence[str], what: str) -> int:
    stripped = [h.strip() for h in header]
    lowered = [h.lower() for h in stripped]
    for name in candidates:
        if name in stripped:
            return stripped.index(name)
        if name.lower() in lowered:
            return lowered.index(name.lower())
    raise DatasetError(
        f"missing {what} column: expected one of {', '.join(candidates)}; "
        f"found {', '.join(stripped) or 'no header'}"
    )


def parse_csv(data: bytes, source: str) -> Dataset:
    """Parse UTF-8 CSV bytes; later rows win when a product name repeats."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{source} is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    if "\x00" in text:
        raise DatasetError(f"{source} contains NUL bytes; it is not a text CSV")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise DatasetError(f"{source} is empty")
        text_col = _pick(header, TEXT_COLUMNS, "product name")
        label_col = _pick(header, LABEL_COLUMNS, "category")
        rows = list(reader)
    except csv.Error as exc:
        raise DatasetError(f"{source} is not a readable CSV: {exc}") from None
    return _from_rows(
        (
            (r[text_col] if text_col < len(r) else "", r[label_col] if label_col < len(r) else "")
            for r in rows
        ),
        source=source,
    )


def _from_rows(rows: Iterable[tuple[str, str]], source: str) -> Dataset:
    by_name: dict[str, str] = {}
    total = dropped = 0
    for raw_name, raw_label in rows:
        total += 1
        name, label = raw_name.strip(), raw_label.strip()
        if not name or not label or len(name) > MAX_NAME_LENGTH:
            dropped += 1
            continue
        # Re-inserting moves a corrected name to the end, so file order reflects
        # which row won; the latest label wins (feedback corrects older data).
        by_name.pop(name, None)
        by_name[name] = label
    if not by_name:
        raise DatasetError(f"{source} has no usable rows (a name and a category on each)")
    return Dataset(
        texts=list(by_name),
        labels=list(by_name.values()),
        sources=[{"source": source, "rows": total, "used": len(by_name)}],
        dropped_rows=dropped,
    )


def read_csv(path: Path, source: str | None = None) -> Dataset:
    """Read a CSV file from disk (see `parse_csv`)."""
    label = source or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{label} does not exist") from None
    except IsADirectoryError:
        raise DatasetError(f"{label} is a directory, not a CSV file") from None
    dataset = parse_csv(data, label)
    return Dataset(
        dataset.texts,
        dataset.labels,
        [{**dataset.sources[0], "sha256": hashlib.sha256(data).hexdigest()}],
        dataset.dropped_rows,
    )


def merge(*datasets: Dataset) -> Dataset:
    """Concatenate datasets in order; a name in a later one overrides its earlier label."""
    pairs = ((t, lbl) for d in datasets for t, lbl in zip(d.texts, d.labels, strict=True))
    merged = _from_rows(pairs, source="merged")
    return Dataset(
        merged.texts,
        merged.labels,
        [s for d in datasets for s in d.sources],
        sum(d.dropped_rows for d in datasets),
    )


def write_csv(dataset: Dataset, path: Path) -> None:
    """Write the canonical CSV atomically (temporary file, fsync, rename)."""
    atomic_write_bytes(path, dataset.to_csv_bytes())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` so that `path` is either absent, the old file, or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Persist a rename: the directory entry must reach the disk too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
