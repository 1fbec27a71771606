"""The documentation as a front door that stands on its own.

Without services: the README is short; every relative link and #anchor in the README, the
changelog and docs/ resolves inside the repository; nothing in the repository cites a
contract, note or path outside it; the counts the docs state (commands, reads,
permissions) are the catalogue's; every problem type the code or nginx can answer has its
section in docs/problems.md; scripts/stamp-version stamps what git says.

With a stack of its own: docs/getting-started.md's walkthrough runs as written, and the
binaries, `/healthz`, the user agents and the MCP server report one version.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from vpsgate_e2e import http_request, sql

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
LINKED_PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS] + \
    ([ROOT / "CONTRIBUTING.md"] if (ROOT / "CONTRIBUTING.md").exists() else [])
README_MAX_LINES = 250

# Migrations already released are never edited: vpsgate migrate refuses a file whose
# SHA-256 changed after it was applied. These comments stay as they were; any other file,
# a new migration included, is checked.
# The released migrations 0001..0016, kept verbatim (their checksums are recorded in deployed
# databases) as the fixture the upgrade test applies; 0017_baseline.sql replaces them.
RELEASED_MIGRATIONS = {f"Tests/fixtures/migrations-0016/{name}" for name in (
    "0001_create_roles.sql", "0002_create_pipeline.sql", "0003_create_reconciler.sql", "0004_create_audit_views.sql",
    "0005_record_every_outcome.sql", "0006_trust_boundaries.sql", "0007_one_home_per_decision.sql",
    "0008_change_control.sql", "0009_completion_push.sql", "0010_docker_projects.sql", "0011_synchronous_answers.sql",
    "0012_account_resources.sql", "0013_fleets.sql", "0014_sealed_dispatch.sql", "0015_feed_budget_freeze.sql",
    "0016_definers_and_key_lifetime.sql")}
# Built by concatenation so that this file does not cite them itself.
OUTSIDE = re.compile("|".join([
    r"\bSP" + r"EC\b",                      # the contract's sections: "… section 12", "§ 12", its file name
    r"\bNO" + r"TES\.md\b",                 # the Hostinger notes
    r"\.\./sh" + r"ared\b", r"/work/sh" + r"ared\b",
    r"hostinger/open" + r"api-vps\.json",   # the notes' copy of the document (the repository's is in Tests/e2e/fixtures)
]))


def markdown_text(path: Path) -> list[tuple[int, str]]:
    """The lines of `path` outside fenced code blocks, with inline code removed."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, re.sub(r"`[^`]*`", "", line)))
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation other than - and _ dropped,
    spaces as hyphens."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, seen, fenced = set(), {}, False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^#{1,6} (.+)$", line)):
            base = anchor(match.group(1))
            count = seen.get(base, 0)
            found.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return found


def links(path: Path):
    for number, line in markdown_text(path):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if not re.match(r"^[a-z]+:", target):
                yield number, target


def test_the_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; more than {README_MAX_LINES} belongs in docs/"
    text = "\n".join(lines)
    for needed in ("scripts/run", "scripts/test", "docs/getting-started.md", "docs/design.md", "CHANGELOG.md"):
        assert needed in text


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves_inside_the_repository(page):
    broken = []
    for number, target in links(page):
        file_part, _, fragment = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        if not destination.is_relative_to(ROOT):
            broken.append(f"{where} (outside the repository)")
        elif not destination.exists():
            broken.append(f"{where} (no such file)")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{where} (no such heading)")
    assert not broken, "\n".join(broken)


def repository_files():
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        path = ROOT / name
        if name.startswith((".git/", ".build/")) or name in RELEASED_MIGRATIONS or not path.is_file():
            continue
        try:
            yield name, path.read_text()
        except UnicodeDecodeError:
            continue


def test_nothing_in_the_repository_cites_what_is_outside_it():
    citations = [f"{name}:{number}: {line.strip()}" for name, text in repository_files()
                 for number, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not citations, "cite docs/ instead:\n" + "\n".join(citations)


def test_the_pattern_finds_what_it_must():
    for cited in ("(SP" "EC section 12)", "SP" "EC §3", "see hostinger/NO" "TES.md", "../sh" "ared/SP" "EC.md"):
        assert OUTSIDE.search(cited), cited
    assert not OUTSIDE.search("hints.ai_family = AF_UNSPEC")


# MARK: - Counts

def catalogue_counts() -> dict[str, int]:
    """From vpsgate's OpenAPI document (docs/openapi.json, which test_commands.py keeps equal
    to what vpsgate serves) and the permissions the code declares."""
    document = json.loads((ROOT / "docs/openapi.json").read_text())
    writes = [(method, path) for path, item in document["paths"].items() for method in item
              if method in ("post", "put", "patch", "delete")]
    commands = [(m, p) for m, p in writes if not p.startswith(("/v1/operations/", "/v1/batches"))]
    reads = [path for path, item in document["paths"].items() if "get" in item and path.startswith("/v1/")]
    permissions = re.findall(r'^\s*case \w+ = "[a-z_]+:[a-z_]+"', (ROOT / "Sources/VpsgateCore/Permission.swift").read_text(), re.M)
    vps_commands = [p for m, p in commands if p.startswith("/v1/vps/{id}/")]
    return {"commands": len(commands), "reads": len(reads), "permissions": len(permissions), "VPS commands": len(vps_commands)}


# "the 41 commands", "serves 41 commands", "all 17 permissions": statements of the catalogue's
# size. Measurements ("594 commands/s", "100 commands under load") say no "the/all/serves".
CLAIM = re.compile(r"\b(?:[Tt]he|[Aa]ll|serves|every one of the|its) (\d+) (VPS commands|commands|reads|permissions)\b(?!/)")


def test_the_counts_the_docs_state_are_the_catalogues():
    counts = catalogue_counts()
    assert counts["commands"] >= 41 and counts["permissions"] >= 17
    wrong = []
    for page in [ROOT / "README.md", *DOCS]:
        for number, line in markdown_text(page):
            for value, what in CLAIM.findall(line):
                if int(value) != counts[what]:
                    wrong.append(f"{page.relative_to(ROOT)}:{number}: {value} {what}, the catalogue has {counts[what]}")
    assert not wrong, "\n".join(wrong)
    api = (ROOT / "docs/api.md").read_text()
    assert f"serves {counts['commands']} commands and {counts['reads']} reads" in api
    assert f"{counts['permissions']} permissions" in (ROOT / "docs/auth.md").read_text()


def test_the_count_pattern_reads_claims_not_measurements():
    assert CLAIM.findall("vpsgate serves 41 commands and the 19 reads") == [("41", "commands"), ("19", "reads")]
    assert not CLAIM.findall("2 cores give 594 commands/s; 100 commands under load")


# MARK: - Problem types

def problem_codes() -> set[str]:
    swift = (ROOT / "Sources/VpsgateCore/Problem.swift").read_text()
    codes = set(re.findall(r'static let \w+ = Code\(rawValue: "([a-z-]+)"\)', swift))
    for path in (ROOT / "nginx").rglob("*"):
        if path.is_file():
            codes |= set(re.findall(r"/problems#([a-z-]+)", path.read_text()))
    return codes


def test_every_problem_type_has_its_section_and_every_section_a_type():
    codes = problem_codes()
    assert {"vps-busy", "confirmation-required", "rate-limited", "internal-error"} <= codes
    sections = {match for match in re.findall(r"^## ([a-z-]+)$", (ROOT / "docs/problems.md").read_text(), re.M)}
    assert not codes - sections, f"problem types without a section in docs/problems.md: {sorted(codes - sections)}"
    assert not sections - codes, f"sections for problem types nothing answers: {sorted(sections - codes)}"


def test_every_problem_type_url_lands_on_its_codes_section():
    """`type` is `<VPSGATE_PROBLEM_BASE_URL>/problems#<code>`: the fragment must be the anchor
    of the code's section as a renderer makes it, for every code vpsgate or nginx answers."""
    codes = problem_codes()
    missing = sorted(code for code in codes if code not in anchors(ROOT / "docs/problems.md"))
    assert not missing, f"no #<code> anchor in docs/problems.md for: {missing}"
    swift = (ROOT / "Sources/VpsgateCore/Problem.swift").read_text()
    assert 'base + "/problems#" + code.rawValue' in swift
    for conf in ("nginx/vpsgate.conf", "nginx/local.conf.in"):
        text = (ROOT / conf).read_text()
        assert "urn:vpsgate:problem:" not in text, conf
        default = "@PROBLEM_BASE@" if conf.endswith(".in") else "https://vpsgate.dev/docs"
        assert '"type":"$vpsgate_problem_base/problems#' in text and f'default  "{default}";' in text, conf
    configuration = (ROOT / "docs/configuration.md").read_text()
    assert "VPSGATE_PROBLEM_BASE_URL" in configuration and "https://vpsgate.dev/docs" in configuration


# MARK: - Versions

def test_stamp_version_takes_the_version_and_commit_from_git():
    stamped = subprocess.run([str(ROOT / "scripts/stamp-version"), "--print"], capture_output=True, text=True, check=True).stdout
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    described = subprocess.run(["git", "describe", "--tags", "--always", "--dirty"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    assert f'public static let commit = "{commit}"' in stamped
    version = re.search(r'public static let version = "([^"]+)"', stamped).group(1)
    assert version == described.removeprefix("v") or version.endswith("+" + described)
    assert re.search(r'public static let date = "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"', stamped)
    assert (ROOT / "Sources/VpsgateCore/BuildInfo.swift").read_text().count('"unknown"') == 2, "--print changed the file"


def test_stamp_version_puts_the_checked_in_file_back_after_the_build_command():
    source = ROOT / "Sources/VpsgateCore/BuildInfo.swift"
    before = source.read_text()
    seen = subprocess.run([str(ROOT / "scripts/stamp-version"), "cat", str(source)], capture_output=True, text=True, check=True).stdout
    assert '"unknown"' not in seen.split("public static let commit")[1].split("\n")[0]
    assert source.read_text() == before
    failed = subprocess.run([str(ROOT / "scripts/stamp-version"), "false"], capture_output=True, text=True)
    assert failed.returncode != 0 and source.read_text() == before


VERSION_LINE = re.compile(r"^(vpsgate|vpsgatectl) (\S+) \(commit (\S+), built (\S+)\)$")


def binary(name: str) -> Path:
    path = Path(os.environ.get("VPSGATE_BIN") or ROOT / ".build/debug/vpsgate").parent / name
    if not path.exists():
        pytest.skip(f"{path} is not built")
    return path


def reported_version(name: str) -> str:
    out = subprocess.run([str(binary(name)), "--version"], capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    match = VERSION_LINE.match(out)
    assert match and match.group(1) == name, out
    return match.group(2)


def test_both_binaries_print_one_version_with_commit_and_build_date():
    assert reported_version("vpsgate") == reported_version("vpsgatectl")
    source = (ROOT / "Sources/VpsgateCore/BuildInfo.swift").read_text()
    assert re.search(r'public static let version = "\d+\.\d+\.\d+', source)


# MARK: - With a stack: the walkthrough, and the version it reports

@pytest.fixture(scope="module")
def walkthrough_stack(stack_factory, tmp_path_factory):
    """A stack as scripts/run makes it: the shipped approval policy, principals demo,
    requester and approver, and an env file like .run/env."""
    stack = stack_factory("docs", destroy_approvals=None, serve_docs=True)
    stack.grant("demo", "*", "admin")
    stack.demo_token = stack.create_token("demo")
    stack.add_walkthrough_principals()
    env = tmp_path_factory.mktemp("walkthrough") / "env"
    stack.write_env(env)
    return stack, env


FENCE = re.compile(r"^```(sh|text|console)\n(.*?)^```", re.S | re.M)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
BLOCK_END = "@@vpsgate-walkthrough-block-end@@"


def walkthrough_blocks(text: str) -> list[tuple[str, str | None]]:
    """The page's `sh` blocks in order, each with the `text` block right after it (what it
    prints) or None; `console` blocks are shown, not run."""
    blocks: list[list] = []
    for kind, body in FENCE.findall(text):
        if kind == "sh":
            blocks.append([body, None])
        elif kind == "text":
            assert blocks and blocks[-1][1] is None, f"a text block that follows no sh block: {body[:80]!r}"
            blocks[-1][1] = body
    return [(body, shown) for body, shown in blocks]


def normalized(text: str) -> list[str]:
    """Lines as compared: ids and times replaced, runs of spaces as one, blank ends dropped."""
    text = TIME.sub("<time>", UUID.sub("<id>", text))
    return [re.sub(r"\s+", " ", line).strip() for line in text.strip().splitlines()]


def run_walkthrough(text: str, env: Path) -> list[tuple[str, str | None, str]]:
    """Runs the blocks of `text` in order in one shell; each block with what it printed."""
    blocks = walkthrough_blocks(text)
    script = "set -euo pipefail\n" + "".join(f"{body}\necho '{BLOCK_END}'\n" for body, _ in blocks)
    done = subprocess.run(["bash", "-c", script.replace(". .run/env", f". {env}")], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout.split(BLOCK_END + "\n")
    assert len(printed) == len(blocks) + 1 and printed[-1] == "", done.stdout
    return [(body, shown, out) for (body, shown), out in zip(blocks, printed)]


def test_the_getting_started_walkthrough_runs_as_written(walkthrough_stack):
    stack, env = walkthrough_stack
    ran = run_walkthrough((ROOT / "docs/getting-started.md").read_text(), env)
    assert len(ran) >= 6 and sum(shown is not None for _, shown, _ in ran) >= 6
    for body, shown, printed in ran:
        if shown is not None:
            assert normalized(printed) == normalized(shown), f"{body}\nprinted:\n{printed}"
    restores = [r for r in stack.sim("GET", "/__sim/requests")[2] if r["path"].endswith("/backups/3001/restore")]
    assert len(restores) == 1, "approved once, sent once"


def test_the_walkthrough_fails_when_an_answer_changes_shape(tmp_path):
    """What the walkthrough test compares: a changed column, a missing line or a changed
    value is a difference; another id, time or column width is not."""
    shown = "COMMAND  STATE\nvps.restart  succeeded   9bb21df8-aa20-4fab-86df-54c1b5bbfc4c 2026-12-04T20:38:16.507805Z\n"
    same = "COMMAND STATE\nvps.restart succeeded 11111111-2222-3333-4444-555555555555 2027-01-01T00:00:00Z\n\n"
    assert normalized(shown) == normalized(same)
    for changed in (shown.replace("STATE", "STATUS"), shown.split("\n")[0], shown.replace("succeeded", "failed")):
        assert normalized(shown) != normalized(changed)
    page = "```sh\necho a\n```\n\n```text\na\n```\n\n```console\nnot run\n```\n```sh\nprintf 'b\\nc\\n'\n```\n"
    assert walkthrough_blocks(page) == [("echo a\n", "a\n"), ("printf 'b\\nc\\n'\n", None)]
    ran = run_walkthrough(page, tmp_path / "env")
    assert [printed for _, _, printed in ran] == ["a\n", "b\nc\n"]


def test_on_the_local_stack_a_problem_type_dereferences_to_its_section(walkthrough_stack):
    stack, _ = walkthrough_stack
    answers = {
        # nginx's own problem (no credential), and one vpsgate answers (no Idempotency-Key).
        "unauthenticated": http_request(stack, "POST", "/v1/vps/1001/restart", b"{}"),
        "idempotency-key-missing": http_request(stack, "POST", "/v1/vps/1001/restart", b"{}", {
            "Authorization": f"Bearer {stack.demo_token}", "Content-Type": "application/json"}),
    }
    for code, (status, _, body) in answers.items():
        kind = json.loads(body)["type"]
        assert kind == f"{stack.url}/docs/problems#{code}", (status, kind)
        page_status, headers, page = http_request(stack, "GET", kind.removeprefix(stack.url).split("#")[0])
        assert page_status == 200 and headers["Content-Type"].startswith("text/markdown"), (page_status, headers)
        assert f"\n## {code}\n".encode() in page, code
    assert http_request(stack, "GET", "/docs/../Package.swift")[0] in (400, 404)
    assert http_request(stack, "GET", "/docs/no-such-page")[0] == 404


def test_healthz_user_agents_and_mcp_report_the_binaries_version(walkthrough_stack):
    stack, env = walkthrough_stack
    version = reported_version("vpsgate")
    status, _, body = http_request(stack, "GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok", "version": version}
    # vpsgate's calls to Hostinger, and vpsgatectl's to vpsgate (the audit keeps its user agent).
    agents = {r["headers"].get("User-Agent") or r["headers"].get("user-agent") for r in stack.sim("GET", "/__sim/requests")[2]}
    assert f"vpsgate/{version}" in agents, agents
    rows = sql(stack, "SELECT DISTINCT user_agent FROM audit_events WHERE principal = 'requester' AND user_agent IS NOT NULL")
    assert rows.split() == [f"vpsgatectl/{version}"], rows
    # The MCP server's info.
    environment = dict(os.environ, VPSGATE_URL=stack.url, VPSGATE_CA_FILE=str(stack.ca_file),
                       VPSGATE_TOKEN=stack.requester_token)
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
    server = subprocess.Popen([str(binary("vpsgatectl")), "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=environment)
    try:
        server.stdin.write(json.dumps(initialize) + "\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()
    assert answer["result"]["serverInfo"] == {"name": "vpsgate", "version": version}, answer


# MARK: - The map matches the house

def swift_sources() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text() for path in (ROOT / "Sources").rglob("*.swift")}


def database_functions() -> set[str]:
    names = set()
    for path in (ROOT / "Database").rglob("*.sql"):
        names |= set(re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)\s*\(", path.read_text()))
    return names


def declared_in_swift(name: str, sources: dict[str, str]) -> bool:
    """`Type`, `Type.member` or `member`: a declaration of it exists in Sources/."""
    *owner, member = name.split(".")
    declaration = re.compile(rf"\b(?:struct|enum|class|protocol|actor|typealias|extension|func|var|let|case)\s+{re.escape(member)}\b")
    candidates = sources.values()
    if owner:
        candidates = [text for text in sources.values() if re.search(rf"\b(?:struct|enum|class|protocol|extension)\s+{re.escape(owner[0])}\b", text)]
    return any(declaration.search(text) for text in candidates)


POSTGRES_BUILTINS = {"pg_snapshot_xmin", "pg_current_snapshot"}


def test_where_each_decision_lives_names_only_what_exists_where_it_says():
    """docs/architecture.md's table: every file it names exists, every SQL function it names is
    defined in a Database/ file, every Swift name it gives is declared in Sources/."""
    page = (ROOT / "docs/architecture.md").read_text()
    table = page[page.index("**Where each decision lives.**"):]
    table = table[:table.index("\n\n", table.index("| decision |"))]
    sources, functions = swift_sources(), database_functions()
    missing = []
    for cell in re.findall(r"`([^`]+)`", table):
        name = cell.split("(")[0].strip()
        if name.endswith((".swift", ".sql")) or "/" in name:
            found = (ROOT / name).exists() or any(path.endswith(name.removesuffix("/")) or f"/{name}" in f"/{path}"
                                                   for path in list(sources) + [str(p.relative_to(ROOT)) for p in (ROOT / "Database").rglob("*")])
        elif re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", name):
            # snake_case: a SQL function (or a field of a command, such as answersResource's peers)
            found = name in functions or name in POSTGRES_BUILTINS or any(f'"{name}"' in text for text in sources.values())
        elif re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*", name):
            found = declared_in_swift(name, sources)
        else:
            continue  # a value such as `(xid, id)` or a problem code with hyphens
        if not found:
            missing.append(cell)
    assert not missing, f"named in docs/architecture.md but not found: {missing}"


def test_the_module_graph_names_the_packages_targets():
    page = (ROOT / "docs/architecture.md").read_text()
    graph = page[page.index("vpsgate ──────────►"):]
    graph = graph[:graph.index("```")]
    package = (ROOT / "Package.swift").read_text()
    targets = set(re.findall(r'\.(?:target|executableTarget|systemLibrary)\(\s*name:\s*"(\w[\w-]*)"', package))
    named = set(re.findall(r"(?<![\w-])(C[A-Z]\w+|Vpsgate\w+|Hostinger\w*|Postgres|FastCGI|HTTPClient|Platform|vpsgatectl|vpsgate|hostinger-sim)(?![\w-])", graph))
    assert named and named <= targets, sorted(named - targets)
    # Every target of vpsgate's own but the tests appears in the graph.
    assert {t for t in targets if not t.endswith("Tests")} <= named, sorted({t for t in targets if not t.endswith("Tests")} - named)


def test_the_readme_shows_the_console_with_a_screenshot_in_the_repository():
    images = re.findall(r"!\[[^\]]+\]\(([^)]+\.png)\)", (ROOT / "README.md").read_text())
    assert images, "README.md shows no screenshot"
    for image in images:
        data = (ROOT / image).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{image} is not a PNG"
