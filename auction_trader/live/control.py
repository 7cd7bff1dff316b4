"""Who may trade, and the operator's commands: activation rules, halt, and ``run_live.py status|activate|
deactivate|resolve``.

specv2 §11.4 / §11.2 / §10.4 and DESIGN.md "Live path": the node starts in observation (decisions made,
none acted on); the operator activates it, which is accepted only after the full warm-up and never
while halted; a mode change requires a flat position; a halt (position mismatch, ...) stops new
entries until the operator sends ``resolve``; the halt is part of the node's checkpoint, so it survives
restarts. Every answer to a command (accepted or refused, and why) is also an alert.

The operator and the node are different processes; they talk through the store's ``control`` table:
the CLI inserts a pending row and waits (bounded) for its answer; the node's :class:`ControlPoller`
reads pending rows, asks :class:`Controller` and writes the answer. A command nobody answered in time is
withdrawn by the CLI (and one older than ``max_age_s`` is refused by the poller), so a node started later
never acts on an operator's stale request.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auction_trader.live.store import DB_NAME, LiveStore, StoreReader, now_ms, submit_control

log = logging.getLogger(__name__)

MODES = ("dry_run", "paper", "shadow", "live")


def normal_mode(mode: str) -> str:
    """``dry-run`` (the CLI flag's spelling) and ``dry_run`` (specv2 §11.1's) are the same mode."""
    return mode.replace("-", "_")
ACCEPTED, REFUSED, ANSWERED = "accepted", "refused", "answered"


@dataclass
class ControlState:
    """The node's trading permission. ``active``/``halted``/``halt_reason``/``mode`` are persisted in the
    checkpoint (:meth:`state`); ``warmup_minutes`` and ``flat`` are facts the node updates as they change."""

    mode: str
    active: bool = False
    halted: bool = False
    halt_reason: str | None = None
    warmup_minutes: int = 0
    warmup_needed: int = 240
    flat: bool = True

    def __post_init__(self) -> None:
        self.mode = normal_mode(self.mode)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {self.mode!r})")

    @property
    def warmed_up(self) -> bool:
        return self.warmup_minutes >= self.warmup_needed

    def may_enter(self) -> bool:
        """New entries allowed: active, warmed up, not halted, and a mode that trades."""
        return self.active and self.warmed_up and not self.halted and self.mode != "dry_run"

    def state(self) -> dict[str, Any]:
        """What the checkpoint keeps (the node's half of the decision state)."""
        return {"mode": self.mode, "active": self.active, "halted": self.halted, "halt_reason": self.halt_reason}

    @classmethod
    def initial(cls, mode: str, *, require_manual_activation: bool, warmup_needed: int, saved: Mapping[str, Any] | None = None) -> ControlState:
        """The state a node starts in: the saved one when there is a checkpoint (a halt stays until
        resolve; an activated node resumes as active, entries still waiting for warm-up), else
        observation — or active at once for a paper node with ``require_manual_activation: false``."""
        s = cls(mode=mode, warmup_needed=warmup_needed)
        mode = s.mode
        if saved:
            s.halted = bool(saved.get("halted", False))
            s.halt_reason = saved.get("halt_reason")
            # Activation was for the saved mode; a node restarted in another mode starts in observation.
            s.active = bool(saved.get("active", False)) and normal_mode(str(saved.get("mode"))) == mode
        else:
            s.active = mode == "paper" and not require_manual_activation
        return s


def start_mode_refusal(saved: Mapping[str, Any] | None, mode: str, flat: bool) -> str | None:
    """Why a node must not start in ``mode`` (None: it may). A mode change requires flat (specv2 §11.2):
    a checkpoint of another mode with a position open must be closed in that mode first."""
    if not saved or saved.get("mode") is None or normal_mode(saved["mode"]) == normal_mode(mode) or flat:
        return None
    return (f"the stored state is mode {saved['mode']} with a position open; a mode change requires flat: "
            f"restart in --{saved['mode'].replace('_', '-')} and close the position first")


@dataclass(frozen=True)
class Answer:
    status: str  # accepted | refused | answered
    text: str


class Controller:
    """Applies the rules to commands and halts; thread-safe (the poller thread and the node's loop).

    ``on_change(state)``: called after every change (the node writes its checkpoint and node_status);
    ``describe()``: extra lines for ``status`` (position, balance, ...) as a mapping;
    ``switch_mode(old, new)``: performs a mode change the rules allow, or raises with the reason it
    cannot (without it, mode changes are refused: the node would need a restart in the new mode).
    """

    def __init__(
        self,
        state: ControlState,
        alerts: Any | None = None,
        *,
        on_change: Callable[[ControlState], None] | None = None,
        describe: Callable[[], Mapping[str, Any]] | None = None,
        switch_mode: Callable[[str, str], None] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.state = state
        self.alerts = alerts
        self.on_change = on_change
        self.describe = describe
        self.switch_mode = switch_mode
        self.clock = clock
        self._lock = threading.RLock()

    # -- facts from the node ------------------------------------------------------------------------

    def set_warmup(self, minutes: int) -> None:
        with self._lock:
            self.state.warmup_minutes = int(minutes)

    def set_flat(self, flat: bool) -> None:
        with self._lock:
            self.state.flat = bool(flat)

    def may_enter(self) -> bool:
        return self.state.may_enter()

    # -- halts --------------------------------------------------------------------------------------

    def halt(self, reason: str, details: Mapping[str, Any] | None = None) -> bool:
        """Stop new entries until resolve; True if this call halted (a second halt keeps the first reason)."""
        with self._lock:
            if self.state.halted:
                return False
            self.state.halted, self.state.halt_reason = True, reason
            self._alert("halt", f"HALT: {reason}; no new entries, venue stops left in place, until `resolve`", details)
            self._changed()
            return True

    # -- commands -----------------------------------------------------------------------------------

    def handle(self, command: str, args: Mapping[str, Any] | None = None) -> Answer:
        args = dict(args or {})
        with self._lock:
            if command == "status":
                return Answer(ANSWERED, self.status_text())
            if command == "activate":
                answer = self._activate(args.get("mode"))
            elif command == "deactivate":
                answer = self._deactivate()
            elif command == "resolve":
                answer = self._resolve()
            else:
                return Answer(REFUSED, f"unknown command {command!r}")
            self._alert("resolve" if command == "resolve" else "activation", f"{command}: {answer.status}: {answer.text}", {"command": command, "args": args, "status": answer.status})
            if answer.status == ACCEPTED:
                self._changed()
            return answer

    def _activate(self, mode: str | None) -> Answer:
        s = self.state
        mode = normal_mode(mode) if mode else None
        if s.halted:
            return Answer(REFUSED, f"halted ({s.halt_reason}); run `resolve` first")
        if not s.warmed_up:
            return Answer(REFUSED, f"warm-up incomplete: {s.warmup_minutes} of {s.warmup_needed} minutes")
        if mode is not None and mode != s.mode:
            if mode not in MODES:
                return Answer(REFUSED, f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
            if not s.flat:
                return Answer(REFUSED, f"a mode change ({s.mode} -> {mode}) requires flat; a position is open")
            if self.switch_mode is None:
                return Answer(REFUSED, f"this node cannot change mode while running; restart it in --{mode.replace('_', '-')}")
            try:
                self.switch_mode(s.mode, mode)
            except Exception as exc:  # the node's reason
                return Answer(REFUSED, f"mode change {s.mode} -> {mode} failed: {exc}")
            s.mode = mode
        if s.mode == "dry_run":
            return Answer(REFUSED, "a dry-run node never trades; restart it in --paper, --shadow or --live")
        if s.active:
            return Answer(ACCEPTED, f"already active ({s.mode})")
        s.active = True
        return Answer(ACCEPTED, f"active: {s.mode} trading enabled")

    def _deactivate(self) -> Answer:
        s = self.state
        if not s.active:
            return Answer(ACCEPTED, "already in observation")
        s.active = False
        return Answer(ACCEPTED, "observation: no new entries; an open position keeps its stop and targets")

    def _resolve(self) -> Answer:
        s = self.state
        if not s.halted:
            return Answer(REFUSED, "not halted; nothing to resolve")
        reason = s.halt_reason
        s.halted, s.halt_reason = False, None
        after = "trading resumes (active)" if s.active else "the node stays in observation; `activate` to trade"
        return Answer(ACCEPTED, f"halt cleared (was: {reason}); {after}")

    def status_text(self) -> str:
        s = self.state
        lines = {
            "mode": s.mode,
            "active": "yes" if s.active else "no (observation)",
            "halted": f"YES: {s.halt_reason}" if s.halted else "no",
            "warm-up": f"{s.warmup_minutes}/{s.warmup_needed} min" + (" (complete)" if s.warmed_up else ""),
            "flat": "yes" if s.flat else "no",
            "entries allowed": "yes" if s.may_enter() else "no",
        }
        if self.describe is not None:
            try:
                lines.update({k: _show(v) for k, v in self.describe().items()})
            except Exception as exc:  # a broken describe must not break status
                lines["details"] = f"unavailable ({type(exc).__name__})"
        return _table(lines)

    def _alert(self, kind: str, message: str, details: Mapping[str, Any] | None) -> None:
        if self.alerts is not None:
            self.alerts.emit(kind, message, {**(details or {}), **self.state.state()}, self.clock())

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.state)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _table(lines: Mapping[str, Any]) -> str:
    width = max(len(k) for k in lines)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in lines.items())


class ControlPoller:
    """The node's side of the control table: answer pending commands.

    Either call :meth:`poll_once` from the node's own loop (the handler then runs on that loop: no
    locking needed around the node's state; one indexed read, no write waits), or :meth:`start` a
    thread that polls every ``interval`` seconds. ``handler(command, args) -> Answer`` (normally
    ``Controller.handle``). Commands older than ``max_age_s`` are refused unread: the operator who
    sent them was told nobody answered."""

    def __init__(
        self,
        store: LiveStore,
        handler: Callable[[str, Mapping[str, Any]], Answer],
        *,
        interval: float = 0.25,
        max_age_s: float = 120.0,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.handler = handler
        self.interval = interval
        self.max_age_ms = int(max_age_s * 1000)
        self.clock = clock
        self._last_id = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader = StoreReader(store.path)

    def poll_once(self) -> int:
        """Answer every pending command; returns how many."""
        rows = self._reader.pending_control(after_id=self._last_id)
        for row in rows:
            self._last_id = row["id"]
            now = self.clock()
            args = json.loads(row["args"]) if row["args"] else {}
            deadline = args.pop(DEADLINE_KEY, None)
            if (deadline is not None and now > deadline) or now - row["ts_ms"] > self.max_age_ms:
                answer = Answer(REFUSED, f"expired: sent {(now - row['ts_ms']) / 1000:.0f} s ago and no longer awaited; not acted on")
            else:
                try:
                    answer = self.handler(row["command"], args)
                except Exception as exc:
                    log.exception("control command %s failed", row["command"])
                    answer = Answer(REFUSED, f"the node failed to handle it: {type(exc).__name__}: {exc}")
            log.info("control %d %s -> %s: %s", row["id"], row["command"], answer.status, answer.text.splitlines()[0] if answer.text else "")
            # queued: the writer commits it within milliseconds; the node's loop never waits for disk
            self.store.answer_control(row["id"], answer.status, answer.text, self.clock())
        return len(rows)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="control-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception:  # the poller must outlive a bad moment (a locked file, ...)
                log.exception("control poll failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._reader.close()


# -- the operator's CLI ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_live.py",
        description="Talk to a running live node through its store: status, activate, deactivate, resolve.",
    )
    p.add_argument("command", choices=["status", "activate", "deactivate", "resolve"])
    p.add_argument("--data-dir", default="live", type=Path, help="the node's data directory (default: live)")
    p.add_argument("--timeout", default=10.0, type=float, help="seconds to wait for the node's answer (default: 10)")
    p.add_argument("--mode", choices=list(MODES), help="activate: switch to this mode (requires flat)")
    return p


NO_ANSWER = "no_answer"
#: In a command's args: until when (ms) its sender waits for the answer; a node that reads the
#: command later refuses it unread.
DEADLINE_KEY = "_deadline_ms"


@dataclass(frozen=True)
class Reply:
    """A node's answer to a command: ``status`` accepted | refused | answered, or ``no_answer``."""

    id: int
    command: str
    status: str
    answer: str | None


def send_command(data_dir: str | Path, command: str, args: Mapping[str, Any] | None = None, timeout: float = 10.0) -> Reply:
    """Write a control row and wait (at most ``timeout`` s) for the node's answer. Without one, the
    command is withdrawn (marked refused) so that no node acts on it later, and the reply's status is
    ``no_answer``; the row also carries the deadline, so a node that reads it too late refuses it
    even if the withdrawal never happened (the sender was killed). For the CLI and the dashboard."""
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    path = Path(data_dir) / DB_NAME
    sent = now_ms()
    cid = submit_control(path, command, {**(args or {}), DEADLINE_KEY: sent + int(timeout * 1000)}, ts_ms=sent)
    try:
        with StoreReader(path) as reader:
            deadline = time.monotonic() + timeout
            row = reader.control(cid)
            while row["status"] == "pending" and time.monotonic() < deadline:
                time.sleep(0.05)
                row = reader.control(cid)
    except KeyboardInterrupt:  # the operator gave up: nobody may act on it later
        _withdraw(path, cid)
        raise
    if row["status"] == "pending":
        row = _withdraw(path, cid) or row
    if row["status"] == "pending" or (row["status"] == REFUSED and row["answer"] == _WITHDRAWN):
        return Reply(cid, command, NO_ANSWER, None)
    return Reply(cid, command, row["status"], row["answer"])


def cli(argv: list[str] | None = None) -> int:
    """``run_live.py status|activate|deactivate|resolve --data-dir DIR [--timeout S] [--mode M]``.

    Exit 0: answered / accepted; 1: refused (the reason is printed); 2: no node answered in time,
    or no store in ``--data-dir``."""
    args = _parser().parse_args(argv)
    if args.timeout <= 0:
        print("run_live.py: --timeout must be positive", file=sys.stderr)
        return 2
    path = args.data_dir / DB_NAME
    if not path.exists():
        print(f"run_live.py: {path}: no live store (wrong --data-dir, or no node ever ran there)", file=sys.stderr)
        return 2
    try:
        reply = send_command(args.data_dir, args.command, {"mode": args.mode} if args.mode else {}, args.timeout)
    except KeyboardInterrupt:
        print(f"interrupted: the {args.command} command was withdrawn", file=sys.stderr)
        return 130
    if reply.status == NO_ANSWER:
        print(f"no node answered within {args.timeout:g} s: the node in {args.data_dir} is not running or not answering; "
              f"the {args.command} command was withdrawn", file=sys.stderr)
        if args.command == "status":
            with StoreReader(path) as reader:
                print(_last_status(reader))
        return 2
    if reply.status == REFUSED:
        print(f"{args.command} refused: {reply.answer}", file=sys.stderr)
        return 1
    print(reply.answer if args.command == "status" else f"{args.command} {reply.status}: {reply.answer}")
    return 0


def permissions(status: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Whether each command would be accepted now, and why not, judged from a ``node_status`` row
    (``StoreReader.node_status()``) - for a dashboard's buttons. The node's answer stays the
    authority (its state may have moved since the row was written)."""
    if status is None:
        no = {"allowed": False, "reason": "no node status yet"}
        return {c: dict(no) for c in ("activate", "deactivate", "resolve")}
    position = status.get("position") or {}
    flat = not position or str(position.get("side", "FLAT")).upper() == "FLAT" or not position.get("qty")
    s = ControlState(mode=status.get("mode") or "paper", active=bool(status.get("active")), halted=bool(status.get("halted")),
                     halt_reason=status.get("halt_reason"), warmup_minutes=int(status.get("warmup_minutes") or 0),
                     warmup_needed=int(status.get("warmup_needed") or 0), flat=flat)
    out = {}
    for command in ("activate", "deactivate", "resolve"):
        # no alerts, no callbacks: a dry judgement on a copy
        answer = Controller(ControlState(**s.__dict__)).handle(command)
        out[command] = {"allowed": answer.status == ACCEPTED, "reason": None if answer.status == ACCEPTED else answer.text}
    return out


_WITHDRAWN = "withdrawn by the CLI: no node answered in time"


def _withdraw(path: Path, cid: int) -> dict[str, Any] | None:
    """Mark an unanswered command refused so no node acts on it later; returns the row as it is
    now (a node may have answered in the meantime)."""
    import sqlite3  # noqa: PLC0415

    db = sqlite3.connect(str(path), timeout=10)
    try:
        with db:
            db.execute("UPDATE control SET status = ?, answer = ?, answered_ts_ms = ? WHERE id = ? AND status = 'pending'",
                       (REFUSED, _WITHDRAWN, now_ms(), cid))
        cur = db.execute("SELECT * FROM control WHERE id = ?", (cid,))
        names = [d[0] for d in cur.description]
        found = cur.fetchone()
        return dict(zip(names, found, strict=True)) if found else None
    finally:
        db.close()


def _last_status(reader: StoreReader) -> str:
    st = reader.node_status()
    if st is None:
        return "no node status has ever been written here"
    age = (now_ms() - st["ts_ms"]) / 1000
    alive = st.get("pid") is not None and _pid_alive(int(st["pid"]))
    lines = {"last status": f"{_iso(st['ts_ms'])} ({age:,.0f} s ago)", "node pid": f"{st.get('pid')} ({'process exists' if alive else 'not running'})"}
    for key in ("mode", "active", "halted", "halt_reason", "warmup_minutes", "warmup_needed", "position", "balance", "day_pnl", "kill_switch_limit"):
        if st.get(key) is not None:
            lines[key] = _show(st[key])
    return _table(lines)


def _iso(ts_ms: int) -> str:
    from auction_trader.live.alerts import iso_utc  # noqa: PLC0415

    return iso_utc(ts_ms)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["ANSWERED", "ACCEPTED", "NO_ANSWER", "REFUSED", "MODES", "Answer", "ControlPoller", "ControlState", "Controller", "Reply", "cli", "normal_mode", "permissions", "send_command", "start_mode_refusal"]
