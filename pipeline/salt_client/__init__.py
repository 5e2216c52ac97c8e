"""Salt client interface (:mod:`.base`) and its implementations.

* :class:`LocalSaltClient` - Salt's LocalClient on the master-of-masters (imports Salt lazily);
* :class:`SaltApiClient` - salt-api rest_cherrypy over HTTP (eauth token reused, ``local_async`` + polling);
* ``ScriptedSaltClient`` - the test double of the unit tests, in tests/unit/scripted_client.py (not part of the package).
"""

from typing import TYPE_CHECKING

from pipeline.salt_client.base import ALLOWED_FUNCTIONS, ALLOWED_RUNNERS, FunctionNotAllowed, LookupUnavailable
from pipeline.salt_client.base import MinionReturn, Published, Resolution, RunningJob, SaltClient, check_extra_functions

if TYPE_CHECKING:
    from pipeline.salt_client.api import SaltApiClient
    from pipeline.salt_client.local import LocalSaltClient


def __getattr__(name: str) -> object:
    # Keep `import pipeline.salt_client` cheap: Salt and requests load only when a real client is built.
    if name == "LocalSaltClient":
        from pipeline.salt_client.local import LocalSaltClient

        return LocalSaltClient
    if name == "SaltApiClient":
        from pipeline.salt_client.api import SaltApiClient

        return SaltApiClient
    raise AttributeError(name)


__all__ = [
    "ALLOWED_FUNCTIONS",
    "ALLOWED_RUNNERS",
    "FunctionNotAllowed",
    "LocalSaltClient",
    "LookupUnavailable",
    "MinionReturn",
    "Published",
    "Resolution",
    "RunningJob",
    "SaltApiClient",
    "SaltClient",
    "check_extra_functions",
]
