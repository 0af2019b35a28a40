"""The import graph of myapp has layers: a module imports only from its own package or from
a layer below, never from one above nor from a peer of its layer, and no import cycle."""
import ast
from collections import defaultdict
from pathlib import Path

import myapp

ROOT = Path(myapp.__file__).parent

# Lowest first. Within a layer the packages are peers: none imports another.
LAYERS = [
    ['supervision'],
    ['models', 'database', 'failures', 'timing', 'logs', 'wake', 'storage', 'apps', 'admin', 'health', 'targets',
     'saved_queries', 'charts'],
    ['jobs', 'task_queue', 'backups', 'data_sync', 'access', 'streams'],
    ['overview', 'target_tab'],
    ['sidecar'],
    ['management', 'views', 'templatetags'],
    ['urls'],
]
# Base modules that build on one another (the models count with myapp.database's helper).
BASE_ORDER = ['failures', 'timing', 'logs', 'database', 'models', 'wake', 'storage', 'apps', 'admin', 'health',
              'targets', 'saved_queries', 'charts']


def modules():
    """{dotted name: path} of myapp's modules, migrations and the package's own file aside."""
    found = {}
    for path in ROOT.rglob('*.py'):
        parts = path.relative_to(ROOT.parent).with_suffix('').parts
        if 'migrations' in parts or parts == ('myapp', '__init__'):
            continue
        name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
        found[name] = path
    return found


def import_graph():
    """{module: the myapp modules it imports}."""
    known = modules()
    graph = defaultdict(set)
    for name, path in known.items():
        package = name if path.name == '__init__.py' else name.rpartition('.')[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    parent = package.split('.')[:len(package.split('.')) - node.level + 1]
                    base = '.'.join(parent + ([base] if base else []))
                targets = [base] + [f'{base}.{alias.name}' for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition('.')[0]
                if target and target != name and target != 'myapp':
                    graph[name].add(target)
    return graph


def home(module):
    """The part of myapp a module belongs to: its package, or itself at the top."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def layer(module):
    part = home(module)
    for number, parts in enumerate(LAYERS):
        if part in parts:
            return number
    raise AssertionError(f'{module} is in no layer: add {part!r} to LAYERS')


def test_every_import_goes_down_a_layer_or_stays_in_its_package():
    wrong = []
    for module, imported in import_graph().items():
        for target in imported:
            mine, theirs = home(module), home(target)
            if mine == theirs:
                continue
            if layer(target) > layer(module):
                wrong.append(f'{module} imports {target}, a layer above it')
            elif layer(target) == layer(module):
                base = layer(module) == 1 and BASE_ORDER.index(theirs) < BASE_ORDER.index(mine)
                if not base:
                    wrong.append(f'{module} imports {target}, a peer of its layer')
    assert wrong == []


def test_there_is_no_import_cycle():
    graph = import_graph()
    state, cycles = {}, []

    def visit(module, path):
        state[module] = 'open'
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 'open':
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 'done'

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_graph_is_read():
    """The checks above see the imports that matter (or they could pass on an empty graph)."""
    graph = import_graph()
    assert 'myapp.supervision.bounded' in graph['myapp.jobs.runner']
    assert 'myapp.supervision.bounded' in graph['myapp.sidecar.tasks']
    assert 'myapp.task_queue.queue' in graph['myapp.overview.report']
    assert all(layer(module) is not None for module in modules())
