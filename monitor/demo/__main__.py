"""`python -m monitor.demo`: the offline demo (see `monitor.demo`)."""

import sys

from monitor.demo import main

sys.exit(main())
