"""Loaders of public rating data sets with rater demographics (local files only).

The files are not shipped with pluralign. A loader looks for them, in order, at ``path``; under
the folder named by the environment variable ``PLURALIGN_DATA``; and under ``shared/data`` beside
the repository (``../shared/data`` from the repository root or the working directory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pluralign._settings import options
from pluralign.data._log import LogEntry
from pluralign.data._scale import BINARY, Scale
from pluralign.data._study import Study

ENV_VAR = "PLURALIGN_DATA"

POPQUORN_FILE = Path("popquorn") / "offensiveness_raw_data.csv"
POPQUORN_LABELS = (
    "Not offensive at all",
    "Slightly offensive",
    "Moderately offensive",
    "Very offensive",
    "Extremely offensive",
)
# The source spells the 55-59 band "54-59" (it follows "50-54"); we relabel it "55-59".
POPQUORN_AGE_FIX = {"54-59": "55-59"}
POPQUORN_AGE_ORDER = (
    "18-24",
    "25-29",
    "30-34",
    "35-39",
    "40-44",
    "45-49",
    "50-54",
    "55-59",
    "60-64",
    ">65",
)

MULTIPICO_DIR = Path("multipico")
MULTIPICO_META = "MP_annotators_meta.json"
MULTIPICO_RATER_COLUMNS = {
    "Gender": "gender",
    "Age": "age",
    "Ethnicity simplified": "ethnicity",
    "Country of birth": "country_of_birth",
    "Country of residence": "country_of_residence",
    "Nationality": "nationality",
    "Student status": "student",
    "Employment status": "employment",
}


def data_roots() -> list[Path]:
    """Folders searched for data sets, in order (existing or not).

    First the folder named by the environment variable ``PLURALIGN_DATA``, then a ``shared/data``
    folder beside the package's repository, beside the working directory and inside it.

    Returns
    -------
    list of Path

    See Also
    --------
    find_data : Locates one data set in these folders.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict("os.environ", {"PLURALIGN_DATA": "/srv/ratings"}):
    ...     data_roots()[0].as_posix()
    '/srv/ratings'
    """
    roots = []
    env = os.environ.get(ENV_VAR)
    if env:
        roots.append(Path(env).expanduser())
    repo = Path(__file__).resolve().parents[2]
    roots += [
        repo.parent / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
        Path.cwd() / "shared" / "data",
    ]
    seen, out = set(), []
    for r in roots:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def find_data(relative: str | Path, path: str | Path | None = None) -> Path:
    """Locate a data file or folder; raise FileNotFoundError saying where it looked and what to do.

    Parameters
    ----------
    relative : str or Path
        Where the data set lies below a data root, e.g. ``"popquorn/ratings.csv"``.
    path : str or Path, optional
        The file itself or a folder holding ``relative`` (or its last part); default: the
        folders of :func:`data_roots`.

    Returns
    -------
    Path

    Raises
    ------
    FileNotFoundError
        Listing every place looked at and how to point pluralign at the data.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "ratings.csv").write_text("rater,item")
    >>> find_data("popquorn/ratings.csv", folder) == folder / "ratings.csv"
    True
    >>> find_data("popquorn/raters.csv", folder)
    Traceback (most recent call last):
    FileNotFoundError: data set popquorn/raters.csv not found; looked at: ...
    """
    relative = Path(relative)
    tried = []
    if path is not None:
        p = Path(path).expanduser()
        want_file = bool(relative.suffix)
        for cand in (p / relative, p / relative.name, p):
            tried.append(cand)
            if cand.exists() and cand.is_file() == want_file:
                return cand
    else:
        for root in data_roots():
            cand = root / relative
            tried.append(cand)
            if cand.exists():
                return cand
    raise FileNotFoundError(
        f"data set {relative} not found; looked at: {', '.join(map(str, tried))}. "
        f"Fix: pass path=..., or set the environment variable {ENV_VAR} to the folder that holds "
        f"{relative.parts[0]}/ (the data is not shipped with pluralign; see its SOURCES.md)"
    )


def load_popquorn(path: str | Path | None = None) -> Study:
    """POPQUORN offensiveness ratings (Pei & Jurgens, 2023) as a Study.

    13,036 ratings of 1,500 Reddit comments by 262 raters on a 1..5 offensiveness scale, with
    rater gender, race, age, occupation and education.

    Cleaning (all logged in ``study.log``): the age band spelled "54-59" in the source is
    relabelled "55-59" (it follows "50-54" and precedes "60-64"); "Prefer not to disclose" and
    the usual placeholders become missing values. Comments are the items' ``response`` text (no
    prompt); ``prompt_id`` is the item id.

    Parameters
    ----------
    path : str or Path, optional
        The CSV file or a folder holding ``popquorn/offensiveness_raw_data.csv``.

    Returns
    -------
    Study

    References
    ----------
    Jiaxin Pei and David Jurgens. When Do Annotator Demographics Matter? Measuring the Influence
    of Annotator Demographics with the POPQUORN Dataset. LAW-XVII @ ACL 2023.

    Examples
    --------
    >>> study = load_popquorn()  # doctest: +SKIP
    >>> study.n_ratings, study.n_raters, study.n_items  # doctest: +SKIP
    (13036, 262, 1500)
    """
    file = find_data(POPQUORN_FILE, path)
    raw = pd.read_csv(file, dtype={"user_id": str, "instance_id": str})  # ids are text
    expected = [
        "instance_id",
        "user_id",
        "text",
        "offensiveness",
        "gender",
        "race",
        "age",
        "occupation",
        "education",
    ]
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise ValueError(
            f"{file}: missing column(s) {missing}; is this the POPQUORN offensiveness file?"
        )
    n_fixed = int(raw["age"].isin(list(POPQUORN_AGE_FIX)).sum())
    raw["age"] = raw["age"].replace(POPQUORN_AGE_FIX)
    ratings = pd.DataFrame(
        {
            "rater": raw["user_id"].astype(str),
            "item": raw["instance_id"].astype(str),
            "dimension": "offensiveness",
            "rating": raw["offensiveness"],
        }
    )
    demo = ["gender", "race", "age", "occupation", "education"]
    raters = raw[["user_id", *demo]].drop_duplicates().rename(columns={"user_id": "rater"})
    items = (
        raw[["instance_id", "text"]]
        .drop_duplicates()
        .rename(columns={"instance_id": "item", "text": "response"})
    )
    items["prompt"] = ""
    scale = Scale("offensiveness", 1, 5, POPQUORN_LABELS, higher_is_more=True, more_is_better=False)
    study = Study.from_frames(
        ratings,
        raters,
        items=items,
        scales={"offensiveness": scale},
        missing_values=(*options.missing_values, "Prefer not to disclose"),
        name="POPQUORN offensiveness",
        metadata={
            "source": "POPQUORN (Pei & Jurgens 2023)",
            "file": str(file),
            "age_order": list(POPQUORN_AGE_ORDER),
        },
    )
    n_raters_fixed = int(study.raters["age"].isin(list(POPQUORN_AGE_FIX.values())).sum())
    note = LogEntry(
        "recode",
        "raters",
        n_raters_fixed,
        "age band '54-59' relabelled '55-59' (spelling error in the source)",
        f"{n_fixed} rating rows",
    )
    return study.replace(note=note)


def load_multipico(
    path: str | Path | None = None,
    *,
    splits: Sequence[str] = ("dev", "test"),
    languages: Sequence[str] | None = None,
) -> Study:
    """MultiPICo irony annotations (LeWiDi 2025 copy) as a Study.

    Binary irony labels (0 = not ironic, 1 = ironic) of post/reply pairs in 9 languages, with
    annotator gender, age, ethnicity, countries, nationality, student and employment status.

    Cleaning: annotators are keyed "Ann0", "Ann1", ... in the annotations and "0", "1", ... in
    the metadata; both become "Ann0", ... . Item ids restart in each split, so they are prefixed
    with it ("dev:2"). Placeholders ("DATA_EXPIRED", "CONSENT_REVOKED", "Prefer not to say")
    become missing values and are counted in ``study.log``. Age is numeric. Items carry
    ``language``, ``split``, ``source``, ``level`` and ``language_variety``; the post is the
    ``prompt`` and the reply the ``response`` (``prompt_id`` groups replies to one post).

    Parameters
    ----------
    path : str or Path, optional
        A folder holding the MultiPICo files (or the folder that holds ``multipico/``).
    splits : sequence of str, default ("dev", "test")
        Which ``MP_<split>.json`` files to read.
    languages : sequence of str, optional
        Keep only these language codes (e.g. ``["en", "de"]``); the removed ratings are logged.

    Returns
    -------
    Study

    References
    ----------
    Casola et al. MultiPICo: Multilingual Perspectivist Irony Corpus. ACL 2024.

    Examples
    --------
    >>> study = load_multipico()  # doctest: +SKIP
    >>> study.n_ratings, study.n_raters, study.n_items  # doctest: +SKIP
    (33871, 506, 6761)
    """
    folder = find_data(MULTIPICO_DIR, path)
    if not (folder / MULTIPICO_META).exists() and (folder / MULTIPICO_DIR).is_dir():
        folder = folder / MULTIPICO_DIR
    if not (folder / MULTIPICO_META).exists():
        raise FileNotFoundError(
            f"{folder} has no {MULTIPICO_META}; pass the MultiPICo folder (or the folder that "
            f"holds multipico/), or set the environment variable {ENV_VAR}"
        )
    rating_rows, item_rows = [], []
    for split in splits:
        file = folder / f"MP_{split}.json"
        if not file.exists():
            raise FileNotFoundError(
                f"{file} not found; available splits: "
                f"{sorted(p.stem[3:] for p in folder.glob('MP_*.json') if p.name != MULTIPICO_META)}"
            )
        data = json.loads(file.read_text(encoding="utf-8"))
        for iid, rec in data.items():
            item = f"{split}:{iid}"
            text = rec.get("text") or {}
            other = rec.get("other_info") or {}
            item_rows.append(
                {
                    "item": item,
                    "prompt": text.get("post", ""),
                    "response": text.get("reply", ""),
                    "language": rec.get("lang"),
                    "split": split,
                    "source": other.get("source"),
                    "level": other.get("level"),
                    "language_variety": other.get("language_variety"),
                }
            )
            for ann, label in (rec.get("annotations") or {}).items():
                rating_rows.append((_annotator(ann), item, label))
    ratings = pd.DataFrame(rating_rows, columns=["rater", "item", "rating"])
    ratings.insert(2, "dimension", "irony")
    items = pd.DataFrame(item_rows)
    items["prompt_id"] = "post" + pd.Series(pd.factorize(items["prompt"])[0], dtype=int).astype(str)
    meta = json.loads((folder / MULTIPICO_META).read_text(encoding="utf-8"))
    raters = pd.DataFrame.from_dict(meta, orient="index").rename(columns=MULTIPICO_RATER_COLUMNS)
    raters.insert(0, "rater", [_annotator(k) for k in raters.index])
    raters = raters.reset_index(drop=True)
    log = []
    if languages is not None:
        keep_items = set(items.loc[items["language"].isin(list(languages)), "item"])
        dropped = int((~ratings["item"].isin(keep_items)).sum())
        ratings = ratings[ratings["item"].isin(keep_items)]
        items = items[items["item"].isin(keep_items)]
        n_raters = len(raters)
        raters = raters[raters["rater"].isin(set(ratings["rater"]))]
        log.append(
            LogEntry(
                "subset",
                "ratings",
                dropped,
                f"selection: languages={list(languages)} "
                f"({n_raters - len(raters)} raters without ratings left out)",
            )
        )
    study = Study.from_frames(
        ratings,
        raters,
        items=items,
        scales={"irony": Scale("irony", 0, 1, BINARY, more_is_better=None)},
        name="MultiPICo irony",
        metadata={
            "source": "MultiPICo (Casola et al. 2024), LeWiDi 2025 copy",
            "folder": str(folder),
            "splits": list(splits),
        },
    )
    age = pd.to_numeric(study.raters["age"], errors="coerce").astype("Float64")
    n_bad = int((study.raters["age"].notna() & age.isna()).sum())
    if n_bad:
        log.append(LogEntry("missing_values", "raters", n_bad, "non-numeric 'age' set to missing"))
    out = study.replace(raters=study.raters.assign(age=age))
    for entry in log:
        out = out.replace(note=entry)
    return out


def _annotator(key: object) -> str:
    key = str(key).strip()
    return key if key.startswith("Ann") else f"Ann{key}"


__all__ = ["data_roots", "find_data", "load_multipico", "load_popquorn"]
