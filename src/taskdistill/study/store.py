"""The study store: one SQLite file (WAL) in the study folder holding studies, steps, runs and metrics.

Status transitions are single conditional UPDATEs inside a transaction (``pending → running →
done|failed``, ``pending → skipped``), so a crash leaves every step in exactly one state; a step only
becomes ``done`` when its artifact exists, and its metrics are written in the same transaction.
The laws and report stages read :meth:`Store.observations`, :meth:`Store.runs` and
:meth:`Store.provenance`.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
from pathlib import Path

from taskdistill.cache import unwritable
from taskdistill.errors import TaskDistillError

STORE_NAME = "study.sqlite"  # the store's file name inside a study folder
SCHEMA_VERSION = 2
STATUSES = ("pending", "running", "done", "failed", "skipped")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
  name TEXT PRIMARY KEY, spec_hash TEXT NOT NULL, spec TEXT NOT NULL, provenance TEXT NOT NULL,
  teacher_eval TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS steps (
  key TEXT NOT NULL, study TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL, inputs TEXT NOT NULL,
  deps TEXT NOT NULL, gate TEXT, status TEXT NOT NULL DEFAULT 'pending', artifact TEXT, result TEXT, error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0, started REAL, finished REAL, seconds REAL, PRIMARY KEY (study, key));
CREATE TABLE IF NOT EXISTS runs (
  key TEXT NOT NULL, study TEXT NOT NULL, eval_key TEXT NOT NULL, model_key TEXT NOT NULL, parent_key TEXT,
  supervision TEXT, method TEXT, schedule TEXT, keep_fraction REAL NOT NULL, dataset_size INTEGER NOT NULL,
  seed INTEGER, step_index INTEGER NOT NULL, is_teacher INTEGER NOT NULL, view TEXT NOT NULL, branch TEXT,
  stage TEXT NOT NULL, is_primary INTEGER NOT NULL, PRIMARY KEY (study, key));
CREATE TABLE IF NOT EXISTS metrics (
  study TEXT NOT NULL, eval_key TEXT NOT NULL, metric TEXT NOT NULL, value REAL, correct INTEGER, n INTEGER,
  chance REAL, stderr REAL, PRIMARY KEY (study, eval_key, metric));
"""


class Store:
    """A study store at ``path`` (created on first write)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise TaskDistillError(f"{self.path} does not exist; this folder holds no study (run `study run` first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if not create and unwritable(self.path.parent):  # a read-only folder (mount): SQLite cannot
                # make its lock and WAL index files there, so read the file as it is (nobody can change it)
                uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?immutable=1"
                self.db = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._check()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> TaskDistillError:
        if "locked" in str(exc) or "busy" in str(exc):
            return TaskDistillError(f"{self.path} is locked by another process; wait for it to finish or stop it")
        return TaskDistillError(
            f"{self.path} is not a readable study store ({exc}); move it away and start the study in a new folder"
        )

    def _check(self) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "meta" not in tables:
            raise sqlite3.DatabaseError("no taskdistill tables")
        if "meta" in tables:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None or int(row[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {row[0] if row else '?'} ≠ {SCHEMA_VERSION}")
        else:
            self.db.execute("PRAGMA journal_mode=WAL")
            with self.transaction():
                for statement in SCHEMA.strip().split(";\n"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        self.db.execute("PRAGMA synchronous=FULL")

    def transaction(self):
        return _Transaction(self)

    def close(self) -> None:
        self.db.close()

    # -- studies and the plan ---------------------------------------------------------------
    def study(self, name: str | None = None) -> dict | None:
        sql, args = ("SELECT * FROM studies WHERE name=?", (name,)) if name else ("SELECT * FROM studies", ())
        rows = self.db.execute(sql, args).fetchall()
        if not rows:
            return None
        if len(rows) > 1:
            raise TaskDistillError(f"{self.path} holds several studies; name one")
        row = dict(rows[0])
        row["spec"] = json.loads(row["spec"])
        row["provenance"] = json.loads(row["provenance"])
        return row

    def register(self, plan, spec_json: dict, provenance: dict) -> None:
        """Record a study and its plan; an existing study must have the same spec hash."""
        existing = self.study(plan.study) or self.study()
        if existing and existing["spec_hash"] != plan.spec_hash:
            raise TaskDistillError(
                f"{self.path.parent} belongs to study {existing['name']!r} with a different spec "
                f"(hash {existing['spec_hash']} ≠ {plan.spec_hash}); use another --dir, or `study resume` it"
            )
        with self.transaction():
            if not existing:
                self.db.execute("INSERT INTO studies VALUES (?,?,?,?,?,?)", (
                    plan.study, plan.spec_hash, json.dumps(spec_json), json.dumps(provenance), plan.teacher_eval,
                    time.time()))
            for s in plan.steps.values():
                self.db.execute(
                    "INSERT OR IGNORE INTO steps (key, study, kind, label, inputs, deps, gate) VALUES (?,?,?,?,?,?,?)",
                    (s.key, plan.study, s.kind, s.label, json.dumps(s.inputs), json.dumps(s.deps), s.gate))
            for r in plan.runs:
                self.db.execute(
                    "INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (r.key, plan.study, r.eval_key, r.model_key, r.parent_key, r.supervision, r.method,
                     r.schedule, r.keep_fraction, r.dataset_size, r.seed, r.step_index, int(r.is_teacher), r.view,
                     r.branch, r.stage, int(r.primary)))

    # -- step status ------------------------------------------------------------------------
    def steps(self, study: str) -> dict[str, dict]:
        rows = self.db.execute("SELECT * FROM steps WHERE study=?", (study,)).fetchall()
        out = {}
        for row in rows:
            d = dict(row)
            d["result"] = json.loads(d["result"]) if d["result"] else None
            out[d["key"]] = d
        return out

    def claim(self, study: str, key: str) -> bool:
        """pending → running; False when another worker got it first or it is not pending."""
        cur = self.db.execute(
            "UPDATE steps SET status='running', attempts=attempts+1, started=?, error=NULL "
            "WHERE study=? AND key=? AND status='pending'", (time.time(), study, key))
        return cur.rowcount == 1

    def finish(self, study: str, key: str, artifact: str | None, result: dict, metrics: list[dict]) -> None:
        """running → done, with the result and metrics, in one transaction; the artifact must exist."""
        if artifact is not None and not Path(artifact).exists():
            raise RuntimeError(f"step {key} reports artifact {artifact} that does not exist")
        now = time.time()
        with self.transaction():
            row = self.db.execute("SELECT started FROM steps WHERE study=? AND key=? AND status='running'",
                                  (study, key)).fetchone()
            if row is None:
                raise RuntimeError(f"step {key} is not running; cannot mark it done")
            for m in metrics:
                self.db.execute("INSERT OR REPLACE INTO metrics VALUES (?,?,?,?,?,?,?,?)", (
                    study, key, m["metric"], m["value"], m.get("correct"), m.get("n"), m.get("chance"),
                    _finite(m.get("stderr"))))
            self.db.execute(
                "UPDATE steps SET status='done', artifact=?, result=?, finished=?, seconds=? WHERE study=? AND key=?",
                (artifact, json.dumps(result), now, now - (row["started"] or now), study, key))

    def fail(self, study: str, key: str, error: str) -> None:
        self.db.execute("UPDATE steps SET status='failed', error=?, finished=? WHERE study=? AND key=? "
                        "AND status='running'", (error, time.time(), study, key))

    def skip(self, study: str, keys, reason: str) -> None:
        with self.transaction():
            for key in keys:
                self.db.execute("UPDATE steps SET status='skipped', error=? WHERE study=? AND key=? "
                                "AND status IN ('pending', 'failed')", (reason, study, key))

    def recover_interrupted(self, study: str) -> int:
        """After a crash (the caller holds the study lock): running/failed → pending, and done steps whose
        artifact vanished → pending. Returns how many steps were reset."""
        with self.transaction():
            n = self.db.execute("UPDATE steps SET status='pending' WHERE study=? AND status IN ('running', 'failed')",
                                (study,)).rowcount
            for row in self.db.execute("SELECT key, artifact FROM steps WHERE study=? AND status='done' "
                                       "AND artifact IS NOT NULL", (study,)).fetchall():
                if not Path(row["artifact"]).exists():
                    self.db.execute("UPDATE steps SET status='pending' WHERE study=? AND key=?", (study, row["key"]))
                    self.db.execute("DELETE FROM metrics WHERE study=? AND eval_key=?", (study, row["key"]))
                    n += 1
        return n

    # -- read side for laws / report / export ------------------------------------------------
    def _studies(self, study: str | None) -> list[dict]:
        rows = self.db.execute("SELECT name, teacher_eval FROM studies" + (" WHERE name=?" if study else ""),
                               (study,) if study else ()).fetchall()
        return [dict(r) for r in rows]

    def runs(self, study: str | None = None) -> list[dict]:
        """One row per evaluated student (and the teacher): coordinates, every metric, cost, status."""
        out = []
        for st in self._studies(study):
            steps = self.steps(st["name"])
            metrics = self._metrics(st["name"])
            for row in self.db.execute("SELECT * FROM runs WHERE study=? ORDER BY is_teacher DESC, schedule, "
                                       "dataset_size, supervision, method, seed, step_index, stage, view",
                                       (st["name"],)):
                run = dict(row)
                run["is_teacher"] = bool(run["is_teacher"])
                run["primary"] = bool(run.pop("is_primary"))
                ev, model = steps.get(run["eval_key"], {}), steps.get(run["model_key"], {})
                result, made = ev.get("result") or {}, model.get("result") or {}
                effective = made.get("effective_dataset_size", run["dataset_size"] if run["stage"] == "recovered" else 0)
                run.update(study=st["name"], status=ev.get("status"), step_key=run["eval_key"],
                           artifact=made.get("path") or model.get("artifact"),
                           params=result.get("params"), latency_ms=result.get("latency_ms"),
                           nll=result.get("nll"), brier=result.get("brier"), cost=result.get("cost"),
                           train=made.get("train"), effective_dataset_size=effective)
                for name, m in metrics.get(run["eval_key"], {}).items():
                    run[name] = m["value"]
                out.append(run)
        return out

    def _metrics(self, study: str) -> dict[str, dict[str, dict]]:
        out: dict[str, dict[str, dict]] = {}
        for row in self.db.execute("SELECT * FROM metrics WHERE study=?", (study,)):
            out.setdefault(row["eval_key"], {})[row["metric"]] = dict(row)
        return out

    def observations(self, study: str | None = None, all_views: bool = False) -> list[dict]:
        """One row per evaluated model × metric, with the teacher's value in the same view as ``reference``.

        Rows carry the laws' contract (docs/laws.md): ``branch`` (the chain a run belongs to: the unit
        the bootstrap resamples), ``effective_dataset_size`` (examples actually trained on), ``stage``
        (``pruned`` right after a prune: D = 0; ``recovered``), ``view``, ``stderr``, and the teacher's own
        ``reference_correct`` / ``reference_n`` / ``reference_stderr``. Teacher rows have keep_fraction 1.0,
        dataset_size 0 and None for supervision/method/schedule/seed. Only the view each model was trained
        in is returned unless ``all_views``.
        """
        out = []
        for st in self._studies(study):
            metrics = self._metrics(st["name"])
            runs = self.runs(st["name"])
            teacher = {(name, r["view"]): m for r in runs if r["is_teacher"]
                       for name, m in metrics.get(r["eval_key"], {}).items()}
            for run in runs:
                if not (run["primary"] or all_views):
                    continue
                for name, m in sorted(metrics.get(run["eval_key"], {}).items()):
                    ref = teacher.get((name, run["view"])) or teacher.get((name, "answer")) or {}
                    out.append({
                        "metric": name, "supervision": run["supervision"], "method": run["method"],
                        "schedule": run["schedule"], "keep_fraction": run["keep_fraction"],
                        "dataset_size": run["dataset_size"], "seed": run["seed"], "correct": m["correct"],
                        "n": m["n"], "value": m["value"], "chance": m["chance"], "reference": ref.get("value"),
                        "params": run["params"], "latency_ms": run["latency_ms"], "branch": run["branch"],
                        "effective_dataset_size": run["effective_dataset_size"], "stage": run["stage"],
                        "view": run["view"], "stderr": m["stderr"], "reference_correct": ref.get("correct"),
                        "reference_n": ref.get("n"), "reference_stderr": ref.get("stderr"),
                    })
        return out

    def provenance(self, study: str | None = None) -> dict:
        """Teacher, data fingerprint, spec hash, package versions and machine of a study."""
        st = self.study(study)
        if st is None:
            raise TaskDistillError(f"{self.path} holds no study{f' named {study!r}' if study else ''}")
        prov = dict(st["provenance"], spec_hash=st["spec_hash"], study=st["name"])
        for step in self.steps(st["name"]).values():
            if step["status"] != "done":
                continue
            if step["kind"] == "data":
                prov["data_fingerprint"] = step["result"]["fingerprint"]
                prov["data"] = step["result"]
            elif step["kind"] == "teacher":
                prov["teacher"] = step["result"]
            elif step["kind"] == "correct":
                prov["corrected_teacher"] = step["result"]
        return prov


def open_store(folder: str | Path) -> Store:
    """The store of an existing study folder (a clear error when the folder holds none)."""
    return Store(Path(folder) / STORE_NAME, create=False)


def has_store(folder: str | Path) -> bool:
    return (Path(folder) / STORE_NAME).is_file()


def _finite(value):
    return value if isinstance(value, (int, float)) and value == value and abs(value) != float("inf") else None


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error); sqlite errors become one-line user errors."""

    def __init__(self, store: Store):
        self.store = store

    def __enter__(self):
        try:
            self.store.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self.store._error(exc) from None
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.store.db.execute("COMMIT")
        else:
            self.store.db.execute("ROLLBACK")
        return False
