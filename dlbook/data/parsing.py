"""Numbers read from text files, one parser for every reader (CSV tables, time series, numeric files, word
vectors), so that each refuses the same values."""

import math


def number(text: str) -> float | None:
    """The number `text` spells, or None. Like float(), it reads 'inf', 'nan' and overflowing numbers such as
    '1e999' (inf): they look like numbers, so a column holding them is still a column of numbers."""
    try:
        return float(text)
    except ValueError:
        return None


def finite_number(text: str) -> float | None:
    """The finite number `text` spells, or None: data holding inf or nan trains into NaN losses, far from the
    value that caused them."""
    value = number(text)
    return value if value is not None and math.isfinite(value) else None
