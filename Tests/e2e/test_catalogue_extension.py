"""A new VPS command that maps to one Hostinger call is one catalogue entry.

The test copies the package's sources (Package.swift, Package.resolved, Sources, the Swift tests'
sources Package.swift names) to a scratch
directory, adds a throwaway command to `Sources/VpsgateCore/Command+Catalogue.swift` only, builds
the two products there, and finds the command everywhere it is derived: the OpenAPI document
(`vpsgate openapi`), the catalogue tables (`vpsgate openapi --markdown`: its Hostinger call and
action names), vpsgatectl's commands and help, and the MCP server's tools with the document's
input schema. A contributor also writes the simulator's route and a test (CONTRIBUTING.md): at
most three hand-written files.

It builds, so it is slow: the scratch build directory is kept under `.build/` so dependencies
compile once; later runs rebuild only vpsgate's own modules. The first run is a whole build of
`vpsgate` and `vpsgatectl` (about 18 minutes on a 2-core machine busy with other builds); a later run about a minute.
On a fresh clone that first build alone would take CI past its time budget, so it runs when
asked for: `VPSGATE_SCRATCH_BUILD_TESTS=1 scripts/test -k catalogue_extension`.
"""

import asyncio
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.scratch_build]

ROOT = Path(__file__).resolve().parents[2]
SCRATCH = ROOT / ".build" / "catalogue-extension"
CATALOGUE = "Sources/VpsgateCore/Command+Catalogue.swift"

# The whole change a contributor makes to vpsgate's own sources for a new command.
ENTRY = '''        Command("vps.throwaway.ping", "POST", ["throwaway-ping"], .power, fields: [throwawayNote.declaration],
                summary: "Ping the VPS (a throwaway command of the catalogue's own test).",
                effects: ["Nothing: no such Hostinger call exists."], actions: ["throwaway_ping"]) { input throws(FieldErrors) in
            .vm(input.vps, "POST", "throwaway-ping", name: "throwaway_ping",
                body: .object([("note", .string(try input.value(throwawayNote)))]), repeatSafe: true)
        },
'''
FIELD = '''    private static let throwawayNote = Field.text("note", maxBytes: 40, "A note (40 bytes at most).")
'''


def patch(source: Path) -> list[str]:
    """Adds the throwaway command to the copy; answers the files it changed."""
    path = source / CATALOGUE
    text = path.read_text()
    anchor = "        // MARK: Configuration (vps:configure)\n"
    assert anchor in text and "    public static let catalogue: [Command] = [\n" in text
    text = text.replace(anchor, ENTRY + "\n" + anchor, 1)
    text = text.replace("    public static let catalogue: [Command] = [\n", FIELD + "\n    public static let catalogue: [Command] = [\n", 1)
    path.write_text(text)
    return [CATALOGUE]


def copy_sources(source: Path) -> None:
    """The package as the build needs it, nothing else (no docs, end-to-end tests or .build).
    Package.swift names the Swift test targets, so their sources come too; they are not built."""
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for name in ("Package.swift", "Package.resolved"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "Sources", source / "Sources")
    shutil.copytree(ROOT / "Tests", source / "Tests", ignore=lambda directory, names: ["e2e"] if Path(directory) == ROOT / "Tests" else [])


def seed_dependencies(build: Path) -> None:
    """The worktree's resolved dependencies, so the scratch build fetches nothing."""
    if (build / "checkouts").exists():
        return
    build.mkdir(parents=True, exist_ok=True)
    for name in ("checkouts", "repositories"):
        if (ROOT / ".build" / name).exists():
            shutil.copytree(ROOT / ".build" / name, build / name, symlinks=True)
    if (ROOT / ".build" / "workspace-state.json").exists():
        shutil.copy2(ROOT / ".build" / "workspace-state.json", build / "workspace-state.json")


class Me(http.server.BaseHTTPRequestHandler):
    """vpsgate stood in for: `GET /v1/me` answers a principal with vps:power on every VPS."""

    def do_GET(self):
        body = json.dumps({"principal": "tester", "grants": [{"resource": "vps:*", "role": "operator",
                                                               "permissions": ["vps:read", "vps:power"]}]}).encode()
        self.send_response(200 if self.path == "/v1/me" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *arguments):
        pass


def mcp_tools(ctl: Path):
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Me)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(SCRATCH), "VPSGATE_URL": f"http://127.0.0.1:{server.server_port}",
                   "VPSGATE_TOKEN": "test-token"}

    async def session():
        parameters = StdioServerParameters(command=str(ctl), args=["mcp"], env=environment)
        async with stdio_client(parameters) as (read, write):
            async with ClientSession(read, write) as client:
                await client.initialize()
                return (await client.list_tools()).tools

    try:
        return asyncio.run(asyncio.wait_for(session(), timeout=120))
    finally:
        server.shutdown()


def test_a_new_vps_command_is_one_catalogue_entry():
    started = time.monotonic()
    source, build = SCRATCH / "src", SCRATCH / "build"
    copy_sources(source)
    changed = patch(source)
    assert changed == [CATALOGUE]  # the simulator's route and a test are the other two files a contributor writes
    seed_dependencies(build)
    for product in ("vpsgate", "vpsgatectl"):
        result = subprocess.run(["swift", "build", "--package-path", str(source), "--scratch-path", str(build), "--product", product],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    built = time.monotonic()
    binaries = Path(subprocess.run(["swift", "build", "--package-path", str(source), "--scratch-path", str(build), "--show-bin-path"],
                                   capture_output=True, text=True, check=True).stdout.strip())

    # The OpenAPI document: the route, its permission, its body with the field's limit.
    document = json.loads(subprocess.run([binaries / "vpsgate", "openapi"], capture_output=True, text=True, check=True).stdout)
    operation = document["paths"]["/v1/vps/{id}/throwaway-ping"]["post"]
    assert operation["operationId"] == "vps_throwaway_ping"
    assert "Permission: vps:power on the VPS." in operation["description"]
    note = operation["requestBody"]["content"]["application/json"]["schema"]["properties"]["note"]
    assert note["maxLength"] == 40

    # The catalogue tables: the Hostinger call and the action names the reconciler matches.
    tables = subprocess.run([binaries / "vpsgate", "openapi", "--markdown"], capture_output=True, text=True, check=True).stdout
    row = next(line for line in tables.splitlines() if line.startswith("| `vps.throwaway.ping` |"))
    assert "`POST /api/vps/v1/virtual-machines/{id}/throwaway-ping`" in row and "`throwaway_ping`" in row and "`vps:power`" in row

    # vpsgatectl: listed, with its help and its flag.
    ctl = binaries / "vpsgatectl"
    commands = subprocess.run([ctl, "commands"], capture_output=True, text=True, check=True).stdout
    assert "vps.throwaway.ping\tvps throwaway ping <VPS id> --note <text|@file>" in commands
    help_text = subprocess.run([ctl, "vps", "throwaway", "ping", "--help"], capture_output=True, text=True, check=True).stdout
    assert "Ping the VPS" in help_text and "Permission: vps:power on the VPS." in help_text and "--note" in help_text

    # The MCP server: a tool for a principal with vps:power, its input the document's schema.
    tools = {tool.name: tool for tool in mcp_tools(ctl)}
    tool = tools["vps_throwaway_ping"]
    assert tool.input_schema["properties"]["note"] == note
    assert tool.annotations.destructive_hint is False and tool.annotations.idempotent_hint is True
    print(f"\ncatalogue extension: built in {built - started:.0f} s, checked in {time.monotonic() - built:.0f} s")
