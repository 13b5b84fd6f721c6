"""The inference half of the classify baseline: OpenVINO from Python on the
tensor classify-prep wrote, same model and device as the service.

Usage: classify_infer.py MODEL_DIR TENSOR [ITERATIONS]
Prints `infer_p50_ms=<f> infer_p99_ms=<f>`.
"""
import sys
import time

import numpy as np
import openvino as ov


def main(model_dir, tensor_path, n="300"):
    n = int(n)
    compiled = ov.Core().compile_model(f"{model_dir}/model.xml", "CPU")
    request = compiled.create_infer_request()
    tensor = np.fromfile(tensor_path, dtype=np.uint8).reshape(1, 224, 224, 3)
    for _ in range(20):
        request.infer({0: tensor})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        request.infer({0: tensor})
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"infer_p50_ms={times[n // 2]:.2f} infer_p99_ms={times[min(n * 99 // 100, n - 1)]:.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
