"""vpsgatectl builds on macOS by its source (docs/clients.md#building-on-macos), as far as a Linux
machine can check: scripts/check_portable_source.py finds no Glibc use outside a
`#if canImport(Glibc)` that has a `canImport(Darwin)` branch, in any module the client is built
from. It does not compile the Darwin branches; only a build on macOS does."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_portable_source.py"


def test_the_clients_modules_use_glibc_only_behind_a_guard_with_a_darwin_branch():
    result = subprocess.run([sys.executable, str(CHECK), str(ROOT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Platform" in result.stdout and "VpsgateClient" in result.stdout


def test_the_check_finds_an_unguarded_import_and_a_guard_without_darwin(tmp_path):
    sys.path.insert(0, str(CHECK.parent))
    import check_portable_source

    bare = tmp_path / "Bare.swift"
    bare.write_text("import Glibc\nlet x = Glibc.read\n")
    linux_only = tmp_path / "LinuxOnly.swift"
    linux_only.write_text("#if canImport(Glibc)\nimport Glibc\n#elseif canImport(Musl)\nimport Musl\n#endif\n")
    guarded = tmp_path / "Guarded.swift"
    guarded.write_text("#if canImport(Glibc)\nimport Glibc\n#elseif canImport(Darwin)\nimport Darwin\n#endif\n"
                       "func f() {\n    #if canImport(Glibc)\n    Glibc.exit(0)\n    #elseif canImport(Darwin)\n    Darwin.exit(0)\n    #endif\n}\n")
    assert len(check_portable_source.problems(bare)) == 2
    assert len(check_portable_source.problems(linux_only)) == 1
    assert check_portable_source.problems(guarded) == []
