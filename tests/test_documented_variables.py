"""Every environment variable the product reads is documented, in the tables of the docs
(docs/configuration.md, linked from the README, and any other page's) and in .env.example,
and every one documented there is read somewhere."""
import re

from tests.conftest import REPO

# Where variables are read: the settings, the containers' scripts, and compose.yaml itself.
SETTINGS = REPO / 'mytom' / 'settings.py'
SCRIPTS = sorted((REPO / 'docker').iterdir())
COMPOSE = REPO / 'compose.yaml'
# The shipped alert streams read ${NAME} (or the file NAME_FILE names).
STREAMS = REPO / 'streams.toml'
# Where a variable can be read beyond those (a command reading its own variables).
ELSEWHERE = sorted((REPO / 'myapp').rglob('*.py'))

NAME = r'([A-Z][A-Z0-9_]+)'
SETTINGS_READ = re.compile(rf"(?:env\.\w+|env_number|env_duration|env_or_file)\(\s*'{NAME}'")
SCRIPT_READ = re.compile(rf"\$\{{{NAME}|os\.environ(?:\.get\(|\[)\s*['\"]{NAME}")
COMPOSE_READ = re.compile(rf"\$\{{{NAME}|^\s+- {NAME}$", re.MULTILINE)


def names(pattern, text):
    return {name for match in pattern.findall(text) for name in (match if isinstance(match, tuple) else [match])
            if name}


def read_by_the_product():
    settings = SETTINGS.read_text()
    read = names(SETTINGS_READ, settings)
    read |= {f'{name}_FILE' for name in re.findall(rf"env_or_file\('{NAME}'\)", settings)}
    for path in SCRIPTS:
        read |= names(SCRIPT_READ, path.read_text())
    declared = '\n'.join(line for line in STREAMS.read_text().splitlines() if not line.lstrip().startswith('#'))
    streams = names(SCRIPT_READ, declared)
    read |= streams | {f'{name}_FILE' for name in streams}
    return read | names(COMPOSE_READ, COMPOSE.read_text())


# The pages whose tables document variables: the README and the pages moved out of it.
DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md')), REPO / 'deploy' / 'README.md',
        REPO / 'mytom' / 'templates' / 'README.md']


def documented_in_readme():
    found = set()
    for line in '\n'.join(path.read_text() for path in DOCS).splitlines():
        if line.startswith('| `'):
            first_cell = line.split('|')[1]
            found |= set(re.findall(rf'`{NAME}`', first_cell))
    return found


def documented_in_env_example():
    return set(re.findall(rf'^#? ?{NAME}=', (REPO / '.env.example').read_text(), re.MULTILINE))


def test_every_variable_read_is_in_the_readme_and_env_example():
    read = read_by_the_product()

    assert read - documented_in_readme() == set(), 'missing from the tables of README.md and docs/'
    assert read - documented_in_env_example() == set(), 'missing from .env.example'


def test_every_variable_documented_is_read_somewhere():
    read = read_by_the_product()
    for path in ELSEWHERE:
        text = path.read_text()
        read |= names(SCRIPT_READ, text) | names(SETTINGS_READ, text)
        read |= {f'{name}_FILE' for name in re.findall(rf"env_or_file\('{NAME}'\)", text)}

    assert documented_in_readme() - read == set(), 'in the tables of README.md or docs/ but read nowhere'
    assert documented_in_env_example() - read == set(), 'in .env.example but read nowhere'


def test_the_scan_finds_what_it_looks_for():
    assert {'SECRET_KEY', 'LOG_FORMAT', 'BACKUP_KEEP', 'SKY_SURVEY_URL'} <= documented_in_readme()
    assert {'SECRET_KEY', 'SECRET_KEY_FILE', 'DATABASE_URL', 'JOB_TIMEOUT'} <= read_by_the_product()
    assert {'CRONTAB_POLL_SECONDS', 'WEB_THREADS', 'TOM_IMAGE', 'PYTHON_IMAGE'} <= read_by_the_product()
