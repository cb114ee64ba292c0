"""The notebooks of the test notebook service (nb2workflow), one per kind of product.

MMODA serves most of its instruments today as notebooks run by an ``nb2service``
(nb2workflow): the cell tagged ``parameters`` declares the parameters, typed by
comments naming terms of the ODA ontology; the cell tagged ``outputs`` names the
products.  `write_notebooks` writes the notebooks below into a folder that
`~astroquery_mmoda.testing.notebook_service.NotebookService` serves; each becomes
a product of the instrument ``LocalDispatcher(notebook_service=True)`` offers.

=================  ============================================================
notebook           products
=================  ============================================================
``table``          a source table with units (``oda:ODAAstropyTable``)
``lightcurve``     a binned light curve (``oda:LightCurve``)
``image``          a sky image with a WCS (``oda:Image``)
``picture``        a PNG plot (``oda:ODAPictureProduct``)
``summary``        text, a float and an integer (``oda:ODATextProduct``, ...)
``binary``         a file of bytes (``oda:ODABinaryProduct``)
``failing``        none: the notebook raises an error naming its parameter
``slow``           text, after reporting progress for ``seconds`` seconds
=================  ============================================================
"""
import hashlib
import json
from pathlib import Path

__all__ = ["NOTEBOOKS", "write_notebooks"]

_TABLE = (
    '''\
ra = 83.63  # oda:PointOfInterestRA
dec = 22.01  # oda:PointOfInterestDEC
radius = 1.5  # oda:Angle ; oda:unit unit:deg ; oda:lower_limit 0.1 ; oda:upper_limit 10
n_rows = 4  # oda:Integer ; oda:lower_limit 1 ; oda:upper_limit 100
''',
    '''\
import numpy as np
from astropy import units as u
from astropy.table import Table
from oda_api.data_products import ODAAstropyTable

offsets = np.linspace(0, radius, n_rows)
table = Table({"src_name": [f"Source {i}" for i in range(n_rows)],
               "ra": (ra + offsets) * u.deg, "dec": np.full(n_rows, dec) * u.deg,
               "flux": np.arange(1, n_rows + 1) * 1.5e-11 * u.erg / u.cm**2 / u.s,
               "energy": np.full(n_rows, 20.0) * u.keV})
table.meta["ORIGIN"] = "astroquery_mmoda test service"
sources = ODAAstropyTable(table, name="sources")
''',
    '''\
sources  # oda:ODAAstropyTable
''')

_LIGHTCURVE = (
    '''\
start_time = "2003-03-15T23:27:40"  # oda:StartTimeISOT
end_time = "2003-03-15T23:32:40"  # oda:EndTimeISOT
time_bin = 30.0  # oda:TimeInterval ; oda:unit unit:s ; oda:lower_limit 1
''',
    '''\
import numpy as np
from astropy.time import Time
from oda_api.data_products import LightCurveDataProduct

t1, t2 = Time(start_time), Time(end_time)
n_bins = int(round((t2 - t1).sec / time_bin))
times = t1.mjd + (np.arange(n_bins) + 0.5) * time_bin / 86400
rates = 100.0 + 10.0 * np.sin(np.arange(n_bins))
lc = LightCurveDataProduct.from_arrays(times=Time(times, format="mjd"), rates=rates,
                                       errors=np.sqrt(rates), timedel=time_bin / 86400,
                                       name="lc")
''',
    '''\
lc  # oda:LightCurve
''')

_IMAGE = (
    '''\
ra = 83.63  # oda:PointOfInterestRA
dec = 22.01  # oda:PointOfInterestDEC
side = 32  # oda:Integer ; oda:lower_limit 8 ; oda:upper_limit 256
''',
    '''\
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from oda_api.data_products import ImageDataProduct

wcs = WCS(naxis=2)
wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
wcs.wcs.crval = [ra, dec]
wcs.wcs.crpix = [side / 2 + 0.5, side / 2 + 0.5]
wcs.wcs.cdelt = [-0.05, 0.05]
y, x = np.mgrid[:side, :side]
pixels = np.exp(-((x - side / 2) ** 2 + (y - side / 2) ** 2) / 8.0).astype("float32")
fits.PrimaryHDU(pixels, header=wcs.to_header()).writeto("image.fits", overwrite=True)
image = ImageDataProduct.from_fits_file("image.fits", name="image")
''',
    '''\
image  # oda:Image
''')

_PICTURE = (
    '''\
title = "A test plot"  # oda:String
''',
    '''\
import matplotlib
matplotlib.use("agg")
import matplotlib.pyplot as plt
from oda_api.data_products import PictureProduct

figure, axes = plt.subplots(figsize=(3, 2), dpi=50)
axes.plot([0, 1, 2], [0, 1, 4])
axes.set_title(title)
figure.savefig("plot.png")
plot = PictureProduct.from_file("plot.png", name="plot")
''',
    '''\
plot  # oda:ODAPictureProduct
''')

_SUMMARY = (
    '''\
band = "hard"  # oda:String ; oda:allowed_value "soft", "hard"
threshold = 5.0  # oda:Float
''',
    '''\
n_detected = 3 if band == "hard" else 1
peak = threshold * 2.5
report = f"{n_detected} sources above {threshold} sigma in the {band} band"
''',
    '''\
report  # oda:ODATextProduct
peak  # oda:Float
n_detected  # oda:Integer
''')

_BINARY = (
    '''\
n_bytes = 256  # oda:Integer ; oda:lower_limit 1 ; oda:upper_limit 100000
''',
    '''\
from oda_api.data_products import BinaryProduct

with open("payload.bin", "wb") as handle:
    handle.write(bytes(i % 256 for i in range(n_bytes)))
payload = BinaryProduct.from_file("payload.bin", name="payload")
''',
    '''\
payload  # oda:ODABinaryProduct
''')

_FAILING = (
    '''\
scw = "066500230010.001"  # oda:String
''',
    '''\
raise RuntimeError(f"no usable data in science window {scw}")
''',
    '''\
never = "unreachable"  # oda:ODATextProduct
''')

_SLOW = (
    '''\
seconds = 3  # oda:Integer ; oda:lower_limit 0 ; oda:upper_limit 120
''',
    '''\
import time

for step in range(seconds):
    print(f"step {step + 1} of {seconds}", flush=True)
    time.sleep(1)
done = f"waited {seconds} s"
''',
    '''\
done  # oda:ODATextProduct
''')

#: name -> (parameters cell, code cell, outputs cell)
NOTEBOOKS = {"table": _TABLE, "lightcurve": _LIGHTCURVE, "image": _IMAGE, "picture": _PICTURE,
             "summary": _SUMMARY, "binary": _BINARY, "failing": _FAILING, "slow": _SLOW}


def _cell(source, tags=()):
    cell_id = hashlib.sha1(source.encode()).hexdigest()[:12]
    return {"cell_type": "code", "execution_count": None, "id": cell_id,
            "metadata": {"tags": list(tags)}, "outputs": [], "source": source.splitlines(True)}


def write_notebooks(folder, names=None):
    """Write the test notebooks (all, or ``names``) into ``folder``.

    Returns
    -------
    list of pathlib.Path
        The notebooks written.

    Examples
    --------
    >>> import tempfile
    >>> from astroquery_mmoda.testing.service_notebooks import write_notebooks
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(sorted(path.name for path in write_notebooks(folder, ["table", "failing"])))
    ['failing.ipynb', 'table.ipynb']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or NOTEBOOKS:
        parameters, code, outputs = NOTEBOOKS[name]
        cells = [_cell(parameters, ["parameters"]), _cell(code), _cell(outputs, ["outputs"])]
        notebook = {"cells": cells,
                    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                "name": "python3"}},
                    "nbformat": 4, "nbformat_minor": 5}
        path = folder / f"{name}.ipynb"
        path.write_text(json.dumps(notebook, indent=1))
        written.append(path)
    return written
