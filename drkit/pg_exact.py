"""What makes a PostgreSQL restore exact, read from a database's catalogs and tables: the roles
its objects reference, a schema fingerprint, each table's content checksum and each sequence's
state. A backup records them from inside its exported snapshot (the transaction ``pg_dump``
dumps); a restore, ``invoke verify`` and the drill read the same from the restored database and
name the first object or table that differs (``compare``).

- **Roles** (``referenced_roles``): every role that owns a user object or is granted a privilege
  on one (schemas, relations and their columns, sequences, types, functions, large objects,
  default privileges, policies, operators, text search configurations and dictionaries,
  foreign data wrappers, servers and user mappings, publications, languages), with its
  attributes and the roles it is a member of. Never a password hash: ``pg_roles`` shows none.
  Built-in ``pg_*`` roles and ``PUBLIC`` are left out.
- **Schema fingerprint** (``schema_objects``): one entry per object, keyed ``<kind> <name>``,
  whose value is two digests: its definition (columns, defaults, constraints, indexes, triggers,
  rules, policies, partition bounds and keys, view queries, sequence options, enum labels, domain
  constraints, function bodies, aggregates, procedures, extension versions, statistics objects,
  collations, event triggers, comments; since version 2 operators, casts, text search
  configurations, dictionaries, parsers and templates, foreign data wrappers, servers and user
  mappings, publications and procedural languages; since version 3 operator classes and
  operator families with their operators and support functions, security labels, and
  subscriptions) and its privileges (owner and ACL, a default ACL made explicit, column ACLs).
  Objects created by an extension are the extension's. Of the options of foreign data wrappers,
  servers and user mappings only the names are read, never the values (a password may be one).
  A subscription is read as ``pg_dump`` dumps it, by a superuser only: its publications, slot
  name and options, never its connection string (a superuser's to read; it may hold a
  password), and not whether it is enabled (``pg_dump`` restores every subscription disabled,
  so an enabled one would make every restore differ; enabling it is the operator's call). A
  fingerprint of an older version did not record the kinds a later one added: ``compare``
  leaves them out with it. Not covered: the database itself (its owner, ``GRANT ... ON
  DATABASE``, ``ALTER DATABASE SET``, its security label: ``pg_dump`` without ``--create``
  leaves them out).
- **Content** (``table_contents``): per table (a partitioned table with its partitions), per
  populated materialized view, and for the large objects together, a checksum of every row's
  text: the sums of two 64-bit hashes of each row, so the server neither sorts nor buffers the
  table. Tables larger than ``DRKIT_PG_CHECKSUM_MAX_MB`` (default 1024) are checked by row count.
- **Sequences** (``sequence_states``): last value and ``is_called``. A sequence is read outside
  any snapshot (as ``pg_dump`` reads it), so the backup reads each before and after the dump; a
  restored state between the two is the one the dump holds.

Every reading session uses the same output settings (UTC, ISO dates, hex ``bytea``, shortest
exact floats, an empty ``search_path`` so every name is schema-qualified), so the same data
reads as the same text on any server of the same major version.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

FINGERPRINT_VERSION = 3
MAX_MB_ENV = "DRKIT_PG_CHECKSUM_MAX_MB"
DEFAULT_MAX_MB = 1024.0
DEFAULT_PRIVILEGES = "default privileges of "
LARGE_OBJECTS = "large objects"
"""The content entry of every large object together."""

Connection = psycopg.Connection[tuple[Any, ...]]

SETTINGS = {
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "search_path": "",
}

USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND {n}.nspname NOT LIKE 'pg\\_toast%' AND {n}.nspname NOT LIKE 'pg\\_temp\\_%'"
)


def not_extension_member(catalog: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass"
        f" AND e.objid = {oid} AND e.deptype = 'e')"
    )


def max_checksum_bytes(environ: dict[str, str] | None = None) -> int:
    """Tables up to this size get a content checksum (``DRKIT_PG_CHECKSUM_MAX_MB``)."""
    text = (os.environ if environ is None else environ).get(MAX_MB_ENV, "").strip()
    if not text:
        return int(DEFAULT_MAX_MB * 1024 * 1024)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{MAX_MB_ENV}={text!r} is not valid: expected megabytes, 0 or more")
    return int(value * 1024 * 1024)


def apply_settings(connection: Connection) -> None:
    """The output settings every reading session uses (inside a transaction too)."""
    for name, value in SETTINGS.items():
        connection.execute("SELECT set_config(%s, %s, false)", (name, value))


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _acl(acl: list[str] | None, default: list[str] | None) -> list[str]:
    """An ACL as ``pg_dump`` reproduces it: NULL is the default, the order does not matter."""
    return sorted(acl if acl is not None else (default or []))


# --- roles -----------------------------------------------------------------------------------

ROLES_QUERY = f"""
WITH owners(oid) AS (
  SELECT nspowner FROM pg_namespace n WHERE n.oid >= 16384 AND {USER_SCHEMA.format(n="n")}
  UNION SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {USER_SCHEMA.format(n="n")}
  UNION SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {USER_SCHEMA.format(n="n")}
  UNION SELECT t.typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE {USER_SCHEMA.format(n="n")}
  UNION SELECT lomowner FROM pg_largeobject_metadata
  UNION SELECT defaclrole FROM pg_default_acl
  UNION SELECT evtowner FROM pg_event_trigger
  UNION SELECT unnest(polroles) FROM pg_policy
  UNION SELECT oprowner FROM pg_operator WHERE oid >= 16384
  UNION SELECT cfgowner FROM pg_ts_config WHERE oid >= 16384
  UNION SELECT dictowner FROM pg_ts_dict WHERE oid >= 16384
  UNION SELECT fdwowner FROM pg_foreign_data_wrapper
  UNION SELECT srvowner FROM pg_foreign_server
  UNION SELECT umuser FROM pg_user_mappings
  UNION SELECT pubowner FROM pg_publication
  UNION SELECT lanowner FROM pg_language WHERE lanispl
  UNION SELECT opcowner FROM pg_opclass WHERE oid >= 16384
  UNION SELECT opfowner FROM pg_opfamily WHERE oid >= 16384
  UNION SELECT subowner FROM pg_subscription
    WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
), acls(acl) AS (
  SELECT nspacl FROM pg_namespace n WHERE {USER_SCHEMA.format(n="n")}
  UNION ALL SELECT c.relacl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {USER_SCHEMA.format(n="n")}
  UNION ALL SELECT a.attacl FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attacl IS NOT NULL AND {USER_SCHEMA.format(n="n")}
  UNION ALL SELECT p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {USER_SCHEMA.format(n="n")}
  UNION ALL SELECT t.typacl FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE {USER_SCHEMA.format(n="n")}
  UNION ALL SELECT lomacl FROM pg_largeobject_metadata
  UNION ALL SELECT defaclacl FROM pg_default_acl
  UNION ALL SELECT fdwacl FROM pg_foreign_data_wrapper
  UNION ALL SELECT srvacl FROM pg_foreign_server
  UNION ALL SELECT lanacl FROM pg_language WHERE lanispl
), ids(oid) AS (
  SELECT oid FROM owners
  UNION SELECT (aclexplode(acl)).grantee FROM acls WHERE acl IS NOT NULL
)
SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
  r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil::text,
  ARRAY(SELECT m.rolname FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.roleid
        WHERE am.member = r.oid AND m.rolname !~ '^pg_' ORDER BY 1)
FROM pg_roles r WHERE r.oid IN (SELECT oid FROM ids) AND r.rolname !~ '^pg_' ORDER BY 1
"""

ROLE_FLAGS = ("superuser", "inherit", "createrole", "createdb", "login", "replication", "bypassrls")

NEEDED_WITHOUT_PRIVILEGES = "needed_without_privileges"
"""A role's entry in a manifest: the objects that name it in what ``pg_restore --no-owner
--no-privileges`` still restores (a policy's ``TO`` list, a user mapping), keyed as the schema
fingerprint keys them."""

NEEDED_QUERY = """
SELECT r.rolname, 'policy ' || p.polname || ' on ' || n.nspname || '.' || c.relname
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(p.polroles) AS u(oid) JOIN pg_roles r ON r.oid = u.oid
UNION
SELECT u.usename, 'user mapping for ' || u.usename || ' server ' || u.srvname
FROM pg_user_mappings u WHERE u.umuser <> 0
ORDER BY 1, 2
"""


def referenced_roles(connection: Connection) -> list[dict[str, Any]]:
    """The roles the database's objects reference: names and attributes, no password; and the
    objects that need a role even in a restore without owners and grants."""
    needed: dict[str, list[str]] = {}
    for name, needer in connection.execute(NEEDED_QUERY).fetchall():
        needed.setdefault(str(name), []).append(str(needer))
    roles = []
    for row in connection.execute(ROLES_QUERY).fetchall():
        name, *flags, connlimit, valid_until, member_of = row
        roles.append(
            {"name": name}
            | dict(zip(ROLE_FLAGS, (bool(f) for f in flags), strict=True))
            | {"connection_limit": connlimit, "valid_until": valid_until}
            | {"member_of": list(member_of)}
            | {NEEDED_WITHOUT_PRIVILEGES: needed.get(str(name), [])}
        )
    return roles


def needed_without_privileges(
    roles: list[dict[str, Any]], checks: dict[str, Any] | None = None
) -> dict[str, list[str]]:
    """Per role a ``--no-privileges`` restore still needs, the objects that name it.
    ``pg_restore --no-owner --no-privileges`` leaves out owners and grants, but a row-level
    security policy's ``TO`` list and a user mapping keep their role names: restored on a
    cluster without the role, they fail. A manifest recorded before these were listed: the user
    mappings, read from the schema fingerprint's keys (its policies' roles are not known)."""
    needed: dict[str, list[str]] = {}
    keys = list(((checks or {}).get("schema") or {}).get("objects", {}))
    for role in roles:
        name = str(role["name"])
        if NEEDED_WITHOUT_PRIVILEGES in role:
            objects = [str(o) for o in role[NEEDED_WITHOUT_PRIVILEGES]]
        else:
            prefix = f"user mapping for {name} server "
            objects = [key for key in keys if key.startswith(prefix)]
        if objects:
            needed[name] = objects
    return needed


def missing_roles(connection: Connection, roles: list[dict[str, Any]]) -> list[str]:
    names = [str(role["name"]) for role in roles]
    rows = connection.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (names,)
    ).fetchall()
    found = {str(row[0]) for row in rows}
    return [name for name in names if name not in found]


def create_roles(connection: Connection, roles: list[dict[str, Any]], names: list[str]) -> None:
    """Create ``names`` (of ``roles``) with their attributes and no password, then their
    memberships in roles that exist on this cluster."""
    wanted = [role for role in roles if role["name"] in names]
    for role in wanted:
        options = [
            ("" if role.get(flag) else "NO") + flag.upper() for flag in ROLE_FLAGS if flag in role
        ]
        statement = sql.SQL("CREATE ROLE {} WITH " + " ".join(options)).format(
            sql.Identifier(str(role["name"]))
        )
        if role.get("connection_limit", -1) != -1:
            statement += sql.SQL(" CONNECTION LIMIT {}").format(
                sql.Literal(int(role["connection_limit"]))
            )
        if role.get("valid_until"):
            statement += sql.SQL(" VALID UNTIL {}").format(sql.Literal(str(role["valid_until"])))
        connection.execute(statement)
    existing = {str(r[0]) for r in connection.execute("SELECT rolname FROM pg_roles").fetchall()}
    for role in wanted:
        for group in role.get("member_of", []):
            if group in existing:
                connection.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(str(group)), sql.Identifier(str(role["name"]))
                    )
                )


# --- schema fingerprint ----------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaObject:
    key: str
    definition: Any
    privileges: Any
    table: str | None = None
    """The table (schema.name) a table-level object belongs to: a selective restore checks
    these only."""

    @property
    def digest(self) -> str:
        return f"{_digest(self.definition)}:{_digest(self.privileges)}"


def _name(schema: str, name: str) -> str:
    return f"{schema}.{name}"


def schema_objects(connection: Connection) -> dict[str, SchemaObject]:
    """Every user object of the database, keyed ``<kind> <schema.name>``."""
    found: dict[str, SchemaObject] = {}

    def add(item: SchemaObject) -> None:
        found[item.key] = item

    user = USER_SCHEMA.format(n="n")
    for name, owner, acl, default, comment in connection.execute(
        "SELECT n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text[],"
        " acldefault('n', n.nspowner)::text[], obj_description(n.oid, 'pg_namespace')"
        f" FROM pg_namespace n WHERE {user} AND {not_extension_member('pg_namespace', 'n.oid')}"
    ).fetchall():
        add(SchemaObject(f"schema {name}", {"comment": comment}, [owner, _acl(acl, default)]))

    kinds = {
        "r": "table",
        "p": "table",
        "v": "view",
        "m": "materialized view",
        "S": "sequence",
        "f": "foreign table",
    }
    relations: dict[int, str] = {}
    relation_keys: dict[str, str] = {}
    for row in connection.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner),"
        " c.relacl::text[], acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\","
        " c.relowner)::text[], obj_description(c.oid, 'pg_class'), c.relpersistence,"
        " c.reloptions::text[], c.relrowsecurity, c.relforcerowsecurity,"
        " pg_get_expr(c.relpartbound, c.oid),"
        " CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,"
        " CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,"
        " c.relreplident, am.amname,"
        " ARRAY(SELECT i.inhparent::regclass::text FROM pg_inherits i"
        "       WHERE i.inhrelid = c.oid ORDER BY i.inhseqno)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_am am ON am.oid = c.relam"
        f" WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {user}"
        f" AND {not_extension_member('pg_class', 'c.oid')}"
    ).fetchall():
        oid, schema, name, kind, owner, acl, default, comment, *rest = row
        persistence, options, rls, force_rls, bound, partkey, view, replident, am, parents = rest
        qualified = _name(schema, name)
        relations[int(oid)] = qualified
        definition = {
            "kind": kind,
            "comment": comment,
            "persistence": persistence,
            "options": sorted(options or []),
            "row_security": [rls, force_rls],
            "partition_bound": bound,
            "partition_key": partkey,
            "query": view,
            "replica_identity": replident,
            "access_method": am,
            "parents": parents,
        }
        table = qualified if kind in ("r", "p", "f") else None
        relation_keys[qualified] = f"{kinds[kind]} {qualified}"
        add(SchemaObject(relation_keys[qualified], definition, [owner, _acl(acl, default)], table))

    def relation_key(oid: int) -> str | None:
        return relations.get(int(oid))

    columns: dict[str, list[Any]] = {}
    column_acls: dict[str, list[Any]] = {}
    for (
        relid,
        name,
        type_,
        notnull,
        default,
        identity,
        generated,
        collation,
        acl,
        comment,
    ) in connection.execute(
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,"
        " CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,"
        " a.attacl::text[], col_description(a.attrelid, a.attnum)"
        " FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " LEFT JOIN pg_collation co ON co.oid = a.attcollation"
        " WHERE a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum"
    ).fetchall():
        owner_key = relation_key(relid)
        if owner_key is None:
            continue
        columns.setdefault(owner_key, []).append(
            [name, type_, notnull, default, identity, generated, collation, comment]
        )
        if acl:
            column_acls.setdefault(owner_key, []).append([name, sorted(acl)])
    for qualified, key in relation_keys.items():
        if qualified in columns:
            item = found[key]
            found[key] = SchemaObject(
                key,
                item.definition | {"columns": columns[qualified]},
                [*item.privileges, column_acls.get(qualified, [])],
                item.table,
            )

    for relid, name, definition, comment in connection.execute(
        "SELECT conrelid, conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint')"
        " FROM pg_constraint WHERE conrelid <> 0"
    ).fetchall():
        table = relation_key(relid)
        if table is not None:
            add(SchemaObject(f"constraint {name} on {table}", [definition, comment], [], table))
    for relid, name, schema, definition, comment in connection.execute(
        "SELECT i.indrelid, c.relname, n.nspname, pg_get_indexdef(i.indexrelid),"
        " obj_description(c.oid, 'pg_class') FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    ).fetchall():
        table = relation_key(relid)
        if table is not None:
            add(SchemaObject(f"index {_name(schema, name)}", [definition, comment], [], table))
    for relid, name, definition, enabled, comment in connection.execute(
        "SELECT tgrelid, tgname, pg_get_triggerdef(oid), tgenabled,"
        " obj_description(oid, 'pg_trigger') FROM pg_trigger WHERE NOT tgisinternal"
    ).fetchall():
        table = relation_key(relid)
        if table is not None:
            key = f"trigger {name} on {table}"
            add(SchemaObject(key, [definition, enabled, comment], [], table))
    for relid, name, definition, comment in connection.execute(
        "SELECT ev_class, rulename, pg_get_ruledef(oid), obj_description(oid, 'pg_rewrite')"
        " FROM pg_rewrite WHERE rulename <> '_RETURN'"
    ).fetchall():
        table = relation_key(relid)
        if table is not None:
            add(SchemaObject(f"rule {name} on {table}", [definition, comment], [], table))
    for relid, name, permissive, command, roles, using, check in connection.execute(
        "SELECT polrelid, polname, polpermissive, polcmd,"
        " ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END"
        "       FROM unnest(polroles) r ORDER BY 1),"
        " pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy"
    ).fetchall():
        table = relation_key(relid)
        if table is not None:
            add(
                SchemaObject(
                    f"policy {name} on {table}", [permissive, command, using, check], roles, table
                )
            )
    for relid, type_, start, increment, maximum, minimum, cache, cycle in connection.execute(
        "SELECT seqrelid, format_type(seqtypid, NULL), seqstart, seqincrement, seqmax, seqmin,"
        " seqcache, seqcycle FROM pg_sequence"
    ).fetchall():
        key = f"sequence {relation_key(relid)}"
        if key in found:
            item = found[key]
            options = [type_, start, increment, maximum, minimum, cache, cycle]
            found[key] = SchemaObject(
                key, item.definition | {"options": options}, item.privileges, item.table
            )
    for seq, owner, column in connection.execute(
        "SELECT d.objid, d.refobjid::regclass::text, a.attname FROM pg_depend d"
        " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
        " JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
        " WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass"
        " AND d.deptype IN ('a', 'i')"
    ).fetchall():
        key = f"sequence {relation_key(seq)}"
        if key in found:
            item = found[key]
            found[key] = SchemaObject(
                key,
                item.definition | {"owned_by": f"{owner}.{column}"},
                item.privileges,
                item.table,
            )

    for row in connection.execute(
        "SELECT n.nspname, t.typname, t.typtype, pg_get_userbyid(t.typowner), t.typacl::text[],"
        " acldefault('T', t.typowner)::text[], obj_description(t.oid, 'pg_type'),"
        " CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT enumlabel::text FROM pg_enum"
        "      WHERE enumtypid = t.oid ORDER BY enumsortorder) END,"
        " CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,"
        " t.typnotnull, t.typdefault,"
        " ARRAY(SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint"
        "       WHERE contypid = t.oid ORDER BY conname),"
        " CASE WHEN t.typtype = 'c' THEN ARRAY(SELECT a.attname || ' '"
        "      || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        "      WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped"
        "      ORDER BY a.attnum) END,"
        " CASE WHEN t.typtype = 'r' THEN (SELECT ARRAY[format_type(r.rngsubtype, NULL),"
        "      r.rngsubopc::regclass::text, r.rngcanonical::text, r.rngsubdiff::text]"
        "      FROM pg_range r WHERE r.rngtypid = t.oid) END"
        " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " LEFT JOIN pg_class c ON c.oid = t.typrelid"
        f" WHERE {user} AND t.typtype IN ('e', 'd', 'c', 'r', 'b')"
        " AND (t.typrelid = 0 OR c.relkind = 'c')"
        " AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)"
        f" AND {not_extension_member('pg_type', 't.oid')}"
    ).fetchall():
        schema, name, typtype, owner, acl, default, comment, *details = row
        add(
            SchemaObject(
                f"type {_name(schema, name)}",
                [typtype, comment, *details],
                [owner, _acl(acl, default)],
            )
        )

    for row in connection.execute(
        "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), p.prokind,"
        " pg_get_userbyid(p.proowner), p.proacl::text[], acldefault('f', p.proowner)::text[],"
        " obj_description(p.oid, 'pg_proc'),"
        " CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,"
        " (SELECT ARRAY[a.aggkind::text, a.aggtransfn::text, a.aggfinalfn::text,"
        "  a.aggcombinefn::text, format_type(a.aggtranstype, NULL), a.agginitval,"
        "  a.aggsortop::regoperator::text] FROM pg_aggregate a WHERE a.aggfnoid = p.oid)"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        f" WHERE {user} AND {not_extension_member('pg_proc', 'p.oid')}"
    ).fetchall():
        schema, name, arguments, prokind, owner, acl, default, comment, body, aggregate = row
        kind = {"p": "procedure", "a": "aggregate"}.get(str(prokind), "function")
        add(
            SchemaObject(
                f"{kind} {_name(schema, name)}({arguments})",
                [body, aggregate, comment],
                [owner, _acl(acl, default)],
            )
        )

    for name, version, schema, comment in connection.execute(
        "SELECT x.extname, x.extversion, n.nspname, obj_description(x.oid, 'pg_extension')"
        " FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
    ).fetchall():
        add(SchemaObject(f"extension {name}", [version, schema, comment], []))

    for role, schema, objtype, acl in connection.execute(
        "SELECT pg_get_userbyid(d.defaclrole), n.nspname, d.defaclobjtype::text,"
        " d.defaclacl::text[] FROM pg_default_acl d"
        " LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace"
    ).fetchall():
        where = f" in schema {schema}" if schema else ""
        key = f"{DEFAULT_PRIVILEGES}{role} on {objtype}{where}"
        add(SchemaObject(key, [], sorted(acl or [])))

    for name, event, owner, function, enabled, tags in connection.execute(
        "SELECT evtname, evtevent, pg_get_userbyid(evtowner), evtfoid::regproc::text,"
        " evtenabled, evttags FROM pg_event_trigger"
    ).fetchall():
        add(SchemaObject(f"event trigger {name}", [event, function, enabled, tags], [owner]))

    for schema, name, definition in connection.execute(
        "SELECT n.nspname, s.stxname, pg_get_statisticsobjdef(s.oid) FROM pg_statistic_ext s"
        f" JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE {user}"
    ).fetchall():
        add(SchemaObject(f"statistics {_name(schema, name)}", [definition], []))

    for schema, name, provider, collate, ctype in connection.execute(
        "SELECT n.nspname, c.collname, c.collprovider, c.collcollate, c.collctype"
        f" FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace WHERE {user}"
        f" AND {not_extension_member('pg_collation', 'c.oid')}"
    ).fetchall():
        add(SchemaObject(f"collation {_name(schema, name)}", [provider, collate, ctype], []))

    _add_version_2_kinds(connection, add)
    _add_version_3_kinds(connection, add)

    objects = connection.execute(
        "SELECT oid::bigint, pg_get_userbyid(lomowner), lomacl::text[],"
        " acldefault('L', lomowner)::text[], obj_description(oid, 'pg_largeobject')"
        " FROM pg_largeobject_metadata ORDER BY oid"
    ).fetchall()
    if objects:
        add(
            SchemaObject(
                LARGE_OBJECTS,
                [[oid, comment] for oid, _o, _a, _d, comment in objects],
                [[oid, owner, _acl(acl, default)] for oid, owner, acl, default, _c in objects],
            )
        )
    return found


def _option_names(options: list[str] | None) -> list[str]:
    """The names of ``key=value`` options, never the values (a password may be one)."""
    return sorted(option.split("=", 1)[0] for option in options or [])


VERSION_2_KINDS = (
    "operator ",
    "cast ",
    "text search configuration ",
    "text search dictionary ",
    "text search parser ",
    "text search template ",
    "foreign data wrapper ",
    "server ",
    "user mapping ",
    "publication ",
    "language ",
)
"""The kinds fingerprint version 2 added: a version 1 fingerprint did not record them, so they
are not compared with it."""

VERSION_3_KINDS = ("operator class ", "operator family ", "security label ", "subscription ")
"""The kinds fingerprint version 3 added (not compared with an older fingerprint)."""

KINDS_SINCE = {2: VERSION_2_KINDS, 3: VERSION_3_KINDS}
"""Per fingerprint version, the kinds it added."""


def not_recorded_in(version: int) -> tuple[str, ...]:
    """The kinds a fingerprint of ``version`` did not record."""
    return tuple(k for v, kinds in KINDS_SINCE.items() if v > version for k in kinds)


SUBSCRIPTION_LEFT_OUT = ("oid", "subdbid", "subname", "subowner", "subconninfo", "subenabled")
"""Columns of ``pg_subscription`` a subscription's definition leaves out: its identity and owner
(keyed and compared apart), its connection string (a superuser's to read, and it may hold a
password: never recorded), whether it is enabled (``pg_dump`` restores every subscription
disabled, ``connect = false``: enabling it is the operator's call once the publisher side is
ready) and the run-time state ``subskiplsn``."""

MEMBERS = """ARRAY(
  SELECT 'operator ' || o.amopstrategy || ' (' || format_type(o.amoplefttype, NULL) || ', '
    || format_type(o.amoprighttype, NULL) || ') ' || o.amopopr::regoperator::text || ' '
    || o.amoppurpose::text || coalesce(' ' || (SELECT sf.opfname FROM pg_opfamily sf
                                               WHERE sf.oid = o.amopsortfamily), '')
  FROM pg_amop o JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = o.oid
  WHERE d.refclassid = '{catalog}'::regclass AND d.refobjid = {oid}
  UNION ALL
  SELECT 'function ' || p.amprocnum || ' (' || format_type(p.amproclefttype, NULL) || ', '
    || format_type(p.amprocrighttype, NULL) || ') ' || p.amproc::regprocedure::text
  FROM pg_amproc p JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = p.oid
  WHERE d.refclassid = '{catalog}'::regclass AND d.refobjid = {oid}
  ORDER BY 1)"""
"""The operators and support functions that belong to an operator class (created with it) or,
loose, to an operator family (added by ``ALTER OPERATOR FAMILY ... ADD``)."""


def _add_version_3_kinds(connection: Connection, add: Any) -> None:
    user = USER_SCHEMA.format(n="n")
    for schema, name, method, owner, *definition in connection.execute(
        "SELECT n.nspname, c.opcname, am.amname, pg_get_userbyid(c.opcowner),"
        " obj_description(c.oid, 'pg_opclass'),"
        " (SELECT fn.nspname || '.' || f.opfname FROM pg_opfamily f"
        "  JOIN pg_namespace fn ON fn.oid = f.opfnamespace WHERE f.oid = c.opcfamily),"
        " format_type(c.opcintype, NULL), c.opcdefault, format_type(c.opckeytype, NULL),"
        f" {MEMBERS.format(catalog='pg_opclass', oid='c.oid')}"
        " FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace"
        " JOIN pg_am am ON am.oid = c.opcmethod"
        f" WHERE {user} AND {not_extension_member('pg_opclass', 'c.oid')}"
    ).fetchall():
        key = f"operator class {_name(schema, name)} using {method}"
        add(SchemaObject(key, definition, [owner]))
    for schema, name, method, owner, *definition in connection.execute(
        "SELECT n.nspname, f.opfname, am.amname, pg_get_userbyid(f.opfowner),"
        " obj_description(f.oid, 'pg_opfamily'),"
        f" {MEMBERS.format(catalog='pg_opfamily', oid='f.oid')}"
        " FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace"
        " JOIN pg_am am ON am.oid = f.opfmethod"
        f" WHERE {user} AND {not_extension_member('pg_opfamily', 'f.oid')}"
    ).fetchall():
        key = f"operator family {_name(schema, name)} using {method}"
        add(SchemaObject(key, definition, [owner]))

    # Labels of this database's objects; a database's, a role's or a tablespace's are the
    # cluster's (``pg_dump`` without ``--create`` leaves them out).
    for provider, objtype, objname, label in connection.execute(
        "SELECT provider, objtype, objname, label FROM pg_seclabels"
        " WHERE objtype NOT IN ('database', 'role', 'tablespace')"
    ).fetchall():
        add(SchemaObject(f"security label {provider} on {objtype} {objname}", [label], []))

    # ``pg_dump`` dumps subscriptions for a superuser only (it warns and leaves them out for
    # anyone else); read the same way.
    superuser = connection.execute("SELECT current_setting('is_superuser')").fetchone()
    if superuser is None or superuser[0] != "on":
        return
    columns = [
        str(row[0])
        for row in connection.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'pg_subscription'::regclass"
            " AND attnum > 0 AND NOT attisdropped AND attname <> 'subskiplsn' ORDER BY attnum"
        ).fetchall()
        if str(row[0]) not in SUBSCRIPTION_LEFT_OUT
    ]
    query = sql.SQL(
        "SELECT s.subname, pg_get_userbyid(s.subowner), shobj_description(s.oid, "
        "'pg_subscription'), {} FROM pg_subscription s WHERE s.subdbid ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).format(sql.SQL(", ").join(sql.Identifier("s", column) for column in columns))
    for name, owner, comment, *values in connection.execute(query).fetchall():
        subscription: dict[str, Any] = {"comment": comment}
        subscription |= dict(zip(columns, values, strict=True))
        if "subtwophasestate" in subscription:  # pending until enabled: only on or off is dumped
            subscription["subtwophasestate"] = subscription["subtwophasestate"] != "d"
        add(SchemaObject(f"subscription {name}", subscription, [owner]))


def _add_version_2_kinds(connection: Connection, add: Any) -> None:
    user = USER_SCHEMA.format(n="n")
    for row in connection.execute(
        "SELECT n.nspname, o.oprname, format_type(o.oprleft, NULL), format_type(o.oprright, NULL),"
        " pg_get_userbyid(o.oprowner), obj_description(o.oid, 'pg_operator'),"
        " format_type(o.oprresult, NULL), o.oprcode::regprocedure::text,"
        " o.oprcom::regoperator::text, o.oprnegate::regoperator::text,"
        " o.oprrest::regprocedure::text, o.oprjoin::regprocedure::text, o.oprcanmerge,"
        " o.oprcanhash FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace"
        f" WHERE {user} AND {not_extension_member('pg_operator', 'o.oid')}"
    ).fetchall():
        schema, name, left, right, owner, *definition = row
        add(SchemaObject(f"operator {_name(schema, name)}({left}, {right})", definition, [owner]))

    for source, target, *definition in connection.execute(
        "SELECT format_type(c.castsource, NULL), format_type(c.casttarget, NULL),"
        " c.castfunc::regprocedure::text, c.castcontext, c.castmethod,"
        " obj_description(c.oid, 'pg_cast') FROM pg_cast c"
        f" WHERE c.oid >= 16384 AND {not_extension_member('pg_cast', 'c.oid')}"
    ).fetchall():
        add(SchemaObject(f"cast ({source} AS {target})", definition, []))

    for schema, name, owner, *definition in connection.execute(
        "SELECT n.nspname, c.cfgname, pg_get_userbyid(c.cfgowner),"
        " obj_description(c.oid, 'pg_ts_config'),"
        " (SELECT pn.nspname || '.' || p.prsname FROM pg_ts_parser p"
        "  JOIN pg_namespace pn ON pn.oid = p.prsnamespace WHERE p.oid = c.cfgparser),"
        " ARRAY(SELECT m.maptokentype || ' ' || m.mapseqno || ' ' || m.mapdict::regdictionary"
        "       FROM pg_ts_config_map m WHERE m.mapcfg = c.oid"
        "       ORDER BY m.maptokentype, m.mapseqno)"
        " FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace"
        f" WHERE {user} AND {not_extension_member('pg_ts_config', 'c.oid')}"
    ).fetchall():
        key = f"text search configuration {_name(schema, name)}"
        add(SchemaObject(key, definition, [owner]))
    for schema, name, owner, *definition in connection.execute(
        "SELECT n.nspname, d.dictname, pg_get_userbyid(d.dictowner),"
        " obj_description(d.oid, 'pg_ts_dict'),"
        " (SELECT tn.nspname || '.' || t.tmplname FROM pg_ts_template t"
        "  JOIN pg_namespace tn ON tn.oid = t.tmplnamespace WHERE t.oid = d.dicttemplate),"
        " d.dictinitoption FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace"
        f" WHERE {user} AND {not_extension_member('pg_ts_dict', 'd.oid')}"
    ).fetchall():
        add(SchemaObject(f"text search dictionary {_name(schema, name)}", definition, [owner]))
    for schema, name, *definition in connection.execute(
        "SELECT n.nspname, p.prsname, obj_description(p.oid, 'pg_ts_parser'),"
        " p.prsstart::regproc::text, p.prstoken::regproc::text, p.prsend::regproc::text,"
        " p.prsheadline::regproc::text, p.prslextype::regproc::text"
        " FROM pg_ts_parser p JOIN pg_namespace n ON n.oid = p.prsnamespace"
        f" WHERE {user} AND {not_extension_member('pg_ts_parser', 'p.oid')}"
    ).fetchall():
        add(SchemaObject(f"text search parser {_name(schema, name)}", definition, []))
    for schema, name, *definition in connection.execute(
        "SELECT n.nspname, t.tmplname, obj_description(t.oid, 'pg_ts_template'),"
        " t.tmplinit::regproc::text, t.tmpllexize::regproc::text"
        " FROM pg_ts_template t JOIN pg_namespace n ON n.oid = t.tmplnamespace"
        f" WHERE {user} AND {not_extension_member('pg_ts_template', 't.oid')}"
    ).fetchall():
        add(SchemaObject(f"text search template {_name(schema, name)}", definition, []))

    for name, owner, acl, default, options, *definition in connection.execute(
        "SELECT w.fdwname, pg_get_userbyid(w.fdwowner), w.fdwacl::text[],"
        " acldefault('F', w.fdwowner)::text[], w.fdwoptions,"
        " obj_description(w.oid, 'pg_foreign_data_wrapper'), w.fdwhandler::regproc::text,"
        " w.fdwvalidator::regproc::text FROM pg_foreign_data_wrapper w"
        f" WHERE {not_extension_member('pg_foreign_data_wrapper', 'w.oid')}"
    ).fetchall():
        definition.append(_option_names(options))
        add(SchemaObject(f"foreign data wrapper {name}", definition, [owner, _acl(acl, default)]))
    for name, owner, acl, default, options, *definition in connection.execute(
        "SELECT s.srvname, pg_get_userbyid(s.srvowner), s.srvacl::text[],"
        " acldefault('S', s.srvowner)::text[], s.srvoptions,"
        " obj_description(s.oid, 'pg_foreign_server'), w.fdwname, s.srvtype, s.srvversion"
        " FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw"
        f" WHERE {not_extension_member('pg_foreign_server', 's.oid')}"
    ).fetchall():
        definition.append(_option_names(options))
        add(SchemaObject(f"server {name}", definition, [owner, _acl(acl, default)]))
    for user_name, server, options in connection.execute(
        "SELECT u.usename, u.srvname, u.umoptions FROM pg_user_mappings u"
    ).fetchall():
        key = f"user mapping for {user_name} server {server}"
        add(SchemaObject(key, [_option_names(options)], []))

    for name, owner, publication, tables in connection.execute(
        "SELECT p.pubname, pg_get_userbyid(p.pubowner),"
        " (to_jsonb(p) - 'oid' - 'pubowner')::text,"
        " ARRAY(SELECT to_jsonb(t)::text FROM pg_publication_tables t"
        "       WHERE t.pubname = p.pubname ORDER BY t.schemaname, t.tablename)"
        " FROM pg_publication p"
    ).fetchall():
        add(SchemaObject(f"publication {name}", [publication, tables], [owner]))

    for name, owner, acl, default, *definition in connection.execute(
        "SELECT l.lanname, pg_get_userbyid(l.lanowner), l.lanacl::text[],"
        " acldefault('l', l.lanowner)::text[], obj_description(l.oid, 'pg_language'),"
        " l.lanpltrusted, l.lanplcallfoid::regprocedure::text,"
        " l.laninline::regprocedure::text, l.lanvalidator::regprocedure::text"
        " FROM pg_language l WHERE l.lanispl"
        f" AND {not_extension_member('pg_language', 'l.oid')}"
    ).fetchall():
        add(SchemaObject(f"language {name}", definition, [owner, _acl(acl, default)]))


def fingerprint(objects: dict[str, SchemaObject]) -> dict[str, Any]:
    """What a manifest records of a schema: per object its two digests, and one over all."""
    digests = {key: objects[key].digest for key in sorted(objects)}
    tables = {key: objects[key].table for key in sorted(objects) if objects[key].table}
    return {
        "version": FINGERPRINT_VERSION,
        "digest": _digest(digests),
        "objects": digests,
        "tables": tables,
    }


# --- content ----------------------------------------------------------------------------------


def user_relations(connection: Connection) -> list[tuple[str, str, str, int, bool]]:
    """(schema, name, relkind, bytes, populated) of every table (partitions with their parent)
    and materialized view."""
    rows = connection.execute(
        "SELECT n.nspname, c.relname, c.relkind,"
        " CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)"
        "      FROM pg_partition_tree(c.oid) t) ELSE pg_total_relation_size(c.oid) END,"
        " c.relispopulated"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition"
        f" AND {USER_SCHEMA.format(n='n')} AND {not_extension_member('pg_class', 'c.oid')}"
        " ORDER BY 1, 2"
    ).fetchall()
    return [(str(s), str(n), str(k), int(b), bool(p)) for s, n, k, b, p in rows]


CHECKSUM = (
    "SELECT count(*), coalesce(sum(hashtextextended(r, 0)), 0)::text,"
    " coalesce(sum(hashtextextended(r, 1)), 0)::text"
    " FROM (SELECT t::text AS r FROM {} AS t) AS rows"
)
"""Each row's text hashed twice (64 bits each, the hash of hash partitioning: the same on every
server since PostgreSQL 11), summed: the order does not matter and nothing is buffered."""


def table_checksum(connection: Connection, schema: str, name: str) -> str:
    query = sql.SQL(CHECKSUM).format(sql.Identifier(schema, name))
    row = connection.execute(query).fetchone()
    assert row is not None
    return f"{row[0]}:{hashlib.sha256(f'{row[1]}:{row[2]}'.encode()).hexdigest()[:32]}"


def large_object_checksum(connection: Connection) -> str | None:
    row = connection.execute(
        "SELECT count(*), coalesce(sum(hashtextextended(r, 0)), 0)::text,"
        " coalesce(sum(hashtextextended(r, 1)), 0)::text"
        " FROM (SELECT oid::text || ':' || md5(lo_get(oid)) AS r"
        "       FROM pg_largeobject_metadata) AS objects"
    ).fetchone()
    assert row is not None
    if not row[0]:
        return None
    return f"{row[0]}:{hashlib.sha256(f'{row[1]}:{row[2]}'.encode()).hexdigest()[:32]}"


def table_contents(
    connection: Connection, limit: int, only: Iterable[str] | None = None
) -> dict[str, str | None]:
    """Per table and populated materialized view (``schema.name``): ``rows:checksum``, or None
    for one over ``limit`` bytes (checked by row count); the large objects under
    ``LARGE_OBJECTS`` when there are any and they fit the limit too."""
    wanted = set(only) if only is not None else None
    contents: dict[str, str | None] = {}
    for schema, name, kind, size, populated in user_relations(connection):
        key = _name(schema, name)
        if wanted is not None and key not in wanted:
            continue
        if kind == "m" and not populated:
            contents[key] = "not populated"
        elif size > limit:
            contents[key] = None
        else:
            contents[key] = table_checksum(connection, schema, name)
    if wanted is None or LARGE_OBJECTS in wanted:
        row = connection.execute(
            "SELECT count(*), coalesce(sum(octet_length(lo_get(oid))), 0) FROM"
            " pg_largeobject_metadata"
        ).fetchone()
        if row is not None and row[0]:
            contents[LARGE_OBJECTS] = large_object_checksum(connection) if row[1] <= limit else None
    return contents


def sequence_states(connection: Connection) -> dict[str, list[Any]]:
    """Per sequence (``schema.name``): [last_value, is_called, increment]."""
    states: dict[str, list[Any]] = {}
    for schema, name, increment in connection.execute(
        "SELECT n.nspname, c.relname, s.seqincrement FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid"
        f" WHERE c.relkind = 'S' AND {USER_SCHEMA.format(n='n')} ORDER BY 1, 2"
    ).fetchall():
        query = sql.SQL("SELECT last_value, is_called FROM {}").format(
            sql.Identifier(str(schema), str(name))
        )
        row = connection.execute(query).fetchone()
        assert row is not None
        states[_name(str(schema), str(name))] = [int(row[0]), bool(row[1]), int(increment)]
    return states


def sequence_record(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, Any]:
    """What a manifest records of the sequences: the state, or the states before and after the
    dump where it moved while the dump ran."""
    record: dict[str, Any] = {}
    for name, state in before.items():
        moved = after.get(name, state)
        record[name] = state[:2] if moved[:2] == state[:2] else {"from": state[:2], "to": moved[:2]}
    return record


def _position(state: list[Any], increment: int) -> int:
    """How far a sequence has gone: the value the next ``nextval`` returns, less one step."""
    return int(state[0]) if state[1] else int(state[0]) - increment


def sequence_matches(expected: Any, found: list[Any]) -> bool:
    if isinstance(expected, list):
        return bool(expected == found[:2])
    increment = int(found[2])
    low, high = (_position(expected[e], increment) for e in ("from", "to"))
    here = _position(found, increment)
    if increment < 0:
        low, high, here = -low, -high, -here
    return low <= here <= high if low <= high else here >= low or here <= high  # wrapped: CYCLE


# --- the record and the comparison ------------------------------------------------------------


def record(connection: Connection, limit: int) -> dict[str, Any]:
    """Inside the backup's snapshot: the schema fingerprint and the tables' contents."""
    return {
        "schema": fingerprint(schema_objects(connection)),
        "content": {"max_bytes": limit, "tables": table_contents(connection, limit)},
    }


def describe_privileges(objects: dict[str, SchemaObject], key: str) -> str:
    item = objects.get(key)
    return "" if item is None else f" (restored: {json.dumps(item.privileges)})"


def compare(
    checks: dict[str, Any],
    connection: Connection,
    tables: list[str] | None = None,
    privileges: bool = True,
) -> tuple[str | None, str]:
    """(the first difference between the restored database and what the backup recorded, or
    None; what was compared). ``tables``: a selective restore, only those tables are compared;
    ``privileges``: False compares definitions only (a ``--no-privileges`` restore)."""
    apply_settings(connection)
    compared = []
    schema = checks.get("schema")
    if schema:
        objects = schema_objects(connection)
        found = {key: objects[key].digest for key in objects}
        expected: dict[str, str] = schema["objects"]
        later = not_recorded_in(int(schema.get("version", 1)))
        if later:  # recorded before these kinds were
            found = {k: v for k, v in found.items() if not k.startswith(later)}
        if tables is not None:
            owned = schema.get("tables", {})
            keep = {key for key in expected if owned.get(key) in tables and key.startswith("table")}
            expected = {key: value for key, value in expected.items() if key in keep}
            found = {key: value for key, value in found.items() if key in keep}
        if not privileges:  # default privileges are privileges only
            expected = {k: v for k, v in expected.items() if not k.startswith(DEFAULT_PRIVILEGES)}
            found = {k: v for k, v in found.items() if not k.startswith(DEFAULT_PRIVILEGES)}
        for key in sorted(set(expected) | set(found)):
            if key not in found:
                return f"{key} is in the backup but not in the restored database", ""
            if key not in expected:
                return f"{key} is in the restored database but not in the backup", ""
            want_def, want_priv = expected[key].split(":")
            have_def, have_priv = found[key].split(":")
            if want_def != have_def:
                return f"{key}: its definition differs from the backup's", ""
            if privileges and want_priv != have_priv:
                detail = describe_privileges(objects, key)
                return f"{key}: its owner or privileges differ from the backup's{detail}", ""
        compared.append(
            f"{len(expected)} schema objects" + ("" if privileges else " (no privileges)")
        )
    content = checks.get("content")
    if content:
        recorded: dict[str, str | None] = content["tables"]
        # Over the limit (None): the row count is compared (``count_rows``), not the content.
        names = [n for n in recorded if recorded[n] is not None and (tables is None or n in tables)]
        found_content = table_contents(connection, 2**62, names)
        for name in names:
            want, have = recorded[name], found_content.get(name)
            if have != want:
                label = name if name == LARGE_OBJECTS else f"table {name}"
                if name in _matviews(schema):
                    label = f"materialized view {name}"
                return f"{label}: its content differs from the backup's ({_rows(have, want)})", ""
        compared.append(f"the content of {len(names)} tables")
    sequences = checks.get("sequences")
    if sequences is not None and tables is None:
        states = sequence_states(connection)
        for name in sorted(set(sequences) | set(states)):
            if name not in states:
                return f"sequence {name} is in the backup but not in the restored database", ""
            if name not in sequences:
                continue  # a sequence the schema comparison already named
            if not sequence_matches(sequences[name], states[name]):
                return (
                    f"sequence {name}: its state (last value, is_called) is "
                    f"{states[name][:2]}, the backup's is {_show(sequences[name])}",
                    "",
                )
        compared.append(f"the state of {len(sequences)} sequences")
    return None, ", ".join(compared)


def _matviews(schema: dict[str, Any] | None) -> set[str]:
    prefix = "materialized view "
    return {k[len(prefix) :] for k in (schema or {}).get("objects", {}) if k.startswith(prefix)}


def _rows(have: str | None, want: str | None) -> str:
    if have is None or want is None or ":" not in have or ":" not in want:
        return f"restored {have}, backup {want}"
    found, expected = have.split(":")[0], want.split(":")[0]
    if found != expected:
        return f"{found} rows, the backup has {expected}"
    return f"{found} rows in both, a row differs"


def _show(expected: Any) -> str:
    if isinstance(expected, list):
        return str(expected)
    return f"between {expected['from']} and {expected['to']}"
