"""The two typed models both sides share: the stack config and the stack outputs.

``infra`` (declarative) and ``drkit`` (imperative) import this package and nothing of each other.
"""

from stackmodels.config import StackConfig
from stackmodels.errors import ConfigError, OutputsError
from stackmodels.outputs import StackOutputs

__all__ = ["ConfigError", "OutputsError", "StackConfig", "StackOutputs"]
