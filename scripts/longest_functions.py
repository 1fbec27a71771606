#!/usr/bin/env python3
"""The longest Swift functions under a directory (default Sources/), by line count.

A function runs from its `func`/`init` line to the brace that closes its body. Used for the
"longest functions before and after" note of a refactor:

    python3 scripts/longest_functions.py [--top N] [DIR]
"""
import argparse
import re
from pathlib import Path

DECLARATION = re.compile(r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|private|fileprivate|internal|static|mutating|override|final|nonisolated)\s+)*(func\s+[^\s(<]+|init\??|subscript)")


def functions(path: Path):
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = DECLARATION.match(lines[index])
        if not match:
            index += 1
            continue
        depth, started, end = 0, False, index
        for end in range(index, len(lines)):
            code = re.sub(r'"(?:\\.|[^"\\])*"', '""', lines[end].split("//")[0])
            depth += code.count("{") - code.count("}")
            started = started or "{" in code
            if started and depth <= 0:
                break
        if started:
            yield match.group(1).replace("func ", ""), index + 1, end - index + 1
        index += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", nargs="?", default="Sources")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    found = [(length, f"{path}:{line}", name) for path in Path(args.directory).rglob("*.swift")
             for name, line, length in functions(path)]
    for length, where, name in sorted(found, reverse=True)[: args.top]:
        print(f"{length:4d}  {name:32s} {where}")


if __name__ == "__main__":
    main()
