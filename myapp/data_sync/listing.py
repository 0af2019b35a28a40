"""Listing what an archive holds: which facilities have data, and the products of one
observation. Called from the engine's listing workers: no database access here."""
import os
from dataclasses import dataclass

from tom_observations.facilities.ocs import OCSFacility
from tom_observations.facility import BaseRoboticObservationFacility, get_service_classes

from myapp.data_sync.failures import ProductError


@dataclass(frozen=True)
class Product:
    """One file an archive holds for an observation."""

    product_id: str
    filename: str
    url: str


def data_facilities():
    """The configured facilities whose records can have data, by name.

    LCORedirectFacility, the default facility of a new TOM, lacks the download methods
    (the upstream recipe crashes on its records): it wraps an LCO facility that has them.
    """
    facilities = {}
    for name, facility_class in get_service_classes().items():
        facility = facility_class()
        facility = getattr(facility, 'lco_facility', facility)
        if isinstance(facility, BaseRoboticObservationFacility):
            facilities[name] = facility
    return facilities


def list_products(facility, observation_id, session):
    """The products of one observation. OCS archives (LCO, SOAR, Blanco) are read through
    our bounded session; other facilities through their own data_products()."""
    if isinstance(facility, OCSFacility):
        frames = _ocs_frames(facility, observation_id, session)
    else:
        frames = facility.data_products(observation_id)
    return [_product(frame) for frame in frames]


def _ocs_frames(facility, observation_id, session):
    # The same API calls as OCSFacility._archive_frames, which sets no timeout.
    archive_url = facility.facility_settings.get_setting('archive_url').rstrip('/')
    url = f'{archive_url}/frames/'
    params = {'REQNUM': observation_id, 'limit': 1000}
    frames = []
    while url:
        response = session.get(url, params=params, headers=facility._portal_headers())
        response.raise_for_status()
        page = response.json()
        if not isinstance(page, dict) or not isinstance(page.get('results'), list):
            raise ProductError(f'unexpected answer from {response.url}: no list of results')
        frames.extend(page['results'])
        url, params = page.get('next'), None  # `next` already carries the query
    return frames


def _product(frame):
    try:
        product_id, filename, url = frame['id'], frame['filename'], frame.get('url')
    except (KeyError, TypeError):
        raise ProductError(f'archive listed a product without id or filename: {str(frame)[:200]}')
    if not url:
        raise ProductError(f'product {product_id} ({filename}) has no download URL')
    # The name comes from a remote server: keep its last component only.
    safe_name = os.path.basename(str(filename))
    if safe_name in ('', '.', '..'):
        raise ProductError(f'product {product_id} has an unusable filename {filename!r}')
    return Product(product_id=str(product_id), filename=safe_name, url=url)
