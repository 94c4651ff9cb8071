"""Chinese licence plates: normalisation before storing or matching (pure)."""

from __future__ import annotations

import re
import unicodedata

PLATE_COLORS = frozenset({"blue", "yellow", "green", "black", "white", "other"})
_SEPARATORS = re.compile(r"[\s.\-·•_]+")
# A province character, a letter, then 5 (ordinary) or 6 (new-energy) letters/digits; a few plates
# (警, 学, 挂, 港, 澳, 领, 使) end in a Chinese character.
_PLATE = re.compile(r"^[\u4e00-\u9fff][A-Z][A-Z0-9]{4,5}[A-Z0-9\u4e00-\u9fff]$")


def normalise_plate(raw: str) -> str:
    """Return *raw* in NFKC, upper case, without spaces, dots or dashes (豫a·12345 → 豫A12345)."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)).upper()


def is_plausible_plate(plate: str) -> bool:
    """Tell whether a normalised plate has the shape of a Chinese plate (7 or 8 characters)."""
    return bool(_PLATE.match(plate))
