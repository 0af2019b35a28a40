"""The database in a snapshot: a consistent copy out (SQLite's online backup API; on PostgreSQL
the server's pg_dump, plain SQL so that unchanged rows deduplicate), the row count of each table
as that copy has it, and the copy back in: into the TOM's own database in one transaction, or
into a scratch database for `backup verify`."""
import os
import sqlite3
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from myapp.backups.restic import BackupError
from myapp.failures import one_line

SQLITE_FILE, POSTGRES_FILE = 'database.sqlite3', 'database.sql'


def vendor():
    return connection.vendor


def dump_name(of_vendor=None):
    """The file a database of that vendor (this TOM's by default) is copied to in a snapshot."""
    return SQLITE_FILE if (of_vendor or vendor()) == 'sqlite' else POSTGRES_FILE


def dump(folder):
    """Writes the database to folder/dump_name() and returns {table: rows} as that copy holds them."""
    target = Path(folder) / dump_name()
    if vendor() == 'sqlite':
        return _dump_sqlite(target)
    return _dump_postgres(target)


def _dump_sqlite(target):
    target.unlink(missing_ok=True)
    source = sqlite3.connect(connection.settings_dict['NAME'], timeout=60)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # a consistent copy, even while other processes write
        copy.execute('PRAGMA journal_mode=DELETE')  # one file, no -wal beside it
    finally:
        source.close()
    try:
        return sqlite_counts(copy)
    finally:
        copy.close()


def sqlite_counts(db):
    tables = [name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {table: db.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def _postgres_env(name=None):
    db = connection.settings_dict
    env = {**os.environ, 'PGHOST': db.get('HOST') or '', 'PGPORT': str(db.get('PORT') or 5432),
           'PGUSER': db.get('USER') or '', 'PGDATABASE': name or db['NAME'], 'PGCONNECT_TIMEOUT': '30'}
    if db.get('PASSWORD'):
        env['PGPASSWORD'] = db['PASSWORD']
    return env


def _dump_postgres(target):
    """pg_dump of the snapshot a REPEATABLE READ transaction exports, counting the rows of
    that same snapshot: the counts are the dump's, whatever is written meanwhile."""
    with connection.cursor() as cursor:
        connection.set_autocommit(False)
        try:
            cursor.execute('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
            cursor.execute('SELECT pg_export_snapshot()')
            exported = cursor.fetchone()[0]
            counts = {table: _count(cursor, table) for table in _postgres_tables(cursor)}
            done = subprocess.run(['pg_dump', '--no-owner', '--no-privileges', f'--snapshot={exported}',
                                   f'--file={target}'], env=_postgres_env(), capture_output=True, text=True)
        finally:
            connection.rollback()
            connection.set_autocommit(True)
    if done.returncode != 0:
        raise BackupError(f'pg_dump failed (exit status {done.returncode}): {_last(done.stderr)}')
    return counts


def _postgres_tables(cursor):
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
    return [name for (name,) in cursor.fetchall()]


def _count(cursor, table):
    cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
    return cursor.fetchone()[0]


def _last(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    return one_line(lines[-1] if lines else 'no message')[:500]


def load(dump_file):
    """Replaces the TOM's database with the dump, in one transaction: on any error nothing changes."""
    connection.close()
    if vendor() == 'sqlite':
        source = sqlite3.connect(dump_file)
        live = sqlite3.connect(connection.settings_dict['NAME'], timeout=60)
        try:
            source.backup(live)  # page by page under the write lock; readers see before or after
        finally:
            source.close()
            live.close()
        return
    _psql(dump_file, _postgres_env(), drop_first=True)


def _psql(dump_file, env, drop_first):
    """Feeds the dump to psql in a single transaction that stops at the first error; first,
    in the same transaction, drops what a freshly migrated database has."""
    prefix = "SET lock_timeout = '60s';\n"
    connection.ensure_connection()
    server_version = connection.pg_version
    if drop_first:
        with connection.cursor() as cursor:
            tables = _postgres_tables(cursor)
        connection.close()
        prefix += ''.join(f'DROP TABLE IF EXISTS "{table}" CASCADE;\n' for table in tables)
    process = subprocess.Popen(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', '-'],
                               env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        process.stdin.write(prefix.encode())
        with open(dump_file, 'rb') as dump_data:
            process.stdin.write(for_server(dump_data.read(1 << 20), server_version))
            while chunk := dump_data.read(1 << 20):
                process.stdin.write(chunk)
        process.stdin.close()
    except BrokenPipeError:
        pass
    stderr = process.stderr.read().decode(errors='replace')
    if process.wait() != 0:
        raise BackupError(f'psql could not load the snapshot\'s database (nothing was changed): {_last(stderr)}')


def for_server(head, server_version):
    """The first part of a dump, made loadable by the server: pg_dump 17 (the image's) starts
    every dump with `SET transaction_timeout = 0;`, a setting PostgreSQL before 17 refuses
    (an external database on Kubernetes may well be 15 or 16)."""
    if server_version >= 170000:
        return head
    return head.replace(b'\nSET transaction_timeout = 0;\n', b'\n', 1)


@contextmanager
def scratch(dump_file):
    """The dump loaded into a throwaway database, yielding its {table: rows}; dropped after."""
    if vendor() == 'sqlite':
        db = sqlite3.connect(dump_file)
        try:
            yield sqlite_counts(db)
        finally:
            db.close()
        return
    name = f'{connection.settings_dict["NAME"]}_verify_{uuid.uuid4().hex[:8]}'
    with connection.cursor() as cursor:
        try:
            cursor.execute(f'CREATE DATABASE "{name}"')
        except Exception as error:
            raise BackupError(f'cannot create the scratch database {name} to verify in '
                              f'(the database user needs CREATEDB): {one_line(error)}')
    try:
        _psql(dump_file, _postgres_env(name), drop_first=False)
        import psycopg

        db = connection.settings_dict
        with psycopg.connect(dbname=name, user=db['USER'] or None, password=db['PASSWORD'] or None,
                             host=db['HOST'] or None, port=db['PORT'] or None) as scratch_db, \
                scratch_db.cursor() as cursor:
            counts = {table: _count(cursor, table) for table in _postgres_tables(cursor)}
        yield counts
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


def server_version():
    if vendor() == 'sqlite':
        return f'SQLite {sqlite3.sqlite_version}'
    with connection.cursor() as cursor:
        cursor.execute('SHOW server_version')
        return f'PostgreSQL {cursor.fetchone()[0]}'
