"""The choices of MIM's string hyper-parameters.

Plain constants, importing nothing: the pure-torch network and the torch-free checks of
:mod:`darts_mim.validation` (which the ONNX runtime imports without torch) share them.
"""

DIFF_MODES = ("cascade", "difference")
CELL_TYPES = ("mim", "stlstm")
SAMPLING_SCHEDULES = ("linear", "teacher_forcing", "free_running")
LR_SCHEDULES = (None, "one_cycle")
