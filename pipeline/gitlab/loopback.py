"""A small in-memory GitLab (API v4) on loopback, for the demo and the tests that run saltpipe in subprocesses.

It is not GitLab: it answers, in GitLab's shapes, only what saltpipe asks about rollout approvals and records
deployments - the token's user, users by name, project members' roles, protected environments, a pipeline and
its jobs (who started it, who played a manual job), deployments (created, updated, listed) and commit comments
(rollout notifications; no commit has a merge request here). Everything it
was asked is kept in :attr:`LoopbackGitLab.requests`. The real client (:class:`PythonGitLabClient`) talks to
it over HTTP like to any GitLab; the unit tests of the client use recorded payloads instead.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PROJECT_ID = "1"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LoopbackGitLab:
    """Project :data:`PROJECT_ID` of a GitLab on ``127.0.0.1`` (``url`` once :meth:`start` ran)."""

    def __init__(self, project_id: str | None = PROJECT_ID) -> None:
        #: The project answered (``None``: any id, as a gitlab-ci-local job may have any CI_PROJECT_ID).
        self.project_id = project_id
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.levels: dict[int, int] = {}
        self.protected: dict[str, list[dict[str, Any]]] = {}
        self.pipelines: dict[int, dict[str, Any]] = {}
        self.deployments: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []  # commit comments (rollout notifications, pipeline/notify.py)
        self.requests: list[tuple[str, str, Any]] = []
        self.url = ""
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # -- the model ---------------------------------------------------------------------------------------------

    def add_user(self, username: str, access_level: int | None = None) -> str:
        """Add an active user (a project member with ``access_level`` when given); returns their token."""
        uid = 100 + len(self.users)
        self.users[username] = {"id": uid, "username": username, "name": username.title(), "state": "active",
                                "locked": False, "web_url": f"{self.url}/{username}"}
        if access_level is not None:
            self.levels[uid] = access_level
        token = f"glpat-loopback-{secrets.token_hex(8)}"
        self.tokens[token] = username
        return token

    def protect(self, environment: str, access_level: int = 40) -> None:
        """Protect ``environment``: members with at least ``access_level`` may deploy to it."""
        self.protected[environment] = [{"id": len(self.protected) + 1, "access_level": access_level,
                                        "access_level_description": "Maintainers", "user_id": None,
                                        "group_id": None, "group_inheritance_type": 0}]

    def add_pipeline(self, pipeline_id: int, started_by: str, played: dict[str, str | None] | None = None) -> None:
        """Pipeline ``pipeline_id`` started by ``started_by``; ``played`` maps manual jobs to who played them."""
        jobs = [{"id": pipeline_id * 10 + i, "name": name, "stage": name.split(":")[0],
                 "status": "success" if who else "manual", "allow_failure": False,
                 "user": self.users[who or started_by], "web_url": f"{self.url}/-/jobs/{pipeline_id * 10 + i}"}
                for i, (name, who) in enumerate((played or {}).items())]
        self.pipelines[pipeline_id] = {"id": pipeline_id, "iid": pipeline_id, "sha": "0" * 40, "ref": "main",
                                       "status": "running", "source": "push", "created_at": _now(),
                                       "web_url": f"{self.url}/-/pipelines/{pipeline_id}",
                                       "user": self.users[started_by], "jobs": jobs}

    # -- HTTP --------------------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict[str, str], body: Any, user: str) -> tuple[int, Any]:
        """(status, JSON) for ``method path`` asked by ``user`` (the token's owner)."""
        if method == "GET" and path == "/user":
            return 200, self.users[user]
        if method == "GET" and path == "/users":
            found = self.users.get(query.get("username", ""))
            return 200, [found] if found else []
        project = re.fullmatch(r"/projects/([^/]+)(/.*)?", path)
        if project is None or (self.project_id is not None and unquote(project.group(1)) != self.project_id):
            return 404, {"message": "404 Project Not Found"}
        rest = project.group(2) or ""
        if rest == "" and method == "GET":
            return 200, {"id": int(PROJECT_ID), "path_with_namespace": "demo/salt", "default_branch": "main",
                         "web_url": f"{self.url}/demo/salt"}
        if m := re.fullmatch(r"/members/all/(\d+)", rest):
            found = next((u for u in self.users.values() if u["id"] == int(m.group(1))), None)
            if found is None or int(m.group(1)) not in self.levels:
                return 404, {"message": "404 Not found"}
            return 200, {**found, "access_level": self.levels[found["id"]], "membership_state": "active"}
        if m := re.fullmatch(r"/protected_environments/([^/]+)", rest):
            levels = self.protected.get(unquote(m.group(1)))
            if levels is None:
                return 404, {"message": "404 Not found"}
            return 200, {"name": unquote(m.group(1)), "deploy_access_levels": levels, "required_approval_count": 0}
        if m := re.fullmatch(r"/pipelines/(\d+)(/jobs)?", rest):
            pipeline = self.pipelines.get(int(m.group(1)))
            if pipeline is None:
                return 404, {"message": "404 Not found"}
            if m.group(2):
                return 200, pipeline["jobs"]
            return 200, {k: v for k, v in pipeline.items() if k != "jobs"}
        if m := re.fullmatch(r"/repository/commits/([0-9a-f]{7,40})/(merge_requests|comments)", rest):
            if m.group(2) == "merge_requests":
                return 200, []  # no merge request here: notifications go to the commit
            if method == "POST":
                comment = {"note": body.get("note"), "author": self.users[user], "sha": m.group(1)}
                self.comments.append(comment)
                return 201, comment
        if rest == "/deployments" and method == "POST":
            return self._create_deployment(body, user)
        if rest == "/deployments" and method == "GET":
            return 200, self.deployments
        if (m := re.fullmatch(r"/deployments/(\d+)", rest)) and method == "PUT":
            found = next((d for d in self.deployments if d["id"] == int(m.group(1))), None)
            if found is None:
                return 404, {"message": "404 Not found"}
            found.update(status=body.get("status"), updated_at=_now())
            return 200, found
        return 404, {"message": "404 Not found"}

    def _create_deployment(self, body: Any, user: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("environment") or not body.get("sha"):
            return 400, {"message": "environment and sha are required"}
        number = len(self.deployments) + 1
        deployment = {"id": 5000 + number, "iid": number, "ref": body.get("ref"), "sha": body["sha"],
                      "status": body.get("status", "created"), "created_at": _now(), "updated_at": _now(),
                      "user": self.users[user], "environment": {"id": 1, "name": body["environment"]},
                      "deployable": None}
        self.deployments.append(deployment)
        return 201, deployment

    def start(self) -> "LoopbackGitLab":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                user = fake.tokens.get(self.headers.get("PRIVATE-TOKEN") or "")
                with fake._lock:
                    fake.requests.append((self.command, parts.path, body))
                    if user is None:
                        status, data = 401, {"message": "401 Unauthorized"}
                    elif not parts.path.startswith("/api/v4/"):
                        status, data = 404, {"message": "404 Not Found"}
                    else:
                        status, data = fake.answer(self.command, parts.path[len("/api/v4"):], query, body, user)
                out = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def environ(self, token: str, pipeline_id: int | None = None) -> dict[str, str]:
        """The variables that point saltpipe at this GitLab as the owner of ``token`` (in pipeline
        ``pipeline_id``: as a CI job of it)."""
        env = {"CI_SERVER_URL": self.url, "CI_PROJECT_ID": self.project_id or PROJECT_ID, "SALTPIPE_GITLAB_TOKEN": token}
        if pipeline_id is not None:
            env["CI_PIPELINE_ID"] = str(pipeline_id)
        return env
