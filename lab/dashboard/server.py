"""The dashboard's web server: the page, and the seats' events as JSON (Python's own HTTP server).

Bound to 127.0.0.1 by default; ``--bind`` opens it to the trainer's LAN. It only reads files under
the seats' lab folders: no request reaches a node. The page loads nothing from the network.

    GET /                                   the page (static/index.html, app.js, style.css)
    GET /api/seats                          [{key, title}]
    GET /api/stream?seat=K                  what the seat's events are now: {id, kind, run, drill}
    GET /api/events?seat=K&id=I&offset=N    {id, offset, events}: whole lines from byte N of stream I
    GET /api/exam?seat=K[&view=trainee]     the seat's exam (the fault only in the trainer's view)
    GET /api/strings?lang=zh                the page's words
    POST /api/seen, GET /api/seen           what the page showed when (a leader, a VIP holder): the
                                            browser test compares it with the watch's samples
"""
from __future__ import annotations

import json
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from lab import i18n
from lab.dashboard import feed

STATIC = Path(__file__).parent / "static"
STRING_PREFIX = "dash_"


def strings(lang: str) -> dict[str, str]:
    """Every ``dash_*`` UI string in ``lang`` (English where it lacks one)."""
    keys = [k for k in (i18n.catalog(i18n.DEFAULT).get("ui") or {}) if k.startswith(STRING_PREFIX)]
    with i18n.language(lang):          # the page's language, not the server command's
        return {k[len(STRING_PREFIX):]: i18n.t(k) for k in keys}


def stream_id(s: feed.Stream) -> str:
    """Changes when the seat's events move to another file (a new drill, the idle sampler)."""
    if s.path is None:
        return ""
    try:
        st = s.path.stat()
    except OSError:
        return ""
    return f"{st.st_dev}-{st.st_ino}"


SEEN_KEPT = 1000


class Dashboard:
    def __init__(self, seats: list[feed.Seat]) -> None:
        self.seats = {s.key: s for s in seats}
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def saw(self, entry: Any) -> None:
        if isinstance(entry, dict):
            with self._lock:
                self.seen = (self.seen + [entry])[-SEEN_KEPT:]

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/seen":
            with self._lock:
                return 200, list(self.seen)
        if path == "/api/seats":
            return 200, [{"key": s.key, "title": s.title} for s in self.seats.values()]
        if path == "/api/strings":
            lang = query.get("lang", i18n.DEFAULT)
            return 200, strings(lang if lang in i18n.LANGS else i18n.DEFAULT)
        seat = self.seats.get(query.get("seat", ""))
        if seat is None:
            return 404, {"error": f"no seat {query.get('seat')!r}"}
        if path == "/api/stream":
            s = feed.current(seat.lab_dir)
            return 200, {"id": stream_id(s), "kind": s.kind, "run": s.run, "drill": s.drill, **s.extra}
        if path == "/api/events":
            s = feed.current(seat.lab_dir)
            sid = stream_id(s)
            if s.path is None or sid != query.get("id"):
                return 200, {"id": sid, "offset": 0, "events": [], "moved": True}
            try:
                offset = max(0, int(query.get("offset", "0")))
            except ValueError:
                return 400, {"error": "offset: a whole number of bytes"}
            events, offset = feed.read_events(s.path, offset)
            return 200, {"id": sid, "offset": offset, "events": events}
        if path == "/api/exam":
            return 200, feed.exam_view(seat.lab_dir, trainer=query.get("view") != "trainee")
        return 404, {"error": f"no such path {path}"}


def handler(dash: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            url = urlparse(self.path)
            if url.path.startswith("/api/"):
                status, body = dash.answer(url.path, {k: v[-1] for k, v in parse_qs(url.query).items()})
                self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")
                return
            name = "index.html" if url.path in ("", "/") else url.path.lstrip("/")
            file = (STATIC / name).resolve()
            if STATIC.resolve() not in file.parents or not file.is_file():
                self._send(404, b"not found", "text/plain")
                return
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self._send(200, file.read_bytes(), kind + ("; charset=utf-8" if kind.startswith("text/") or
                                                      kind.endswith("javascript") else ""))

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/api/seen":
                self._send(404, b"not found", "text/plain")
                return
            length = min(int(self.headers.get("Content-Length") or 0), 4096)
            try:
                dash.saw(json.loads(self.rfile.read(length) or b"null"))
            except ValueError:
                self._send(400, b"not JSON", "text/plain")
                return
            self._send(204, b"", "text/plain")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:   # quiet: the page polls twice a second
            return

    return Handler


def serve(seats: list[feed.Seat], bind: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """Start serving in a thread (``port`` 0: any free one, see ``server_address``); stop it with ``shutdown()``."""
    server = ThreadingHTTPServer((bind, port), handler(Dashboard(seats)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server
