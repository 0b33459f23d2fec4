"""Simple item features computed offline from the texts: lengths and lexicon counts.

:func:`add_text_features` adds numeric columns to a study's items table so that formulas can ask
*on what* raters differ (``"rating ~ gender * response_words"``). Nothing is downloaded: the
features are counts over the text itself and over word lists the user passes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from pluralign.data._log import LogEntry
from pluralign.data._study import Study

#: Features :func:`add_text_features` can compute besides lexicon counts.
TEXT_FEATURES = ("chars", "words")

#: A word: a run of letters, digits, apostrophes or hyphens inside a word (Unicode aware).
_WORD = re.compile(r"\w+(?:['’-]\w+)*")


def _lexicon_pattern(name: str, terms: Iterable[str]) -> re.Pattern:
    cleaned = sorted(
        {str(t).strip().lower() for t in terms if str(t).strip()}, key=len, reverse=True
    )
    if not cleaned:
        raise ValueError(f"lexicon {name!r} is empty; give it at least one word or phrase")
    alternatives = "|".join(r"\s+".join(map(re.escape, t.split())) for t in cleaned)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def add_text_features(
    study: Study,
    *,
    column: str = "response",
    features: Sequence[str] = TEXT_FEATURES,
    lexicons: Mapping[str, Iterable[str]] | None = None,
    prefix: str | None = None,
) -> Study:
    """Add length and lexicon-count columns computed from an items text column.

    Features (one numeric column each, named ``{prefix}_{feature}``):

    * ``chars``: number of characters of the text (after stripping surrounding whitespace);
    * ``words``: number of words, a word being a run of letters or digits, with inner
      apostrophes or hyphens (``"don't"`` and ``"well-known"`` are one word each);
    * one column per lexicon: how many times any of its words or phrases occurs, case
      insensitive, as whole words (``"may"`` does not count in ``"mayor"``; a phrase matches
      across any whitespace). Overlapping entries are counted once, longest first.

    Parameters
    ----------
    study : Study
    column : str, default "response"
        Text column of the items table.
    features : sequence of {"chars", "words"}, default both
        Length features to compute (``()`` for lexicon counts only).
    lexicons : mapping of name to iterable of str, optional
        Word lists to count, e.g. ``{"hedges": ["may", "might", "perhaps", "it seems"]}``.
    prefix : str, optional
        Column name prefix (default: ``column``), so the default columns are
        ``response_chars``, ``response_words`` and ``response_<lexicon>``.

    Returns
    -------
    Study
        A copy whose items table has the new columns; the step is in ``study.log``.

    Raises
    ------
    KeyError
        If ``column`` is not a column of the items table.
    ValueError
        If a new column name already exists in the items or raters table, a feature is
        unknown, or a lexicon is empty.

    See Also
    --------
    pluralign.models.fit_mixed : use the new columns in a formula.

    Examples
    --------
    >>> from pluralign.data import simulate_study
    >>> study = simulate_study(n_raters=20, n_prompts=5, seed=1).study
    >>> out = add_text_features(study, lexicons={"hedges": ["may", "might", "perhaps"]})
    >>> [c for c in out.items.columns if c.startswith("response_")]
    ['response_chars', 'response_words', 'response_hedges']
    >>> out.log.iloc[-1]["step"]
    'add_text_features'
    """
    if column not in study.items.columns:
        raise KeyError(
            f"column {column!r} is not in the items table (columns: {list(study.items.columns)})"
        )
    unknown = [f for f in features if f not in TEXT_FEATURES]
    if unknown:
        raise ValueError(f"unknown features {unknown}; choose from {TEXT_FEATURES}")
    prefix = column if prefix is None else prefix
    lexicons = dict(lexicons or {})
    patterns = {name: _lexicon_pattern(name, terms) for name, terms in lexicons.items()}
    names = {f: f"{prefix}_{f}" if prefix else f for f in (*features, *patterns)}
    taken = sorted(
        n
        for n in names.values()
        if n in study.items.columns or n in study.raters.columns or n in ("rating", "dimension")
    )
    if taken:
        raise ValueError(
            f"columns {taken} exist already (items or raters table); pass another prefix= "
            "or drop them first"
        )
    text = study.items[column].fillna("").astype(str).str.strip()
    items = study.items.copy()
    if "chars" in features:
        items[names["chars"]] = text.str.len().astype(int)
    if "words" in features:
        items[names["words"]] = text.str.count(_WORD).astype(int)
    for name, pattern in patterns.items():
        items[names[name]] = text.str.count(pattern).astype(int)
    empty = int((text == "").sum())
    reason = f"item features {list(names.values())} computed from {column!r}" + (
        f"; {empty} items have an empty text (features 0)" if empty else ""
    )
    note = LogEntry(
        "add_text_features",
        "items",
        0,
        reason,
        ", ".join(f"{k}: {len(lexicons[k])} terms" for k in lexicons),
    )
    return study.replace(items=items.reset_index(drop=True), note=note)
