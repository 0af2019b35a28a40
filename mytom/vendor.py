"""Static files from npm packages: the browser assets the TOM serves itself instead of loading
them from CDNs.

`npm ci` (make assets, the image build) installs package-lock.json's packages into node_modules;
this finder serves, from each package, only the files settings.VENDOR_ASSETS names (glob
patterns relative to the package), at /static/vendor/<package>/<path in the package>. A package
such as JS9 ships 46 MB of sources, build tools and Node servers around the few files a browser
needs: naming them keeps collectstatic and the image small, where STATICFILES_DIRS would take
whole folders.
"""
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.contrib.staticfiles.utils import matches_patterns
from django.core import checks
from django.core.files.storage import FileSystemStorage

PREFIX = 'vendor'


class VendorFinder(BaseFinder):
    def __init__(self, *args, **kwargs):
        self.root = Path(settings.VENDOR_ROOT)
        self.assets = settings.VENDOR_ASSETS
        self.storages = {}
        for package in self.assets:
            storage = FileSystemStorage(location=self.root / package)
            storage.prefix = f'{PREFIX}/{package}'  # collectstatic puts the files under it
            self.storages[package] = storage

    def check(self, **kwargs):
        # The image ships the collected files only (STATIC_ROOT/vendor/<package>), not node_modules.
        missing = [package for package in self.assets if not (self.root / package / 'package.json').is_file()
                   and not (Path(settings.STATIC_ROOT) / PREFIX / package).is_dir()]
        if missing:
            return [checks.Error(f'the npm packages {", ".join(missing)} are neither installed in {self.root} '
                                 f'nor collected into STATIC_ROOT',
                                 hint='run `make assets` (npm ci), which the image build does too',
                                 id='mytom.E001')]
        return []

    def _files(self, package):
        """The package's files its patterns name, as paths relative to the package."""
        base = self.root / package
        for pattern in self.assets[package]:
            for path in sorted(base.glob(pattern)):
                if path.is_file():
                    yield path.relative_to(base).as_posix()

    def find(self, path, find_all=False, **kwargs):
        found = []
        prefix, _, rest = path.partition('/')
        package, _, relative = rest.partition('/')
        if prefix == PREFIX and package in self.assets and relative in set(self._files(package)):
            found.append(str(self.root / package / relative))
            if not find_all:
                return found[0]
        return found if find_all else []

    def list(self, ignore_patterns):
        for package, storage in self.storages.items():
            for relative in self._files(package):
                if not matches_patterns(relative, ignore_patterns):
                    yield relative, storage
