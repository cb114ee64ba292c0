"""Build a large run_analysis answer with the dispatcher's own product encoder.

Runs in the dispatcher's virtual environment (its oda_api provides the
``NumpyDataProduct`` encoder that the server uses).  Usage::

    python _make_payload.py TEMPLATE.json OUTPUT.json SIZE [KIND]

TEMPLATE is a real ``empty/numerical`` answer of the local dispatcher; its
``numpy_data_product_list`` is replaced by one product of KIND:

* ``image`` (default): a primary HDU and a native float64 image of SIZE² pixels
  built in memory;
* ``fits-image``: the same image written to a FITS file and encoded from it
  (``NumpyDataProduct.from_fits_file``, as the INTEGRAL plugins do): big-endian data;
* ``table``: a binary table of SIZE rows (records of float, integer, logical and
  text columns and a variable-length column) encoded from a FITS file.
"""
import json
import os
import sys
import tempfile

import numpy as np
from astropy.io import fits
from oda_api.data_products import NumpyDataProduct, NumpyDataUnit


def main():
    template_path, output_path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    kind = sys.argv[4] if len(sys.argv) > 4 else "image"
    with open(template_path) as stream:
        answer = json.load(stream)
    rng = np.random.default_rng(20260101)
    meta = {"product": f"large_{kind}", "src_name": "benchmark"}
    if kind == "image":
        image = rng.standard_normal((size, size))
        units = [
            NumpyDataUnit(data=None, data_header={"ORIGIN": "benchmark"}, hdu_type="primary",
                          name="PRIMARY"),
            NumpyDataUnit(data=image, data_header={"EXTNAME": "IMAGE", "BUNIT": "count"},
                          hdu_type="image", name="IMAGE"),
        ]
        product = NumpyDataProduct(data_unit=units, name=f"large_{kind}", meta_data=meta)
        data_bytes = image.nbytes
    else:
        if kind == "fits-image":
            image = rng.standard_normal((size, size))
            hdus = [fits.PrimaryHDU(), fits.ImageHDU(image, name="IMAGE")]
            data_bytes = image.nbytes
        elif kind == "table":
            lengths = rng.integers(0, 8, size)
            columns = [
                fits.Column("TIME", "D", unit="d", array=np.linspace(0.0, 1.0, size)),
                fits.Column("RATE", "E", unit="count/s", array=rng.standard_normal(size)),
                fits.Column("ERROR", "E", unit="count/s", array=rng.random(size)),
                fits.Column("CHAN", "J", array=rng.integers(0, 4096, size)),
                fits.Column("FLAG", "L", array=rng.random(size) > 0.5),
                fits.Column("NAME", "8A", array=np.array(["Crab", "Vela X-1"])[lengths % 2]),
                fits.Column("SPEC", "PE()", array=[rng.random(n).astype(np.float32) for n in lengths]),
            ]
            hdus = [fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns, name="EVENTS")]
            data_bytes = size * (8 + 4 + 4 + 4 + 1 + 8 + 8) + int(lengths.sum()) * 4
        else:
            raise SystemExit(f"unknown payload kind {kind}")
        folder = tempfile.mkdtemp()
        path = os.path.join(folder, "product.fits")
        fits.HDUList(hdus).writeto(path)
        product = NumpyDataProduct.from_fits_file(path, meta_data=meta, name=f"large_{kind}")
        if kind == "table":
            product.data_unit[1].data["SPEC"]  # read, so that the pickle carries the heap
        os.unlink(path)
        os.rmdir(folder)
    answer["products"]["numpy_data_product_list"] = [product.encode()]
    with open(output_path, "w") as stream:
        json.dump(answer, stream)
    print(json.dumps({"kind": kind, "size": size, "data_bytes": int(data_bytes)}))


if __name__ == "__main__":
    main()
