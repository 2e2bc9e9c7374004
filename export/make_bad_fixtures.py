"""Tiny ONNX graphs for the bad-input tests (fixtures/bad/): no torch needed, only `onnx`.

- nan-rm.onnx: a reward-model signature whose logits are NaN for every row.
- wrong-io.onnx: a graph whose output is `scores [batch, seq, 1]`, not `logits [batch, num_labels]`.
- zero-labels-rm.onnx: `logits [batch, 0]`, declared so; zero-labels-dynamic-rm.onnx: `logits
  [batch, labels]` that comes back with no columns at run time.
"""
import os

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "bad")


def inputs():
    return [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
    ]


def save(graph, name):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, name))


def main():
    os.makedirs(OUT, exist_ok=True)
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [], [float("nan")])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["ids_f", "axes"], ["sum"], keepdims=1),
        helper.make_node("Mul", ["sum", "nan"], ["logits"]),
    ]
    out = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])]
    save(helper.make_graph(nodes, "nan_rm", inputs(), out, initializer=[nan, axes]), "nan-rm.onnx")

    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids_f", "axes2"], ["scores"]),
    ]
    axes2 = helper.make_tensor("axes2", TensorProto.INT64, [1], [2])
    out = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", "seq", 1])]
    save(helper.make_graph(nodes, "wrong_io", inputs(), out, initializer=[axes2]), "wrong-io.onnx")
    # Zero labels: the first 0 columns of the ids, as floats.
    zero = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [0]),
        helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
    ]
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["ids_f", "starts", "ends", "axis1"], ["logits"]),
    ]
    for name, labels in [("zero-labels-rm.onnx", 0), ("zero-labels-dynamic-rm.onnx", "labels")]:
        out = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", labels])]
        save(helper.make_graph(nodes, "zero_labels", inputs(), out, initializer=zero), name)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
