"""Whose objects fluxion publishes into: only its own role's, or roles the operator trusts.

On a server where other roles may create objects in the target's schema (``public`` before
PostgreSQL 15, common on RDS), a role that creates ``inventario_raw`` first owns it: fluxion
would adopt the table, and a trigger its owner puts on it runs as fluxion's role on every row
(issue 23: every price served became ``0.01``). So before the first write of a run (and in
``check``) fluxion reads the catalog and refuses, naming the object, anything it would write
into that another role controls:

* the schema: owned by a trusted role (or the database's owner, as ``public`` is on 15+), and
  no untrusted role (nor ``PUBLIC``) may ``CREATE`` in it;
* fluxion's tables and views that exist already: owned by a trusted role;
* triggers and rules on them: a trigger's function owned by a trusted role (a trigger runs with
  the rights of whoever fires it); no rule at all (fluxion creates none).

Trusted: fluxion's own login role (``current_user``), the roles ``DATABASE_TRUSTED_OWNERS``
names, and superusers (who can do anything anyway). Refusals are ConfigError: exit 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from fluxion_etl.errors import ConfigError

#: what the ``inventario_raw`` layout writes or reads back: its tables and view
#: fluxion's own objects beside every layout's tables: the ledger, its migrations, its view
LEDGER_OBJECTS = ("etl_ejecuciones", "fluxion_schema_version", "etl_ultima_carga")
RAW_LAYOUT_OBJECTS = ("inventario_raw", *LEDGER_OBJECTS)


@dataclass(frozen=True)
class Ownership:
    """What the check found: the schema's owner and each existing object's, for ``check``."""

    schema: str
    schema_owner: str
    objects: dict[str, str]

    def summary(self) -> str:
        owners = sorted(set(self.objects.values()))
        found = (
            f"{len(self.objects)} object(s) owned by {', '.join(owners)}"
            if owners
            else ("no table yet")
        )
        return f"schema {self.schema} owned by {self.schema_owner}; {found}"


def check_ownership(
    cur: psycopg.Cursor[Any],
    schema: str,
    objects: Sequence[str] = RAW_LAYOUT_OBJECTS,
    trusted: Iterable[str] = (),
) -> Ownership:
    """ConfigError naming the first object another role controls (see the module); else what
    was found. A schema that does not exist yet passes (fluxion will create and own it)."""
    me = _one(cur, "SELECT current_user")
    trusted_roles = {me, *trusted}
    superusers = {r[0] for r in cur.execute("SELECT rolname FROM pg_roles WHERE rolsuper")}
    trusted_roles |= superusers
    hint = (
        f"fluxion publishes only into objects its role ({me}) owns; if that role is meant to "
        "be trusted, add it to DATABASE_TRUSTED_OWNERS"
    )
    row = cur.execute(
        "SELECT n.oid, pg_get_userbyid(n.nspowner), pg_get_userbyid(d.datdba) "
        "FROM pg_namespace n, pg_database d "
        "WHERE n.nspname = %s AND d.datname = current_database()",
        [schema],
    ).fetchone()
    if row is None:
        return Ownership(schema, me, {})
    schema_oid, schema_owner, database_owner = row
    if schema_owner == "pg_database_owner":
        schema_owner = database_owner
    if schema_owner not in trusted_roles | {database_owner}:
        raise ConfigError(f"schema {schema} is owned by role {schema_owner}: {hint}")
    creators = cur.execute(
        "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
        "ELSE pg_get_userbyid(a.grantee) END "
        "FROM pg_namespace n, aclexplode(n.nspacl) a "
        "WHERE n.oid = %s AND a.privilege_type = 'CREATE' ORDER BY 1",
        [schema_oid],
    ).fetchall()
    grantees = [database_owner if c[0] == "pg_database_owner" else c[0] for c in creators]
    untrusted = [g for g in grantees if g not in trusted_roles | {database_owner}]
    if untrusted:
        raise ConfigError(
            f"schema {schema} lets {', '.join(untrusted)} create objects in it, who could "
            f"create fluxion's tables first: revoke it (REVOKE CREATE ON SCHEMA {schema} FROM "
            f"{untrusted[0]}) or use a schema of fluxion's own (DATABASE_SCHEMA)"
        )
    found = cur.execute(
        "SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) FROM pg_class c "
        "WHERE c.relnamespace = %s AND c.relname = ANY(%s) ORDER BY c.relname",
        [schema_oid, list(objects)],
    ).fetchall()
    owners: dict[str, str] = {}
    for name, kind, owner in found:
        what = "view" if kind in ("v", "m") else "table"
        if owner not in trusted_roles:
            raise ConfigError(f"{what} {schema}.{name} is owned by role {owner}: {hint}")
        owners[name] = owner
    triggers = cur.execute(
        "SELECT c.relname, t.tgname, pg_get_userbyid(p.proowner) FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE c.relnamespace = %s AND c.relname = ANY(%s) AND NOT t.tgisinternal "
        "ORDER BY 1, 2",
        [schema_oid, list(objects)],
    ).fetchall()
    for table, trigger, owner in triggers:
        if owner not in trusted_roles:
            raise ConfigError(
                f"trigger {trigger} on {schema}.{table} runs a function owned by role {owner} "
                f"(as fluxion's role, on every row): {hint}"
            )
    rules = cur.execute(
        "SELECT c.relname, r.rulename FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class "
        "WHERE c.relnamespace = %s AND c.relname = ANY(%s) AND r.rulename <> '_RETURN' "
        "ORDER BY 1, 2",
        [schema_oid, list(objects)],
    ).fetchall()
    if rules:
        table, rule = rules[0]
        raise ConfigError(f"rule {rule} on {schema}.{table} is not fluxion's: drop it")
    return Ownership(schema, schema_owner, owners)


def _one(cur: psycopg.Cursor[Any], query: str) -> str:
    row = cur.execute(query).fetchone()
    assert row is not None
    return str(row[0])
