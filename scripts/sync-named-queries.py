"""Copies each infra/queries/<name>.sql into its AWS::Athena::NamedQuery in
infra/template.yaml (the QueryString block, verbatim), as the template test
`every_named_query_ships_the_text_of_its_file_and_back` demands. A query
without a resource is reported: add its resource by hand first.

    python3 scripts/sync-named-queries.py
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"


def main() -> int:
    text = TEMPLATE.read_text()
    missing = []
    for sql in sorted((ROOT / "infra" / "queries").glob("*.sql")):
        name = sql.stem
        # The resource's `Name: <name>` line, then its QueryString block.
        found = re.search(
            r"(\n      Name: " + re.escape(name) + r"\n(?:      .*\n)*?      QueryString: \|-\n)((?:        .*\n|\n)+?)(?=\S|\n  \S|  [A-Za-z])",
            text,
        )
        if not found:
            missing.append(name)
            continue
        body = "".join(
            ("        " + line if line else "") + "\n" for line in sql.read_text().rstrip("\n").split("\n")
        )
        text = text[: found.start(2)] + body + text[found.end(2) :]
    TEMPLATE.write_text(text)
    for name in missing:
        print(f"{name}: no AWS::Athena::NamedQuery named {name} in infra/template.yaml", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
