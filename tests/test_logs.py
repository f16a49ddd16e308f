"""Tests of darts_mim.logs: quiet_logs silences Lightning and Darts, never darts_mim's own warnings."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings

from darts_mim.logs import QUIET_LOGGERS, quiet_logs


def _warn(message: str, category: type[Warning], module: str) -> None:
    """A warning attributed to ``module``, as if that module had raised it."""
    warnings.warn_explicit(message, category, f"{module.replace('.', '/')}.py", 1, module=module)


def test_quiet_logs_hides_lightning_warnings_but_not_ours():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_logs():
            _warn("lightning deprecation", DeprecationWarning, "pytorch_lightning.trainer.trainer")
            _warn("lightning tip", UserWarning, "lightning_fabric.utilities.data")
            _warn("lightning 2 tip", UserWarning, "lightning.pytorch.trainer")
            _warn("our deprecation", DeprecationWarning, "darts_mim.model")
            _warn("a user's deprecation", DeprecationWarning, "my_project.forecast")
            _warn("not lightning", DeprecationWarning, "lightningfast.core")
        after = "after the block"
        _warn(after, DeprecationWarning, "pytorch_lightning.trainer.trainer")
    shown = [str(w.message) for w in caught]
    assert shown == ["our deprecation", "a user's deprecation", "not lightning", after]


def test_quiet_logs_lowers_and_restores_logger_levels():
    darts_logger = logging.getLogger("darts")
    before = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    darts_logger.setLevel(logging.INFO)
    try:
        with quiet_logs():
            assert all(logging.getLogger(n).level == logging.CRITICAL for n in QUIET_LOGGERS)
        assert darts_logger.level == logging.INFO
    finally:
        darts_logger.setLevel(before["darts"])


def test_cli_does_not_import_the_demo():
    """The CLI gets quiet_logs from darts_mim.logs, not by importing the demo (and its plots)."""
    code = textwrap.dedent(
        """
        import sys
        from darts_mim.cli import main
        code = main(["fit", "--data", "does-not-exist.npz", "--out", "m.pt"])
        assert code == 2, code
        print("demo imported:", "darts_mim.demo" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo imported: False" in proc.stdout


def test_demo_has_no_copy_of_quiet_logs():
    import darts_mim.demo

    assert not hasattr(darts_mim.demo, "quiet_logs") or darts_mim.demo.quiet_logs is quiet_logs
