"""Settings for the benchmark server: logsvc's own, plus the baseline view of bench/urls.py."""

import os

from logsvc.settings import *

ROOT_URLCONF = "bench.urls"
# The user whose rows the baseline view inserts (bench/ingest.py creates it and passes its id).
BENCH_OWNER_ID = int(os.getenv("BENCH_OWNER_ID", "0"))
