"""A sweep's committed results file (``book/results/NAME-PRESET.csv``, one row per run, as
:meth:`gwnlib.training.sweep.Sweep.export` writes it), read and checked row by row: a damaged file
is an error naming its line, never a table of NaNs. Chapter "Training and sweeps" loads them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gwnlib.experiments.config import MULTITASK, QUALITY_COLUMNS

#: Columns every results file must fill with numbers, on every row (besides ``key``); the
#: three-task datasets have a rate per stream instead of r0, r1, r2, filled where a codec has it.
RESULT_NUMBERS = ("eta", "r0", "r1", "r2", "rate_transmit", "rate_receive")
_CONFLICT_MARKERS = ("<<<<<<<", "=======", ">>>>>>>")


def read_results(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """A results file (``book/results/NAME-PRESET.csv``), checked row by row.

    A damaged file is an error that names the file, the line and what is wrong, never a table of
    NaNs: git conflict markers, a row cut short or too long, a missing column, text where a
    number belongs, an empty required metric (:data:`RESULT_NUMBERS` and the ``dataset``'s
    quality columns), or a key on two rows. Line numbers count the header as line 1.
    """
    path = Path(path)
    fix = "repair or delete the damaged rows (or `git checkout` the file), then export again"
    try:
        text = path.read_text()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a text CSV file ({error}); {fix}") from None
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if line.startswith(_CONFLICT_MARKERS):
            raise ValueError(
                f"{path}, line {number}: a git conflict marker ({line[:7]}); resolve the merge, "
                "then export again"
            )
    if not lines:
        raise ValueError(f"{path} is empty; {fix}")
    width = len(lines[0].split(","))
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: not a readable CSV ({error}); {fix}") from None
    numbers = RESULT_NUMBERS if dataset not in MULTITASK else ("eta", "rate_transmit",
                                                                 "rate_receive")  # fmt: skip
    required = ["key", *numbers, *QUALITY_COLUMNS.get(dataset, ())]
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}; {fix}")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    for index in range(len(table)):
        number = index + 2
        cells = raw.iloc[index]
        if (cells == "").sum() and len(lines[index + 1].split(",")) < width:
            raise ValueError(f"{path}, line {number}: the row is cut short; {fix}")
        for column in required:
            value = cells[column]
            if value == "" or value.lower() == "nan":
                raise ValueError(f"{path}, line {number}: {column} is empty; {fix}")
            if column != "key":
                try:
                    float(value)
                except ValueError:
                    raise ValueError(
                        f"{path}, line {number}: {column} is {value!r}, not a number; {fix}"
                    ) from None
    repeated = table["key"][table["key"].duplicated(keep=False)]
    if len(repeated):
        where = ", ".join(str(i + 2) for i in repeated.index)
        raise ValueError(
            f"{path}: key {repeated.iloc[0]!r} is on more than one row (lines {where}); {fix}"
        )
    return table
