#!/usr/bin/env python3
"""The pyspark example's reply time: the Swift port in-process (release handler-bench) and over
gRPC (release fxwatcher, sequential Call round trips), against pyspark doing what the seed's
handler does — cold (process start, SparkSession, first reply) and warm (each later request:
read the libsvm file, randomSplit, transform the test split, evaluate) — in the same run.

pyspark cannot load MLeap bundles here (the mleap package needs JVM jars that are not
reachable), so the pyspark side builds the same perceptron from the bundle's weights through
py4j; everything else is the seed's code. SPARK_SPLIT=2 for Swift (the seed's Spark 2.4 split);
the pyspark side runs Spark 4, whose split differs, which does not change its time.

Usage: .build-venv/bin/python Benchmarks/pyspark.py [--rounds 200]
Build first: swift build -c release --product fxwatcher && swift build -c release --product handler-bench
pyspark: python3 -m venv .build-pyspark && .build-pyspark/bin/pip install pyspark==4.3.0 numpy==2.2.6
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Tests" / "e2e"))
DATA = REPO / "Sources" / "Examples" / "Spark" / "sample_multiclass_classification_data.txt"
BUNDLE = REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip"

PYSPARK_SCRIPT = r"""
import json, sys, time, zipfile
start = time.perf_counter()
from pyspark.sql import SparkSession
from pyspark.ml.classification import MultilayerPerceptronClassificationModel
from pyspark.ml.evaluation import MulticlassClassificationEvaluator
from pyspark.ml.linalg import Vectors
from pyspark.ml.common import _py2java
data_path, bundle_path, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
spark = SparkSession.builder.master("local[*]").appName("NeuralNet").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
archive = zipfile.ZipFile(bundle_path)
model_json = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith(".node/model.json"))))
layers = model_json["attributes"]["layers"]["long"]
weights = model_json["attributes"]["weights"]["double"]

def handle():
    data = spark.read.format("libsvm").load(data_path)
    train, test = data.randomSplit([0.6, 0.4], 1234)
    jmodel = spark._jvm.org.apache.spark.ml.classification.MultilayerPerceptronClassificationModel(
        "mlp", _py2java(spark.sparkContext, Vectors.dense(weights)))
    model = MultilayerPerceptronClassificationModel(jmodel)
    model._set(layers=layers)
    result = model.transform(test)
    evaluator = MulticlassClassificationEvaluator(metricName="accuracy")
    return "Test set accuracy = " + str(evaluator.evaluate(result.select("prediction", "label")))

reply = handle()
cold = time.perf_counter() - start
warm = []
for _ in range(requests):
    t = time.perf_counter(); handle(); warm.append(time.perf_counter() - t)
print(json.dumps({"reply": reply, "cold": cold, "warm": sum(warm) / len(warm)}))
"""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--pyspark-requests", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus"
        corpus.write_bytes(b"\x00\x00\x00\x00")
        out = subprocess.run([str(REPO / ".build" / "release" / "handler-bench"), "pyspark", str(corpus), str(args.rounds)],
                             capture_output=True, text=True, check=True).stdout
        calls_per_second = int(out.split("=")[1].split()[0])
        in_process_ms = 1000 / calls_per_second
        print(f"Swift in-process (handler-bench): {in_process_ms:.3f} ms per reply ({out.strip()})")

        import grpc
        from grpc_tools import protoc
        from conftest import accepts, free_port
        protoc.main(["protoc", f"-I{REPO / 'Protos'}", f"--python_out={folder}", f"--grpc_python_out={folder}",
                     str(REPO / "Protos" / "fxwatcher.proto")])
        sys.path.insert(0, folder)
        import fxwatcher_pb2 as messages
        import fxwatcher_pb2_grpc as services
        port, mesh = free_port(), free_port()
        env = {"PATH": os.environ["PATH"], "HANDLER_NAME": "pyspark", "WATCHER_HOST": "127.0.0.1",
               "WATCHER_PORT": str(port), "MESH_PORT": str(mesh), "LOCK_FILE": str(Path(folder) / "lock")}
        started = time.perf_counter()
        server = subprocess.Popen([str(REPO / ".build" / "release" / "fxwatcher")], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not accepts(port):  # a TCP probe: grpcio's reconnect backoff would add a second
                time.sleep(0.001)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = services.FxWatcherStub(channel)
                reply = stub.Call(messages.Request(), timeout=5).Output
                cold = time.perf_counter() - started
                t = time.perf_counter()
                for _ in range(args.rounds):
                    stub.Call(messages.Request(), timeout=5)
                grpc_ms = (time.perf_counter() - t) / args.rounds * 1000
        finally:
            server.terminate()
            server.wait()
        print(f"Swift over gRPC (fxwatcher): {grpc_ms:.3f} ms per call; exec -> first reply {cold * 1000:.1f} ms; {reply!r}")

    python = REPO / ".build-pyspark" / "bin" / "python"
    if not python.exists():
        print("pyspark: .build-pyspark is missing (see Usage); skipped")
        return
    result = subprocess.run([str(python), "-c", PYSPARK_SCRIPT, str(DATA), str(BUNDLE), str(args.pyspark_requests)],
                            capture_output=True, text=True, check=True)
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"pyspark 4.x: cold (start, session, first reply) {numbers['cold'] * 1000:.0f} ms; "
          f"each later request {numbers['warm'] * 1000:.1f} ms; {numbers['reply']!r}")
    print(f"ratio: warm request / Swift over gRPC = {numbers['warm'] * 1000 / grpc_ms:.0f}x, "
          f"cold = {numbers['cold'] / cold:.0f}x")


if __name__ == "__main__":
    main()
