"""The local Salt topology - MoM -> syndic masters -> minions - on loopback, for the demo, for people trying
saltpipe, and for the integration tests and later stages.

Python API (docs/topology.md)::

    from pipeline.topology import up, load, down

    topo = up(Path("/tmp/sp"), repo=repo)         # returns once every minion answers test.ping via the MoM
    topo.mom.salt("*", "test.ping")                # SaltResult; judge .returns, never the exit code
    syndic = topo.syndic("syndic-test")
    syndic.file_roots, syndic.served_base          # the sync target and what `base` serves
    syndic.master.salt_run("fileserver.update")
    topo.minion("test-web-1").salt_call("grains.items")
    load(Path("/tmp/sp")).stop()                   # from any process
"""

from pipeline.topology.daemons import Daemon, DaemonStatus
from pipeline.topology.handles import MasterHandle, MinionHandle, SaltResult, SyndicHandle
from pipeline.topology.local import down, status, up
from pipeline.topology.model import Topology, TopologyStatus
from pipeline.topology.spec import MinionSpec, SyndicSpec, TopologySpec, load_spec
from pipeline.topology.state import load

__all__ = [
    "Daemon",
    "DaemonStatus",
    "MasterHandle",
    "MinionHandle",
    "MinionSpec",
    "SaltResult",
    "SyndicHandle",
    "SyndicSpec",
    "Topology",
    "TopologySpec",
    "TopologyStatus",
    "down",
    "load",
    "load_spec",
    "status",
    "up",
]
