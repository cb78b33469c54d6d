"""The tricky PostgreSQL dataset (issue 18): what naive dump-and-restore tools lose."""

from __future__ import annotations

import secrets

import psycopg

APP_ROLE_PREFIX = "drkit app "
"""The role the grants go to: a name with a space, so quoting is exercised too."""


def app_role() -> str:
    return f"{APP_ROLE_PREFIX}{secrets.token_hex(3)}"


def tricky_sql(role: str) -> str:
    r = '"' + role.replace('"', '""') + '"'
    return f"""
CREATE ROLE {r} NOLOGIN;
CREATE SCHEMA "odd schema";
COMMENT ON SCHEMA "odd schema" IS 'a schema with a space';
GRANT USAGE ON SCHEMA "odd schema" TO {r};
CREATE TYPE "odd schema".mood AS ENUM ('sad', 'ok', 'happy ''quoted''');
CREATE DOMAIN "odd schema".positive AS numeric CHECK (VALUE > 0);
CREATE TABLE "odd schema"."order items" (
    "item id" bigserial PRIMARY KEY,
    mood "odd schema".mood NOT NULL DEFAULT 'ok',
    price "odd schema".positive,
    payload bytea,
    doc jsonb,
    tags text[],
    reading double precision,
    amount numeric,
    seen timestamptz
);
COMMENT ON TABLE "odd schema"."order items" IS 'items, with a comment';
COMMENT ON COLUMN "odd schema"."order items".doc IS 'the document';
INSERT INTO "odd schema"."order items" (mood, price, payload, doc, tags, reading, amount, seen)
VALUES
  ('happy ''quoted''', 1.5, '\\x00ff0a'::bytea, '{{"a": [1, null, "x\\"y"]}}',
   ARRAY['a', NULL, 'with "quote"', 'with ''apostrophe''', ''], 'NaN', 'NaN', 'infinity'),
  ('sad', 2, ''::bytea, 'null', ARRAY[NULL]::text[], '-Infinity', '12345.678900', '-infinity'),
  ('ok', NULL, NULL, NULL, '{{}}', 1e-310, NULL, '2026-01-02 03:04:05.123456+07');
GRANT SELECT, INSERT ON "odd schema"."order items" TO {r};
GRANT UPDATE (doc) ON "odd schema"."order items" TO {r};
GRANT USAGE ON SEQUENCE "odd schema"."order items_item id_seq" TO {r};

CREATE TABLE "odd schema".events (id int, at date NOT NULL, note text) PARTITION BY RANGE (at);
CREATE TABLE "odd schema"."events 2025" PARTITION OF "odd schema".events
  FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "odd schema"."events 2026" PARTITION OF "odd schema".events
  FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO "odd schema".events VALUES (1, '2025-06-01', 'first'), (2, '2026-02-03', 'second');

CREATE VIEW "odd schema"."happy items" AS
  SELECT "item id", doc FROM "odd schema"."order items" WHERE mood = 'happy ''quoted''';
GRANT SELECT ON "odd schema"."happy items" TO {r};
CREATE MATERIALIZED VIEW "odd schema"."mood counts" AS
  SELECT mood, count(*) AS n FROM "odd schema"."order items" GROUP BY mood;

CREATE FUNCTION "odd schema".touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.seen := coalesce(NEW.seen, '2000-01-01'); RETURN NEW; END $$;
REVOKE EXECUTE ON FUNCTION "odd schema".touch() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION "odd schema".touch() TO {r};
CREATE TRIGGER "touch it" BEFORE INSERT ON "odd schema"."order items"
  FOR EACH ROW EXECUTE FUNCTION "odd schema".touch();

CREATE SEQUENCE "odd schema"."cycling seq" MINVALUE 1 MAXVALUE 5 INCREMENT 2 CYCLE;
SELECT nextval('"odd schema"."cycling seq"') FROM generate_series(1, 4);
CREATE SEQUENCE "odd schema".untouched START 7;
ALTER DEFAULT PRIVILEGES IN SCHEMA "odd schema" GRANT SELECT ON TABLES TO {r};

CREATE TABLE "odd schema".blobs (name text PRIMARY KEY, ref oid);

CREATE FUNCTION "odd schema".near(numeric, numeric) RETURNS boolean LANGUAGE sql IMMUTABLE
  AS 'SELECT abs($1 - $2) < 1';
CREATE OPERATOR "odd schema".~~~ (LEFTARG = numeric, RIGHTARG = numeric,
  FUNCTION = "odd schema".near, COMMUTATOR = OPERATOR("odd schema".~~~));
CREATE CAST ("odd schema".mood AS text) WITH INOUT AS ASSIGNMENT;
CREATE TEXT SEARCH CONFIGURATION "odd schema".plain (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION "odd schema".plain DROP MAPPING FOR email;
COMMENT ON TEXT SEARCH CONFIGURATION "odd schema".plain IS 'simple, without emails';
CREATE PUBLICATION "odd pub" FOR TABLE "odd schema".blobs WITH (publish = 'insert, update');
CREATE POLICY "own moods" ON "odd schema"."order items" FOR SELECT TO PUBLIC USING (mood <> 'sad');
CREATE RULE "keep blobs" AS ON DELETE TO "odd schema".blobs DO INSTEAD NOTHING;
CREATE FOREIGN DATA WRAPPER "odd fdw";
CREATE SERVER "odd server" FOREIGN DATA WRAPPER "odd fdw" OPTIONS (host 'elsewhere');
GRANT USAGE ON FOREIGN SERVER "odd server" TO {r};
CREATE USER MAPPING FOR PUBLIC SERVER "odd server" OPTIONS (user 'app', password 'not recorded');
CREATE STATISTICS "odd schema"."mood and price" (dependencies) ON mood, price
  FROM "odd schema"."order items";
CREATE FUNCTION "odd schema"."reverse cmp"(bigint, bigint) RETURNS int LANGUAGE sql IMMUTABLE
  AS 'SELECT btint8cmp($2, $1)';
CREATE OPERATOR CLASS "odd schema"."reverse ops" FOR TYPE bigint USING btree AS
  OPERATOR 1 >, OPERATOR 2 >=, OPERATOR 3 =, OPERATOR 4 <=, OPERATOR 5 <,
  FUNCTION 1 "odd schema"."reverse cmp"(bigint, bigint);
COMMENT ON OPERATOR CLASS "odd schema"."reverse ops" USING btree IS 'largest first';
CREATE INDEX "items reversed" ON "odd schema"."order items" ("item id" "odd schema"."reverse ops");
CREATE OPERATOR FAMILY "odd schema"."odd hash" USING hash;
ALTER OPERATOR FAMILY "odd schema"."odd hash" USING hash
  ADD OPERATOR 1 = (int4, int4), FUNCTION 1 (int4, int4) hashint4(int4);
"""


def create_tricky_dataset(conninfo: str, role: str) -> None:
    """The dataset in the database ``conninfo`` names; ``role`` is created (cluster-wide)."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        for statement in _statements(tricky_sql(role)):
            connection.execute(statement)  # type: ignore[arg-type]
        oid = connection.execute("SELECT lo_from_bytea(0, '\\xdeadbeef00'::bytea)").fetchone()
        assert oid is not None
        connection.execute("INSERT INTO \"odd schema\".blobs VALUES ('one', %s)", (oid[0],))
        connection.execute(f"COMMENT ON LARGE OBJECT {int(oid[0])} IS 'a large object'")
        r = '"' + role.replace('"', '""') + '"'
        connection.execute(f"GRANT SELECT ON LARGE OBJECT {int(oid[0])} TO {r}")


def _statements(script: str) -> list[str]:
    """The script's statements: each ends with ';' at the end of a line (none inside one)."""
    return [part.strip() for part in script.split(";\n") if part.strip()]
