"""The private Darts, Lightning and torch names darts_mim relies on, listed and checked.

Darts, Lightning and torch do not keep their underscore names stable between releases, yet a Darts
model has to override some of them (``_create_model``) and uses others (``_extract_torch_model_params``,
``torch._C._set_tracing_state``). This module

1. scans every ``.py`` in ``darts_mim/`` with :mod:`ast` for

   - imports of underscore names (or from underscore modules) of ``darts``, ``pytorch_lightning``,
     ``lightning*`` and ``torch``;
   - underscore attributes of those packages' modules, written out (``torch._C._get_tracing_state``,
     ``torch.cpu._is_avx512_bf16_supported``) or as ``getattr(torch.cpu, "_name")``;
   - strings that name a private module or object of theirs (a logger name such as
     ``"torch.onnx._internal.exporter._registration"``);
   - underscore methods (and class attributes) that a class of ours defines and that a Darts,
     Lightning or torch base class (``nn.Module``) also has, i.e. overrides;
   - ``self._name`` / ``super()._name`` uses in such a class, and ``obj._name`` or
     ``getattr(obj, "_name")`` anywhere, of a name the external base classes we subclass have
     (as a class attribute or as a ``self._name`` in their source);

2. compares what it found with :data:`RELIED_ON`, which says why we need each name, so that a new
   private name fails here until it is listed with a reason (or replaced by a public API);
3. checks that every name in :data:`RELIED_ON` still exists in the installed Darts/Lightning/torch, so
   an upgrade that removes or renames one fails here with its name rather than deep in a training run
   or an export.

Keys are ``<import path of the external object>.<private name>``; an override or attribute is
keyed by the base class our class names in its ``class ...(Base)`` line (the first base that has it).

To regenerate the list after changing darts_mim/, run ``.venv/bin/python tests/test_private_api.py``:
it prints a ``RELIED_ON`` block with the names found now, keeping the reasons of names already listed
and marking new ones ``TODO``; paste it over the one below and write the reasons.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "darts_mim"
PACKAGE = "darts_mim"

# name -> why darts_mim needs it. Keep sorted; regenerate with `python tests/test_private_api.py`.
RELIED_ON: dict[str, str] = {
    "darts.models.forecasting.pl_forecasting_module.PLForecastingModule._compute_loss": (
        "override: drops always-missing (NaN) cells from the loss"
    ),
    "darts.models.forecasting.pl_forecasting_module.PLForecastingModule._produce_predict_output": (
        "override: samples a likelihood with always-missing cells masked to NaN"
    ),
    "darts.models.forecasting.pl_forecasting_module.PLForecastingModule._trainer": (
        "Lightning's trainer slot: read for the planned steps, emptied while exporting to ONNX"
    ),
    "darts.models.forecasting.pl_forecasting_module.PLForecastingModule._update_metrics": (
        "override: computes torchmetrics without the always-missing cells"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._considers_static_covariates": (
        "Darts' flag for use_static_covariates, set by MIMModel.__init__ as Darts' models do"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._create_model": (
        "the Darts hook that builds the network from a training sample's shapes"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._default_save_path": (
        "Darts' default file name, used by save() and to_onnx() without a path"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._extract_pl_module_params": (
        "splits the PL module's hyper-parameters out of __init__'s arguments, as Darts' models do"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._extract_torch_model_params": (
        "splits TorchForecastingModel's arguments out of __init__'s, as Darts' models do"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._fit_called": (
        "Darts' 'fitted' flag: to_onnx() refuses an unfitted model"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._init_trainer": (
        "builds a one-device trainer to predict after multi-device (DDP) training"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._setup_for_train": (
        "override: Darts' one path from a training dataset to the network; derives the grid layout"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._setup_trainer": (
        "override: adds the early-stopping callbacks of a fit with a validation series to that fit's "
        "trainer only"
    ),
    "darts.models.forecasting.torch_forecasting_model.MixedCovariatesTorchModel._validate_predict_ds_output": (
        "override: Darts' check of each prediction sample against the training sample; refuses "
        "static covariates of another shape (Darts compares their counts only)"
    ),
    "darts.models.forecasting.torch_forecasting_model._get_checkpoint_fname": (
        "finds the checkpoint file Darts' load_from_checkpoint() would read"
    ),
    "darts.models.forecasting.torch_forecasting_model._get_checkpoint_folder": (
        "finds the checkpoint folder Darts' load_from_checkpoint() would read"
    ),
    "torch._C._get_tracing_state": (
        "ONNX export: the looped graph's placeholders run the network's loops eagerly inside the "
        "TorchScript trace (onnx/_loop.py _untraced); torch has no public way to pause a trace"
    ),
    "torch._C._set_tracing_state": (
        "ONNX export: pauses and restores the TorchScript trace around those eager loops "
        "(onnx/_loop.py _untraced)"
    ),
    "torch.onnx._internal.exporter._registration": (
        "ONNX export: the logger whose 'torchvision is not installed' lines the export silences "
        "(onnx/export.py _EXPORT_NOISE); renamed, the lines come back"
    ),
    "torch.onnx._internal.torchscript_exporter.utils._export": (
        "ONNX export: the TorchScript exporter with onnx_shape_inference=False, which the public "
        "torch.onnx.export does not expose (onnx/_loop.py torchscript_export); without it the "
        "export falls back to the dynamo exporter"
    ),
}


# ---------------------------------------------------------------------------------- scanning
@dataclass(frozen=True)
class Use:
    """One use of a private Darts/Lightning name: its key, where it is, and how it is used."""

    key: str
    where: str
    kind: str  # "import", "override", "attribute" or "name string"


def is_private(name: str) -> bool:
    """``_name`` and ``__name``, not dunders like ``__init__``."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


EXTERNAL_ROOTS = ("darts", "pytorch_lightning", "torch")


def is_external(dotted: str) -> bool:
    """Whether ``dotted`` names something in Darts, Lightning (any ``lightning*`` package) or torch."""
    root = dotted.split(".")[0]
    return root in EXTERNAL_ROOTS or root.startswith("lightning")


def private_prefix(dotted: str) -> str | None:
    """``a.b._c`` for ``a.b._c.d``: the path up to its last underscore part (``None`` if it has none)."""
    parts = dotted.split(".")
    last = max((i for i, part in enumerate(parts) if is_private(part)), default=None)
    return None if last is None else ".".join(parts[: last + 1])


DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def resolve_object(dotted: str):
    """Import ``a.b.C.d`` (longest importable module, then attributes); ``AttributeError`` if gone."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(f"cannot import any module of {dotted}")


@functools.cache
def private_names_of(cls: type) -> frozenset[str]:
    """The underscore names a Darts/Lightning class has.

    Class attributes and methods (``dir``), plus the instance attributes its Darts/Lightning
    classes use as ``self._name`` in their source (``_trainer``, ``_fit_called``), which ``dir``
    of the class cannot show.
    """
    names = {n for n in dir(cls) if is_private(n)}
    for klass in cls.__mro__:
        if not is_external(klass.__module__):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and is_private(node.attr)
            ):
                names.add(node.attr)
    return frozenset(names)


def import_table(tree: ast.Module, module: str) -> dict[str, str]:
    """Local name -> dotted path, for every import in the module (functions' included)."""
    table = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    table[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    table[root] = root
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(node, module)
            for alias in node.names:
                table[alias.asname or alias.name] = f"{base}.{alias.name}"
    return table


def absolute_module(node: ast.ImportFrom, module: str) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    package = module.split(".")[: -node.level]
    return ".".join(package + ([node.module] if node.module else []))


def dotted_name(expr: ast.expr, table: dict[str, str], module: str) -> str | None:
    """``Base`` or ``pkg.Base`` in a class statement, as a dotted path (``None`` if not a name)."""
    if isinstance(expr, ast.Name):
        return table.get(expr.id, f"{module}.{expr.id}")
    if isinstance(expr, ast.Attribute):
        parent = dotted_name(expr.value, table, module)
        return None if parent is None else f"{parent}.{expr.attr}"
    return None


def private_attribute(node: ast.AST) -> tuple[ast.expr, str] | None:
    """``(obj, "_name")`` for ``obj._name`` and ``getattr/hasattr/setattr/delattr(obj, "_name")``."""
    if isinstance(node, ast.Attribute) and is_private(node.attr):
        return node.value, node.attr
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
        and is_private(node.args[1].value)
    ):
        return node.args[0], node.args[1].value
    return None


def is_self(expr: ast.expr) -> bool:
    """``self``, ``cls`` or ``super()``: the object is an instance of the enclosing class."""
    if isinstance(expr, ast.Name):
        return expr.id in ("self", "cls")
    return (
        isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "super"
    )


@dataclass
class _Class:
    module: str
    node: ast.ClassDef
    table: dict[str, str]
    where: str


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def scan_sources(sources: dict[str, tuple[str, str]]) -> dict[str, list[Use]]:
    """Find the private Darts/Lightning names that some sources use.

    Parameters
    ----------
    sources
        ``{module name: (display path, source text)}``.

    Returns
    -------
    dict
        ``{key: [Use, ...]}``, one key per private name (see the module docstring).
    """
    uses: list[Use] = []
    classes: dict[str, _Class] = {}
    trees = {}
    for module, (path, text) in sources.items():
        tree = ast.parse(text, filename=path)
        table = import_table(tree, module)
        trees[module] = (path, tree, table)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = absolute_module(node, module)
                if not is_external(base):
                    continue
                private_module = any(is_private(p) for p in base.split("."))
                for alias in node.names:
                    if private_module or is_private(alias.name):
                        uses.append(Use(f"{base}.{alias.name}", f"{path}:{node.lineno}", "import"))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if is_external(alias.name) and any(
                        is_private(p) for p in alias.name.split(".")
                    ):
                        uses.append(Use(alias.name, f"{path}:{node.lineno}", "import"))
            elif isinstance(node, ast.ClassDef):
                classes[f"{module}.{node.name}"] = _Class(
                    module, node, table, f"{path}:{node.lineno}"
                )

    @functools.cache
    def anchors(qualname: str) -> tuple[tuple[str, type], ...]:
        """The Darts/Lightning classes a class of ours derives from, as (import path, class)."""
        info = classes[qualname]
        found = []
        for base in info.node.bases:
            dotted = dotted_name(base, info.table, info.module)
            if dotted is None:
                continue
            if is_external(dotted):
                found.append((dotted, resolve_object(dotted)))
            elif dotted in classes:
                found.extend(anchors(dotted))
        return tuple(found)

    def key_for(name: str, candidates) -> str | None:
        for dotted, cls in candidates:  # the first base that has it, as Python's MRO picks it
            if name in private_names_of(cls):
                return f"{dotted}.{name}"
        return None

    in_classes: set[int] = set()  # ids of attribute nodes seen as self-uses of an anchored class
    for qualname, info in classes.items():
        bases = anchors(qualname)
        if not bases:
            continue
        path = info.where.split(":")[0]
        for stmt in info.node.body:
            names = []
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [stmt.name]
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
            for name in names:
                key = key_for(name, bases) if is_private(name) else None
                if key:
                    uses.append(Use(key, f"{path}:{stmt.lineno}", "override"))
        for node in ast.walk(info.node):
            found = private_attribute(node)
            if found and is_self(found[0]):
                in_classes.add(id(node))
                key = key_for(found[1], bases)
                if key:
                    uses.append(Use(key, f"{path}:{node.lineno}", "attribute"))

    # obj._name on other objects (a model, its module): we cannot tell obj's type, so a name counts
    # when a Darts/Lightning/torch class we subclass has it. On an imported module or class
    # (torch._C._get_tracing_state, getattr(torch.cpu, "_name")) the path says what it is.
    all_bases = sorted({b for q in classes for b in anchors(q)}, key=lambda b: b[0])
    for module, (path, tree, table) in trees.items():
        # the inner links of attribute chains: torch._C in torch._C._get_tracing_state
        inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        for node in ast.walk(tree):
            external = None
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and DOTTED.fullmatch(node.value)
                and is_external(node.value)
            ):  # a logger's or a module's name
                external, kind = node.value, "name string"
            elif isinstance(node, ast.Attribute) and id(node) not in inner:
                external, kind = dotted_name(node, table, module), "attribute"
            elif (found := private_attribute(node)) and isinstance(node, ast.Call):
                owner = dotted_name(found[0], table, module)  # getattr(torch.cpu, "_name")
                external = None if owner is None else f"{owner}.{found[1]}"
                kind = "attribute"
            if external is not None and is_external(external) and private_prefix(external):
                uses.append(Use(private_prefix(external), f"{path}:{node.lineno}", kind))
                continue
            found = private_attribute(node)
            if not found or id(node) in in_classes or is_self(found[0]):
                continue
            if (owner := dotted_name(found[0], table, module)) and is_external(owner):
                continue  # a public path to an external module's object: nothing private
            key = key_for(found[1], all_bases)
            if key:
                uses.append(Use(key, f"{path}:{node.lineno}", "attribute"))

    by_key: dict[str, list[Use]] = defaultdict(list)
    for use in uses:
        by_key[use.key].append(use)
    return dict(by_key)


def package_sources() -> dict[str, tuple[str, str]]:
    """Every ``.py`` of darts_mim as ``{module: (path relative to the repo, text)}``."""
    return {
        module_name(path, PACKAGE_DIR): (
            str(path.relative_to(PACKAGE_DIR.parent)),
            path.read_text(encoding="utf-8"),
        )
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
    }


@functools.cache
def scan_package() -> dict[str, list[Use]]:
    return scan_sources(package_sources())


def name_exists(key: str) -> bool:
    """Whether ``key`` (``path.to.Object._name``) exists in the installed packages."""
    owner_path, _, name = key.rpartition(".")
    try:
        owner = resolve_object(owner_path)
    except (ImportError, AttributeError):
        return False
    if isinstance(owner, type):
        return name in private_names_of(owner)
    if hasattr(owner, name):
        return True
    try:  # a private submodule
        importlib.import_module(key)
    except ImportError:
        return False
    return True


def format_relied_on(found: dict[str, list[Use]]) -> str:
    """A ``RELIED_ON = {...}`` block for the names found, keeping the reasons already written."""
    lines = ["RELIED_ON: dict[str, str] = {"]
    for key in sorted(found):
        reason = RELIED_ON.get(key)
        if reason is None:
            kinds = ", ".join(sorted({u.kind for u in found[key]}))
            places = ", ".join(sorted({u.where for u in found[key]}))
            reason = f"TODO: why ({kinds} at {places})"
        lines.append(
            f"    {json.dumps(key)}: (\n        {json.dumps(reason, ensure_ascii=False)}\n    ),"
        )
    lines.append("}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- tests
def test_scanner_finds_each_kind_of_use():
    # A guard on the scanner itself: if it silently found nothing, the other tests would pass.
    source = textwrap.dedent(
        """
        from darts.utils.utils import _build_tqdm_iterator, generate_index
        from darts.models.forecasting.torch_forecasting_model import PastCovariatesTorchModel as Base

        class Model(Base):
            _our_constant = 1

            def _create_model(self, train_sample):
                return self._fit_called and self._our_helper()

            def _our_helper(self):
                return self._mim_like_state

        class Plain:
            def _create_model(self):
                return None

        def export(model):
            return model._default_save_path(), getattr(model, "_fit_called"), model._ours
        """
    )
    found = scan_sources({"pkg.mod": ("pkg/mod.py", source)})
    base = "darts.models.forecasting.torch_forecasting_model.PastCovariatesTorchModel"
    assert set(found) == {
        "darts.utils.utils._build_tqdm_iterator",
        f"{base}._create_model",
        f"{base}._fit_called",
        f"{base}._default_save_path",
    }, found
    assert {u.kind for u in found[f"{base}._create_model"]} == {"override"}
    assert len(found[f"{base}._fit_called"]) == 2  # self._fit_called and getattr(model, ...)


def test_scanner_finds_torchs_private_names():
    source = textwrap.dedent(
        """
        import logging

        import torch
        from torch import nn
        from torch.onnx._internal.torchscript_exporter.utils import _export

        NOISE = logging.getLogger("torch.onnx._internal.exporter._registration")
        DOC = "torch._C._not_a_use: prose that names a private function is not a use"

        class Conv(nn.Module):
            def _load_from_state_dict(self, *args):
                return super()._load_from_state_dict(*args)

            def _our_helper(self):
                return torch.jit.is_tracing()

        def untraced(net):
            state = torch._C._get_tracing_state()
            torch._C._set_tracing_state(None)
            native = getattr(torch.cpu, "_is_avx512_bf16_supported")()
            return net._our_helper(), torch.cpu.get_capabilities(), torch._C.some_public_name
        """
    )
    found = scan_sources({"pkg.mod": ("pkg/mod.py", source)})
    assert set(found) == {
        "torch.onnx._internal.torchscript_exporter.utils._export",
        "torch.onnx._internal.exporter._registration",
        "torch.nn.Module._load_from_state_dict",
        "torch._C._get_tracing_state",
        "torch._C._set_tracing_state",
        "torch.cpu._is_avx512_bf16_supported",
        "torch._C",
    }, found
    assert {u.kind for u in found["torch.nn.Module._load_from_state_dict"]} == {
        "override",
        "attribute",
    }
    assert {u.kind for u in found["torch.onnx._internal.exporter._registration"]} == {"name string"}
    assert len(found["torch._C"]) == 1  # torch._C.some_public_name; not once per chain above


def test_relied_on_matches_the_code():
    found = scan_package()
    unlisted = sorted(set(found) - set(RELIED_ON))
    unused = sorted(set(RELIED_ON) - set(found))
    problems = []
    for key in unlisted:
        places = ", ".join(sorted({f"{u.where} ({u.kind})" for u in found[key]}))
        problems.append(
            f"darts_mim uses the private name {key} at {places}: add it to RELIED_ON in "
            f"tests/test_private_api.py with a reason (or use a public API instead)."
        )
    for key in unused:
        problems.append(
            f"RELIED_ON lists {key}, which darts_mim no longer uses: remove it from RELIED_ON."
        )
    if problems:
        problems.append(
            "Regenerate the list with `.venv/bin/python tests/test_private_api.py`:\n"
            + format_relied_on(found)
        )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key", sorted(RELIED_ON))
def test_relied_on_name_exists_in_installed_packages(key):
    assert name_exists(key), (
        f"{key} is gone from the installed {key.split('.')[0]} (darts_mim needs it: "
        f"{RELIED_ON[key]}). The upgrade removed or renamed it: adapt darts_mim, or pin the "
        "previous version."
    )


def test_relied_on_is_sorted():
    # sorted keys keep diffs of the regenerated list small
    assert list(RELIED_ON) == sorted(RELIED_ON)


if __name__ == "__main__":
    print(format_relied_on(scan_package()))
