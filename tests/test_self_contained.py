"""The TOM needs no third-party host: its pages, visited logged in in Debian's Chromium on a
network that reaches only the TOM (every other request is aborted, and counted), are styled by
Bootstrap, work (navbar dropdowns, Alpine widgets, htmx, plots, Aladin Lite, JS9) and break no
rule of the Content-Security-Policy every response carries."""
import io
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import numpy as np
import pytest
from astropy.io import fits
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from tests.browser import ARTIFACTS, log_in
from tests.conftest import REPO, make_record, make_target

PASSWORD = 'self-contained-password'
pytestmark = pytest.mark.browser
# Every violation of the page's CSP, as the browser reports it to the page.
CSP_LISTENER = '''
window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}`));
'''


@pytest.fixture
def tour(live_server, page):
    """A logged-in page on which a request to any host but the TOM's is aborted and noted in
    `page.left`, the browser's CSP violations are noted in `window.cspViolations`, and each
    page's policy header in `page.policies`."""
    page.left, page.policies = [], set()

    def only_the_tom(route):
        if urlsplit(route.request.url).hostname not in ('localhost', '127.0.0.1'):
            page.left.append(route.request.url)
            return route.abort()
        return route.continue_()

    def policy(response):
        if response.request.resource_type == 'document':
            page.policies.add(response.headers.get('content-security-policy'))

    page.route('**/*', only_the_tom)
    page.on('response', policy)
    page.add_init_script(CSP_LISTENER)
    User.objects.create_user('pi', password=PASSWORD, is_staff=True, is_superuser=True)
    log_in(page, live_server.url, 'pi', PASSWORD)
    return page


def visit(page, url):
    page.goto(url, wait_until='networkidle')
    assert_styled(page)


def assert_styled(page):
    """Bootstrap's CSS laid the page out: its navbar is a fixed flex bar, its buttons are
    Bootstrap's (read from computed styles, not from the HTML)."""
    navbar = page.locator('nav.navbar')
    assert navbar.evaluate('e => getComputedStyle(e).display') == 'flex', page.url
    assert navbar.evaluate('e => getComputedStyle(e).position') == 'fixed', page.url
    button = page.locator('.btn-primary').first
    if button.count():
        style = button.evaluate('e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderRadius]')
        assert style == ['rgb(13, 110, 253)', '6px'], (page.url, style)  # Bootstrap 5's primary, radius


def assert_clean(page):
    assert page.evaluate('window.cspViolations') == [], page.url
    assert page.left == [], page.url
    assert page.problems == [], page.url


def fits_image():
    data = np.random.default_rng(1).normal(100, 10, (64, 64)).astype('float32')
    data[30:34, 30:34] += 500  # a star
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name='SCI')]).writeto(buffer)  # as LCO's frames
    return buffer.getvalue()


def test_every_page_works_styled_with_nothing_but_the_tom(live_server, tour):
    from tom_dataproducts.models import DataProduct, PhotometryReducedDatum

    page = tour
    cache.clear()  # TOM Toolkit's data list caches each product's thumbnail tag by product id
    target = make_target()
    make_record(target, 9001)
    start = timezone.now() - timedelta(days=30)
    PhotometryReducedDatum.objects.bulk_create([PhotometryReducedDatum(
        target=target, timestamp=start + timedelta(days=i), brightness=17 + i / 10, brightness_error=0.05,
        bandpass='gri'[i % 3], source_name='test') for i in range(30)])
    product = DataProduct.objects.create(product_id='frame-1', target=target, data_product_type='image_file')
    product.data.save('frame-1.fits', ContentFile(fits_image()))
    call_command('jobs', 'loaded', str(REPO / 'crontab'), stdout=io.StringIO())
    origin = live_server.url

    # Home: Bootstrap's JavaScript opens a navbar dropdown.
    visit(page, origin + '/')
    assert page.evaluate('typeof window.bootstrap') == 'object'
    toggle = page.locator('nav .dropdown-toggle').first
    toggle.click()
    assert toggle.get_attribute('aria-expanded') == 'true'
    assert page.locator('nav .dropdown-menu.show').count() == 1
    assert_clean(page)

    # Targets: the sky map (Aladin Lite, from the TOM) with the target on it.
    visit(page, origin + '/targets/')
    page.wait_for_function('window.aladin !== undefined')
    page.wait_for_selector('#aladin-lite-div canvas')
    assert page.evaluate('window.aladin.getFov()[0]') == 360
    catalogs = page.evaluate('window.aladin.view.catalogs.map((c) => [c.name, c.sources.length])')
    assert catalogs == [['Targets', 1], ['Moon', 1], ['Sun', 1]], catalogs
    assert_clean(page)

    # A target's page: the light curve (plotly, loaded once from the TOM) and the finder chart.
    visit(page, f'{origin}/targets/{target.pk}/?tab=photometry')
    page.wait_for_selector('#photometry .js-plotly-plot .scatterlayer')
    points = page.locator('#photometry .scatterlayer .point').count()
    assert points == 30, points
    plotly_scripts = page.evaluate('[...document.scripts].filter(s => s.src.includes("plotly")).map(s => s.src)')
    assert [urlsplit(src).path for src in plotly_scripts] == ['/static/plotly/plotly.min.js']
    page.wait_for_selector('#aladin-lite-div canvas')
    page.screenshot(path=str(ARTIFACTS / 'target.png'))  # the README's tests/screenshots/target-page.png
    assert_clean(page)

    # The sharing pages: js-base64 from the TOM.
    for path in (f'/targets/{target.pk}/share/', '/targets/persistentshare/manage/'):
        visit(page, origin + path)
        assert page.evaluate('Base64.encode("tom")') == 'dG9t'
        assert_clean(page)

    # Alpine.js: the target form's "Aliases" toggle.
    visit(page, f'{origin}/targets/{target.pk}/update/')
    assert page.evaluate('typeof window.Alpine') == 'object'
    aliases = page.locator('span:text("Aliases")')
    aliases.click()
    page.wait_for_function('document.querySelector("[x-show]").style.display !== "none"')
    assert page.locator('span:text("▾ Aliases")').count() == 1
    assert_clean(page)

    visit(page, origin + '/observations/list/')
    assert target.name in page.inner_text('table')
    assert_clean(page)

    # Data, and a data product opened in JS9 (from the TOM), which reads the FITS file.
    visit(page, origin + '/dataproducts/data/')
    assert page.evaluate('typeof window.JS9') == 'undefined'  # its 2 MB load on the first "Open in JS9"
    page.click('button:text("Open in JS9")')
    page.wait_for_function('window.JS9 && JS9.GetImageData && JS9.GetImage && JS9.GetImage() && true',
                           timeout=30_000)
    assert page.evaluate('JS9.GetImageData(false).width') == 64
    page.screenshot(path=str(ARTIFACTS / 'js9.png'), full_page=True)
    assert_clean(page)

    # The Jobs pages: htmx sends Run now and shows the request's state.
    visit(page, origin + '/jobs/')
    assert_clean(page)
    visit(page, origin + '/jobs/save_data/')
    page.evaluate('window.notReloaded = true')  # the button is a form: without htmx it would reload
    page.click('#run-now-button')
    page.wait_for_selector('#run-now-status :text("Run now")')
    assert page.evaluate('window.notReloaded') is True
    assert_clean(page)

    # Every page came with the TOM's policy, which names no other host.
    assert len(page.policies) == 1, page.policies
    policy = page.policies.pop()
    assert "script-src 'self'" in policy and 'http' not in policy, policy


def jpeg(width, height):
    image = io.BytesIO()
    Image.new('RGB', (width, height), (60, 60, 90)).save(image, 'JPEG')
    return image.getvalue()


class HipsSurvey(ThreadingHTTPServer):
    """A HiPS sky survey on 127.0.0.1 (its properties and grey JPEG tiles), noting each path
    a browser asks it for; CORS-enabled, as survey hosts are for Aladin Lite's WebGL."""

    def __init__(self):
        self.tile, self.paths = jpeg(512, 512), []
        # The order-3 preview Aladin Lite shows first: 768 tiles of 64 px, 27 to a row.
        self.allsky = jpeg(27 * 64, 29 * 64)
        survey = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                survey.paths.append(self.path)
                status = 200
                if self.path.endswith('/properties'):
                    body, kind = HIPS_PROPERTIES.encode(), 'text/plain'
                elif self.path.endswith('/Allsky.jpg'):
                    body, kind = survey.allsky, 'image/jpeg'
                elif self.path.endswith('.jpg'):
                    body, kind = survey.tile, 'image/jpeg'
                else:  # its coverage map (Moc.fits), which a survey need not have
                    status, body, kind = 404, b'', 'text/plain'
                self.send_response(status)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(body)))
                self.send_header('Access-Control-Allow-Origin', '*')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server_address[1]}/hips'


HIPS_PROPERTIES = '''creator_did = ivo://test/hips
obs_title = Test survey
dataproduct_type = image
hips_version = 1.4
hips_frame = equatorial
hips_order = 3
hips_tile_width = 512
hips_tile_format = jpeg
'''


@pytest.fixture
def hips_survey():
    survey = HipsSurvey()
    threading.Thread(target=survey.serve_forever, daemon=True).start()
    yield survey
    survey.shutdown()
    survey.server_close()


def test_a_chosen_sky_survey_s_tiles_come_from_its_host_allowed_by_the_policy(live_server, tour, settings,
                                                                                hips_survey):
    origin = hips_survey.url.rsplit('/', 1)[0]
    settings.SKY_SURVEY_URL = hips_survey.url
    directives = settings.CONTENT_SECURITY_POLICY['DIRECTIVES']
    settings.CONTENT_SECURITY_POLICY = {'DIRECTIVES': {
        **directives, 'img-src': [*directives['img-src'], origin], 'connect-src': [*directives['connect-src'], origin]}}
    target = make_target()

    visit(tour, f'{live_server.url}/targets/{target.pk}/')
    tour.wait_for_selector('#aladin-lite-div canvas')
    for _ in range(100):
        if any(path.endswith('.jpg') for path in hips_survey.paths):
            break
        tour.wait_for_timeout(100)

    assert '/hips/properties' in hips_survey.paths
    assert [path for path in hips_survey.paths if path.startswith('/hips/Norder')], hips_survey.paths
    assert_clean(tour)
