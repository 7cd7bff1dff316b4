"""The FastAPI app: three pages (index, trading view, grid view), their JSON API and a WebSocket.

Pages and the chart library are served by the app itself; nothing is fetched from the internet
(lightweight-charts.js for the trading view and plotly.js for the grid view come from the installed
lightweight-charts and plotly packages). On 127.0.0.1 there is no login; bound to any
other address the app requires a token (from the environment) on every request but the login
form, as a ``Bearer`` header or the cookie that the form sets.

API (every ``{key}`` is a directory's path relative to ``--runs``):

==================================  ==================================================================
``GET  /api/library``               every run and grid
``GET  /api/run/{key}``             run detail: identity, summary, config, thresholds, status
``GET  /api/minutes/{key}``         per-minute columns in ``[start, end]`` (ms), account figures included
``GET  /api/profile/{key}?ts=``     the volume profile and value area at a minute
``GET  /api/footprint/{key}``       buy / sell volume per minute and price bin (``side=inferred|exchange``)
``GET  /api/markers/{key}``         signals, fills (with reason codes) and round trips
``GET  /api/state/{key}?ts=``       position, P&L, heat, ambiguity, kill switch at a minute
``GET  /api/alerts/{key}``          the alert feed
``POST /api/control/{key}``         activate / deactivate / resolve (refused with the reason when not allowed)
``GET  /api/grid/{key}?metric=``    the combinations with the metric's neighbour spread
``GET  /api/heatmap/{key}``         a metric over two swept parameters
``GET  /api/compare/{key}?a=&b=``   two combinations side by side (and their single runs, when run)
``POST /api/rerun/{key}?run_id=``   run one combination alone (full outputs); ``GET /api/job/{id}``
``WS   /ws/run/{key}``              new minutes, status and alerts as they appear
``GET  /assets/{digest}/{name}``    the pages' CSS and scripts and the chart libraries (see :class:`Assets`)
==================================  ==================================================================
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import ipaddress
import math
import sqlite3
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.gzip import GZipMiddleware

from auction_trader.dashboard.library import Library
from auction_trader.dashboard.settings import DashboardSettings
from auction_trader.dashboard.source import ControlRefused

STATIC = Path(__file__).with_name("static")
COOKIE = "auction_trader_token"
PUSH_INTERVAL_S = 0.25
PUBLIC_PATHS = ("/login", "/assets/", "/favicon.ico")
#: An asset URL names its content: a browser keeps it a year and never asks again.
IMMUTABLE = "public, max-age=31536000, immutable"


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the plotly wheel (the grid view's charts)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def lightweight_charts_js() -> Path:
    """TradingView's Lightweight Charts (standalone build, 160 KB) as shipped inside the
    ``lightweight-charts`` wheel: the trading view's charts. Found through the wheel's file list,
    without importing its Python package (which imports pandas and pywebview)."""
    from importlib.metadata import PackageNotFoundError, distribution  # noqa: PLC0415

    try:
        path = Path(str(distribution("lightweight-charts").locate_file("lightweight_charts/js/lightweight-charts.js")))
    except PackageNotFoundError as e:
        raise RuntimeError("the dashboard needs the lightweight-charts package (pip install -c constraints.txt -e .)") from e
    if not path.is_file():
        raise RuntimeError(f"lightweight-charts is installed but {path} is missing: reinstall it (pip install --force-reinstall lightweight-charts==2.1)")
    return path


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):
        return _clean(obj.item())
    return obj


def _json(obj: Any) -> JSONResponse:
    return JSONResponse(_clean(obj))


def create_app(runs: Path | None, settings: DashboardSettings | None = None, token: str | None = None, live: Any = None) -> FastAPI:
    """The app over the runs folder ``runs`` and/or a live node (``live``: a
    :class:`~auction_trader.dashboard.live.LiveSource`, served at ``/run/live``); ``token`` set:
    every request must carry it."""
    library = Library(runs, settings)
    if live is not None:
        library.live[live.key] = live
    warm_imports()
    from auction_trader.dashboard.grids import Jobs  # noqa: PLC0415

    jobs = Jobs(on_done=lambda job: _after_job(library, job))
    assets = Assets({**{p.name: p for p in sorted(STATIC.glob("*.js")) + sorted(STATIC.glob("*.css"))}, "plotly.min.js": plotly_js(), "lightweight-charts.js": lightweight_charts_js()})

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # The first page open must not pay for reading a run: read the newest ones ahead.
        library.warm_in_background()
        threading.Thread(target=assets.compress_all, name="dashboard-gzip", daemon=True).start()
        yield
        library.stopping.set()
        jobs.stop()

    app = FastAPI(title="auction-trader dashboard", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.library = library
    app.state.jobs = jobs
    app.add_middleware(GZipMiddleware, minimum_size=2048)

    if token:

        @app.middleware("http")
        async def require_token(request: Request, call_next):
            path = request.url.path
            if any(path.startswith(p) for p in PUBLIC_PATHS) or _authorized(request.headers.get("authorization"), request.cookies.get(COOKIE), token):
                return await call_next(request)
            if path.startswith("/api/"):
                return JSONResponse({"detail": "a token is required (Authorization: Bearer ..., or log in at /login)"}, status_code=401)
            return RedirectResponse(f"/login?next={path}", status_code=303)

        @app.get("/login", response_class=HTMLResponse)
        def login_form() -> HTMLResponse:
            return HTMLResponse(assets.link((STATIC / "login.html").read_text()))

        @app.post("/login")
        async def login(request: Request) -> Response:
            form = (await request.body()).decode()
            given = dict(p.split("=", 1) for p in form.split("&") if "=" in p).get("token", "")
            from urllib.parse import unquote_plus  # noqa: PLC0415

            if not hmac.compare_digest(unquote_plus(given), token):
                return HTMLResponse(assets.link((STATIC / "login.html").read_text()).replace("<!--error-->", "<p class=err>wrong token</p>"), status_code=401)
            resp = RedirectResponse("/", status_code=303)
            resp.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return resp

    @app.get("/assets/{digest}/{name}")
    def asset(digest: str, name: str, request: Request) -> Response:
        # Compressed once per process, not per request (plotly.min.js is 4.6 MB: ~0.3 s of CPU).
        if not assets.current(name, digest):
            raise HTTPException(404, f"no asset {digest}/{name} (the page that asked for it is older than this server: reload it)")
        headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding", "ETag": f'"{digest}"'}
        media = "text/css" if name.endswith(".css") else "application/javascript"
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(assets.gzipped(name), media_type=media, headers={**headers, "Content-Encoding": "gzip"})
        return FileResponse(assets.paths[name], media_type=media, headers=headers)

    # -- pages -------------------------------------------------------------------------------------

    def page(name: str, title: str) -> HTMLResponse:
        # Pages are small and always asked again (no-cache), so they always name the current assets.
        return HTMLResponse(assets.link((STATIC / name).read_text().replace("{{title}}", title)), headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return page("index.html", "auction-trader")

    @app.get("/run/{key:path}", response_class=HTMLResponse)
    def run_page(key: str) -> HTMLResponse:
        _lookup(library.run, key)
        return page("run.html", f"{key} · auction-trader")

    @app.get("/grid/{key:path}", response_class=HTMLResponse)
    def grid_page(key: str) -> HTMLResponse:
        _lookup(library.grid, key)
        return page("grid.html", f"{key} · grid · auction-trader")

    # -- runs --------------------------------------------------------------------------------------

    @app.get("/api/library")
    def api_library() -> JSONResponse:
        listing = library.listing()
        library.warm_in_background()  # the runs it lists are likely opened next
        return _json(listing)

    @app.get("/api/run/{key:path}")
    def api_run(key: str) -> JSONResponse:
        run = _lookup(library.run, key)
        return _json({**run.info(), "status": run.status(), "head": run.head()})

    @app.get("/api/minutes/{key:path}")
    def api_minutes(key: str, start: int | None = None, end: int | None = None) -> JSONResponse:
        return _json(_call(_lookup(library.run, key).minutes, start, end))

    @app.get("/api/profile/{key:path}")
    def api_profile(key: str, ts: int = Query(..., description="the minute (ts_min, ms)")) -> JSONResponse:
        return _json(_call(_lookup(library.run, key).profile, ts))

    @app.get("/api/footprint/{key:path}")
    def api_footprint(key: str, start: int, end: int, side: str = "inferred", bin_ticks: int | None = None, rows: int | None = None) -> JSONResponse:
        return _json(_call(_lookup(library.run, key).footprint, start, end, side, bin_ticks, rows))

    @app.get("/api/markers/{key:path}")
    def api_markers(key: str, start: int | None = None, end: int | None = None) -> JSONResponse:
        return _json(_call(_lookup(library.run, key).markers, start, end))

    @app.get("/api/state/{key:path}")
    def api_state(key: str, ts: int) -> JSONResponse:
        return _json(_call(_lookup(library.run, key).state, ts))

    @app.get("/api/alerts/{key:path}")
    def api_alerts(key: str, since: int | None = None) -> JSONResponse:
        return _json(_call(_lookup(library.run, key).alerts, since))

    @app.post("/api/control/{key:path}")
    def api_control(key: str, command: str) -> JSONResponse:
        source = _lookup(library.run, key)
        if command not in ("activate", "deactivate", "resolve"):
            raise HTTPException(400, f"command {command!r}: activate, deactivate or resolve")
        try:
            return _json({"accepted": True, **source.control(command)})
        except ControlRefused as exc:
            return JSONResponse({"accepted": False, "command": command, "reason": str(exc)}, status_code=409)

    # -- grids -------------------------------------------------------------------------------------

    @app.get("/api/grid/{key:path}")
    def api_grid(key: str, metric: str = "net_pnl") -> JSONResponse:
        grid = _lookup(library.grid, key)
        library.scan()
        return _json(_call(grid.table, metric, library.find_run))

    @app.get("/api/heatmap/{key:path}")
    def api_heatmap(key: str, x: str, y: str, metric: str = "net_pnl") -> JSONResponse:
        return _json(_call(_lookup(library.grid, key).heatmap, x, y, metric))

    @app.get("/api/compare/{key:path}")
    def api_compare(key: str, a: str, b: str) -> JSONResponse:
        grid = _lookup(library.grid, key)
        library.scan()
        out = []
        for run_id in (a, b):
            row = _call(grid.row, run_id)
            run_key = library.find_run(run_id)
            entry: dict[str, Any] = {"run_id": run_id, "status": row.status, "params": row.params, "metrics": row.metrics, "run": run_key}
            if run_key:
                run = library.run(run_key)
                minutes = run.minutes(None, None)
                entry["equity"] = {"ts_min": minutes["ts_min"], "equity": minutes["equity"]}
                entry["trades"] = run.markers(None, None)["trades"]
            out.append(entry)
        return _json({"key": key, "a": out[0], "b": out[1]})

    @app.post("/api/rerun/{key:path}")
    def api_rerun(key: str, run_id: str) -> JSONResponse:
        grid = _lookup(library.grid, key)
        library.scan(force=True)
        existing = library.find_run(run_id)
        if existing:
            return _json({"state": "done", "run": existing, "run_id": run_id})
        try:
            job = jobs.submit(grid, run_id)
        except PermissionError as exc:
            return JSONResponse({"state": "refused", "reason": str(exc)}, status_code=409)
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0])) from None
        return _json(job.view())

    @app.get("/api/job/{job_id}")
    def api_job(job_id: int) -> JSONResponse:
        return _json(_call(jobs.get, job_id).view())

    # -- live push ---------------------------------------------------------------------------------

    @app.websocket("/ws/run/{key:path}")
    async def ws_run(ws: WebSocket, key: str) -> None:
        if token and not _authorized(ws.headers.get("authorization"), ws.cookies.get(COOKIE), token):
            await ws.close(code=4401)
            return
        try:
            source = library.run(key)
        except KeyError:
            await ws.close(code=4404)
            return
        await ws.accept()
        head = source.head()
        status = source.status()
        seen_alerts = len(source.alerts(None))
        version = getattr(source, "version", lambda: None)
        seen_version = await asyncio.to_thread(version)
        await ws.send_json(_clean({"type": "hello", "head": head, "status": status}))
        try:
            while True:
                try:  # listening, not sleeping: a client that leaves (or a server shutting down) ends the loop
                    await asyncio.wait_for(ws.receive_text(), timeout=PUSH_INTERVAL_S)
                except TimeoutError:
                    pass
                now_version = await asyncio.to_thread(version)
                if now_version is not None and now_version == seen_version:
                    continue  # a live store nobody wrote to since: nothing to read
                seen_version = now_version
                new = await asyncio.to_thread(source.head)
                new_status = await asyncio.to_thread(source.status)
                if new is not None and (head is None or new > head):
                    start = None if head is None else head + 60_000
                    minutes = await asyncio.to_thread(source.minutes, start, new)
                    alerts = await asyncio.to_thread(source.alerts, None)
                    await ws.send_json(_clean({"type": "minutes", "head": new, "minutes": minutes, "alerts": alerts[seen_alerts:], "status": new_status}))
                    head, status, seen_alerts = new, new_status, len(alerts)
                elif new_status != status:  # halted, activated, warm-up: no new minute needed to show it
                    alerts = await asyncio.to_thread(source.alerts, None)
                    await ws.send_json(_clean({"type": "status", "status": new_status, "alerts": alerts[seen_alerts:]}))
                    status, seen_alerts = new_status, len(alerts)
        except (WebSocketDisconnect, RuntimeError):
            return

    return app


class Assets:
    """The pages' CSS and scripts and the chart libraries (lightweight-charts.js for the trading
    view, plotly.min.js for the grid view) at content-addressed URLs,
    ``/assets/<sha256 prefix>/<name>``, served ``immutable`` for a year: a browser that has opened
    one page never asks for them again, not even to revalidate, and Chromium keeps their compiled
    code (the V8 code cache) with them, so a second open skips most of parsing them.
    A changed file gets a new URL; pages are served ``no-cache`` and name the current ones
    (:meth:`link`). Each file's gzip is made once, on first request or in the background at start."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = dict(paths)
        self.digests = {name: hashlib.sha256(path.read_bytes()).hexdigest()[:16] for name, path in self.paths.items()}
        self._gz: dict[str, bytes] = {}
        self._locks = {name: threading.Lock() for name in self.paths}

    def url(self, name: str) -> str:
        return f"/assets/{self.digests[name]}/{name}"

    def current(self, name: str, digest: str) -> bool:
        return self.digests.get(name) == digest

    def link(self, html: str) -> str:
        """``html`` with its ``/static/NAME`` and ``/static-lib/NAME`` (the libraries) references replaced
        by the assets' current URLs."""
        for name in self.paths:
            html = html.replace(f'"/static/{name}"', f'"{self.url(name)}"').replace(f'"/static-lib/{name}"', f'"{self.url(name)}"')
        return html

    def gzipped(self, name: str) -> bytes:
        with self._locks[name]:  # one lock per file: app.css never waits for plotly's 0.2 s
            if name not in self._gz:
                self._gz[name] = gzip.compress(self.paths[name].read_bytes(), compresslevel=9, mtime=0)
            return self._gz[name]

    def compress_all(self) -> None:
        for name in sorted(self.paths, key=lambda n: n != "plotly.min.js"):
            self.gzipped(name)


def warm_imports() -> None:
    """Import Nautilus (the catalog reader) and the report's summary rows now, not on the first page."""
    import auction_trader.backtest.report  # noqa: F401, PLC0415
    import auction_trader.data.catalog  # noqa: F401, PLC0415


def _authorized(header: str | None, cookie: str | None, token: str) -> bool:
    given = header[7:] if header and header.lower().startswith("bearer ") else cookie
    return bool(given) and hmac.compare_digest(given, token)


def _lookup(get, key: str):
    try:
        return get(key)
    except KeyError as exc:
        raise HTTPException(404, str(exc.args[0])) from None


def _call(fn, *args):
    """Bad input -> 400, an unknown name -> 404, a missing file -> 404, with the message."""
    try:
        return fn(*args)
    except KeyError as exc:
        raise HTTPException(404, str(exc.args[0])) from None
    except (FileNotFoundError, sqlite3.OperationalError) as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def _after_job(library: Library, job) -> None:
    """A finished rerun: point the job at its run directory, and check it is the grid's run id."""
    library.scan(force=True)
    key = library.find_run(job.run_id)
    if key:
        job.run = key
    elif job.state == "done":
        job.state = "failed"
        job.output += f"\nthe run finished but no run directory under {library.root} has run id {job.run_id} (different code or data since the grid?)"


def loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServerHandle:
    """A dashboard serving in a thread of this process (``run_live.py --dashboard``)."""

    url: str
    port: int
    server: Any
    thread: threading.Thread
    source: Any

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (open pages lose their WebSocket), join the thread, close the store reader."""
        self.server.should_exit = True
        self.thread.join(timeout)
        self.source.close()


def serve_in_thread(
    data_dir: str | Path, host: str = "127.0.0.1", port: int = 8050, *, config: Any = None, runs: Path | None = None,
    settings: DashboardSettings | None = None, token: str | None = None, start_timeout: float = 30.0,
) -> ServerHandle:  # fmt: skip
    """Serve the trading view of the node whose data dir is ``data_dir`` (``/run/live``), and the
    runs under ``runs`` if given, from a daemon thread. ``port=0`` picks a free port (``handle.port``).
    ``config``: the node's :class:`~auction_trader.config.AuctionConfig` (its windows and thresholds).
    A non-loopback ``host`` needs a ``token``. Returns once the server accepts connections."""
    import uvicorn  # noqa: PLC0415

    from auction_trader.dashboard.live import LiveSource  # noqa: PLC0415

    if not loopback(host) and not token:
        raise ValueError(f"host {host} is reachable from other machines: pass a token (16+ characters)")
    source = LiveSource(data_dir, config, settings)
    app = create_app(runs, settings, token, live=source)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(5)
        source.close()
        raise RuntimeError(f"the dashboard did not start on {host}:{port} within {start_timeout:.0f} s (port in use?)")
    bound = server.servers[0].sockets[0].getsockname()[1]
    return ServerHandle(f"http://{host}:{bound}/run/{source.key}", bound, server, thread, source)
