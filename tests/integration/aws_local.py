"""moto's server on 127.0.0.1, the tests' stand-in for AWS (DESIGN §3); the session fixture
``moto_endpoint`` in conftest.py starts it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MotoEndpoint:
    """moto's server on 127.0.0.1, standing in for AWS (DESIGN §3)."""

    url: str
    #: environment for a child process (the CLIs): moto's fake keys, no profile of this machine
    env: dict[str, str]
    region: str = "us-east-1"

    @property
    def client_kwargs(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.url,
            "region_name": self.region,
            "aws_access_key_id": "testing",  # moto accepts any key
            "aws_secret_access_key": "testing",
        }

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, **self.client_kwargs)
