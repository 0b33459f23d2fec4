"""Regenerate every table of a study report as CSV files (and one markdown file of them all).

python analysis/tables.py STUDY --out DIR [--dimension D ...] [--by DEMOGRAPHIC ...]
"""

from __future__ import annotations

from _common import analyse_from_args, study_parser


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__.splitlines()[0]).parse_args(argv)
    from pluralign.report import save_tables

    a = analyse_from_args(args)
    paths = save_tables(a, args.out)
    for p in paths:
        print(p)
    for problem in a.problems:
        print(f"note: {problem}")
    print(f"{len(paths)} file(s) written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
