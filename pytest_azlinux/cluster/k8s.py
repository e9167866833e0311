"""The kubernetes client, typed loosely on purpose.

The client's generated models type every field as optional and every body as a model
class; this code passes plain dicts and checks for absent fields itself, so the modules
of this package use the client through these ``Any`` aliases.
"""

from __future__ import annotations

from typing import Any

import kubernetes.client as _client
import kubernetes.client.exceptions as _exceptions
import kubernetes.config as _config

client: Any = _client
config: Any = _config
ApiException: Any = _exceptions.ApiException
