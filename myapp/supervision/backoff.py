"""When to start again a child that ended: at once (after `first`) when it had run steadily,
else after a delay that doubles at each failure in a row, up to `most`. supercronic and each
alert stream's process are restarted so."""


class Backoff:
    def __init__(self, first, most, steady_after):
        self.first, self.most, self.steady_after = first, most, steady_after
        self.next = first

    def after(self, ran):
        """The delay before the next start, for a child that ended after running `ran` seconds."""
        delay = self.first if ran >= self.steady_after else self.next
        self.next = min(delay * 2, self.most)
        return delay
