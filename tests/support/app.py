"""Helpers of the application's tests: the synthetic store's practice hierarchy, app settings, users and sign-in."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from openphm.app import accounts
from openphm.app.accounts import Scope
from openphm.app.settings import AppSettings

PASSWORD = "correct horse battery staple"
PRACTICES = ("SYN00001", "SYN00002", "SYN00003", "SYN00004")
# practice -> (pcn, sub_icb, icb, region)
HIERARCHY = {
    "SYN00001": ("PCN01", "SUB01", "ICB01", "REG01"),
    "SYN00002": ("PCN01", "SUB01", "ICB01", "REG01"),
    "SYN00003": ("PCN02", "SUB02", "ICB02", "REG01"),
    "SYN00004": ("PCN02", "SUB02", "ICB02", "REG01"),
}


def settings(store: Path, url: str, **changes: object) -> AppSettings:
    return AppSettings(store=store, app_db=url, key=b"k" * 64, **changes)  # type: ignore[arg-type]


def add_user(client: TestClient, name: str, role: str, *scopes: str) -> None:
    accounts.add_user(client.app.state.phm.db, name, role, [Scope.parse(s) for s in scopes], PASSWORD)


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the sign-in form has no csrf_token"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    """Sign ``client`` in; the status of the POST (303 on success)."""
    return client.post(
        "/login", data={"username": name, "password": password, "csrf_token": login_token(client)}
    ).status_code


def clone(client: TestClient) -> TestClient:
    """Another browser on the same app (its own cookies)."""
    return TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)
