"""The official ``feldera`` SDK, unchanged, drives the emulator: the check that the emulator is faithful."""

from __future__ import annotations

import pytest

from airflow_provider_stop.testing.feldera import FelderaEmulator

feldera_sdk = pytest.importorskip("feldera")


@pytest.mark.parametrize("api_key", [None, "apikey:" + "s" * 128], ids=["no-auth", "api-key"])
def test_sdk_creates_starts_pauses_and_stops_a_pipeline(api_key: str | None) -> None:
    from feldera import FelderaClient, PipelineBuilder
    from feldera.enums import PipelineStatus

    with FelderaEmulator(api_key=api_key, version="0.369.0") as emu:
        client = FelderaClient(emu.url, api_key=api_key, timeout=10)
        pipeline = PipelineBuilder(
            client, name="sdk_pipeline", sql="CREATE TABLE t (x INT);"
        ).create_or_replace()
        pipeline.start()
        assert pipeline.status() == PipelineStatus.RUNNING
        pipeline.pause()
        assert pipeline.status() == PipelineStatus.PAUSED
        pipeline.stop(force=True)
        assert pipeline.status() == PipelineStatus.STOPPED
        assert emu.status_of("sdk_pipeline") == "Stopped"
        # and the SDK sees the same answers our hook maps: 501 for a graceful stop on open source
        from feldera.rest.errors import FelderaAPIError

        pipeline.start()
        with pytest.raises(FelderaAPIError) as err:
            pipeline.stop(force=False)
        assert err.value.status_code == 501 and err.value.error_code == "EnterpriseFeature"


def test_sdk_rejects_a_wrong_key_like_the_real_server() -> None:
    from feldera import FelderaClient
    from feldera.rest.errors import FelderaAPIError

    with FelderaEmulator(api_key="apikey:" + "s" * 128) as emu, pytest.raises(FelderaAPIError) as err:
        FelderaClient(emu.url, api_key="apikey:wrong", timeout=10)
    assert err.value.status_code == 401
