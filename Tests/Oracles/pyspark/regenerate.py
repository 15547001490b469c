#!/usr/bin/env python3
"""Writes the golden files the Swift pyspark port is checked against, with pyspark (Spark 4.x,
Java 17) as the oracle: it is too slow and too large (~450 MB) to run in the suite, so this
script regenerates the files exactly and they are committed.

For the seed's data file and for a synthetic one (500 rows, sparse rows and ties included), it
records Spark's randomSplit([0.6, 0.4], 1234) test split, trains a multilayer perceptron on the
train split (not the seed's: other layers), writes it as an MLeap bundle (JSON format, as MLeap
0.16 lays it out), and records Spark's raw predictions, probabilities, predictions and the
evaluator's accuracy.

Spark computes the perceptron with dev.ludovic.netlib's Java BLAS here (no libblas.so.3 on the
machine; it says so in its log): with a native BLAS the raw predictions could differ in their
last bits.

Usage (once):  python3 -m venv .build-pyspark && .build-pyspark/bin/pip install pyspark==4.3.0 numpy==2.2.6
               .build-pyspark/bin/python Tests/Oracles/pyspark/regenerate.py
"""

import json
import random
import shutil
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SEED_DATA = REPO / "Sources" / "Examples" / "Spark" / "sample_multiclass_classification_data.txt"


def synthetic_data(path):
    """500 libsvm rows over 5 features: 3 labels, some features missing, some rows repeated."""
    rng = random.Random(20261129)
    lines = []
    for n in range(500):
        label = rng.randrange(3)
        features = []
        for index in range(1, 6):
            if rng.random() < 0.2 and index != 5:
                continue
            features.append(f"{index}:{round(rng.gauss(label - 1, 0.8), rng.choice([1, 3, 6]))}")
        line = f"{label} " + " ".join(features)
        lines.append(line)
        if n % 50 == 7:
            lines.append(line)  # an identical row: the sort must tie them
    path.write_text("\n".join(lines) + "\n")


def bundle(path, layers, weights, uid):
    """An MLeap bundle (JSON) holding a Pipeline with one MultilayerPerceptronClassifier."""
    stage = f"MultilayerPerceptronClassifier_{uid}"
    files = {
        "bundle.json": {"uid": f"{uid}-pipeline", "name": f"Pipeline_{uid}", "format": "json",
                        "version": "0.16.0", "timestamp": "2026-11-29T00:00:00.000"},
        "root/model.json": {"op": "pipeline", "attributes": {"nodes": {"string": [stage], "type": "list"}}},
        "root/node.json": {"name": f"Pipeline_{uid}", "shape": {"inputs": [], "outputs": []}},
        f"root/{stage}.node/model.json": {"op": "multi_layer_perceptron_classifier", "attributes": {
            "layers": {"long": layers, "type": "list"},
            "weights": {"double": weights, "shape": {"dimensions": [{"size": len(weights), "name": ""}]},
                        "type": "tensor"}}},
        f"root/{stage}.node/node.json": {"name": stage, "shape": {
            "inputs": [{"port": "features", "name": "features"}],
            "outputs": [{"port": "raw_prediction", "name": "rawPrediction"},
                        {"port": "probability", "name": "probability"},
                        {"port": "prediction", "name": "prediction"}]}},
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 29, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(content, indent=2))


def main():
    from pyspark.ml.classification import MultilayerPerceptronClassifier
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.master("local[1]").appName("golden").config("spark.ui.enabled", "false").getOrCreate()
    synthetic = HERE / "synthetic_data.txt"
    synthetic_data(synthetic)
    golden = {"spark": spark.version, "cases": []}
    for name, data_path, layers in [("seed data", SEED_DATA, [4, 6, 3]), ("synthetic", synthetic, [5, 7, 4, 3])]:
        data = spark.read.format("libsvm").load(str(data_path))
        assert data.rdd.getNumPartitions() == 1, "the port assumes one partition"
        train, test = data.randomSplit([0.6, 0.4], 1234)
        trainer = MultilayerPerceptronClassifier(layers=layers, maxIter=200, blockSize=128, seed=42)
        model = trainer.fit(train)
        result = model.transform(test)
        rows = result.collect()
        accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(result.select("prediction", "label"))
        bundle_name = f"{'seed' if name == 'seed data' else 'synthetic'}_mlp.zip"
        bundle(HERE / bundle_name, layers, [float(w) for w in model.weights.toArray()], f"golden{len(golden['cases'])}")
        golden["cases"].append({
            "name": name,
            "data": str(data_path.relative_to(REPO)),
            "bundle": f"Tests/Oracles/pyspark/{bundle_name}",
            "train_size": train.count(),
            "test": [[r.label, r.features.toArray().tolist()] for r in rows],
            "raw_prediction": [r.rawPrediction.toArray().tolist() for r in rows],
            "probability": [r.probability.toArray().tolist() for r in rows],
            "prediction": [r.prediction for r in rows],
            "accuracy": accuracy,
            "reply": "Test set accuracy = " + str(accuracy),
        })
    # The seed's own bundle under Spark 4 (pyspark cannot read MLeap bundles here: the same
    # perceptron is built from the bundle's weights through py4j).
    from pyspark.ml.classification import MultilayerPerceptronClassificationModel
    from pyspark.ml.common import _py2java
    from pyspark.ml.linalg import Vectors
    archive = zipfile.ZipFile(REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip")
    model_json = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith(".node/model.json"))))
    jmodel = spark._jvm.org.apache.spark.ml.classification.MultilayerPerceptronClassificationModel(
        "seed", _py2java(spark.sparkContext, Vectors.dense(model_json["attributes"]["weights"]["double"])))
    seed_model = MultilayerPerceptronClassificationModel(jmodel)
    seed_model._set(layers=model_json["attributes"]["layers"]["long"])
    test = spark.read.format("libsvm").load(str(SEED_DATA)).randomSplit([0.6, 0.4], 1234)[1]
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(
        seed_model.transform(test).select("prediction", "label"))
    golden["seed_bundle_reply"] = "Test set accuracy = " + str(accuracy)
    spark.stop()
    (HERE / "golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print("wrote", HERE / "golden.json", [(c["name"], c["train_size"], len(c["test"]), c["reply"]) for c in golden["cases"]])


if __name__ == "__main__":
    main()
