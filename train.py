"""Train or evaluate a RePOSE lifter: ``python train.py [--config configs/NAME.yaml] [key=value ...]``.

Without arguments it trains the small model on the embedded motion-capture data with the fused RePOSE losses
(configs/default.yaml). See ``python train.py --help`` and repose_ext/training/cli.py.
"""

import os
import sys

from repose_ext.training.cli import main

if __name__ == "__main__":
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "default.yaml")
    sys.exit(main(default_config=default if os.path.isfile(default) else None))
