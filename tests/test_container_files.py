"""The container files pass their own tools: hadolint on the Dockerfile, compose on compose.yaml."""
import subprocess

from tests.conftest import REPO, compose_binary, tool


def test_hadolint_finds_nothing_in_the_dockerfile():
    result = subprocess.run([tool('hadolint'), str(REPO / 'Dockerfile')], capture_output=True, text=True)

    assert result.returncode == 0 and result.stdout == '', result.stdout + result.stderr


def test_compose_files_are_valid_without_any_env_file(tmp_path):
    # --project-directory elsewhere: a developer's own .env must not hide a missing default.
    for files in (['compose.yaml'], ['compose.yaml', 'tests/compose.e2e.yaml']):
        args = [a for f in files for a in ('-f', str(REPO / f))]
        result = subprocess.run([compose_binary(), *args, '--env-file', '/dev/null', 'config', '-q'],
                                capture_output=True, text=True, cwd=tmp_path)

        assert result.returncode == 0, result.stderr
        assert 'variable is not set' not in result.stderr, result.stderr
