"""Checks image-api-classify against a second engine: OpenVINO's own Python
API on the same preprocessed tensor (POST /preprocess). The top-1 label must
agree on every sample photo. Run by scripts/test with the project's venv.

Usage: second_engine.py MODEL_DIR SAMPLES_DIR [SERVICE_URL]
"""
import json
import pathlib
import sys
import urllib.request

import numpy as np
import openvino as ov


def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def main(model_dir, samples_dir, base="http://127.0.0.1:9006"):
    model_dir = pathlib.Path(model_dir)
    labels = model_dir.joinpath("labels.txt").read_text().split("\n")
    compiled = ov.Core().compile_model(str(model_dir / "model.xml"), "CPU")
    failures = 0
    for i, photo in enumerate(sorted(pathlib.Path(samples_dir).glob("*.*"))):
        if photo.suffix.lower() not in (".jpg", ".png", ".gif"):
            continue
        body = photo.read_bytes()
        headers = {"X-Forwarded-For": f"192.0.2.{i + 1}"}
        tensor = np.frombuffer(post(f"{base}/preprocess", body, headers), dtype=np.uint8).reshape(1, 224, 224, 3)
        out = compiled(tensor)[compiled.output(0)].reshape(-1)
        expected = labels[int(np.argmax(out))]
        answer = json.loads(post(f"{base}/classify", body, {**headers, "Accept": "application/json"}))
        got = answer[0]["label"]
        ok = got == expected
        failures += not ok
        print(f"{'ok' if ok else 'MISMATCH'}: {photo.name}: service {got!r}, OpenVINO Python {expected!r}")
    if failures:
        sys.exit(f"{failures} photos disagree")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
