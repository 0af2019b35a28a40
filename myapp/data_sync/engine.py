"""The sync engine behind `manage.py save_data`: lists and downloads the products of finished
observations concurrently, stores them whole, and runs the Save button's hooks.

Records come from the database in batches (records.py). A batch's listings run on a pool of
listing workers; once they are all in, its missing products join the download workers'
queue, and the next batch starts listing, so that listing and downloading overlap and a slow
file holds up no other (up to MAX_OPEN_BATCHES batches downloading at once, which bounds
memory). Both pools share one HTTP session that reuses connections (http.py). Workers only
talk HTTP and write files in incoming/; this thread does every database read and write, a
fixed number of queries per batch: stored products are looked up once per batch, fetched
files committed in groups (store.py), listings recorded once per batch. A record's hooks
run once all its new products are committed (hooks.py).
"""
import queue
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

from myapp.data_sync import hooks, records
from myapp.data_sync.http import bounded_session
from myapp.data_sync.listing import data_facilities, list_products
from myapp.data_sync.report import RecordOutcome
from myapp.database import reconnect_if_lost
from myapp.failures import one_line

# Records per batch: the unit of the engine's queries, listings and bookkeeping.
BATCH_RECORDS = 50
# Batches whose downloads may be under way at once.
MAX_OPEN_BATCHES = 3
# Fetched files wait at most this long for their commit while other downloads go on: a slow
# file neither holds back the others' rows for long nor leaves them at risk (a kill loses what
# is not committed yet).
COMMIT_SECONDS = 2.0


class Sync:
    def __init__(self, store, report, *, target=None, everything=False):
        self.store = store
        self.report = report
        self.target = target
        self.everything = everything

    def run(self):
        """Syncs every chosen record; returns how many failed."""
        self.report.removed_partials(self.store.remove_partial_downloads())
        facilities = data_facilities()
        for name, count in records.of_unknown_facilities(facilities, self.target).items():
            self.report.unknown_facility(name, count)
        finished = records.finished(facilities, self.target)
        chosen = finished if self.everything else records.unsettled(finished, settings.SAVE_DATA_SETTLE_HOURS)
        self.report.total = chosen.count()
        if not self.everything:
            self.report.settled = finished.count() - self.report.total
        if self.report.total:
            listing_workers, download_workers = settings.TOM_HTTP_LISTING_CONCURRENCY, settings.TOM_HTTP_CONCURRENCY
            session = bounded_session(connections=listing_workers + download_workers)
            listing = ThreadPoolExecutor(listing_workers, thread_name_prefix='list')
            fetching = ThreadPoolExecutor(download_workers, thread_name_prefix='fetch')
            try:
                Pipeline(self, facilities, session, listing, fetching).run(
                    records.in_batches(chosen, BATCH_RECORDS))
            finally:
                listing.shutdown(cancel_futures=True)
                fetching.shutdown(cancel_futures=True)
                session.close()
        self.report.summary()
        return self.report.failures


class Batch:
    """Records listing or downloading together, with what happened to each."""

    def __init__(self, records_, listing_pool, session, facilities):
        self.outcomes = {record.pk: RecordOutcome(record) for record in records_}
        self.listings = {record.pk: listing_pool.submit(list_products, facilities[record.facility],
                                                        record.observation_id, session)
                         for record in records_}
        self.unfinished = len(self.outcomes)

    def listed(self):
        return all(future.done() for future in self.listings.values())


class Pipeline:
    def __init__(self, sync, facilities, session, listing, fetching):
        self.store, self.report = sync.store, sync.report
        self.facilities, self.session = facilities, session
        self.listing, self.fetching = listing, fetching
        self.pending = {}           # download future: (its batch, its record's pk)
        self.left = Counter()       # downloads not yet done, per (batch, record pk)
        self.fetched = []           # downloaded files awaiting their commit
        self.oldest = None          # when the oldest of those arrived
        self.ready = []             # (batch, outcome) with every download done, to finish once committed
        self.done = queue.SimpleQueue()  # futures as workers finish them

    def run(self, batches):
        listing = self._start(next(batches, None))
        downloading = []
        while listing or downloading:
            if listing and listing.listed() and len(downloading) < MAX_OPEN_BATCHES:
                self._download(listing)
                downloading.append(listing)
                listing = self._start(next(batches, None))
                continue
            if self.pending or (listing and not listing.listed()):
                self._next_done()
            if self.fetched and (not self.pending or time.monotonic() - self.oldest >= COMMIT_SECONDS):
                self._commit()
            if not self.fetched:
                self._finish_ready()
            for batch in [batch for batch in downloading if not batch.unfinished]:
                downloading.remove(batch)  # a stalled file of one batch holds up no other
                reconnect_if_lost()
                self.store.record_listings(batch.outcomes.values())

    def _next_done(self):
        """Waits for a worker to finish a request (or for the next commit to fall due)."""
        timeout = None if self.oldest is None else max(0.0, self.oldest + COMMIT_SECONDS - time.monotonic())
        try:
            future = self.done.get(timeout=timeout)
        except queue.Empty:
            return
        if future in self.pending:
            self._fetched(future)

    def _start(self, records_):
        if records_ is None:
            return None
        batch = Batch(records_, self.listing, self.session, self.facilities)
        for future in batch.listings.values():
            future.add_done_callback(self.done.put)
        return batch

    def _download(self, batch):
        """Queues the downloads of what the batch's records lack (one query for the batch)."""
        wanted = {}
        reconnect_if_lost()
        for pk, future in batch.listings.items():
            try:
                wanted[pk] = future.result()
                batch.outcomes[pk].listed = len(wanted[pk])
            except Exception as error:
                batch.outcomes[pk].fail(error)
        stored = self.store.stored_ids([p.product_id for products in wanted.values() for p in products])
        queued = set()  # two records listing the same product: the first one gets it
        for pk, outcome in batch.outcomes.items():
            for product in wanted.get(pk, ()):
                if product.product_id not in stored and product.product_id not in queued:
                    queued.add(product.product_id)
                    future = self.fetching.submit(self.store.fetch, self.session, outcome.record, product)
                    self.pending[future] = (batch, pk)
                    future.add_done_callback(self.done.put)
                    self.left[batch, pk] += 1
            if not self.left[batch, pk]:
                self.ready.append((batch, outcome))

    def _fetched(self, future):
        batch, pk = self.pending.pop(future)
        try:
            self.fetched.append((batch, future.result()))
            self.oldest = self.oldest or time.monotonic()
        except Exception as error:
            batch.outcomes[pk].fail(error)
        self.left[batch, pk] -= 1
        if not self.left[batch, pk]:
            del self.left[batch, pk]
            self.ready.append((batch, batch.outcomes[pk]))

    def _commit(self):
        fetched, self.fetched, self.oldest = self.fetched, [], None
        items = [item for _, item in fetched]
        reconnect_if_lost()
        try:
            rows = self.store.commit(items)
        except Exception as error:
            self.store.discard(items)
            for batch, item in fetched:
                batch.outcomes[item.record.pk].fail(f'cannot store its products: {one_line(error)}')
            return
        for (batch, item), row in zip(fetched, rows, strict=True):
            self.report.stored(item)
            if row is not None:
                batch.outcomes[item.record.pk].products.append(row)

    def _finish_ready(self):
        """Runs the hooks of records whose products are all committed, and reports them."""
        ready, self.ready = self.ready, []
        for batch, outcome in ready:
            if outcome.products:
                failure = hooks.after_save(outcome.products)
                if failure:
                    outcome.fail(failure)
            self.report.record_done(outcome)
            batch.unfinished -= 1
