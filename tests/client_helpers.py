"""A client of a local dispatcher, logged in, with its own cache folder."""
from astroquery_mmoda.core import MmodaClass


def logged_in_client(dispatcher, cache_location, roles="general"):
    """A `MmodaClass` of ``dispatcher`` (a `LocalDispatcher`), logged in with a token of ``roles``."""
    client = MmodaClass(server=dispatcher.url)
    client.cache_location = cache_location
    client.login(dispatcher.mint_token(roles))
    return client
