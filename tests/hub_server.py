"""A small Hugging Face Hub, enough of its HTTP protocol for huggingface_hub and transformers to talk to it.

Tests start it on 127.0.0.1 (ephemeral port) and point `HF_ENDPOINT` at it, so that `gpt2_scratch.publish` and
`from_pretrained("user/repo")` run their real network code. It keeps repositories in memory as git-like commits
(a tree of path -> bytes per commit, branches and pull-request refs pointing at commits) and answers:

- GET  /api/whoami-v2                                 whoami: the token's user, its organizations and role
- POST /api/repos/create                              create_repo (409 when it exists, as the Hub does)
- POST /api/validate-yaml                             the README metadata check create_commit makes first
- POST /api/models/{repo}/preupload/{rev}             upload modes: always "regular" (content inline in the commit)
- POST /api/models/{repo}/commit/{rev}[?create_pr=1]  the NDJSON commit: header, file, deletedFile, deletedFolder
- POST /api/models/{repo}/branch/{branch}             create_branch
- GET  /api/models/{repo}[/revision/{rev}]            model_info / repo_info
- GET  /api/models/{repo}/tree/{rev}[/{path}]         list_repo_tree (used by snapshot_download and list_repo_files)
- HEAD, GET /{repo}/resolve/{rev}/{path}              file metadata (X-Repo-Commit, ETag, Content-Length) and bytes

Every upload mode is "regular" because huggingface_hub sends "lfs" files through Xet storage whenever hf_xet is
installed, and Xet is a separate service; regular uploads carry the bytes base64-encoded in the commit itself. No
response carries an X-Xet-Hash header, so downloads use plain HTTP. Writes (and reads of private repositories)
need `Authorization: Bearer <token>` with the server's token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_blob_id(content: bytes) -> str:
    """The id git gives a file's content; huggingface_hub compares it to skip files that did not change."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit id -> tree (path -> content)
    refs: dict[str, str] = field(default_factory=dict)  # "main", other branches, "refs/pr/N" -> commit id
    messages: dict[str, str] = field(default_factory=dict)  # commit id -> summary
    pull_requests: dict[int, str] = field(default_factory=dict)  # number -> title

    def commit(self, tree: dict[str, bytes], parent: str | None, summary: str) -> str:
        commit_id = hashlib.sha1(json.dumps([parent, summary, sorted(tree), len(self.commits)]).encode()).hexdigest()
        self.commits[commit_id] = tree
        self.messages[commit_id] = summary
        return commit_id

    def resolve(self, revision: str) -> str | None:
        """A branch, pull-request ref or full commit id -> commit id."""
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class HubError(Exception):
    """An error answer, with the X-Error-Code huggingface_hub turns into its exception classes."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None, **extra):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit
        self.extra = extra  # more fields of the JSON body


class HubServer:
    """The in-memory Hub. Use as a context manager: `with HubServer(token="...") as hub: hub.url`."""

    def __init__(self, token: str, user: str = "user", orgs: tuple[str, ...] = (), role: str = "write"):
        self.token = token
        self.user, self.orgs, self.role = user, orgs, role  # whom the token belongs to, and what it may do
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests to inspect
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]

    # --- routes: each returns (status, headers, body) or raises HubError ---

    def route(self, method: str, path: str, query: dict, headers, body: bytes):
        authorized = headers.get("authorization") == f"Bearer {self.token}"
        if method == "GET" and path == "/api/whoami-v2":
            return self.whoami(authorized)
        if method == "POST" and path == "/api/repos/create":
            return self.create_repo(json.loads(body), authorized)
        if method == "POST" and path == "/api/validate-yaml":
            return self.validate_yaml(json.loads(body))
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/(preupload|commit|branch)/([^/]+)", path):
            if method != "POST":
                raise HubError(405, "method not allowed")
            repo = self.writable_repo(m[1], authorized)
            revision = unquote(m[3])
            if m[2] == "preupload":
                return self.preupload(repo, revision, json.loads(body))
            if m[2] == "commit":
                return self.commit(m[1], repo, revision, body, create_pr=query.get("create_pr") == ["1"])
            return self.create_branch(repo, revision, json.loads(body or b"{}"))
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/discussions(?:/(\d+))?", path):
            if method == "POST" and m[2] is None:
                return self.open_pull_request(self.writable_repo(m[1], authorized), json.loads(body))
            return self.pull_request(m[1], self.readable_repo(m[1], authorized), int(m[2] or 0))
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            return self.model_info(m[1], unquote(m[2] or "main"), authorized)
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.+))?", path):
            recursive = query.get("recursive", ["False"])[0].lower() == "true"
            return self.tree(m[1], unquote(m[2]), unquote(m[3] or ""), recursive, authorized)
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            return self.resolve_file(m[1], unquote(m[2]), unquote(m[3]), authorized, with_body=method == "GET")
        raise HubError(404, f"this test Hub does not serve {method} {path}")

    def whoami(self, authorized: bool):
        if not authorized:
            raise HubError(401, "Invalid credentials in Authorization header")
        orgs = [{"type": "org", "name": name} for name in self.orgs]
        return 200, {}, {"type": "user", "name": self.user, "orgs": orgs, "auth": {"accessToken": {"role": self.role}}}

    def create_repo(self, payload: dict, authorized: bool):
        if not authorized:
            raise HubError(401, "Invalid credentials in Authorization header")
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.repos:
            raise HubError(409, "You already created this model repo", url=f"{self.url}/{repo_id}")
        repo = Repo(private=payload.get("visibility") == "private")
        repo.refs["main"] = repo.commit({".gitattributes": GITATTRIBUTES}, None, "initial commit")
        self.repos[repo_id] = repo
        return 200, {}, {"url": f"{self.url}/{repo_id}", "name": repo_id, "id": repo_id}

    def validate_yaml(self, payload: dict):
        content = payload["content"]
        if content.startswith("---"):
            try:
                yaml.safe_load(content.split("---", 2)[1])
            except yaml.YAMLError as error:
                return 400, {}, {"errors": [{"message": str(error)}]}
        return 200, {}, {"errors": [], "warnings": []}

    def writable_repo(self, repo_id: str, authorized: bool) -> Repo:
        if not authorized:
            raise HubError(401, "Invalid credentials in Authorization header")
        if repo_id not in self.repos:
            raise HubError(404, "Repository not found", code="RepoNotFound")
        return self.repos[repo_id]

    def readable_repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HubError(401, "Repository not found", code="RepoNotFound")
        return repo

    def commit_of(self, repo: Repo, revision: str) -> str:
        commit_id = repo.resolve(revision)
        if commit_id is None:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return commit_id

    def preupload(self, repo: Repo, revision: str, payload: dict):
        tree = repo.commits.get(repo.resolve(revision) or "", {})
        files = [
            {
                "path": f["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_blob_id(tree[f["path"]]) if f["path"] in tree else None,
            }
            for f in payload["files"]
        ]
        return 200, {}, {"files": files}

    def commit(self, repo_id: str, repo: Repo, revision: str, body: bytes, create_pr: bool):
        parent = self.commit_of(repo, revision)
        tree = dict(repo.commits[parent])
        summary = ""
        for line in body.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
            elif key == "file":
                tree[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in tree:
                    raise HubError(404, "A file with this name doesn't exist", code="EntryNotFound")
                del tree[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                tree = {path: content for path, content in tree.items() if not path.startswith(prefix)}
            else:
                raise HubError(400, f"this test Hub never asks for {key!r} operations")
        commit_id = repo.commit(tree, parent, summary)
        pr_url = None
        if create_pr:
            number = 1 + sum(ref.startswith("refs/pr/") for ref in repo.refs)
            repo.refs[f"refs/pr/{number}"] = commit_id
            pr_url = f"{self.url}/{repo_id}/discussions/{number}"
        else:
            repo.refs[revision] = commit_id
        commit_url = f"{self.url}/{repo_id}/commit/{commit_id}"
        return 200, {}, {"commitUrl": commit_url, "commitOid": commit_id, "pullRequestUrl": pr_url}

    def open_pull_request(self, repo: Repo, payload: dict):
        """What huggingface_hub's upload pipeline does for create_pr=True: open the pull request (a ref at main's
        commit), then commit to that ref."""
        if not payload.get("pullRequest"):
            raise HubError(400, "this test Hub opens pull requests only, not discussions")
        number = 1 + sum(ref.startswith("refs/pr/") for ref in repo.refs)
        repo.refs[f"refs/pr/{number}"] = self.commit_of(repo, "main")
        repo.pull_requests[number] = payload["title"]
        return 200, {}, {"num": number}

    def pull_request(self, repo_id: str, repo: Repo, number: int):
        if number not in repo.pull_requests:
            raise HubError(404, f"no pull request {number}")
        return 200, {}, {
            "num": number, "title": repo.pull_requests[number], "status": "draft", "isPullRequest": True,
            "author": {"name": self.user}, "createdAt": "2026-12-01T00:00:00.000Z",
            "repo": {"name": repo_id, "type": "model"}, "events": [], "changes": {"base": "refs/heads/main"},
            "filesWithConflicts": [],
        }

    def create_branch(self, repo: Repo, branch: str, payload: dict):
        if branch in repo.refs:
            raise HubError(409, f"Branch {branch} already exists")
        repo.refs[branch] = self.commit_of(repo, payload.get("startingPoint", "main"))
        return 200, {}, {}

    def model_info(self, repo_id: str, revision: str, authorized: bool):
        repo = self.readable_repo(repo_id, authorized)
        commit_id = self.commit_of(repo, revision)
        siblings = [{"rfilename": path} for path in sorted(repo.commits[commit_id])]
        info = {"id": repo_id, "modelId": repo_id, "sha": commit_id, "private": repo.private, "siblings": siblings}
        return 200, {}, info

    def tree(self, repo_id: str, revision: str, folder: str, recursive: bool, authorized: bool):
        repo = self.readable_repo(repo_id, authorized)
        tree = repo.commits[self.commit_of(repo, revision)]
        prefix = folder.rstrip("/") + "/" if folder else ""
        entries, folders = [], set()
        for path in sorted(tree):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            entries.append({"type": "file", "path": path, "size": len(tree[path]), "oid": git_blob_id(tree[path])})
        if folder and not entries and not folders:
            raise HubError(404, f"{folder} does not exist", code="EntryNotFound")
        entries += [{"type": "directory", "path": path, "oid": git_blob_id(path.encode())} for path in sorted(folders)]
        return 200, {}, entries

    def resolve_file(self, repo_id: str, revision: str, path: str, authorized: bool, with_body: bool):
        repo = self.readable_repo(repo_id, authorized)
        commit_id = self.commit_of(repo, revision)
        tree = repo.commits[commit_id]
        if path not in tree:
            raise HubError(404, "Entry not found", code="EntryNotFound", commit=commit_id)
        content = tree[path]
        headers = {"X-Repo-Commit": commit_id, "ETag": f'"{git_blob_id(content)}"', "Content-Length": str(len(content))}
        return 200, headers, content if with_body else None


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.answer()

        def do_HEAD(self):
            self.answer()

        def do_POST(self):
            self.answer()

        def answer(self):
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hub.lock:
                hub.requests.append((self.command, url.path))
                try:
                    query = parse_qs(url.query)
                    status, headers, payload = hub.route(self.command, url.path, query, self.headers, body)
                except HubError as error:
                    status, payload = error.status, {"error": error.message, **error.extra}
                    headers = {"X-Error-Message": error.message}
                    if error.code:
                        headers["X-Error-Code"] = error.code
                    if error.commit:
                        headers["X-Repo-Commit"] = error.commit
            if isinstance(payload, (dict, list)):
                payload = json.dumps(payload).encode()
                headers.setdefault("Content-Type", "application/json")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(payload or b"")))
            self.end_headers()
            if payload is not None and self.command != "HEAD":
                self.wfile.write(payload)

        def log_message(self, format, *args):  # keep the test output clean: tests read hub.requests instead
            pass

    return Handler
