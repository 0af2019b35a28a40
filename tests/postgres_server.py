"""A throwaway PostgreSQL server on 127.0.0.1 that a test may restart under running jobs
(tests/with_postgres.sh serves the rest of the suite and is never restarted)."""
import glob
import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import free_port


class PostgresServer:
    def __init__(self, directory, also_listen=None):
        """also_listen: an address besides 127.0.0.1 (trusted, as 127.0.0.1 is), for clients
        that are not on this machine's loopback, such as Kubernetes pods."""
        versions = sorted(glob.glob('/usr/lib/postgresql/*/bin'), key=lambda path: int(path.split('/')[-2]))
        if not versions:
            raise RuntimeError('PostgreSQL server binaries not found; apt-get install postgresql')
        self.bin = Path(versions[-1])
        self.directory = Path(directory)
        self.port = free_port()
        self.also_listen = also_listen
        # initdb refuses to run as root: the package's postgres user owns the cluster then.
        self.as_owner = ['runuser', '-u', 'postgres', '--'] if os.getuid() == 0 else []
        self.directory.chmod(0o755)
        if self.as_owner:
            shutil.chown(self.directory, 'postgres')

    def url(self, database, host='127.0.0.1'):
        return f'postgres://tom@{host}:{self.port}/{database}'

    def _ctl(self, *args):
        # Its output to a file, not a pipe: the server it starts would hold a pipe open.
        subprocess.run([*self.as_owner, str(self.bin / 'pg_ctl'), '-D', str(self.directory / 'data'),
                        '-l', str(self.directory / 'server.log'), *args], check=True, stdout=subprocess.DEVNULL)

    def start(self):
        subprocess.run([*self.as_owner, str(self.bin / 'initdb'), '-D', str(self.directory / 'data'), '-U', 'tom',
                        '--auth=trust'], check=True, capture_output=True)
        hosts = '127.0.0.1'
        if self.also_listen:
            hosts += f',{self.also_listen}'
            with open(self.directory / 'data' / 'pg_hba.conf', 'a') as hba:
                hba.write('host all all 10.0.0.0/8 trust\n')
        self._ctl('-w', '-o', f'-h {hosts} -p {self.port} -k {self.directory} -c fsync=off', 'start')
        return self

    def restart(self):
        """Stops the server, ending every session (and the advisory locks they hold), and
        starts it again."""
        self._ctl('-m', 'fast', '-w', 'restart')

    def stop(self):
        self._ctl('-m', 'immediate', '-w', 'stop')

    def sql(self, statement, database='postgres'):
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            connection.execute(statement)
