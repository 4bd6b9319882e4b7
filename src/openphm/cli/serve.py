"""The application's commands: ``phm serve``, ``phm users`` and ``phm audit verify``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from openphm.cli.common import Engine, Store, app, console, errors, reporting

if TYPE_CHECKING:  # the app's dependencies are optional: imported only when the app runs
    from sqlalchemy.orm import Session, sessionmaker

    from openphm.app.oidc import OidcSettings

users_app = typer.Typer(help="Manage the application's local accounts and their grants.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the application's audit log.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

AppDb = Annotated[
    str | None,
    typer.Option(
        "--app-db",
        help="App database URL: sqlite:///FILE or postgresql+psycopg://USER@HOST/DB. Default: SQLite beside the store.",
    ),
]


def require_app() -> None:
    """The web stack is the optional extra ``app``: without it, one line saying how to install it."""
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        errors.print("[red]error:[/red] the application needs the 'app' extra: pip install 'openphm[app]'")
        raise typer.Exit(2) from None


def _db(store: Path, app_db: str | None) -> sessionmaker[Session]:
    require_app()
    from openphm.app.settings import app_db_url, open_db

    return open_db(app_db_url(store, app_db))


def demo_account(store: Path, folder: Path, engine: str = "duckdb") -> str:
    """A demo administrator (admin and analyst, national) in the app database beside ``store``; the command
    that serves it. The generated password is printed and kept in ``folder/demo-password.txt`` (mode 600)."""
    import secrets

    from openphm.app import accounts

    factory = _db(store, None)
    password_file = folder / "demo-password.txt"
    names = {a.username for a in accounts.list_users(factory)}
    if "demo" not in names:
        password = secrets.token_urlsafe(15)
        password_file.unlink(missing_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        accounts.add_user(factory, "demo", "admin", [], password, actor="phm demo")
        accounts.add_grant(factory, "demo", "analyst", accounts.Scope("national", accounts.NATIONAL_CODE), "phm demo")
        console.print(f"Demo sign-in: user demo, password {password} (also in {password_file}, mode 600)")
    else:
        console.print(f"Demo sign-in: user demo, password in {password_file}")
    return f"phm serve --store {store}" + ("" if engine == "duckdb" else f" --engine {engine}")


@app.command()
def serve(
    store: Store,
    app_db: AppDb = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    secret_file: Annotated[
        Path | None,
        typer.Option(help="Secret that signs CSRF tokens (default: <store>.app-key, created with mode 600)."),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            help="The store's pseudonymisation key, as phm ingest takes it: enables re-identification for direct "
            "care (docs/direct-care.md). Without it every re-identification route answers that it is disabled."
        ),
    ] = None,
    fhir_writeback: Annotated[
        bool,
        typer.Option("--fhir-writeback", help="Offer approved worklists as FHIR R4 Observation bundles as well."),
    ] = False,
    behind_tls_proxy: Annotated[
        bool, typer.Option(help="Trust X-Forwarded-* from the proxy and mark cookies Secure.")
    ] = False,
    allow_purpose_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-purpose-mismatch",
            help="Serve planning aggregates from a store ingested for direct care or risk stratification (audited).",
        ),
    ] = False,
    engine: Engine = "duckdb",
    oidc_config: Annotated[
        Path | None,
        typer.Option(help="YAML settings for sign-in with OpenID Connect (CIS2, Entra ID); see docs/app.md."),
    ] = None,
) -> None:
    """Serve the web application and its JSON API over the store (read-only)."""
    require_app()
    import uvicorn

    from openphm.app.server import create_app
    from openphm.app.settings import AppSettings, app_db_url, load_secret
    from openphm.ingest.pseudonymise import load_key

    with reporting():
        if not store.exists():
            from openphm.errors import StoreError

            raise StoreError(f"no store at {store}: run 'phm ingest' and 'phm run' first")
        settings = AppSettings(
            store=store,
            app_db=app_db_url(store, app_db),
            key=load_secret(secret_file, store),
            pseudonymisation_key=None if key_file is None else load_key(key_file),
            fhir_writeback=fhir_writeback,
            engine=engine,
            behind_tls_proxy=behind_tls_proxy,
            allow_purpose_mismatch=allow_purpose_mismatch,
            oidc=_oidc(oidc_config),
        )
        application = create_app(settings)
    console.print(f"openphm on http://{host}:{port}/ (store {store}); Ctrl+C stops it.")
    uvicorn.run(
        application,
        host=host,
        port=port,
        proxy_headers=behind_tls_proxy,
        forwarded_allow_ips="127.0.0.1" if behind_tls_proxy else None,
        log_level="warning",
        server_header=False,
    )


def _oidc(path: Path | None) -> OidcSettings | None:
    from openphm.app.oidc import load_config

    return load_config(path) if path is not None else None


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name to sign in with.")],
    store: Store,
    role: Annotated[str, typer.Option(help="viewer, analyst, admin, clinician or approver.")],
    password_file: Annotated[
        Path | None, typer.Option(help="A file holding the password (at least 12 characters).")
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(help="LEVEL:CODE the role applies within, e.g. practice:A81001 (repeat; default national)."),
    ] = None,
    oidc_subject: Annotated[
        str | None,
        typer.Option(help="The OpenID Connect provider's subject ('sub') of this person: they sign in there."),
    ] = None,
    app_db: AppDb = None,
) -> None:
    """Add an account with a role at one or more scopes: a password, an OpenID Connect subject, or both."""
    from openphm.app import accounts

    with reporting():
        password = None
        if password_file is not None:
            try:
                password = password_file.read_text().strip()
            except OSError as exc:
                raise accounts.AccountError(f"--password-file: cannot read {password_file} ({exc.strerror})") from None
        scopes = [accounts.Scope.parse(s) for s in scope or []]
        account = accounts.add_user(_db(store, app_db), name, role, scopes, password, oidc_subject=oidc_subject)
    console.print(f"added {account.username}: " + "; ".join(f"{r} at {s}" for r, s in account.grants))


@users_app.command("list")
def users_list(store: Store, app_db: AppDb = None) -> None:
    """List the accounts with their grants."""
    from openphm.app import accounts

    with reporting():
        found = accounts.list_users(_db(store, app_db))
    table = Table(title="Accounts")
    for column in ("user", "status", "grants"):
        table.add_column(column)
    for account in found:
        grants = "; ".join(f"{r} at {s}" for r, s in account.grants)
        table.add_row(account.username, "disabled" if account.disabled else "active", grants)
    console.print(table)


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="The account to disable.")], store: Store, app_db: AppDb = None
) -> None:
    """Disable an account and end its sessions (it stays listed: the audit log names it)."""
    from openphm.app import accounts

    with reporting():
        accounts.disable_user(_db(store, app_db), name)
    console.print(f"disabled {name}")


@audit_app.command("verify")
def audit_verify(store: Store, app_db: AppDb = None) -> None:
    """Walk the audit chain: exit 0 when intact, 1 naming the first row that does not fit."""
    from openphm.app import audit

    with reporting():
        verdict = audit.verify(_db(store, app_db))
    if verdict.intact:
        console.print(f"audit chain intact: {verdict.rows:,} rows")
        return
    errors.print(f"audit chain broken at row {verdict.broken_at}: {verdict.reason}", highlight=False)
    raise typer.Exit(1)
