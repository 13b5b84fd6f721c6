"""Checks image-api-classify against a second engine: the sample photos
decoded and resized by Pillow (not by the service's Rust code), classified
by OpenVINO's own Python API on the same model. The service's top-1 label
(POST /classify) must agree on every photo, and there must be at least
MIN_PHOTOS of them. Run by scripts/test with the project's venv.

Usage: second_engine.py MODEL_DIR SAMPLES_DIR [SERVICE_URL]
"""
import http.client
import json
import pathlib
import sys
import urllib.parse

import numpy as np
import openvino as ov
from PIL import Image

MIN_PHOTOS = 4
SIDE = 224


def post(url, body, headers, source):
    """POST from the local address `source`: the host keys the rate limit on
    the TCP peer, so each photo is its own client."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("POST", u.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit(f"{url}: {r.status} {data[:200]!r}")
        return data
    finally:
        conn.close()


def tensor(path):
    """The whole picture (first frame, no crop) as 224x224 RGB uint8, NHWC."""
    with Image.open(path) as img:
        img.seek(0)
        rgb = img.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8).reshape(1, SIDE, SIDE, 3)


def main(model_dir, samples_dir, base="http://127.0.0.1:9006"):
    model_dir = pathlib.Path(model_dir)
    labels = model_dir.joinpath("labels.txt").read_text().split("\n")
    compiled = ov.Core().compile_model(str(model_dir / "model.xml"), "CPU")
    photos = [p for p in sorted(pathlib.Path(samples_dir).glob("*.*"))
              if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".gif")]
    if len(photos) < MIN_PHOTOS:
        sys.exit(f"only {len(photos)} photos in {samples_dir}; need {MIN_PHOTOS}")
    failures = 0
    for i, photo in enumerate(photos):
        out = compiled(tensor(photo))[compiled.output(0)].reshape(-1)
        expected = labels[int(np.argmax(out))]
        headers = {"Accept": "application/json"}
        answer = json.loads(post(f"{base}/classify", photo.read_bytes(), headers, f"127.0.3.{i + 1}"))
        got = answer[0]["label"]
        ok = got == expected
        failures += not ok
        print(f"{'ok' if ok else 'MISMATCH'}: {photo.name}: service {got!r}, Pillow + OpenVINO Python {expected!r}")
    if failures:
        sys.exit(f"{failures} of {len(photos)} photos disagree")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
