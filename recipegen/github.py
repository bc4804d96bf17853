"""Open the staged-recipes pull request through GitHub's REST API.

Fork conda-forge/staged-recipes into the token's account (a no-op when the fork exists),
wait until GitHub has made it, push the branch there with git, open the PR from
``<login>:<branch>``. ``RECIPEGEN_GITHUB_API`` points the API at another server (tests use a
local one). The token goes in request headers and in git's environment, never on a command
line or in a message.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

import recipegen
from recipegen.errors import RecipegenError, UsageError

DEFAULT_API = "https://api.github.com"
UPSTREAM = "conda-forge/staged-recipes"


def api_base_from_env() -> str:
    return (os.environ.get("RECIPEGEN_GITHUB_API") or DEFAULT_API).rstrip("/")


def token_from_env() -> str:
    """``$GITHUB_TOKEN``, or a UsageError that says how to get one."""
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise UsageError("--open-pr needs a GitHub token in $GITHUB_TOKEN",
                         "create one with the public_repo scope (github.com/settings/tokens) "
                         "and export GITHUB_TOKEN=...")
    return token


class _API:
    def __init__(self, base: str, token: str, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"recipegen/{recipegen.__version__}",
        })

    def call(self, method: str, path: str, what: str, json: Any = None,
             ok: tuple[int, ...] = (200, 201, 202)) -> requests.Response:
        url = f"{self.base}{path}"
        try:
            resp = self.session.request(method, url, json=json, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RecipegenError(f"cannot reach the GitHub API at {self.base} to {what}: "
                                 f"{type(exc).__name__}",
                                 "check the network, or RECIPEGEN_GITHUB_API") from None
        if resp.status_code not in ok:
            raise _error(resp, what)
        return resp


def _error(resp: requests.Response, what: str) -> RecipegenError:
    """A message for each failure GitHub reports, with GitHub's own explanation."""
    try:
        data = resp.json()
    except ValueError:
        data = {}
    detail = str(data.get("message") or resp.reason or "").strip()
    errors = data.get("errors") or []
    extra = "; ".join(str(e.get("message") or e.get("code") or e) if isinstance(e, dict)
                      else str(e) for e in errors)
    said = f" ({resp.status_code}: {detail}{'; ' + extra if extra else ''})"
    if resp.status_code == 401:
        return RecipegenError(f"GitHub rejected the token while trying to {what}{said}",
                              "GITHUB_TOKEN is wrong or expired; create a new one")
    if resp.status_code == 403:
        return RecipegenError(f"GitHub refused to {what}{said}",
                              "the token needs the public_repo scope (classic token) or "
                              "Contents and Pull requests write access (fine-grained); or the "
                              "API rate limit is used up: wait and run again")
    if resp.status_code == 422:
        return RecipegenError(f"GitHub could not {what}{said}",
                              "a pull request from this branch may be open already, or the "
                              "branch is not on the fork")
    return RecipegenError(f"GitHub could not {what}{said}")


def _push_env(url: str, token: str) -> dict[str, str]:
    """git's environment for an authenticated push: the token as an HTTP header through
    ``GIT_CONFIG_*`` (not visible in ``ps``, not stored in any config file)."""
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if url.startswith("https://") or url.startswith("http://"):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
    return env


def push(clone: Path, url: str, branch: str, token: str) -> None:
    """Push ``branch`` of the clone to ``url`` under the same name."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE")}
    env.update(_push_env(url, token))
    proc = subprocess.run(["git", "-C", str(clone), "push", "--porcelain", url,
                           f"refs/heads/{branch}:refs/heads/{branch}"],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().replace(token, "***")
        raise RecipegenError(f"git push of {branch} to the fork failed: {message}",
                             "check that the token may push to your fork")


def open_pr(clone: str | Path, branch: str, title: str, body: str, token: str,
            api_base: str | None = None, *, upstream: str = UPSTREAM, base: str = "main",
            fork_wait: float = 120.0, poll_interval: float = 2.0,
            timeout: float = 30.0) -> str:
    """Fork ``upstream``, push ``branch`` of ``clone`` to the fork, open the pull request
    into ``upstream``'s ``base``; return the PR's web URL.

    ``api_base``: default ``$RECIPEGEN_GITHUB_API`` or https://api.github.com.
    ``fork_wait``: how long to wait for GitHub to finish a new fork.
    """
    if not token:
        raise UsageError("no GitHub token", "export GITHUB_TOKEN=...")
    clone = Path(clone)
    if subprocess.run(["git", "-C", str(clone), "rev-parse", "--verify", "--quiet",
                       f"refs/heads/{branch}"], capture_output=True,
                      check=False).returncode != 0:
        raise UsageError(f"branch {branch} does not exist in {clone}")
    api = _API(api_base or api_base_from_env(), token, timeout)

    fork = api.call("POST", f"/repos/{upstream}/forks", "fork " + upstream,
                    json={"default_branch_only": True}).json()
    try:
        full_name, clone_url = fork["full_name"], fork["clone_url"]
        login = fork["owner"]["login"]
    except (KeyError, TypeError):
        raise RecipegenError("GitHub's answer to the fork request has no full_name, "
                             "clone_url or owner") from None

    deadline = time.monotonic() + fork_wait
    while True:
        resp = api.call("GET", f"/repos/{full_name}", f"look up the fork {full_name}",
                        ok=(200, 404))
        if resp.status_code == 200:
            break
        if time.monotonic() > deadline:
            raise RecipegenError(f"the fork {full_name} did not appear within {fork_wait:.0f} s",
                                 "GitHub may still be copying it: run again in a minute")
        time.sleep(poll_interval)

    push(clone, clone_url, branch, token)

    pr = api.call("POST", f"/repos/{upstream}/pulls", f"open the pull request into {upstream}",
                  json={"title": title, "body": body, "head": f"{login}:{branch}",
                        "base": base, "maintainer_can_modify": True}).json()
    url = pr.get("html_url") if isinstance(pr, dict) else None
    if not url:
        raise RecipegenError("GitHub opened the pull request but sent no html_url")
    return str(url)
