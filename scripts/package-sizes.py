"""Zips each Lambda bootstrap and the telemetry layer as SAM would upload
them (deflate, level 9), prints a table, and fails when a function's zip is
over 5 MB or the layer's over 2 MB (issue 10's budget; docs/benchmarks.md).

    python scripts/package-sizes.py "$CARGO_TARGET_DIR/lambda"
"""

import io
import pathlib
import sys
import zipfile

MB = 1_000_000
FUNCTION_LIMIT = 5 * MB
LAYER_LIMIT = 2 * MB


def zipped(path: pathlib.Path, name: str) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, name)
    return len(buffer.getvalue())


def main(root: pathlib.Path) -> int:
    rows = []
    for bootstrap in sorted(root.glob("*/bootstrap")):
        rows.append((bootstrap.parent.name, bootstrap, "bootstrap", FUNCTION_LIMIT))
    for extension in sorted((root / "extensions").glob("*")):
        rows.append((f"layer {extension.name}", extension, f"extensions/{extension.name}", LAYER_LIMIT))
    if not rows:
        print(f"no Lambda packages under {root}: run cargo lambda build --release first")
        return 1
    over = []
    print(f"{'package':<40} {'binary':>10} {'zipped':>10} {'limit':>8}")
    for name, path, arcname, limit in rows:
        size = zipped(path, arcname)
        print(f"{name:<40} {path.stat().st_size / MB:>8.2f}MB {size / MB:>8.2f}MB {limit / MB:>6.0f}MB")
        if size > limit:
            over.append(name)
    if over:
        print("over the package budget: " + ", ".join(over))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/lambda")))
