"""``phm reidentify``: the controller's route to a direct-care worklist for sites without the web application.

The same matching rule as ``POST /api/reidentification`` (:func:`openphm.reidentify.match`), and an audit row in
the same hash chain (``--store`` / ``--app-db`` as for ``phm serve``), checked by ``phm audit verify``. There is
no approval step: the person running it is the data controller's delegate acting on their own authority, and the
audit row records that (with the purpose, practice, cohort and counts, never a number).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from openphm.cli.common import Engine, Store, app, console, reporting
from openphm.cli.serve import AppDb, _db


@app.command()
def reidentify(
    store: Store,
    key_file: Annotated[Path, typer.Option(help="The store's pseudonymisation key (as phm ingest took it).")],
    cohort: Annotated[str, typer.Option(help="The cohort whose members are wanted.")],
    practice: Annotated[str, typer.Option(help="The practice code whose registered list is given.")],
    list_file: Annotated[
        Path, typer.Option("--list", help="The practice's registered list: a CSV of NHS numbers (nhs_number column).")
    ],
    purpose: Annotated[str, typer.Option(help="Why (direct care): recorded in the audit log.")],
    out: Annotated[Path, typer.Option(help="Where to write the worklist CSV (must not exist; mode 600).")],
    app_db: AppDb = None,
    engine: Engine = "duckdb",
) -> None:
    """Write the identified worklist of a cohort's members registered at a practice, from the practice's own list
    (only numbers the list holds come back; invalid ones are counted, never shown). Audited."""
    import getpass

    import pyarrow.csv as pacsv

    from openphm.app import audit
    from openphm.engine import open_store
    from openphm.errors import InputError
    from openphm.ingest.pseudonymise import load_key
    from openphm.outputs.safe import neutralise_table
    from openphm.reidentify import check_purpose, match, read_list, worklist

    with reporting():
        key = load_key(key_file)
        purpose = check_purpose(purpose)
        if out.exists():
            raise InputError(f"--out: {out} exists; refusing to overwrite a worklist")
        try:
            data = list_file.read_bytes()
        except OSError as exc:
            raise InputError(f"--list: cannot read {list_file} ({exc.strerror})") from None
        parsed = read_list(data)
        factory = _db(store, app_db)
        eng = open_store(store, engine)
        try:
            names = {c for (c,) in eng.table("cohort_member").select("cohort").unique().collect().rows()}
            if cohort not in names:
                raise InputError(f"--cohort: the store has no members of a cohort '{cohort}'")
            found = match(eng, key, cohort, practice.upper(), parsed.numbers)
            table = worklist(eng, found)
        finally:
            eng.close()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            pacsv.write_csv(neutralise_table(table), handle)
        with factory() as db, db.begin():
            audit.record(
                db,
                f"cli:{getpass.getuser()}",
                "reidentification_command",
                purpose=purpose,
                practice_code=practice.upper(),
                cohort=cohort,
                as_of=found.as_of,
                submitted=parsed.submitted,
                invalid=parsed.invalid,
                matched=len(found.pairs),
            )
    console.print(
        f"{len(found.pairs):,} of {parsed.submitted:,} listed people are {cohort} members registered at "
        f"{practice.upper()} ({parsed.invalid:,} invalid numbers); worklist in {out} (mode 600); audited."
    )
