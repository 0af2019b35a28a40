"""The address a request came from, for counting password guesses per address: the peer's
(REMOTE_ADDR), or, behind TRUSTED_PROXIES proxies, the address the outermost of them saw. A
forwarded address is believed only so far: any client can send an X-Forwarded-For header."""
from django.conf import settings


def client_address(request):
    peer = request.META.get('REMOTE_ADDR') or None
    proxies = settings.TRUSTED_PROXIES
    if not proxies:
        return peer
    # Each proxy appends the address it was reached from: the last `proxies` entries are theirs
    # to vouch for, and the one they saw first is the client's. Fewer entries: nothing to trust.
    forwarded = [part.strip() for part in request.META.get('HTTP_X_FORWARDED_FOR', '').split(',') if part.strip()]
    return forwarded[-proxies] if len(forwarded) >= proxies else peer
