"""Steady command and read load through nginx, for the tests that restart, kill or cut
instances under it. Each thread has its own principal (so the per-principal rate limit is
not what they measure) and records every answer."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field

from vpsgate_e2e import http_request, problem_code

COMMAND_OK = {200, 202}
COMMAND_EXPECTED = COMMAND_OK | {409}  # 409: the VPS is busy with another operation
KEY_IN_USE = "idempotency-key-in-use"  # a problem code: the fragment of its type


@dataclass
class Answer:
    kind: str
    status: int | None  # None: no HTTP answer (connection error or timeout)
    at: float
    detail: str = ""
    key: str | None = None


@dataclass
class Results:
    answers: list[Answer] = field(default_factory=list)
    operations: set[str] = field(default_factory=set)  # every accepted operation id
    keys: dict[str, str] = field(default_factory=dict)  # idempotency key ⇒ operation id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def unexpected(self) -> list[Answer]:
        expected = {"command": COMMAND_EXPECTED, "replay": COMMAND_OK, "poll": {200}, "read": {200}}
        return [a for a in self.answers if a.status not in expected[a.kind]]


class Load:
    """Command workers (one per VPS: set its hostname, replay the key once, follow the
    operation to its end, again) and read workers, until stop().

    With `retry` a request that got no definitive answer is sent again with the same key
    until it gets one (what a client does when a host is cut off); without it, such a
    request is a failure and the worker moves on."""

    def __init__(self, stack, tokens: list[str], vps: list[int], readers: int = 2, retry: bool = False,
                 timeout: float = 30, command: str = "hostname"):
        self.stack, self.vps, self.retry, self.timeout = stack, vps, retry, timeout
        # "hostname": PUT a new hostname each time; "restart": POST restart, which nginx never
        # resends to another instance once written (POST is not idempotent to it).
        self.command = command
        self.tokens = list(tokens)
        assert len(self.tokens) >= len(vps) + readers, "one principal per worker"
        self.results = Results()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.command_worker, args=(v, self.tokens[i]), daemon=True)
                        for i, v in enumerate(vps)]
        self.threads += [threading.Thread(target=self.read_worker, args=(self.tokens[len(vps) + i],), daemon=True)
                         for i in range(readers)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=self.timeout * 4)
        assert not any(thread.is_alive() for thread in self.threads), "a load thread did not stop"

    def send(self, kind, token, method, path, body=None, key=None):
        headers = {"Authorization": f"Bearer {token}", "X-Request-ID": f"load-{uuid.uuid4().hex[:12]}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif method == "POST":
            data = b""
        if key:
            headers["Idempotency-Key"] = key
        try:
            status, _, raw = http_request(self.stack, method, path, data, headers, timeout=self.timeout)
        except OSError as error:  # no HTTP answer (urllib's URLError is an OSError too)
            self.results.record(Answer(kind, None, time.monotonic(), f"{method} {path}: {error!r}", key))
            return None, None
        self.results.record(Answer(kind, status, time.monotonic(), f"{method} {path}: {raw[:200]!r}", key))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def command_worker(self, vps: int, token: str) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            key = str(uuid.uuid4())
            if self.command == "restart":
                method, path, body = "POST", f"/v1/vps/{vps}/restart", None
            else:
                method, path, body = "PUT", f"/v1/vps/{vps}/hostname", {"hostname": f"load-{vps}-{number}.example.com"}
            give_up = time.monotonic() + 120
            while True:
                status, operation = self.send("command", token, method, path, body, key)
                in_doubt = status is None or status >= 500 or (
                    status == 409 and problem_code(operation) == KEY_IN_USE)
                if not (self.retry and in_doubt) or time.monotonic() > give_up:
                    break
                # No answer, or the key is still held by the request that got none: the
                # same key again until its operation answers (what a careful client does).
                time.sleep(1)
            if status not in COMMAND_OK:
                time.sleep(0.3)
                continue
            with self.results.lock:
                self.results.operations.add(operation["id"])
                self.results.keys[key] = operation["id"]
            replay_status, replay = self.send("replay", token, method, path, body, key)
            if replay_status in COMMAND_OK and replay["id"] != operation["id"]:
                self.results.record(Answer("replay", -1, time.monotonic(), f"replay gave {replay['id']}"))
            self.follow(token, operation["id"])

    def follow(self, token: str, operation_id: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, operation = self.send("poll", token, "GET", f"/v1/operations/{operation_id}")
            if status == 200 and operation["state"] in ("succeeded", "failed", "unknown"):
                return
            time.sleep(0.3)

    def read_worker(self, token: str) -> None:
        paths = [f"/v1/vps/{self.vps[0]}", "/v1/operations?limit=5"]
        number = 0
        while not self.stopping.is_set():
            self.send("read", token, "GET", paths[number % len(paths)])
            number += 1
            time.sleep(0.2)


def wait_for_operations(stack, ids: set[str], timeout: float = 90) -> dict[str, str]:
    """Each operation's state once none is in flight any more (or the timeout)."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    quoted = ",".join(f"'{i}'" for i in ids)
    while time.monotonic() < deadline:
        rows = stack.postgres.psql(f"SELECT id::text || '|' || state FROM operations WHERE id IN ({quoted})",
                                   url=stack.postgres.owner_url).splitlines()
        states = dict(row.split("|") for row in rows)
        if len(states) == len(ids) and all(s in ("succeeded", "failed", "unknown") for s in states.values()):
            return states
        time.sleep(0.5)
    return states
