"""``python -m zohw.accuracy``: see :mod:`zohw.accuracy.study`."""

import sys

from .study import main

sys.exit(main())
