"""The status page: a read-only Starlette app with server-side Jinja2 templates over :class:`StatusData`.

Pages (every one also answers ``?format=json`` with the data it renders, except the HTML-only grid fragment)::

    /                                       environments: what each syndic serves; running and latest rollouts
    /releases, /releases/<id>               releases with their manifests and where they run
    /rollouts                               every rollout, newest first
    /rollouts/<env>/<id>                    the batch x minion grid, gate decisions, the journal; live while running
    /rollouts/<env>/<id>/grid               the grid alone (what the live view polls)
    /rollouts/<env>/<id>/cells/<b>/<minion> one cell: the minion's step results and state output
    /audit                                  commit -> release -> rollout, approvals, freeze overrides
    /healthz                                "ok" (no token needed)

Only GET and HEAD are routed: nothing can change state through this app. With a ``token``, every request but
``/healthz`` needs it: ``Authorization: Bearer <token>``, or once ``?token=<token>`` in a browser, which sets an
HttpOnly cookie and redirects to the same page without it (so the token does not stay in the address bar).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import SaltpipeError
from pipeline.web.data import StatusData

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "saltpipe_status_token"
MARKS = {"succeeded": "\u2713", "failed": "\u2717", "missing": "?", "rolled_back": "\u21b6",
         "untouched": "\u00b7", "pending": "\u2026"}


class TokenGate:
    """ASGI middleware: refuse every request without the token (401), except ``/healthz``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def _ok(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(value.encode(), self.token)  # type: ignore[union-attr]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        if self._ok(bearer) or self._ok(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        if self._ok(request.query_params.get("token")):
            query = "&".join(f"{k}={quote(v)}" for k, v in request.query_params.multi_items() if k != "token")
            response: Response = RedirectResponse(scope["path"] + (f"?{query}" if query else ""), status_code=303)
            response.set_cookie(COOKIE, self.token.decode(), httponly=True, samesite="strict")
        else:
            response = PlainTextResponse("a token is required: Authorization: Bearer <token>, or ?token=<token>",
                                         status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def _json_default(value: Any) -> Any:
    return str(value)


def create_app(data: StatusData, *, token: str | None = None) -> ASGIApp:
    """The ASGI app over ``data``; with ``token``, wrapped in :class:`TokenGate`."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    templates = Jinja2Templates(env=env)
    templates.env.globals["marks"] = MARKS
    templates.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=1, sort_keys=True, default=_json_default)
    templates.env.filters["short"] = lambda v, n=12: (str(v)[:n] if v else "")

    def page(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> Response:
        if request.query_params.get("format") == "json":
            return JSONResponse(json.loads(json.dumps(context, default=_json_default)), status_code=status)
        return templates.TemplateResponse(request, name, {"nav": name, **context}, status_code=status)

    def not_found(request: Request, message: str) -> Response:
        return page(request, "error.html", {"message": message}, status=404)

    async def index(request: Request) -> Response:
        envs = data.environments()
        running = [e["latest"] for e in envs if e["current"] and e["latest"]]
        return page(request, "index.html", {"environments": envs, "running": running,
                                             "recent": data.rollout_list()[:10]})

    async def releases(request: Request) -> Response:
        return page(request, "releases.html", {"releases": data.release_list()})

    async def release(request: Request) -> Response:
        try:
            found = data.release(request.path_params["release"])
        except (SaltpipeError, ValueError) as exc:
            return not_found(request, str(exc))
        return page(request, "release.html", {"release": found})

    async def rollouts(request: Request) -> Response:
        return page(request, "rollouts.html", {"rollouts": data.rollout_list()})

    def _rollout(request: Request) -> dict[str, Any] | None:
        try:
            return data.rollout(request.path_params["env"], request.path_params["rollout"])
        except SaltpipeError:
            return None

    async def rollout(request: Request) -> Response:
        found = _rollout(request)
        if found is None:
            return not_found(request, f"no rollout {request.path_params['rollout']} of {request.path_params['env']}")
        return page(request, "rollout.html", {"r": found})

    async def grid(request: Request) -> Response:
        found = _rollout(request)
        if found is None:
            return PlainTextResponse("no such rollout", status_code=404)
        return templates.TemplateResponse(request, "_grid.html", {"r": found})

    async def cell(request: Request) -> Response:
        p = request.path_params
        try:
            found = data.cell(p["env"], p["rollout"], int(p["batch"]), p["minion"])
        except (SaltpipeError, KeyError, ValueError) as exc:
            return not_found(request, str(exc))
        return page(request, "cell.html", found)

    async def audit(request: Request) -> Response:
        return page(request, "audit.html", data.audit())

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", index),
        Route("/releases", releases),
        Route("/releases/{release}", release),
        Route("/rollouts", rollouts),
        Route("/rollouts/{env}/{rollout}", rollout),
        Route("/rollouts/{env}/{rollout}/grid", grid),
        Route("/rollouts/{env}/{rollout}/cells/{batch:int}/{minion}", cell),
        Route("/audit", audit),
        Route("/healthz", healthz),
    ]
    app: ASGIApp = Starlette(routes=routes)
    if token:
        app = TokenGate(app, token)
    return app
