#!/usr/bin/env python3
"""Checks that vpsgatectl's sources can build on macOS as far as a Linux machine can tell.

vpsgatectl (docs/clients.md) is built from the modules its target depends on, read from
`swift package dump-package`. In each of their Swift files, every use of Glibc (an
`import Glibc` or a `Glibc.`-qualified name) must sit in a `#if canImport(Glibc)` branch of
a conditional that also has a `canImport(Darwin)` branch. What this proves: no module of
the client imports or names Glibc unguarded, and each guarded place has a Darwin
alternative. What it cannot prove: that the Darwin branches compile, or that no unguarded
code calls a Linux-only libc function; only a build on macOS shows that.

Usage: scripts/check_portable_source.py [ROOT]; exit 0 when clean, else 1 with each place.
"""

import re
import sys
from pathlib import Path

PRODUCT = "vpsgatectl"
GLIBC = re.compile(r"^\s*import\s+Glibc\b|\bGlibc\.")
LINUX = re.compile(r"canImport\(\s*(Glibc|Musl)\s*\)|os\(\s*Linux\s*\)")
DARWIN = re.compile(r"canImport\(\s*Darwin\s*\)|os\(\s*macOS\s*\)")


def modules(root: Path) -> list[str]:
    """The local Swift targets `PRODUCT` is built from, itself included, read from
    Package.swift (`swift package dump-package` would wait for a build holding .build)."""
    manifest = (root / "Package.swift").read_text()
    targets = {}
    pattern = r'\.(target|executableTarget|systemLibrary)\(\s*name:\s*"([^"]+)"(?:,\s*dependencies:\s*\[(.*?)\])?'
    for kind, name, dependencies in re.findall(pattern, manifest, re.S):
        local = re.sub(r"\.product\([^)]*\)", "", dependencies or "")
        targets[name] = (kind, re.findall(r'"([^"]+)"', local))
    seen, todo = [], [PRODUCT]
    while todo:
        name = todo.pop()
        if name in seen or name not in targets:
            continue
        seen.append(name)
        todo += targets[name][1]
    return [name for name in seen if targets[name][0] != "systemLibrary" and (root / "Sources" / name).is_dir()]


def problems(path: Path) -> list[str]:
    """Unguarded Glibc uses in one Swift file, as `path:line: why`."""
    found = []
    # A stack of open conditionals: each the list of its branches' conditions so far.
    stack: list[list[str]] = []
    lines = path.read_text().splitlines()
    # Conditionals' full branch lists, so a Glibc branch can be checked for a Darwin sibling.
    chains: list[list[str]] = []
    open_chains: list[int] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("#if "):
            stack.append([stripped[4:]])
            chains.append([stripped[4:]])
            open_chains.append(len(chains) - 1)
        elif stripped.startswith("#elseif ") and stack:
            stack[-1].append(stripped[8:])
            chains[open_chains[-1]].append(stripped[8:])
        elif stripped == "#else" and stack:
            stack[-1].append("else")
            chains[open_chains[-1]].append("else")
        elif stripped.startswith("#endif") and stack:
            stack.pop()
            chain = chains[open_chains.pop()]
            if any(LINUX.search(c) for c in chain) and not any(DARWIN.search(c) for c in chain):
                found.append(f"{path}:{number}: a conditional with a Glibc branch ({' / '.join(chain)}) has no canImport(Darwin) branch")
        elif GLIBC.search(line.split("//")[0]):
            if not any(LINUX.search(branches[-1]) for branches in stack):
                found.append(f"{path}:{number}: Glibc outside #if canImport(Glibc): {stripped}")
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    names = modules(root)
    found = []
    for name in names:
        for path in sorted((root / "Sources" / name).rglob("*.swift")):
            found += problems(path)
    for line in found:
        print(line)
    print(f"{PRODUCT}: {len(names)} modules ({', '.join(sorted(names))}): {len(found)} unguarded Glibc use(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
