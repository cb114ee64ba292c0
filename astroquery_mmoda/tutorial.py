"""The MMODA tutorial, end to end, in one command::

    python -m astroquery_mmoda.tutorial [-o DIR] [--local | --public]

It runs against the public MMODA when a token is configured (``ODA_TOKEN``,
the keyring, ``./.oda-token`` or ``~/.oda-token``) and the dispatcher answers;
otherwise against a local dispatcher serving the synthetic INTEGRAL test sky
(installed on first use, about a minute).  It says which one it used, prints
the source catalog, and writes the light curves, spectra (XSPEC-ready) and
PNG plots into ``DIR`` (default ``mmoda-tutorial-output``).

Steps: SPI-ACS light curve → ISGRI mosaic and source catalog → catalog
filtered to significant, known sources → ISGRI spectra → ISGRI light curves.
"""
import argparse
import contextlib
import functools
import sys
from pathlib import Path

from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

from .writing import ecsv, write_file

#: The tutorial's field and time: 4U 1700-377 and OAO 1657-415, March 2003.
PUBLIC_QUERY = dict(coordinates=SkyCoord(257.815417, -41.593417, unit="deg"),
                    start_time=Time("2003-03-15T23:27:40"), end_time=Time("2003-03-16T00:03:15"))


def _public_client():
    """The public MMODA with a token, or None (with the reason) when not usable."""
    from . import conf
    from .core import MmodaClass
    from .exceptions import LoginError

    client = MmodaClass(prompt=False)
    try:
        client.login()
    except LoginError:
        return None, "no MMODA token is configured"
    try:
        client.list_instruments()
    except Exception as exc:  # any failure to reach it means: use the local one
        return None, f"{conf.server} cannot be reached ({exc.__class__.__name__})"
    return client, None


@contextlib.contextmanager
def _local_client():
    from .core import MmodaClass
    from .testing import LocalDispatcher
    from .testing.integral_sky import ISGRI_OBSERVATION

    with LocalDispatcher(integral=True) as dispatcher:
        client = MmodaClass(server=dispatcher.url)
        client.login(dispatcher.mint_token("general"))
        query = dict(coordinates=SkyCoord(ISGRI_OBSERVATION.ra, ISGRI_OBSERVATION.dec, unit="deg"),
                     start_time=Time(ISGRI_OBSERVATION.start),
                     end_time=Time(ISGRI_OBSERVATION.end))
        yield client, query


def run(client, query, output, *, query_type="Real", say=print):
    """Run the tutorial's steps with ``client``; write everything into ``output``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    import matplotlib.pyplot as plt

    from .integral import select_sources
    from .plots import plot_image, plot_lightcurve, plot_spectrum

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name, content):
        written.append(write_file(output / name, content, overwrite=True))

    def save_plot(ax, name):
        save(name, functools.partial(ax.figure.savefig, format="png", dpi=110, bbox_inches="tight"))
        plt.close(ax.figure)

    def save_series(series, name):
        save(name, ecsv(series))

    position, start, end = query["coordinates"], query["start_time"], query["end_time"]

    say("1. SPI-ACS light curve, 1 s bins, 5 minutes")
    acs = client.get_lightcurve(position, start_time=start, end_time=start + 5 * u.min,
                                instrument="spi_acs", time_bin=1 * u.s)
    for name, series in acs.items():
        save_series(series, "spi_acs_lightcurve.ecsv")
        save_plot(plot_lightcurve(series), "spi_acs_lightcurve.png")
        say(f"   {len(series)} bins from {series.time[0].utc.isot} UTC")

    say("2. ISGRI mosaic and source catalog, 30-80 keV")
    options = dict(start_time=start, end_time=end, osa_version="OSA11.2", query_type=query_type)
    catalog = client.query_region(position, 8 * u.deg, max_pointings=10, **options)
    catalog.pprint(max_lines=-1, max_width=-1)
    (mosaic,) = client.get_images(position, 8 * u.deg, max_pointings=10, **options)
    save("isgri_mosaic.fits", mosaic.writeto)
    save_plot(plot_image(mosaic, catalog=catalog), "isgri_mosaic.png")

    say("3. Sources with significance >= 8, without new ones")
    chosen = select_sources(catalog, min_significance=8)
    say("   " + ", ".join(chosen["src_names"]))

    say("4. ISGRI spectra of these sources")
    spectra = client.get_spectrum(position, catalog=chosen, **options)
    for name in chosen["src_names"]:
        if name in spectra:
            written.extend(spectra[name].write(output / "spectra", overwrite=True).values())
    first = next(name for name in chosen["src_names"] if name in spectra)
    save_plot(plot_spectrum(spectra[first]), "isgri_spectrum.png")

    say("5. ISGRI light curves, 1000 s bins")
    curves = client.get_lightcurve(position, catalog=chosen, time_bin=1000 * u.s, **options)
    for name, series in curves.items():
        stem = "".join(c if c.isalnum() or c in "+-" else "_" for c in name)
        save_series(series, f"isgri_lightcurve_{stem}.ecsv")
        save_plot(plot_lightcurve(series), f"isgri_lightcurve_{stem}.png")
    say(f"   {len(curves)} light curve(s): {', '.join(curves)}")
    return written


def main(argv=None):
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m astroquery_mmoda.tutorial",
                                     description=__doc__.split("\n\n")[1])
    parser.add_argument("-o", "--output", default="mmoda-tutorial-output",
                        help="folder for the files (default: %(default)s)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="always use the local test dispatcher")
    where.add_argument("--public", action="store_true", help="always use the public MMODA")
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")  # files only, also on machines without a display

    client, reason = (None, "--local was given") if args.local else _public_client()
    if client is None and args.public:
        print(f"mmoda tutorial: {reason}", file=sys.stderr)
        return 3
    if client is not None:
        print(f"Using the public MMODA at {client.server} as "
              f"{client.token_info().subject}.")
        written = run(client, PUBLIC_QUERY, args.output)
    else:
        print(f"Using a local MMODA dispatcher with the synthetic INTEGRAL test sky ({reason}).")
        with _local_client() as (client, query):
            written = run(client, query, args.output, query_type="Dummy")
    print(f"\nWrote {len(written)} files into {args.output}/:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
