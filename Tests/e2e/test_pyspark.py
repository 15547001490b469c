"""End-to-end: the `pyspark` example against the seed's reply and against pyspark's own results
(Tests/Oracles/pyspark/golden.json, written by pyspark 4.x through regenerate.py there)."""

import io
import json
import struct
import zipfile

import pytest

from conftest import REPO

GOLDEN = json.loads((REPO / "Tests" / "Oracles" / "pyspark" / "golden.json").read_text())


def test_with_nothing_set_it_replies_the_seeds_exact_text(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "pyspark"})
    for port in (watcher.port, watcher.mesh_port):
        assert call(port, b"").Output == "Test set accuracy = 0.9019607843137255"
    assert call(watcher.port, b"the input is not used").Output == "Test set accuracy = 0.9019607843137255"


def test_the_seeds_bundle_with_spark_3_split_replies_what_pyspark_4_computes_for_it(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "pyspark", "SPARK_SPLIT": "3"})
    assert call(watcher.port, b"").Output == GOLDEN["seed_bundle_reply"]


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=[c["name"] for c in GOLDEN["cases"]])
def test_with_spark_3_split_it_replies_what_pyspark_printed(start_watcher, call, case):
    watcher = start_watcher(env={"HANDLER_NAME": "pyspark", "SPARK_SPLIT": "3",
                                 "SPARK_DATA": str(REPO / case["data"]), "SPARK_BUNDLE": str(REPO / case["bundle"])})
    assert call(watcher.port, b"").Output == case["reply"]


def bundle_with(tmp_path, name, replace=None, extra=None):
    """The seed's bundle with files replaced or added, written to tmp_path/name."""
    source = zipfile.ZipFile(REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.namelist():
            if replace and item in replace:
                if replace[item] is not None:
                    out.writestr(item, replace[item])
            else:
                out.writestr(item, source.read(item))
        for item, content in (extra or {}).items():
            out.writestr(item, content)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return path


def model_file():
    source = zipfile.ZipFile(REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip")
    return next(n for n in source.namelist() if n.endswith(".node/model.json"))


@pytest.mark.parametrize("kind", ["missing model", "wrong weight count", "path traversal", "zip bomb", "unknown op",
                                  "not a zip", "bad SPARK_SPLIT", "missing data"])
def test_a_bad_or_malicious_bundle_stops_the_start_with_a_clear_message(start_watcher, tmp_path, kind):
    env = {"HANDLER_NAME": "pyspark"}
    expected = {
        "missing model": "has no root/",
        "wrong weight count": "weights, the bundle has",
        "path traversal": "points outside the bundle",
        "zip bomb": "inflates to more than",
        "unknown op": "which this port does not run",
        "not a zip": "not a readable zip",
        "bad SPARK_SPLIT": "SPARK_SPLIT",
        "missing data": "cannot be read",
    }[kind]
    model = model_file()
    if kind == "missing model":
        env["SPARK_BUNDLE"] = str(bundle_with(tmp_path, "b.zip", replace={model: None}))
    elif kind == "wrong weight count":
        text = zipfile.ZipFile(REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip").read(model).decode()
        env["SPARK_BUNDLE"] = str(bundle_with(tmp_path, "b.zip", replace={model: text.replace("\n        5,\n", "\n        6,\n", 1)}))
    elif kind == "path traversal":
        env["SPARK_BUNDLE"] = str(bundle_with(tmp_path, "b.zip", extra={"../../../tmp/evil": "x"}))
    elif kind == "zip bomb":
        path = tmp_path / "bomb.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            with out.open("bundle.json", "w", force_zip64=True) as entry:
                block = bytes(1 << 20)
                for _ in range(300):
                    entry.write(block)
        assert path.stat().st_size < 2 << 20
        env["SPARK_BUNDLE"] = str(path)
    elif kind == "unknown op":
        text = zipfile.ZipFile(REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip").read(model).decode()
        env["SPARK_BUNDLE"] = str(bundle_with(tmp_path, "b.zip", replace={model: text.replace("multi_layer_perceptron_classifier", "xgboost_classifier")}))
    elif kind == "not a zip":
        (tmp_path / "b.zip").write_bytes(b"PK\x03\x04 not really")
        env["SPARK_BUNDLE"] = str(tmp_path / "b.zip")
    elif kind == "bad SPARK_SPLIT":
        env["SPARK_SPLIT"] = "2.4"
    elif kind == "missing data":
        env["SPARK_DATA"] = str(tmp_path / "nothing.txt")
    watcher = start_watcher(env=env, wait=False)
    assert watcher.wait_exit(timeout=60) == 64, watcher.log[-2000:]
    assert expected in watcher.log, watcher.log[-2000:]
    assert not watcher.lock.exists()


def as_protobuf_bundle(pb, json_bundle, path):
    """The same bundle in MLeap's protobuf format (`model.pb`/`node.pb`, tensors big-endian),
    written with the official protobuf runtime from Protos/mleap/bundle.proto."""
    source = zipfile.ZipFile(json_bundle)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for name in (n for n in source.namelist() if not n.endswith("/")):
            content = json.loads(source.read(name))
            if name == "bundle.json":
                out.writestr(name, json.dumps({**content, "format": "protobuf"}))
            elif name.endswith("model.json"):
                model = pb.mleap.Model(op=content["op"])
                for key, value in content["attributes"].items():
                    target = model.attributes.list[key]
                    if value.get("type") == "tensor":
                        target.t.base = pb.mleap.DOUBLE
                        for dimension in value["shape"]["dimensions"]:
                            target.t.shape.dimensions.add(size=dimension["size"])
                        target.t.value = struct.pack(f">{len(value['double'])}d", *value["double"])
                    elif "string" in value:
                        target.l.s.extend(value["string"])
                    elif "long" in value:
                        target.l.l.extend(value["long"])
                    else:
                        target.l.d.extend(value["double"])
                out.writestr(name.replace(".json", ".pb"), model.SerializeToString())
            elif name.endswith("node.json"):
                node = pb.mleap.Node(name=content["name"])
                for socket in content["shape"]["inputs"]:
                    node.shape.inputs.add(port=socket["port"], name=socket["name"])
                for socket in content["shape"]["outputs"]:
                    node.shape.outputs.add(port=socket["port"], name=socket["name"])
                out.writestr(name.replace(".json", ".pb"), node.SerializeToString())
    return path


def test_protobuf_bundles_give_the_same_replies_as_their_json_twins(start_watcher, call, pb, tmp_path):
    seed = as_protobuf_bundle(pb, REPO / "Sources" / "Examples" / "Spark" / "neural_net.zip", tmp_path / "seed.zip")
    assert any(n.endswith("model.pb") for n in zipfile.ZipFile(seed).namelist())
    watcher = start_watcher(env={"HANDLER_NAME": "pyspark", "SPARK_BUNDLE": str(seed)})
    assert call(watcher.port, b"").Output == "Test set accuracy = 0.9019607843137255"
    for index, case in enumerate(GOLDEN["cases"]):
        bundle = as_protobuf_bundle(pb, REPO / case["bundle"], tmp_path / f"golden{index}.zip")
        watcher = start_watcher(env={"HANDLER_NAME": "pyspark", "SPARK_SPLIT": "3",
                                     "SPARK_DATA": str(REPO / case["data"]), "SPARK_BUNDLE": str(bundle)})
        assert call(watcher.port, b"").Output == case["reply"]
