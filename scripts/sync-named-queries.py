"""Copies each infra/queries/<name>.sql into its AWS::Athena::NamedQuery in
infra/template.yaml (the QueryString block, verbatim), as the template test
`every_named_query_ships_the_text_of_its_file_and_back` demands. A query
without a resource is reported: add its resource by hand first.

    python3 scripts/sync-named-queries.py
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
BODY = " " * 8


def main() -> int:
    lines = TEMPLATE.read_text().split("\n")
    missing = []
    for sql in sorted((ROOT / "infra" / "queries").glob("*.sql")):
        name = sql.stem
        try:
            at = lines.index(f"      Name: {name}")
        except ValueError:
            missing.append(name)
            continue
        # The resource's QueryString block: from `QueryString: |-` to the
        # first line indented less than its body (blank lines belong to it
        # only when more of the body follows).
        start = next(
            i for i in range(at, len(lines)) if lines[i] == "      QueryString: |-"
        ) + 1
        end = start
        while end < len(lines) and (lines[end].startswith(BODY) or lines[end] == ""):
            end += 1
        while end > start and lines[end - 1] == "":
            end -= 1
        body = [BODY + line if line else "" for line in sql.read_text().rstrip("\n").split("\n")]
        lines[start:end] = body
    TEMPLATE.write_text("\n".join(lines))
    for name in missing:
        print(f"{name}: no AWS::Athena::NamedQuery named {name} in infra/template.yaml", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
