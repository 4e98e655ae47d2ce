"""Toy: a sixth service that exists only in the tests, to prove that a service costs one hook, a few
thin task classes, one emulator and one registry entry (data only: each class names its service and
registers itself), and nothing else.

Its API: ``GET /v1/jobs/{id}`` -> ``{"id", "state"}`` (``running``, ``stopping``, ``stopped``),
``POST /v1/jobs/{id}/stop`` -> 202 (200 when already stopped), ``GET /v1/me`` for the connection test.
Bearer-token auth; unknown ids are 404.
"""

from __future__ import annotations

from airflow_provider_stop import services

HERE = __name__

SERVICE = services.register(
    services.Service(
        name="toy",
        display_name="Toy",
        target_param="job_id",
        connection_form={
            "ui-field-behaviour": {"hidden-fields": ["schema", "port", "login"]},
            "conn-fields": {},
        },
        modules={
            "hooks": f"{HERE}.hook",
            "testing": f"{HERE}.emulator",
            "operators": f"{HERE}.tasks",
            "sensors": f"{HERE}.tasks",
            "notifications": f"{HERE}.tasks",
            "links": f"{HERE}.tasks",
        },
    )
)
