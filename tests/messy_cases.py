"""A catalogue of malformed or awkward inputs and what pluralign does with each.

Every case says what a user gave (``given``), and either the error it must raise (type and
message fragments that name the problem and the fix), the repair it must record in
``study.log``, the warning it must give, or what must be kept exactly as given. Cases that
return a study also state how many rating rows went in, so that the test can check that rows
in = rows kept + rows logged as dropped. ``tests/test_messy_inputs.py`` runs the catalogue;
``benchmarks/messy_table.py`` writes it as the table in ``docs/data.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pluralign import option_context
from pluralign._errors import DesignError, StudyValidationError
from pluralign.data import Scale, Study, check_design, read_study

TOX = Scale("toxicity", 1, 5)
KINDS = ("error", "repair", "warning", "kept", "cli")


@dataclass(frozen=True)
class Case:
    """One malformed input and the behaviour expected of pluralign."""

    name: str
    topic: str
    given: str
    run: Callable[[Path], object]
    kind: str
    fragments: tuple[str, ...] = ()
    error: type[BaseException] | None = None
    n_in: int | None = None
    check: Callable[[object], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        assert (self.error is not None) == (self.kind == "error"), self.name


# --------------------------------------------------------------------------- tiny tables
def ratings(**over) -> pd.DataFrame:
    """6 ratings: raters a, b, c × items i1, i2 on toxicity."""
    base = {
        "rater": ["a", "a", "b", "b", "c", "c"],
        "item": ["i1", "i2"] * 3,
        "dimension": "toxicity",
        "rating": [1, 2, 3, 4, 5, 3],
    }
    base.update(over)
    return pd.DataFrame(base)


def raters(**over) -> pd.DataFrame:
    base = {"rater": ["a", "b", "c"], "gender": ["she/her", "he/him", "she/her"]}
    base.update(over)
    return pd.DataFrame(base)


def items() -> pd.DataFrame:
    return pd.DataFrame({"item": ["i1", "i2"], "prompt_id": "p1", "response": ["A", "B"]})


def build(r=None, ra=None, **kw) -> Study:
    kw.setdefault("scales", {"toxicity": TOX})
    kw.setdefault("items", items())
    return Study.from_frames(ratings() if r is None else r, raters() if ra is None else ra, **kw)


def levels(study: Study, col: str = "gender") -> list:
    return sorted(study.raters[col].dropna().unique().tolist())


def write(path: Path, name: str, text: str | bytes) -> Path:
    file = path / name
    if isinstance(text, bytes):
        file.write_bytes(text)
    else:
        file.write_text(text, encoding="utf-8")
    return file


FLAT = (
    "rater,item,dimension,rating,gender\n"
    "a,i1,toxicity,1,she/her\na,i2,toxicity,2,she/her\n"
    "b,i1,toxicity,3,he/him\nb,i2,toxicity,4,he/him\n"
)


def flat(tmp: Path, text: str = FLAT, name: str = "flat.csv", **kw) -> Study:
    return read_study(write(tmp, name, text), **kw)


def saved(tmp: Path) -> Path:
    return build().to_parquet(tmp / "study")


def tiny(**kw) -> Study:
    """A tiny study for the design checks (6 ratings)."""
    return build(**kw)


def fit_mixed(study, formula="rating ~ gender", **kw):
    from pluralign.models import fit_mixed as fit

    return fit(study, formula, dimension="toxicity", progressbar=False, **kw)


def fit_bayes(study, formula="rating ~ gender"):
    from pluralign.models import fit_bayes as fit

    return fit(study, formula, dimension="toxicity", progressbar=False)


def cli(*args: str) -> Callable[[Path], object]:
    """A command line run (``{tmp}`` in an argument is the test's temporary folder)."""

    def run(tmp: Path):
        from typer.testing import CliRunner

        from pluralign.cli import app

        write(tmp, "flat.csv", FLAT + "c,i1,toxicity,2,she/her\nd,i2,toxicity,5,he/him\n")
        write(
            tmp,
            "bad.csv",
            FLAT + "c,i1,toxicity,,she/her\nd,i2,toxicity,5,he/him\ne,i2,toxicity,1,she/her\n",
        )
        runner = CliRunner(env={"COLUMNS": "250", "NO_COLOR": "1"})
        return runner.invoke(app, [a.replace("{tmp}", str(tmp)) for a in args])

    return run


SVE = StudyValidationError
CASES: list[Case] = []

# The catalogue below is laid out one case per few lines, by hand, for reading as a table.
# fmt: off


def case(name, topic, given, run, kind, *fragments, error=None, n_in=None, check=None):
    CASES.append(Case(name, topic, given, run, kind, tuple(fragments), error, n_in, check))


# --------------------------------------------------------------------------- label hygiene
T = "labels"
case("trailing space", T, '"she/her " beside "she/her"',
     lambda t: build(ra=raters(gender=["she/her", "he/him", "she/her "])), "repair",
     "strip_whitespace", "'gender'", n_in=6, check=lambda s: levels(s) == ["he/him", "she/her"])
case("leading space", T, '" he/him"',
     lambda t: build(ra=raters(gender=["she/her", " he/him", "she/her"])), "repair",
     "strip_whitespace", n_in=6, check=lambda s: levels(s) == ["he/him", "she/her"])
case("case variant", T, '"She/her" beside "she/her" (first seen)',
     lambda t: build(ra=raters(gender=["she/her", "he/him", "She/her"])), "repair",
     "merge_case_variants", "She/her → she/her", n_in=6,
     check=lambda s: levels(s) == ["he/him", "she/her"])
case("case variant refused", T, 'case variants with case_variants="raise"',
     lambda t: build(ra=raters(gender=["she/her", "he/him", "She/her"]), case_variants="raise"),
     "error", "differ only by case", "'She/her' (1 rows)", "case_variants='merge'", error=SVE)
case("case variant keeps reference", T, '"She/Her" ×2, "she/her" ×1, reference "she/her"',
     lambda t: build(ra=raters(gender=["She/Her", "she/her", "She/Her"]),
                     reference={"gender": "she/her"}), "repair",
     "She/Her → she/her", n_in=6, check=lambda s: levels(s) == ["she/her"])
case("placeholder", T, '"Prefer not to say"',
     lambda t: build(ra=raters(gender=["she/her", "Prefer not to say", "she/her"])), "repair",
     "missing_values", "placeholder values in 'gender'", n_in=6,
     check=lambda s: s.raters["gender"].isna().sum() == 1)
case("placeholder upper case", T, '"PREFER NOT TO SAY"',
     lambda t: build(ra=raters(gender=["she/her", "PREFER NOT TO SAY", "she/her"])), "repair",
     "missing_values", n_in=6, check=lambda s: s.raters["gender"].isna().sum() == 1)
case("placeholder with spaces", T, '" prefer not to say "',
     lambda t: build(ra=raters(gender=["she/her", " prefer not to say ", "he/him"])), "repair",
     "missing_values", n_in=6, check=lambda s: s.raters["gender"].isna().sum() == 1)
case("custom placeholder", T, '"N/A" with missing_values=["n/a"]',
     lambda t: build(ra=raters(gender=["she/her", "N/A", "he/him"]), missing_values=["n/a"]),
     "repair", "missing_values", "'N/A'", n_in=6,
     check=lambda s: s.raters["gender"].isna().sum() == 1)
case("placeholder option", T, '"Unknown" with options.missing_values=("unknown",)',
     lambda t: _with_missing(), "repair", "missing_values", "'Unknown'", n_in=6,
     check=lambda s: s.raters["gender"].isna().sum() == 1)
case("dimension with space", T, 'dimension "toxicity " on some rows',
     lambda t: build(r=ratings(dimension=["toxicity", "toxicity "] * 3)), "repair",
     "strip_whitespace", "'dimension'", n_in=6, check=lambda s: s.dimensions == ["toxicity"])
case("dimension case", T, 'dimension "Toxicity" beside "toxicity"',
     lambda t: build(r=ratings(dimension=["Toxicity", "toxicity"] * 3)), "repair",
     "merge_case_variants", "Toxicity → toxicity", n_in=6,
     check=lambda s: s.dimensions == ["toxicity"] and s.n_ratings == 6)
case("dimension case refused", T, 'dimension case variants, case_variants="raise"',
     lambda t: build(r=ratings(dimension=["Toxicity", "toxicity"] * 3), case_variants="raise"),
     "error", "ratings.dimension", "differ only by case", error=SVE)
case("multi-select case", T, '"white;Black" beside "White" (twice)',
     lambda t: build(ra=raters(race=["white;Black", "White", "White;Black"]),
                     multiselect=["race"]),
     "repair", "merge_case_variants", "white → White", n_in=6,
     check=lambda s: s.raters["race"].tolist()
     == [("White", "Black"), ("White",), ("White", "Black")])
case("multi-select placeholder", T, '"White;Prefer not to say"',
     lambda t: build(ra=raters(race=["White;Prefer not to say", "Black", "Asian"]),
                     multiselect=["race"]), "repair", "missing_values", "'race'", n_in=6,
     check=lambda s: s.raters["race"].iloc[0] == ("White",))
case("column name with space", T, 'raters column "gender "',
     lambda t: build(ra=raters().rename(columns={"gender": "gender "})), "repair",
     "column names", "'gender '", n_in=6, check=lambda s: "gender" in s.demographics)
case("rating column with space", T, 'ratings column "rating "',
     lambda t: build(r=ratings().rename(columns={"rating": "rating "})), "repair",
     "column names", "'rating '", n_in=6)
case("unknown reference level", T, 'reference {"gender": "she/hr"}',
     lambda t: build(reference={"gender": "she/hr"}), "error",
     "reference['gender'] = 'she/hr'", "did you mean 'she/her'", error=SVE)
case("reference names no column", T, 'reference {"gendr": "she/her"}',
     lambda t: build(reference={"gendr": "she/her"}), "error", "reference names 'gendr'",
     "did you mean 'gender'", error=SVE)
case("reference level absent", T, 'reference {"gender": "they/them"}, no such rater',
     lambda t: build(reference={"gender": "they/them"}), "repair", "reference_unused",
     "'they/them'", n_in=6)
case("reference survives subset", T, "reference, then subset and replace",
     lambda t: build(reference={"gender": "he/him"}).subset(raters=["a", "b"]).replace(name="x"),
     "kept", n_in=6, check=lambda s: dict(s.reference) == {"gender": "he/him"})


def _with_missing() -> Study:
    with option_context(missing_values=("unknown",)):
        return build(ra=raters(gender=["she/her", "Unknown", "he/him"]))


# --------------------------------------------------------------------------- identifiers
T = "identifiers"
ZEROS = "rater,item,dimension,rating\n01,i1,d,1\n1,i1,d,2\n001,i2,d,3\n1,i2,d,1\n"
case("leading zeros CSV", T, 'CSV raters "01", "1" and "001"',
     lambda t: flat(t, ZEROS), "kept", n_in=4,
     check=lambda s: sorted(s.raters["rater"]) == ["001", "01", "1"])
case("leading zeros TSV", T, "TSV raters 01 and 1",
     lambda t: flat(t, ZEROS.replace(",", "\t"), "r.tsv"), "kept", n_in=4,
     check=lambda s: sorted(s.raters["rater"]) == ["001", "01", "1"])
case("leading zeros JSON", T, 'JSON raters "01" and 1 (a number)',
     lambda t: read_study(write(t, "r.json", json.dumps(
         [{"rater": "01", "item": 5, "dimension": "d", "rating": 1},
          {"rater": 1, "item": 5, "dimension": "d", "rating": 2}]))), "kept", n_in=2,
     check=lambda s: sorted(s.raters["rater"]) == ["01", "1"] and s.items["item"].tolist() == ["5"])
case("leading zeros JSONL", T, 'JSON-lines raters "01" and "1"',
     lambda t: read_study(write(t, "r.jsonl", '{"rater": "01", "item": "x", "dimension": "d", '
                                '"rating": 1}\n{"rater": "1", "item": "x", "dimension": "d", '
                                '"rating": 0}\n')), "kept", n_in=2,
     check=lambda s: s.n_raters == 2)
case("leading zeros parquet", T, 'parquet raters "01" and "1"',
     lambda t: _parquet(t), "kept", n_in=4, check=lambda s: s.n_raters == 3)
case("mapped id column", T, 'CSV column "user" = "007" renamed to rater',
     lambda t: flat(t, "user,item,dimension,rating\n007,x,d,1\n7,x,d,0\n",
                    columns={"user": "rater"}), "kept", n_in=2,
     check=lambda s: sorted(s.raters["rater"]) == ["007", "7"])
case("separate raters file", T, 'raters.csv with rater "01"',
     lambda t: read_study(write(t, "r.csv", "rater,item,dimension,rating\n01,x,d,1\n02,x,d,0\n"),
                          raters=write(t, "raters.csv", "rater,gender\n01,she/her\n02,he/him\n")),
     "kept", n_in=2, check=lambda s: s.data()["gender"].notna().all())
case("float ids", T, "rater ids 1.0, 2.0 (a numeric column read as float)",
     lambda t: Study.from_frames(ratings(rater=[1.0, 1.0, 2.0, 2.0, 3.0, 3.0])), "repair",
     "ids_as_text", "1.0 → '1'", n_in=6, check=lambda s: sorted(s.raters["rater"]) == ["1", "2", "3"])
case("float item ids", T, "item ids 1.0 and 2.0",
     lambda t: Study.from_frames(ratings(item=[1.0, 2.0] * 3)), "repair", "ids_as_text", n_in=6,
     check=lambda s: sorted(s.items["item"]) == ["1", "2"])
case("zeros differ across tables", T, 'ratings rater 1 (number), raters table "01"',
     lambda t: Study.from_frames(ratings(rater=[1, 1, 2, 2, 3, 3]),
                                 pd.DataFrame({"rater": ["01", "02", "03"]})), "error",
     "differ in leading zeros", "'1' in ratings", "'01' in the raters table", error=SVE)
case("zeros differ, drop_invalid", T, "the same with drop_invalid=True (not dropped)",
     lambda t: Study.from_frames(ratings(rater=[1, 1, 2, 2, 3, 3]),
                                 pd.DataFrame({"rater": ["01", "02", "03"]}), drop_invalid=True),
     "error", "differ in leading zeros", error=SVE)
case("id with spaces", T, 'rater "a " in ratings, "a" in raters',
     lambda t: build(r=ratings(rater=["a ", "a", "b", "b", "c", "c"])), "repair",
     "strip_whitespace", "'rater' ids", n_in=6, check=lambda s: s.n_raters == 3)
case("ids equal after stripping", T, 'raters table with "a" and "a "',
     lambda t: build(ra=pd.DataFrame({"rater": ["a", "a ", "b", "c"]})), "error",
     "raters.rater", "duplicate ids", error=SVE)
case("ids keep case", T, 'raters "A" and "a"',
     lambda t: Study.from_frames(ratings(rater=["A", "a", "b", "b", "c", "c"])), "kept", n_in=6,
     check=lambda s: s.n_raters == 4)
case("missing prompt id", T, "items without prompt_id (never one shared 'nan' prompt)",
     lambda t: build(items=pd.DataFrame({"item": ["i1", "i2"], "prompt_id": [None, np.nan]})),
     "repair", "items without prompt_id", n_in=6,
     check=lambda s: s.items["prompt_id"].tolist() == ["i1", "i2"])
case("missing rater id", T, "a rating without rater id",
     lambda t: build(r=ratings(rater=["a", None, "b", "b", "c", "c"])), "error",
     "ratings.rater", "missing values", error=SVE)
case("missing rater id dropped", T, "the same with drop_invalid=True",
     lambda t: build(r=ratings(rater=["a", None, "b", "b", "c", "c"]), drop_invalid=True),
     "repair", "drop_invalid", "missing values", n_in=6, check=lambda s: s.n_ratings == 5)


def _parquet(tmp: Path) -> Study:
    frame = pd.DataFrame(
        {"rater": ["01", "1", "001", "1"], "item": "x", "dimension": "d", "rating": [1, 2, 3, 1]}
    )
    frame.assign(item=["x", "x", "y", "y"]).to_parquet(tmp / "r.parquet")
    return read_study(tmp / "r.parquet")


# --------------------------------------------------------------------------- scales
T = "scales"
case("scale key names no dimension", T, 'scales={"toxic": Scale("toxic", 1, 5)}',
     lambda t: build(scales={"toxic": Scale("toxic", 1, 5)}), "error",
     "'toxic'", "names no dimension", "did you mean 'toxicity'", error=SVE)
case("scale key case", T, 'scales={"Toxicity": ...} for dimension "toxicity"',
     lambda t: build(scales=[Scale("Toxicity", 1, 5)]), "error",
     "did you mean 'toxicity'", error=SVE)
case("scale under wrong key", T, 'scales={"toxicity": Scale("helpfulness", 1, 5)}',
     lambda t: build(scales={"toxicity": Scale("helpfulness", 1, 5)}), "error",
     "scales['toxicity'] is the scale of dimension 'helpfulness'", error=SVE)
case("scale declared twice", T, "two Scale objects for one dimension",
     lambda t: build(scales=[TOX, Scale("toxicity", 0, 4)]), "error", "declared twice",
     error=SVE)
case("scale not a Scale", T, 'scales={"toxicity": (1, 5)}',
     lambda t: build(scales={"toxicity": (1, 5)}), "error", "expected a Scale",
     "Scale('toxicity', 1, 5)", error=SVE)
case("shifted 0..4", T, "ratings 0..4, scale declared 1..5",
     lambda t: build(r=ratings(rating=[0, 1, 2, 3, 4, 0])), "error",
     "outside the 'toxicity' scale", "coded as 0..4", "add 1", error=SVE)
case("shifted 0..4, drop_invalid", T, "the same with drop_invalid=True (nothing dropped)",
     lambda t: build(r=ratings(rating=[0, 1, 2, 3, 4, 0]), drop_invalid=True), "error",
     "coded as 0..4", error=SVE)
case("shifted binary", T, "ratings 1/2, scale declared 0/1",
     lambda t: build(r=ratings(rating=[1, 2, 2, 1, 2, 2]), scales={"toxicity": Scale(
         "toxicity", 0, 1)}), "error", "coded as 1..2", "subtract 1", error=SVE)
case("one typo out of scale", T, "one rating 9 on a 1..5 scale",
     lambda t: build(r=ratings(rating=[1, 2, 9, 4, 5, 3])), "error",
     "outside the 'toxicity' scale 1..5", "9", error=SVE)
case("typo dropped", T, "one rating 9 with drop_invalid=True",
     lambda t: build(r=ratings(rating=[1, 2, 9, 4, 5, 3]), drop_invalid=True), "repair",
     "drop_invalid", "outside the 'toxicity' scale", n_in=6, check=lambda s: s.n_ratings == 5)
case("half-point rating", T, "rating 2.5 on an integer scale",
     lambda t: build(r=ratings(rating=[1, 2.5, 3, 4, 5, 3])), "error", "2.5", error=SVE)
case("rating as text", T, 'ratings " 3" and "4" as text',
     lambda t: build(r=ratings(rating=["1", " 3", "3", "4", "5", "3"])), "kept", n_in=6,
     check=lambda s: s.ratings["rating"].tolist() == [1, 3, 3, 4, 5, 3])
case("rating label text", T, 'rating "high"',
     lambda t: build(r=ratings(rating=[1, "high", 3, 4, 5, 3])), "error", "not numbers",
     "'high'", error=SVE)
case("undeclared scale", T, "no scales declared",
     lambda t: build(scales=None), "repair", "infer_scales", "toxicity: 1..5", n_in=6)
case("dimension emptied", T, "every helpfulness rating invalid, drop_invalid=True",
     lambda t: build(r=pd.concat([ratings(), ratings(dimension="helpfulness", rating=9)]),
                     scales=[TOX, Scale("helpfulness", 1, 5)], drop_invalid=True), "repair",
     "drop_dimension", "'helpfulness'", n_in=12, check=lambda s: s.dimensions == ["toxicity"])
case("bad scale bounds", T, 'Scale("toxicity", 5, 1)',
     lambda t: Scale("toxicity", 5, 1), "error", "max (1) must exceed min (5)", error=ValueError)


# --------------------------------------------------------------------------- duplicates
T = "duplicates"
DUP = pd.concat([ratings(), ratings().iloc[[0]]], ignore_index=True)
CLASH = pd.concat([ratings(), ratings().iloc[[0]].assign(rating=5)], ignore_index=True)
case("identical duplicate", T, "a row repeated exactly",
     lambda t: build(r=DUP), "error", "identical duplicate rows", "a/i1/toxicity", error=SVE)
case("conflicting duplicate", T, "same rater, item, dimension with ratings 1 and 5",
     lambda t: build(r=CLASH), "error", "conflicting duplicates", "ratings [1, 5]",
     "decide which rating is right", error=SVE)
case("identical duplicate dropped", T, "a repeated row, drop_invalid=True",
     lambda t: build(r=DUP, drop_invalid=True), "repair", "identical duplicate rows", n_in=7,
     check=lambda s: s.n_ratings == 6)
case("conflicting duplicate dropped", T, "conflicting pair, drop_invalid=True",
     lambda t: build(r=CLASH, drop_invalid=True), "repair", "conflicting duplicates", n_in=7,
     check=lambda s: s.n_ratings == 5 and "a/i1" not in set(s.ratings["rater"] + "/"
                                                             + s.ratings["item"]))
case("both kinds", T, "one identical and one conflicting duplicate",
     lambda t: build(r=pd.concat([CLASH, ratings().iloc[[2]]], ignore_index=True)), "error",
     "identical duplicate rows", "conflicting duplicates", error=SVE)
case("duplicate after stripping", T, 'rows for rater "a" and "a " on the same item',
     lambda t: build(r=pd.concat([ratings(), ratings().iloc[[0]].assign(rater="a ")]),
                     drop_invalid=True), "repair", "strip_whitespace", "identical duplicate",
     n_in=7, check=lambda s: s.n_ratings == 6)
case("duplicate text and number", T, 'ratings "1" and 1 for the same key',
     lambda t: build(r=pd.concat([ratings(), ratings().iloc[[0]].assign(rating="1")]),
                     drop_invalid=True), "repair", "identical duplicate rows", n_in=7)
case("duplicate with an empty copy", T, "a second copy of a rating with the rating missing",
     lambda t: build(r=pd.concat([ratings(), ratings().iloc[[0]].assign(rating=np.nan)]),
                     drop_invalid=True), "repair", "missing values", n_in=7,
     check=lambda s: s.n_ratings == 6)
case("duplicate rater rows", T, "rater b twice in the raters table",
     lambda t: build(ra=pd.DataFrame({"rater": ["a", "b", "b", "c"]})), "error",
     "raters.rater", "duplicate ids", "'b'", error=SVE)
case("flat file conflicting demographics", T, "rater a she/her on one row, he/him on another",
     lambda t: flat(t, FLAT.replace("a,i2,toxicity,2,she/her", "a,i2,toxicity,2,he/him"),
                    demographics=["gender"]), "error", "rater 'a'", "different values",
     "['gender']", error=SVE)
case("flat file spacing differences", T, 'rater a "she/her" and "she/her " on two rows',
     lambda t: flat(t, FLAT.replace("a,i2,toxicity,2,she/her", "a,i2,toxicity,2,she/her "),
                    demographics=["gender"]), "kept", n_in=4,
     check=lambda s: levels(s) == ["he/him", "she/her"])


# --------------------------------------------------------------------------- multi-select
T = "multi-select"
case("comma separator", T, '"White,Asian" with the default separator ";"',
     lambda t: build(ra=raters(race=["White,Asian", "White", "Asian"]), multiselect=["race"]),
     "error", "joined by ','", "separator=','", error=SVE)
case("pipe separator", T, '"White|Asian"',
     lambda t: build(ra=raters(race=["White|Asian", "Black", "Asian"]), multiselect=["race"]),
     "error", "joined by '|'", error=SVE)
case("slash separator", T, '"White/Asian" beside "White" and "Asian"',
     lambda t: build(ra=raters(race=["White/Asian", "White", "Asian"]), multiselect=["race"]),
     "error", "joined by '/'", error=SVE)
case("declared separator", T, '"White,Asian" with separator=","',
     lambda t: build(ra=raters(race=["White,Asian", "White", "Asian"]), multiselect=["race"],
                     separator=","), "kept", n_in=6,
     check=lambda s: s.raters["race"].iloc[0] == ("White", "Asian"))
case("pronouns not split", T, 'multi-select pronouns "she/her;they/them"',
     lambda t: build(ra=raters(gender=["she/her;they/them", "he/him", "she/her"]),
                     multiselect=["gender"]), "kept", n_in=6,
     check=lambda s: s.raters["gender"].iloc[0] == ("she/her", "they/them"))
case("pronouns single-select", T, '"she/her", "he/him" in a plain column',
     lambda t: build(), "kept", n_in=6, check=lambda s: levels(s) == ["he/him", "she/her"])
case("joined values in plain column", T, '"White;Asian" beside "White", "Asian", no multiselect',
     lambda t: build(ra=raters(race=["White;Asian", "White", "Asian"])), "error",
     "multiselect=['race']", "new categories", error=SVE)
case("lists", T, "multi-select answers given as lists",
     lambda t: build(ra=raters(race=[["White", "Asian"], ["Black"], []]), multiselect=["race"]),
     "kept", n_in=6, check=lambda s: s.raters["race"].tolist() == [("White", "Asian"),
                                                                  ("Black",), ()])
case("unknown multiselect column", T, 'multiselect=["ethnicity"] (no such column)',
     lambda t: build(multiselect=["ethnicity"]), "error", "multiselect names 'ethnicity'",
     error=SVE)


# --------------------------------------------------------------------------- designs
T = "designs"
ONE_RATER = ratings(rater="a")


def _one_rater_group():
    from pluralign.describe import group_means

    return group_means(build(ra=raters(gender=["she/her", "he/him", "she/her"])), "gender",
                       n_boot=50, seed=0)


def _one_rater_reference():
    from pluralign.describe import relative_difference

    return relative_difference(build(), "gender", reference="he/him", n_boot=50, seed=0)


case("one-rater group", T, "group_means where he/him has one rater",
     lambda t: _one_rater_group(), "warning", "fewer than 2 raters get no interval", "he/him",
     check=lambda gm: np.isnan(gm.set_index("group").loc["he/him", "ci_low"])
     and not np.isnan(gm.set_index("group").loc["she/her", "ci_low"]))
case("one-rater reference", T, "relative_difference against a one-rater reference",
     lambda t: _one_rater_reference(), "warning", "no interval",
     check=lambda rd: rd["relative_ci_low"].isna().all())
case("mixed, one rater", T, "fit_mixed on ratings of a single rater",
     lambda t: fit_mixed(Study.from_frames(ONE_RATER.iloc[:2], raters().iloc[:1],
                                           scales=[TOX])),
     "error", "only 1 rater", "at least 2 raters", error=DesignError)
case("mixed, one item", T, "fit_mixed on ratings of one item",
     lambda t: fit_mixed(build(r=ratings(item="i1").drop_duplicates(["rater"]))), "error",
     "only 1 item", error=DesignError)
case("mixed, constant ratings", T, "fit_mixed where every rating is 3",
     lambda t: fit_mixed(build(r=ratings(rating=3))), "error", "every rating is 3",
     error=DesignError)
case("mixed, one-level factor", T, "fit_mixed on gender where everyone is she/her",
     lambda t: fit_mixed(build(ra=raters(gender="she/her"))), "error",
     "variable 'gender' has 1 observed level", "remove 'gender'", error=DesignError)
case("bayes, one rater", T, "fit_bayes on ratings of a single rater",
     lambda t: fit_bayes(Study.from_frames(ONE_RATER.iloc[:2], raters().iloc[:1],
                                           scales=[TOX])),
     "error", "only 1 rater", error=DesignError)
case("bayes, one-level factor", T, "fit_bayes with a one-level factor",
     lambda t: fit_bayes(build(ra=raters(gender="he/him"))), "error", "1 observed level",
     error=DesignError)
case("one-rater level", T, "check_design where he/him has one rater",
     lambda t: check_design(build(), "rating ~ gender"), "warning", "held by a single rater")
case("no shared prompts", T, "preference_labels when every item has its own prompt",
     lambda t: _no_pairs(), "error", "no preference pairs can be formed", "shared prompt_id",
     error=DesignError)


def _no_pairs():
    from pluralign.labels import preference_labels

    study = build(items=pd.DataFrame({"item": ["i1", "i2"], "prompt_id": ["p1", "p2"]}))
    return preference_labels(study, "distribution")


# --------------------------------------------------------------------------- files
T = "files"
LATIN = "rater,item,dimension,rating,city\na,x,d,1,Bogot\xe1\nb,x,d,0,Lima\n".encode("latin-1")
case("empty file", T, "a 0-byte CSV", lambda t: flat(t, ""), "error", "the file is empty",
     error=SVE)
case("header only", T, "a CSV with a header and no rows",
     lambda t: flat(t, "rater,item,dimension,rating\n"), "error", "header but no rows",
     error=SVE)
case("blank file", T, "a CSV of blank lines", lambda t: flat(t, "\n\n  \n"), "error",
     "only whitespace", error=SVE)
case("undecodable bytes", T, "latin-1 bytes read as UTF-8",
     lambda t: flat(t, LATIN), "error", "cannot be decoded as utf-8", "encoding='latin-1'",
     error=SVE)
case("encoding given", T, "the same file with encoding='latin-1'",
     lambda t: flat(t, LATIN, demographics=["city"], encoding="latin-1"), "kept", n_in=2,
     check=lambda s: "Bogotá" in set(s.raters["city"]))
case("unknown encoding", T, "encoding='utf-9'",
     lambda t: flat(t, encoding="utf-9"), "error", "not a known encoding", error=SVE)
case("semicolon delimiter", T, "a CSV delimited by ';'",
     lambda t: flat(t, FLAT.replace(",", ";"), demographics=["gender"]), "kept", n_in=4,
     check=lambda s: s.n_raters == 2)
case("tab delimiter in .csv", T, "a tab-delimited file named .csv",
     lambda t: flat(t, FLAT.replace(",", "\t")), "kept", n_in=4)
case("pipe delimiter", T, "a '|'-delimited file with sep='|'",
     lambda t: flat(t, FLAT.replace(",", "|"), sep="|"), "kept", n_in=4)
case("wrong delimiter", T, "a ';' file read with sep=','",
     lambda t: flat(t, FLAT.replace(",", ";"), sep=","), "error", "only one column",
     "sep=';'", error=SVE)
case("ragged rows", T, "a CSV row with extra fields",
     lambda t: flat(t, FLAT + "c,i1,toxicity,3,he/him,extra,more\n"), "error", "cannot parse",
     "sep=", error=SVE)
case("parquet named csv", T, "a parquet file named .csv",
     lambda t: _renamed_parquet(t), "error", "content is parquet", "format='parquet'",
     error=SVE)
case("json named csv", T, "a JSON file named .csv",
     lambda t: flat(t, json.dumps([{"rater": "a"}])), "error", "content is json", error=SVE)
case("unknown extension", T, "ratings.xyz",
     lambda t: flat(t, FLAT, "ratings.xyz"), "error", "unknown format 'xyz'",
     "format='csv'", error=SVE)
case("extension overridden", T, "ratings.xyz with format='csv'",
     lambda t: flat(t, FLAT, "ratings.xyz", format="csv"), "kept", n_in=4)
case("excel workbook", T, "an .xlsx workbook",
     lambda t: flat(t, b"PK\x03\x04rest", "r.xlsx"), "error", "Excel workbook",
     "save it as CSV", error=SVE)
case("unknown format argument", T, "format='excel'",
     lambda t: flat(t, format="excel"), "error", "format='excel' is not supported", error=SVE)
case("malformed JSON", T, "a JSON list missing a bracket",
     lambda t: read_study(write(t, "r.json", '[{"rater": "a", "item": "x"}')), "error",
     "malformed JSON at line 1", error=SVE)
case("malformed JSON line", T, "a JSON-lines file with a broken line",
     lambda t: read_study(write(t, "r.jsonl", '{"rater": "a"}\n{"rater": \n')), "error",
     "malformed JSON", error=SVE)
case("JSON object", T, "a JSON object that is not a table",
     lambda t: read_study(write(t, "r.json", '{"study": {"rater": "a"}}')), "error",
     "not a table", "list of records", error=SVE)
case("JSON list of numbers", T, "a JSON list of numbers",
     lambda t: read_study(write(t, "r.json", "[1, 2, 3]")), "error", "not a list of records",
     error=SVE)
case("empty JSON", T, "a JSON list with no records",
     lambda t: read_study(write(t, "r.json", "[]")), "error", "JSON list is empty", error=SVE)
case("folder lacks a table", T, "a study folder without raters.parquet",
     lambda t: read_study(_without(saved(t), "raters.parquet")), "error",
     "lacks ['raters.parquet']", "write it again", error=SVE)
case("folder lacks scales", T, "study.json without 'scales'",
     lambda t: read_study(_edit_meta(saved(t), lambda m: m.pop("scales"))), "error",
     "field 'scales' is missing", error=SVE)
case("folder scale malformed", T, "a scale in study.json without 'max'",
     lambda t: read_study(_edit_meta(saved(t), lambda m: m["scales"][0].pop("max"))), "error",
     "scale entry is malformed", error=SVE)
case("folder broken JSON", T, "study.json that is not JSON",
     lambda t: read_study(_broken_meta(saved(t))), "error", "not valid JSON", error=SVE)
case("folder without study.json", T, "a folder of CSV files",
     lambda t: read_study(t), "error", "without study.json", error=FileNotFoundError)
case("no such file", T, "a path that does not exist",
     lambda t: read_study(t / "nope.csv"), "error", "no study file or folder",
     error=FileNotFoundError)
case("old dimension argument", T, "read_study(dimension='toxicity')",
     lambda t: flat(t, dimension="toxicity"), "error", "dimensions=", error=TypeError)
case("dimension name on long file", T, "dimensions='toxicity' on a file with a dimension column",
     lambda t: flat(t, dimensions="toxicity"), "error", "has a 'dimension' column", error=SVE)
case("one dimension name", T, "a long file without dimension column, dimensions='offensiveness'",
     lambda t: flat(t, "rater,item,rating\na,x,1\nb,x,2\n", dimensions="offensiveness"), "kept",
     n_in=2, check=lambda s: s.dimensions == ["offensiveness"])
case("wide file", T, "one column per dimension with a missing cell, drop_invalid=True",
     lambda t: flat(t, "rater,item,toxicity,helpfulness\na,x,1,5\nb,x,,4\n",
                    dimensions=["toxicity", "helpfulness"], drop_invalid=True), "repair",
     "drop_invalid", "missing values", n_in=4, check=lambda s: s.n_ratings == 3)
case("demographics detected", T, 'demographics="auto"',
     lambda t: flat(t, demographics="auto"), "repair", "detect_demographics", "'gender'",
     n_in=4, check=lambda s: s.demographics == ["gender"])
case("unused columns", T, "a file column that is not read",
     lambda t: flat(t), "repair", "unused_columns", "'gender'", n_in=4)
case("missing column", T, 'a CSV with "ratng" instead of "rating"',
     lambda t: flat(t, FLAT.replace("rating", "ratng")), "error", "missing column",
     "did you mean 'ratng'", error=SVE)


def _renamed_parquet(tmp: Path) -> Study:
    ratings().to_parquet(tmp / "r.csv")
    return read_study(tmp / "r.csv")


def _without(folder: Path, name: str) -> Path:
    (folder / name).unlink()
    return folder


def _edit_meta(folder: Path, change) -> Path:
    meta = json.loads((folder / "study.json").read_text())
    change(meta)
    (folder / "study.json").write_text(json.dumps(meta))
    return folder


def _broken_meta(folder: Path) -> Path:
    (folder / "study.json").write_text("{name: x")
    return folder


# --------------------------------------------------------------------------- command line
T = "command line"
case("CLI flat file", T, "pluralign describe flat.csv (gender column detected)",
     cli("describe", "{tmp}/flat.csv", "--by", "gender", "--n-boot", "0"), "kept",
     check=lambda res: res.exit_code == 0 and "she/her" in res.output)
case("CLI renamed columns", T, "describe with --column user=rater",
     cli("describe", "{tmp}/flat.csv", "--column", "rater=user", "--n-boot", "0"), "cli",
     "missing column(s) 'rater'")
case("CLI missing file", T, "describe nope.csv", cli("describe", "{tmp}/nope.csv"), "cli",
     "no such file or folder")
case("CLI bad column spec", T, "--column user", cli("describe", "{tmp}/flat.csv", "--column",
                                                     "user"), "cli", "YOUR_NAME=PLURALIGN_NAME")
case("CLI unknown demographic", T, "describe --by sex",
     cli("describe", "{tmp}/flat.csv", "--by", "sex", "--n-boot", "0"), "cli",
     "unknown demographic 'sex'")
case("CLI no default demographic", T, "describe a file without gender, no --by",
     cli("describe", "{tmp}/flat.csv", "--column", "gender=sex"),
     "cli", "--by: name a demographic")
case("CLI unwritable out", T, "report --out under a file",
     cli("report", "{tmp}/flat.csv", "--out", "{tmp}/flat.csv/report"), "cli",
     "cannot write there")
case("CLI unwritable csv", T, "describe --out into a missing read-only place",
     cli("describe", "{tmp}/flat.csv", "--out", "/proc/pluralign/x.csv"), "cli",
     "cannot write there")
case("CLI bad model", T, "report --models glm",
     cli("report", "{tmp}/flat.csv", "--out", "{tmp}/r", "--models", "glm"), "cli",
     "models: unknown ['glm']")
case("CLI bad effect", T, "simulate --effect toxicity=1",
     cli("simulate", "--out", "{tmp}/s", "--effect", "toxicity=1"), "cli",
     "DIMENSION:COLUMN:LEVEL=FRACTION")
case("CLI bad encoding", T, "describe --encoding utf-9",
     cli("describe", "{tmp}/flat.csv", "--encoding", "utf-9"), "cli", "not a known encoding")
case("CLI invalid rows", T, "describe a file with a missing rating",
     cli("describe", "{tmp}/bad.csv", "--n-boot", "0"), "cli", "ratings.rating",
     "missing values", "drop_invalid=True")
case("CLI invalid rows dropped", T, "the same with --drop-invalid",
     cli("describe", "{tmp}/bad.csv", "--n-boot", "0", "--drop-invalid"), "kept",
     check=lambda res: res.exit_code == 0 and "6 ratings" in res.output)

# fmt: on
BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
