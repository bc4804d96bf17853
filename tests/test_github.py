"""``open_pr`` against a local HTTP server standing in for GitHub's API and a local bare
repository standing in for the fork. Never the real service."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gitrepos import git, isolate_git, make_staged_recipes

from recipegen.errors import RecipegenError, UsageError
from recipegen.export_pr import write_branch
from recipegen.github import _push_env, open_pr, token_from_env

TOKEN = "ghp_NotARealToken0123456789"
FORKS = ("POST", "/repos/conda-forge/staged-recipes/forks")
FORK = ("GET", "/repos/octo/staged-recipes")
PULLS = ("POST", "/repos/conda-forge/staged-recipes/pulls")


@pytest.fixture(autouse=True)
def _isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path, monkeypatch)


@pytest.fixture
def staged_recipes(tmp_path: Path) -> Path:
    return make_staged_recipes(tmp_path)


@dataclass
class FakeGitHub:
    """Answers from ``routes`` (one per call, the last one repeated) and records requests."""

    url: str = ""
    routes: dict[tuple[str, str], list[tuple[int, dict]]] = field(default_factory=dict)
    seen: list[dict] = field(default_factory=list)

    def answer(self, method: str, path: str) -> tuple[int, dict]:
        answers = self.routes.get((method, path))
        if not answers:
            return 404, {"message": "Not Found"}
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.seen]


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fake.seen.append({"method": self.command, "path": self.path,
                              "headers": dict(self.headers),
                              "json": json.loads(raw) if raw else None})
            status, body = fake.answer(self.command, self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def fork_repo(tmp_path: Path) -> Path:
    bare = tmp_path / "fork.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return bare


@pytest.fixture
def branch(staged_recipes: Path) -> tuple[Path, str]:
    sha = write_branch(staged_recipes, "idna", {"idna": "package: {name: idna}\n"}, "Add idna")
    return staged_recipes, sha


def _happy_routes(fake: FakeGitHub, fork_repo: Path) -> None:
    fake.routes[FORKS] = [(202, {"full_name": "octo/staged-recipes",
                                 "clone_url": str(fork_repo), "owner": {"login": "octo"}})]
    fake.routes[FORK] = [(404, {"message": "Not Found"}), (404, {"message": "Not Found"}),
                         (200, {"full_name": "octo/staged-recipes"})]
    fake.routes[PULLS] = [(201, {"html_url":
                                 "https://github.com/conda-forge/staged-recipes/pull/7"})]


def test_fork_push_and_pull_request(github, fork_repo, branch):
    clone, sha = branch
    _happy_routes(github, fork_repo)
    url = open_pr(clone, "add-idna", "Add idna", "body text", TOKEN, github.url,
                  poll_interval=0.01)
    assert url == "https://github.com/conda-forge/staged-recipes/pull/7"
    assert github.calls() == [FORKS, FORK, FORK, FORK, PULLS]  # waited for the fork
    assert git(fork_repo, "rev-parse", "refs/heads/add-idna") == sha
    pull = github.seen[-1]["json"]
    assert pull == {"title": "Add idna", "body": "body text", "head": "octo:add-idna",
                    "base": "main", "maintainer_can_modify": True}
    for request in github.seen:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["Accept"] == "application/vnd.github+json"


def test_api_base_from_environment(github, fork_repo, branch, monkeypatch):
    clone, _ = branch
    _happy_routes(github, fork_repo)
    monkeypatch.setenv("RECIPEGEN_GITHUB_API", github.url + "/")
    assert open_pr(clone, "add-idna", "t", "b", TOKEN, poll_interval=0.01).endswith("/pull/7")
    assert github.calls()[0] == FORKS


@pytest.mark.parametrize(("route", "status", "body", "words"), [
    (FORKS, 401, {"message": "Bad credentials"}, ["rejected the token", "401", "Bad credentials"]),
    (FORKS, 403, {"message": "Resource not accessible by personal access token"},
     ["refused", "403", "Resource not accessible"]),
    (PULLS, 422, {"message": "Validation Failed", "errors": [
        {"message": "A pull request already exists for octo:add-idna."}]},
     ["422", "Validation Failed", "already exists for octo:add-idna"]),
])
def test_api_errors_are_clear_and_keep_the_token_secret(github, fork_repo, branch, route,
                                                         status, body, words):
    clone, _ = branch
    _happy_routes(github, fork_repo)
    github.routes[route] = [(status, body)]
    with pytest.raises(RecipegenError) as info:
        open_pr(clone, "add-idna", "t", "b", TOKEN, github.url, poll_interval=0.01)
    text = str(info.value)
    for word in words:
        assert word in text
    assert TOKEN not in text and "Bearer" not in text
    if status == 403:
        assert "public_repo" in info.value.hint
    pushed = git(fork_repo, "for-each-ref")
    assert bool(pushed) == (route == PULLS)  # a refused fork stops before the push


def test_fork_that_never_appears(github, fork_repo, branch):
    clone, _ = branch
    _happy_routes(github, fork_repo)
    github.routes[FORK] = [(404, {"message": "Not Found"})]
    with pytest.raises(RecipegenError, match="did not appear"):
        open_pr(clone, "add-idna", "t", "b", TOKEN, github.url, fork_wait=0, poll_interval=0)
    assert PULLS not in github.calls()


def test_push_failure_names_the_branch_not_the_token(github, tmp_path, branch):
    clone, _ = branch
    _happy_routes(github, tmp_path / "no-such-fork.git")
    with pytest.raises(RecipegenError, match="git push of add-idna") as info:
        open_pr(clone, "add-idna", "t", "b", TOKEN, github.url, poll_interval=0.01)
    assert TOKEN not in str(info.value)
    assert PULLS not in github.calls()


def test_unreachable_api(branch, tmp_path):
    clone, _ = branch
    with pytest.raises(RecipegenError, match="cannot reach the GitHub API") as info:
        open_pr(clone, "add-idna", "t", "b", TOKEN, "http://127.0.0.1:9", timeout=5)
    assert TOKEN not in str(info.value)


def test_missing_branch_or_token(branch, monkeypatch):
    clone, _ = branch
    with pytest.raises(UsageError, match="does not exist"):
        open_pr(clone, "add-nothing", "t", "b", TOKEN, "http://127.0.0.1:9")
    with pytest.raises(UsageError, match="GITHUB_TOKEN"):
        token_from_env()
    monkeypatch.setenv("GITHUB_TOKEN", f" {TOKEN}\n")
    assert token_from_env() == TOKEN


def test_push_credentials_go_in_the_environment_only_for_http():
    env = _push_env("https://github.com/octo/staged-recipes.git", TOKEN)
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    scheme, encoded = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: ").split()
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"x-access-token:{TOKEN}"
    assert "GIT_CONFIG_COUNT" not in _push_env("/srv/git/fork.git", TOKEN)


@pytest.mark.e2e
def test_export_open_pr_from_the_command_line(github, fork_repo, staged_recipes, seed_channel,
                                              tmp_path, run_cli):
    """`recipegen export --open-pr`: branch pushed to the fork, PR opened, URL printed."""
    _happy_routes(github, fork_repo)
    github.routes[FORK] = [(200, {"full_name": "octo/staged-recipes"})]
    proc = run_cli("export", "ulid-py==1.1.0", "--to", staged_recipes, "--maintainer", "octo",
                   "--no-build", "--open-pr", "-c", seed_channel, "--work-root",
                   tmp_path / "work",
                   env={"GITHUB_TOKEN": TOKEN, "RECIPEGEN_GITHUB_API": github.url})
    assert proc.returncode == 0, proc.stderr
    assert "Opened https://github.com/conda-forge/staged-recipes/pull/7" in proc.stdout
    assert github.calls() == [FORKS, FORK, PULLS]
    pull = github.seen[-1]["json"]
    assert pull["title"] == "Add ulid-py" and pull["head"] == "octo:add-ulid-py"
    assert "not built" in pull["body"]
    assert git(fork_repo, "rev-parse", "refs/heads/add-ulid-py") == git(
        staged_recipes, "rev-parse", "refs/heads/add-ulid-py")
    assert TOKEN not in proc.stdout + proc.stderr


def test_open_pr_without_token_fails_before_any_work(staged_recipes, tmp_path, run_cli):
    proc = run_cli("export", "ulid-py==1.1.0", "--to", staged_recipes, "--maintainer", "octo",
                   "--open-pr", "--work-root", tmp_path / "work")
    assert proc.returncode == 2
    assert "GITHUB_TOKEN" in proc.stderr
    assert not (tmp_path / "work").exists()
