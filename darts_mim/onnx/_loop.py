"""The fast export: one recurrent step traced once, run by ONNX ``Loop`` nodes.

Tracing the unrolled recurrence costs time and file size in proportion to the number of steps (the
dynamo exporter took about a minute for 18 steps of a 2x16 model, the TorchScript one produced a graph
whose ONNX Runtime session took over a minute to build for a 4x64 Moving MNIST model). Here the
network's ``forward`` is replaced, on a private copy, by one that computes the same thing in three
pieces:

1. the outer graph, traced with TorchScript's exporter: everything around the network (instance norm,
   masking, covariates as channels, the likelihood transform), the input convolution over the known
   frames, step 0 (whose zero states make it special) and the head of the last encoder step; the two
   remaining loops appear in it as placeholder nodes of the ``darts_mim`` domain;
2. the encoder step (``gates``, states in; states out), traced once;
3. the decoder step (previous output, covariates of the step, states in; states, output out), traced
   once.

:func:`splice` replaces each placeholder by an ONNX ``Loop`` whose body is the traced step. Each
body keeps its own copy of the step's weights (unless ``compact``, see :func:`splice`), so the
file's size does not depend on the sequence lengths (it holds the weights at most three times: the
outer graph and the two bodies). Export then takes seconds, and the caller
(:func:`darts_mim.onnx.export.export_model`) checks the result against torch before writing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import types
from collections.abc import Iterator, Sequence

import onnx
import torch
from onnx import TensorProto, helper
from torch import Tensor, nn

from darts_mim.nn.cells import space_to_depth

DOMAIN = "darts_mim"
_ENCODER_OP, _DECODER_OP = "EncoderLoop", "DecoderLoop"
# The TorchScript exporter's newest opset (torch 2.13); Loop, Gather and the rest are much older.
DEFAULT_OPSET = 17


class UnsupportedNetwork(RuntimeError):
    """The network uses something the looped export does not reproduce; export it unrolled."""


def _anchor_lag(net: nn.Module) -> int:
    return int(getattr(net, "anchor_lag", 1))


def _full_states(net: nn.Module, states: Sequence[Tensor | None], like: Tensor) -> list[Tensor]:
    """Every state as a ``[B, hidden, H', W']`` tensor: the zero states that the cells keep as
    ``None`` become zeros and those derived only from zero states (batch 1) are broadcast, so that
    the loop carries tensors of one shape from the first iteration on.

    Shapes come from broadcasting with ``like`` (``[B, *, H', W']``), never from reading sizes: the
    TorchScript exporter folds a size it read into a constant wherever its shape inference loses the
    symbolic batch axis.
    """
    base = like[:, :1] * 0  # [B, 1, H', W'] zeros
    widths: list[int] = []
    for layer, cell in enumerate(net.cells):
        widths += [net.num_hidden[layer]] * type(cell).n_states
    widths.append(net.num_hidden[-1])  # the memory M leaves the top layer
    full = []
    for state, width in zip(states, widths, strict=True):
        full.append(base.expand(-1, width, -1, -1) if state is None else state + base)
    return full


def _decoder_step(
    net: nn.Module, prev: Tensor, history: Tensor | None, cond_t: Tensor | None, states
) -> tuple[tuple[Tensor, ...], Tensor, Tensor | None]:
    """One decoding step as :meth:`MIMNetwork.forward` runs it: feed back the previous output's
    ``feedback_param``, anchor on the frame ``anchor_lag`` steps back (``history`` holds the last
    ``anchor_lag`` frames fed, oldest first; ``None`` for a lag of 1)."""
    frame = prev[:, :, net.feedback_param]
    frame_cond = frame if cond_t is None else torch.cat([frame, cond_t], dim=1)
    gates = net.cells[0].conv_x(space_to_depth(frame_cond, net.patch_size))
    states = net._step(gates, False, *states)
    if history is not None:
        history = torch.cat([history[:, 1:], frame[:, None]], dim=1)
        anchor = history[:, 0]
    else:
        anchor = frame
    return states, net._frame_out(net._top_hidden(states), anchor), history


@contextlib.contextmanager
def _untraced() -> Iterator[None]:
    """Run eager code inside a trace without tracing it: the placeholders' loops call the network's
    modules, whose scope bookkeeping fails inside an autograd function under the tracer."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        yield
    finally:
        torch._C._set_tracing_state(state)


def _placeholders(net: nn.Module) -> tuple[type, type]:
    """The autograd functions that run the loops in eager mode (so that tracing sees real values)
    and export as one placeholder node each."""

    class EncoderLoop(torch.autograd.Function):
        @staticmethod
        def forward(ctx, known_gates: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
            record = getattr(net, "_loop_record", None)
            with _untraced():
                for t in range(1, known_gates.shape[1]):
                    if record is not None:
                        record["encoder"].append((known_gates[:, t], *states))
                    states = net._step(known_gates[:, t], False, *states)
            return tuple(states)

        @staticmethod
        def symbolic(g, known_gates, *states):
            outputs = g.op(f"{DOMAIN}::{_ENCODER_OP}", known_gates, *states, outputs=len(states))
            # Same dtype and rank as the states, sizes unknown: a size the exporter thinks it knows
            # is folded into a constant (the example batch size would be baked into the graph).
            for out, state in zip(outputs, states, strict=True):
                out.setType(state.type().with_sizes([None] * 4))
            return outputs

    class DecoderLoop(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx, n_steps: int, has_history: bool, has_cond: bool, prev: Tensor, *rest: Tensor
        ) -> Tensor:
            rest = list(rest)
            history = rest.pop(0) if has_history else None
            cond = rest.pop(0) if has_cond else None
            states = tuple(rest)
            t_in = cond.shape[1] - n_steps if cond is not None else None
            outputs = []
            record = getattr(net, "_loop_record", None)
            with _untraced():
                for k in range(n_steps):
                    cond_t = None if cond is None else cond[:, t_in + k]
                    if record is not None:
                        extra = [x for x in (history, cond_t) if x is not None]
                        record["decoder"].append((prev, *extra, *states))
                    states, prev, history = _decoder_step(net, prev, history, cond_t, states)
                    outputs.append(prev)
                return torch.stack(outputs, dim=1)

        @staticmethod
        def symbolic(g, n_steps, has_history, has_cond, prev, *rest):
            out = g.op(
                f"{DOMAIN}::{_DECODER_OP}",
                prev,
                *rest,
                n_steps_i=n_steps,
                has_history_i=int(has_history),
                has_cond_i=int(has_cond),
            )
            # (B, n_steps, C, P, H, W): the previous output's dtype, sizes unknown (as above)
            out.setType(prev.type().with_sizes([None] * 6))
            return out

    return EncoderLoop, DecoderLoop


def install_looped_forward(net: nn.Module) -> None:
    """Replace ``net.forward`` (on this instance only: pass a copy) by the looped forecast.

    Raises
    ------
    UnsupportedNetwork
        For what the looped graph does not reproduce (teacher forcing and window outputs are training
        only; an anchor further back than the input window reaches).
    """
    encoder_loop, decoder_loop = _placeholders(net)

    def forward(
        self,
        past_frames: Tensor,
        n_out: int,
        cond: Tensor | None = None,
        future_frames: Tensor | None = None,
        teacher_mask: Tensor | None = None,
        return_all: bool = False,
    ) -> Tensor:
        if future_frames is not None or teacher_mask is not None or return_all:
            raise UnsupportedNetwork("teacher forcing and window outputs are not exported")
        t_in = int(past_frames.shape[1])  # a constant of the graph, as the trip counts are
        lag = _anchor_lag(self)
        if lag > t_in:
            raise UnsupportedNetwork(f"anchor_lag={lag} reaches before the {t_in} input frames")
        known = past_frames if cond is None else torch.cat([past_frames, cond[:, :t_in]], dim=2)
        known = space_to_depth(known.flatten(0, 1), self.patch_size)
        first = self.cells[0]
        known_gates = first.conv_x(known).unflatten(0, (past_frames.shape[0], t_in))
        states = self._step(known_gates[:, 0], True, *self._zero_states())
        states = _full_states(self, states, known_gates[:, 0, : self.num_hidden[0]])
        if t_in > 1:
            states = encoder_loop.apply(known_gates, *states)
        out = self._frame_out(self._top_hidden(states), past_frames[:, t_in - lag])
        self._loop_examples = {"t_in": t_in, "states": states, "prev": None, "cond_t": None}
        if n_out == 1:
            return out[:, None]
        extra = []
        if lag > 1:
            extra.append(past_frames[:, t_in - lag :])
        if cond is not None:
            extra.append(cond)
        rest = decoder_loop.apply(n_out - 1, lag > 1, cond is not None, out, *extra, *states)
        self._loop_examples = {"t_in": t_in, "states": states, "prev": out}
        self._loop_examples["cond_t"] = None if cond is None else cond[:, t_in]
        return torch.cat([out[:, None], rest], dim=1)

    net.forward = types.MethodType(forward, net)


class _EncoderStep(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, gates: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.net._step(gates, False, *states))


class _DecoderStep(nn.Module):
    def __init__(self, net: nn.Module, has_history: bool, has_cond: bool):
        super().__init__()
        self.net = net
        self.has_history, self.has_cond = has_history, has_cond

    def forward(self, prev: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        rest = list(rest)
        history = rest.pop(0) if self.has_history else None
        cond_t = rest.pop(0) if self.has_cond else None
        states, out, history = _decoder_step(self.net, prev, history, cond_t, tuple(rest))
        return (*states, out) + (() if history is None else (history,))


def torchscript_export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    opset: int,
    custom_domain: bool = False,
) -> onnx.ModelProto:
    """TorchScript-based export (``dynamo=False``) with axis 0 of every input and output symbolic.

    The exporter's own shape inference is turned off. Where it cannot follow a size symbolically it
    keeps the traced example's size and folds shapes read from it into constants (the example batch
    size then ends up in ``Reshape`` nodes), and on a reshape of an empty tensor (a covariate split
    into zero plain channels) its C++ code divides by zero and kills the process. ONNX Runtime infers
    shapes itself when it loads the graph. The switch is an argument of the exporter's private
    ``_export``; a torch without it raises :class:`UnsupportedNetwork`, so that the caller uses the
    dynamo exporter.
    """
    try:
        from torch.onnx._internal.torchscript_exporter.utils import _export
    except ImportError as err:
        raise UnsupportedNetwork(f"this torch has no TorchScript exporter ({err})") from err
    if "onnx_shape_inference" not in inspect.signature(_export).parameters:
        raise UnsupportedNetwork("this torch's TorchScript exporter cannot skip shape inference")
    buffer = io.BytesIO()
    axes = {name: {0: "batch"} for name in [*input_names, *output_names]}
    _export(
        module,
        args,
        buffer,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=axes,
        opset_version=opset,
        custom_opsets={DOMAIN: 1} if custom_domain else None,
        onnx_shape_inference=False,
    )
    return onnx.load_from_string(buffer.getvalue())


def trace_steps(
    net: nn.Module,
    example_states: Sequence[Tensor],
    example_prev: Tensor | None,
    example_cond_t: Tensor | None,
    opset: int,
) -> tuple[onnx.ModelProto, onnx.ModelProto | None]:
    """The encoder and decoder step graphs, traced on example states, previous output and step
    covariates (the decoder's only when the forecast has several frames: ``example_prev`` not
    ``None``)."""
    n = len(example_states)
    state_names = [f"s{i}" for i in range(n)]
    new_names = [f"s{i}_next" for i in range(n)]
    gates = torch.zeros_like(example_states[0]).repeat(1, 4, 1, 1)
    # the encoder's gates are the input convolution's output: 4 gates of the first layer's width
    encoder = torchscript_export(
        _EncoderStep(net), (gates, *example_states), ["gates", *state_names], new_names, opset
    )
    if example_prev is None:
        return encoder, None
    lag = _anchor_lag(net)
    inputs, names = [example_prev], ["prev"]
    if lag > 1:
        frame = example_prev[:, :, 0]
        inputs.append(frame[:, None].expand(-1, lag, -1, -1, -1).contiguous())
        names.append("history")
    if example_cond_t is not None:
        inputs.append(example_cond_t)
        names.append("cond_t")
    outputs = [*new_names, "out"] + (["history_next"] if lag > 1 else [])
    decoder = torchscript_export(
        _DecoderStep(net, lag > 1, example_cond_t is not None),
        (*inputs, *example_states),
        [*names, *state_names],
        outputs,
        opset,
    )
    return encoder, decoder


# ---------------------------------------------------------------------- ONNX surgery
def _rename_graph(graph: onnx.GraphProto, prefix: str, keep: set[str]) -> None:
    """Prefix every value and node name of ``graph`` (not those in ``keep``), in place."""

    def name(value: str) -> str:
        return value if not value or value in keep else prefix + value

    for node in graph.node:
        node.input[:] = [name(v) for v in node.input]
        node.output[:] = [name(v) for v in node.output]
        node.name = prefix + node.name
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _rename_graph(attr.g, prefix, keep)
    for collection in (graph.input, graph.output, graph.value_info):
        for value in collection:
            value.name = name(value.name)
    for init in graph.initializer:
        init.name = name(init.name)


def _body(
    step: onnx.ModelProto,
    prefix: str,
    carried: list[str],
    carried_out: list[str],
    scan_out: list[str],
    feeds: list[onnx.NodeProto],
    elem_type: int,
    outer: onnx.GraphProto,
    compact: bool = False,
) -> onnx.GraphProto:
    """A Loop body from a traced step: its weights stay in the body (with ``compact`` they move to
    ``outer``); ``feeds`` compute its other inputs from the iteration number and outer values;
    ``carried`` are the loop-carried inputs."""
    graph = onnx.GraphProto()
    graph.CopyFrom(step.graph)
    _rename_graph(graph, prefix, keep=set())
    own = list(graph.initializer)
    del graph.initializer[:]
    if compact:
        outer.initializer.extend(own)
        own = []
    nodes = list(feeds) + list(graph.node)
    iteration, cond_in, cond_out = prefix + "iter", prefix + "cond", prefix + "cond_out"
    nodes.append(helper.make_node("Identity", [cond_in], [cond_out], name=prefix + "cond_id"))
    outputs = [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, [])]
    outputs += [helper.make_tensor_value_info(prefix + v, elem_type, None) for v in carried_out]
    for value in scan_out:
        copy_name = prefix + value + "_scan"
        nodes.append(helper.make_node("Identity", [prefix + value], [copy_name]))
        outputs.append(helper.make_tensor_value_info(copy_name, elem_type, None))
    inputs = [
        helper.make_tensor_value_info(iteration, TensorProto.INT64, []),
        helper.make_tensor_value_info(cond_in, TensorProto.BOOL, []),
    ] + [helper.make_tensor_value_info(prefix + v, elem_type, None) for v in carried]
    return helper.make_graph(nodes, prefix + "body", inputs, outputs, initializer=own)


def _gather_step(prefix: str, source: str, offset: int, out: str) -> list[onnx.NodeProto]:
    """Nodes giving ``source[:, iteration + offset]`` as ``prefix + out``."""
    off = helper.make_tensor(prefix + out + "_off", TensorProto.INT64, [], [offset])
    return [
        helper.make_node("Constant", [], [prefix + out + "_off"], value=off),
        helper.make_node("Add", [prefix + "iter", prefix + out + "_off"], [prefix + out + "_idx"]),
        helper.make_node("Gather", [source, prefix + out + "_idx"], [prefix + out], axis=1),
    ]


def splice(
    outer_model: onnx.ModelProto,
    encoder: onnx.ModelProto,
    decoder: onnx.ModelProto | None,
    t_in: int,
    elem_type: int,
    compact: bool = False,
) -> onnx.ModelProto:
    """Replace the placeholder nodes of ``outer_model`` by ``Loop`` nodes over the step graphs.

    Each body keeps the step's weights as its own initializers: ONNX Runtime optimises a body's
    convolutions only then. Weights from an outer scope are not constants to its CPU provider, which
    then neither pre-packs them nor runs the convolutions in its blocked (NCHWc) layout; on a 2-core
    AVX2 machine the bike demo's float32 forecasts ran about 1.2x faster end to end at batch 16-256
    with the weights in the bodies, for a file about twice as large (2.8 to 6.0 MB for 3x32 hidden
    channels; a weight is stored once per graph that uses it, at most three times). ``compact``:
    every weight once, in the outer graph (darts-mim 0.7's layout), the smaller and slower file.
    """
    graph = outer_model.graph
    nodes = []
    for node in graph.node:
        if node.domain != DOMAIN:
            nodes.append(node)
            continue
        if node.op_type == _ENCODER_OP:
            known_gates, *states = node.input
            n = len(states)
            prefix = "enc/"
            body = _body(
                encoder,
                prefix,
                carried=[f"s{i}" for i in range(n)],
                carried_out=[f"s{i}_next" for i in range(n)],
                scan_out=[],
                feeds=_gather_step(prefix, known_gates, 1, "gates"),
                elem_type=elem_type,
                outer=graph,
                compact=compact,
            )
            trips = t_in - 1
            outputs = list(node.output)
        elif node.op_type == _DECODER_OP:
            if decoder is None:
                raise UnsupportedNetwork("a decoder placeholder without a decoder step")
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            trips = int(attrs["n_steps"])
            rest = list(node.input)
            prev = rest.pop(0)
            history = rest.pop(0) if attrs["has_history"] else None
            cond = rest.pop(0) if attrs["has_cond"] else None
            n = len(rest)
            prefix = "dec/"
            state_names = [f"s{i}" for i in range(n)]
            carried = ["prev"] + (["history"] if history else []) + state_names
            carried_out = ["out"] + (["history_next"] if history else [])
            carried_out += [f"s{i}_next" for i in range(n)]
            feeds = _gather_step(prefix, cond, t_in, "cond_t") if cond else []
            body = _body(
                decoder, prefix, carried, carried_out, ["out"], feeds, elem_type, graph, compact
            )
            (stacked,) = node.output
            final = [f"{stacked}_final_{v}" for v in carried]
            outputs = [*final, stacked + "_scan"]
            rest = ([history] if history else []) + rest
            node.input[:] = [prev, *rest]
        else:
            raise UnsupportedNetwork(f"unknown placeholder {node.op_type}")
        trip_name = f"{prefix}trip_count"
        graph.initializer.append(helper.make_tensor(trip_name, TensorProto.INT64, [], [trips]))
        loop = helper.make_node(
            "Loop",
            [trip_name, "", *node.input[(1 if node.op_type == _ENCODER_OP else 0) :]],
            outputs,
            name=prefix + "loop",
            body=body,
        )
        nodes.append(loop)
        if node.op_type == _DECODER_OP:
            # scan outputs stack along a new first axis: (steps, B, ...) -> (B, steps, ...)
            nodes.append(
                helper.make_node(
                    "Transpose",
                    [stacked + "_scan"],
                    [stacked],
                    perm=[1, 0, 2, 3, 4, 5],
                    name=prefix + "to_batch_major",
                )
            )
    del graph.node[:]
    graph.node.extend(nodes)
    for opset in list(outer_model.opset_import):
        if opset.domain == DOMAIN:
            outer_model.opset_import.remove(opset)
    _dedupe_initializers(outer_model)
    return outer_model


def _dedupe_initializers(model: onnx.ModelProto) -> None:
    """Keep one initializer per distinct tensor (the steps repeat the outer graph's weights)."""
    canonical: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    kept = []
    for init in model.graph.initializer:
        data = init.raw_data or onnx.numpy_helper.to_array(init).tobytes()
        key = (init.data_type, tuple(init.dims), hashlib.sha1(data).hexdigest())
        if key in canonical:
            rename[init.name] = canonical[key]
        else:
            canonical[key] = init.name
            kept.append(init)
    if not rename:
        return
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)

    def apply(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            node.input[:] = [rename.get(v, v) for v in node.input]
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    apply(attr.g)

    apply(model.graph)


def quantize_step(step: onnx.ModelProto, samples: list[tuple[Tensor, ...]]) -> onnx.ModelProto:
    """The step graph with int8 convolutions (QDQ: int8 per-channel weights, uint8 activations with
    min-max ranges over ``samples``, the step's inputs recorded while forecasting calibration data).

    Only convolutions are quantized: they are where the time goes, and ONNX Runtime fuses each
    ``DequantizeLinear -> Conv -> QuantizeLinear`` into one integer convolution (VNNI on x86). The
    gates' non-linearities and the states stay float32. The step graphs are quantized before
    :func:`splice` because ONNX Runtime's calibration cannot look inside ``Loop`` bodies.
    """
    import os
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    names = [i.name for i in step.graph.input]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(
                {n: t.detach().float().numpy() for n, t in zip(names, sample, strict=True)}
                for sample in samples
            )

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="darts-mim-int8-") as tmp:
        source, target = os.path.join(tmp, "step.onnx"), os.path.join(tmp, "step.int8.onnx")
        onnx.save(step, source)
        quantize_static(
            source,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
        )
        return onnx.load(target)


def unroll(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every ``Loop`` node by copies of its body, one per iteration (in place).

    For serving where a graph must be free of control flow: ONNX Runtime captures CUDA graphs only
    for such graphs. The trip counts are the constants :func:`splice` wrote, so the result holds
    as many steps as the forecast and a larger graph, built from the already traced steps (no
    tracing again).
    """
    graph = model.graph
    constants = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "Loop":
            nodes.append(node)
            continue
        if node.input[1]:
            raise UnsupportedNetwork("a Loop with a condition input cannot be unrolled")
        trips = int(constants[node.input[0]])
        body = helper.get_attribute_value(node.attribute[0])
        # The body's own weights join the outer graph's, deduplicated below.
        graph.initializer.extend(body.initializer)
        carried = list(node.input[2:])
        n_carried = len(carried)
        scans: list[list[str]] = [[] for _ in range(len(body.output) - 1 - n_carried)]
        if trips < 1 and scans:
            raise UnsupportedNetwork("a Loop without iterations has no scan outputs to unroll")
        for i in range(trips):
            prefix = f"{node.name}/unrolled{i}/"
            iteration, condition = prefix + "iter", prefix + "cond"
            nodes.append(
                helper.make_node(
                    "Constant",
                    [],
                    [iteration],
                    name=iteration,
                    value=helper.make_tensor(iteration, TensorProto.INT64, [], [i]),
                )
            )
            nodes.append(
                helper.make_node(
                    "Constant",
                    [],
                    [condition],
                    name=condition,
                    value=helper.make_tensor(condition, TensorProto.BOOL, [], [True]),
                )
            )
            names = {body.input[0].name: iteration, body.input[1].name: condition}
            names.update({v.name: c for v, c in zip(body.input[2:], carried, strict=True)})
            for index, inner in enumerate(body.node):
                copy = onnx.NodeProto()
                copy.CopyFrom(inner)
                copy.name = f"{prefix}{index}:{inner.name}"  # node names must be unique
                copy.input[:] = [names.get(v, v) for v in inner.input]
                for out in inner.output:
                    names[out] = prefix + out
                copy.output[:] = [names[out] for out in inner.output]
                nodes.append(copy)
            outputs = [names.get(v.name, v.name) for v in body.output[1:]]
            carried = outputs[:n_carried]
            for scan, value in zip(scans, outputs[n_carried:], strict=True):
                scan.append(value)
        for j, (value, out) in enumerate(zip(carried, node.output[:n_carried], strict=True)):
            nodes.append(helper.make_node("Identity", [value], [out], name=f"{node.name}/out{j}"))
        for k, (scan, out) in enumerate(zip(scans, node.output[n_carried:], strict=True)):
            axes = f"{node.name}/scan{k}_axes"
            graph.initializer.append(helper.make_tensor(axes, TensorProto.INT64, [1], [0]))
            steps = []
            for j, value in enumerate(scan):
                steps.append(f"{node.name}/scan{k}_{j}")
                nodes.append(
                    helper.make_node("Unsqueeze", [value, axes], [steps[-1]], name=steps[-1])
                )
            nodes.append(
                helper.make_node("Concat", steps, [out], axis=0, name=f"{node.name}/scan{k}")
            )
    del graph.node[:]
    graph.node.extend(nodes)
    _dedupe_initializers(model)
    return model
