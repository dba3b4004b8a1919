import os
import sys

# Apple MPS lacks some of PyTorch's operators; this runs them on the CPU instead of failing.
# It is read when PyTorch is imported, so it is set first.
os.environ.setdefault("PYTORCH_ENABLE_MPS_FALLBACK", "1")

from .cli import main

sys.exit(main())
