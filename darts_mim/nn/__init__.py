"""Pure-torch MIM network: cells and the stack. Knows nothing of Darts."""

from darts_mim.nn.cells import MIMBlock, PeepholeCell, STLSTMCell
from darts_mim.nn.network import MIMNetwork

__all__ = ["MIMNetwork", "MIMBlock", "PeepholeCell", "STLSTMCell"]
