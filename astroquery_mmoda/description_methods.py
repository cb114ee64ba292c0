"""What the dispatcher offers: the description methods of `~astroquery_mmoda.core.MmodaClass` (a mixin).

Instruments, their products and the products' parameters, as the dispatcher
describes them (``api/meta-data``, cached for the session and on disk by
`~astroquery_mmoda.cache.DescriptionCache`).  Instrument names are matched
without regard to case, ``-`` and ``_``.
"""
from . import params as _params
from .cache import DescriptionCache
from .exceptions import InvalidQueryError, MmodaServiceError
from .metadata import parse_meta_data

__all__ = ["DescriptionMethods"]


class DescriptionMethods:
    """The description methods of `~astroquery_mmoda.core.MmodaClass`.

    A mixin: the class provides ``server``, ``cache_location``, ``_dispatcher``,
    ``_token()``, ``_user()``, ``_meta_lock`` and ``_meta_cache``.
    """

    def list_instruments(self):
        """Names of the instruments the dispatcher offers (to the logged-in token's roles).

        Returns
        -------
        list of str
        """
        return sorted(self._dispatcher.instruments(token=self._token()))

    def _meta(self, instrument):
        _params.check_name("instrument", instrument)
        key = (self.server, instrument)
        with self._meta_lock:
            if key not in self._meta_cache:
                stored = DescriptionCache(self.cache_location)
                raw = stored.get(self.server, instrument, user=self._user())
                if raw is None:
                    raw = self._dispatcher.meta_data(instrument, token=self._token())
                    self._meta_cache[key] = parse_meta_data(raw)
                    stored.put(self.server, instrument, raw, user=self._user())
                else:
                    self._meta_cache[key] = parse_meta_data(raw)
            return self._meta_cache[key]

    def _instrument(self, instrument):
        """The dispatcher's spelling of ``instrument`` (case, ``-`` and ``_`` aside), its description fetched.

        An unknown name is an `~astroquery.exceptions.InvalidQueryError` naming close ones.
        """
        _params.check_name("instrument", instrument)
        if (self.server, instrument) in self._meta_cache:
            return instrument
        try:
            self._meta(instrument)
            return instrument
        except InvalidQueryError as refused:
            try:
                names = self.list_instruments()
            except MmodaServiceError:
                raise refused from None
            if instrument in names:  # refused for another reason
                raise
            wanted = instrument.lower().replace("-", "_")
            same = [name for name in names if name.lower().replace("-", "_") == wanted]
            if not same:
                raise InvalidQueryError(
                    f"the MMODA dispatcher has no instrument {instrument!r}"
                    f"{_params.suggest(instrument, names) or _params.suggest(wanted, names)}; "
                    "see Mmoda.list_instruments()") from None
        self._meta(same[0])
        return same[0]

    def list_products(self, instrument):
        """Names of the products of an instrument.

        Parameters
        ----------
        instrument : str
            E.g. ``"isgri"``, ``"jemx"``, ``"spi_acs"``.

        Returns
        -------
        list of str
        """
        products, _ = self._meta(self._instrument(instrument))
        return sorted(products)

    def _product_parameters(self, instrument, product):
        instrument = self._instrument(instrument)
        return _params.product_parameters(instrument, product, self._meta(instrument))

    def get_parameters(self, instrument, product):
        """The parameters of a product, with defaults, units and restrictions.

        Parameters
        ----------
        instrument, product : str

        Returns
        -------
        `~astropy.table.Table`
            Columns ``name``, ``default``, ``unit``, ``type`` (the term of
            the ODA ontology that types the parameter, e.g. ``oda:Integer``,
            empty when the dispatcher does not say), ``query``,
            ``allowed_values``, ``min``, ``max``, ``optional``.
        """
        instrument = self._instrument(instrument)
        return _params.parameters_table(self._product_parameters(instrument, product),
                                        instrument=instrument, product=product,
                                        server=self.server)

    def get_product_description(self, instrument, product):
        """Print a product's parameters, as oda_api's method of this name does (for migrants).

        `get_parameters` returns them as a `~astropy.table.Table`.

        Parameters
        ----------
        instrument, product : str
        """
        table = self.get_parameters(instrument, product)
        print(f"parameters of the {table.meta['instrument']} product {product} "
              f"({len(table)}; see Mmoda.get_parameters):")
        table.pprint(max_lines=-1, max_width=-1)
