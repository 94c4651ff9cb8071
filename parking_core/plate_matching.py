"""Tolerant plate matching: known camera confusions, a score, a minimum, and no guessing on ties."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Characters a plate camera confuses with each other (OCR on stamped plates): each group is one
# class, and a read differing only within classes is "the same shape". Symmetric by construction.
CONFUSION_GROUPS = ("0OD", "8B", "1I", "2Z", "5S")
_CLASS = {char: group[0] for group in CONFUSION_GROUPS for char in group}
PROVINCE = "*"  # every province character is one class: the first character is often misread

# Each confusion or the one missing character costs this much of the score of an exact read (1.0).
PENALTY = 0.15
# Below this a match is not trusted (two confusions, or one confusion and a missing character,
# still pass; three do not): 1 - 2 * 0.15 = 0.7.
MIN_SCORE = 0.7
SCORE_EPSILON = 1e-9  # scores are sums of tenths: compare them without float dust


def _shape(char: str, index: int) -> str:
    if index == 0 and "\u4e00" <= char <= "\u9fff":
        return PROVINCE
    return _CLASS.get(char, char)


def _equal_length_penalty(a: str, b: str) -> int | None:
    """Return how many positions differ within a confusion class, or None if any differs more."""
    penalty = 0
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y:
            continue
        if _shape(x, index) != _shape(y, index):
            return None
        penalty += 1
    return penalty


def plate_penalty(read: str, known: str) -> int | None:
    """Return the number of confusions (a missing character counts one) between two plates.

    None when they differ by anything else. Symmetric: ``plate_penalty(a, b) == plate_penalty(b, a)``.
    """
    if read == known:
        return 0
    short, long_ = sorted((read, known), key=len)
    if len(short) == len(long_):
        return _equal_length_penalty(read, known)
    if len(long_) - len(short) != 1:
        return None
    best: int | None = None
    for gap in range(len(long_)):
        rest = _equal_length_penalty(short, long_[:gap] + long_[gap + 1 :])
        if rest is not None and (best is None or rest + 1 < best):
            best = rest + 1
    return best


def plate_score(read: str, known: str) -> float:
    """Return how alike two normalised plates are: 1.0 exact, less per confusion, 0.0 unrelated."""
    penalty = plate_penalty(read, known)
    return 0.0 if penalty is None else max(0.0, 1.0 - PENALTY * penalty)


@dataclass(frozen=True, slots=True)
class PlateMatch:
    """The one known plate that best matches a read, and how well."""

    plate: str
    score: float

    @property
    def exact(self) -> bool:
        """Tell whether the read was the plate itself."""
        return self.score == 1.0


@dataclass(frozen=True, slots=True)
class AmbiguousMatch:
    """Two or more known plates match equally well: nobody is chosen (refer to staff)."""

    plates: tuple[str, ...]
    score: float


@dataclass(frozen=True, slots=True)
class NoMatch:
    """No known plate matches well enough."""

    best_score: float = 0.0


MatchResult = PlateMatch | AmbiguousMatch | NoMatch


def match_plate(read: str, known: Iterable[str], min_score: float = MIN_SCORE) -> MatchResult:
    """Return the single best known plate for *read* at or above *min_score*, never a tie's pick."""
    best_penalty: int | None = None
    best: list[str] = []
    for plate in set(known):
        penalty = plate_penalty(read, plate)
        if penalty is None:
            continue
        if best_penalty is None or penalty < best_penalty:
            best_penalty, best = penalty, [plate]
        elif penalty == best_penalty:
            best.append(plate)
    if best_penalty is None:
        return NoMatch()
    score = max(0.0, 1.0 - PENALTY * best_penalty)
    if score < min_score - SCORE_EPSILON:
        return NoMatch(score)
    if len(best) > 1:
        return AmbiguousMatch(tuple(sorted(best)), score)
    return PlateMatch(best[0], score)
