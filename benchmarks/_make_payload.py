"""Build a large run_analysis answer with the dispatcher's own product encoder.

Runs in the dispatcher's virtual environment (its oda_api provides the
``NumpyDataProduct`` encoder that the server uses).  Usage::

    python _make_payload.py TEMPLATE.json OUTPUT.json PIXELS_PER_SIDE

TEMPLATE is a real ``empty/numerical`` answer of the local dispatcher; its
``numpy_data_product_list`` is replaced by one product holding a primary HDU
and a float64 image of PIXELS_PER_SIDE² pixels.
"""
import json
import sys

import numpy as np
from oda_api.data_products import NumpyDataProduct, NumpyDataUnit


def main():
    template_path, output_path, side = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(template_path) as stream:
        answer = json.load(stream)
    image = np.random.default_rng(20260101).standard_normal((side, side))
    units = [
        NumpyDataUnit(data=None, data_header={"ORIGIN": "benchmark"}, hdu_type="primary",
                      name="PRIMARY"),
        NumpyDataUnit(data=image, data_header={"EXTNAME": "IMAGE", "BUNIT": "count"},
                      hdu_type="image", name="IMAGE"),
    ]
    product = NumpyDataProduct(data_unit=units, name="large_image",
                               meta_data={"product": "large_image", "src_name": "benchmark"})
    answer["products"]["numpy_data_product_list"] = [product.encode()]
    with open(output_path, "w") as stream:
        json.dump(answer, stream)
    print(json.dumps({"pixels": int(image.size), "data_bytes": int(image.nbytes)}))


if __name__ == "__main__":
    main()
