"""The sync engine behind `manage.py save_data`: lists and downloads the products of finished
observations concurrently, stores them whole, and runs the Save button's hooks.

Records come from the database in batches (records.py). Each batch's listings run on a pool
of listing workers while the batch before it downloads on a pool of download workers, both
over one HTTP session that reuses connections (http.py). Workers only talk HTTP and write
files in incoming/; this thread does every database read and write, a fixed number of
queries per batch: stored products are looked up once per batch, fetched files committed in
groups (store.py), and the listings recorded once per batch. A record's hooks run once all
its new products are committed (hooks.py).
"""
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from django.conf import settings

from myapp.data_sync import hooks, records
from myapp.data_sync.http import bounded_session
from myapp.data_sync.listing import data_facilities, list_products
from myapp.data_sync.report import RecordOutcome
from myapp.failures import one_line

# Records listed per batch: the unit of the engine's queries and of the listing pipeline.
BATCH_RECORDS = 50
# Fetched files wait at most this long for their commit while other downloads go on: a slow
# file neither holds back the others' rows for long nor leaves them at risk (a kill loses what
# is not committed yet).
COMMIT_SECONDS = 2.0


class Sync:
    def __init__(self, store, report, *, target=None, everything=False, settle_hours=None,
                 listing_workers=None, download_workers=None, batch_size=BATCH_RECORDS):
        self.store = store
        self.report = report
        self.target = target
        self.everything = everything
        self.settle_hours = settings.SAVE_DATA_SETTLE_HOURS if settle_hours is None else settle_hours
        self.listing_workers = listing_workers or settings.TOM_HTTP_LISTING_CONCURRENCY
        self.download_workers = download_workers or settings.TOM_HTTP_CONCURRENCY
        self.batch_size = batch_size

    def run(self):
        """Syncs every chosen record; returns how many failed."""
        self.report.removed_partials(self.store.remove_partial_downloads())
        facilities = data_facilities()
        for name, count in records.of_unknown_facilities(facilities, self.target).items():
            self.report.unknown_facility(name, count)
        finished = records.finished(facilities, self.target)
        chosen = finished if self.everything else records.unsettled(finished, self.settle_hours)
        self.report.total = chosen.count()
        if not self.everything:
            self.report.settled = finished.count() - self.report.total
        if self.report.total:
            self._sync(facilities, records.in_batches(chosen, self.batch_size))
        self.report.summary()
        return self.report.failures

    def _sync(self, facilities, batches):
        session = bounded_session(connections=self.listing_workers + self.download_workers)
        listing = ThreadPoolExecutor(self.listing_workers, thread_name_prefix='list')
        fetching = ThreadPoolExecutor(self.download_workers, thread_name_prefix='fetch')

        def list_batch(batch):
            """{record pk: (its outcome, the future of its product list)}, None after the last."""
            if batch is None:
                return None
            return {record.pk: (RecordOutcome(record), listing.submit(
                        list_products, facilities[record.facility], record.observation_id, session))
                    for record in batch}

        try:
            listed = list_batch(next(batches, None))
            while listed:
                upcoming = list_batch(next(batches, None))  # the next batch lists while this one downloads
                self._save(fetching, session, listed)
                listed = upcoming
        finally:
            listing.shutdown(cancel_futures=True)
            fetching.shutdown(cancel_futures=True)
            session.close()

    def _save(self, pool, session, listed):
        """Downloads what the batch's records lack, commits it, runs hooks, records the listings."""
        outcomes = {pk: outcome for pk, (outcome, _) in listed.items()}
        wanted = {}
        for pk, (outcome, future) in listed.items():
            try:
                wanted[pk] = future.result()
                outcome.listed = len(wanted[pk])
            except Exception as error:
                outcome.fail(error)
        stored = self.store.stored_ids([p.product_id for products in wanted.values() for p in products])
        pending = {pool.submit(self.store.fetch, session, outcomes[pk].record, product): pk
                   for pk, products in wanted.items() for product in products
                   if product.product_id not in stored}
        downloading = Counter(pending.values())
        finished = set()
        fetched, oldest = [], None
        while True:
            if not fetched:
                self._finish([o for pk, o in outcomes.items() if not downloading[pk] and pk not in finished], finished)
            if not pending:
                break
            timeout = None if oldest is None else max(0.0, oldest + COMMIT_SECONDS - time.monotonic())
            done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                pk = pending.pop(future)
                downloading[pk] -= 1
                try:
                    fetched.append(future.result())
                    oldest = oldest or time.monotonic()
                except Exception as error:
                    outcomes[pk].fail(error)
            if fetched and (not pending or time.monotonic() - oldest >= COMMIT_SECONDS):
                self._commit(fetched, outcomes)
                fetched, oldest = [], None
        self.store.record_listings(outcomes.values())

    def _commit(self, fetched, outcomes):
        try:
            rows = self.store.commit(fetched)
        except Exception as error:
            self.store.discard(fetched)
            for item in fetched:
                outcomes[item.record.pk].fail(f'cannot store its products: {one_line(error)}')
            return
        for item, row in zip(fetched, rows, strict=True):
            self.report.stored(item)
            if row is not None:
                outcomes[item.record.pk].products.append(row)

    def _finish(self, outcomes, finished):
        """Runs the hooks of records whose products are all in, and reports them."""
        for outcome in outcomes:
            finished.add(outcome.record.pk)
            if outcome.products:
                failure = hooks.after_save(outcome.products)
                if failure:
                    outcome.fail(failure)
            self.report.record_done(outcome)
