"""``nova-compute`` with the stand-in's driver: ``compute_driver = sirocco_fakevirt.SnapshotFakeDriver``.

Nova loads ``nova.virt.<compute_driver>``; this launcher registers fakevirt.py
under that name before handing over to Nova's own ``nova-compute`` entry point,
so nothing is written into the installed Nova package.
"""

import importlib
import sys

from nova.cmd import compute  # first: it sets Nova's concurrency mode before anything else loads

# after Nova's own entry point module, hence not a plain import at the top
sys.modules["nova.virt.sirocco_fakevirt"] = importlib.import_module("fakevirt")

if __name__ == "__main__":
    sys.exit(compute.main())
