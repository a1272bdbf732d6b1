"""SKI normal form, persisted identity and port, trust store, pairing decisions."""

from __future__ import annotations

import stat
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bridge.clock import FakeClock
from bridge.eebus.ship.identity import Identity, ski_of_certificate, stable_port
from bridge.eebus.ship.mdns import MdnsInfo, txt_record
from bridge.eebus.ship.pairing import Pairing
from bridge.eebus.ship.ski import InvalidSki, format_ski_grouped, normalize_ski
from bridge.eebus.ship.statemachine import TrustDecision
from bridge.eebus.ship.trust import TrustStore
from bridge.errors import ConfigError

SKI = "a3b1c2d3e4f5061728394a5b6c7d8e9f00112233"


@pytest.mark.parametrize(
    "text",
    [
        SKI,
        SKI.upper(),
        format_ski_grouped(SKI),
        ":".join(SKI[i : i + 2] for i in range(0, 40, 2)),
        "-".join(SKI[i : i + 4] for i in range(0, 40, 4)).upper(),
        f"  {SKI}\n",
    ],
)
def test_ski_is_accepted_with_separators_and_any_case(text: str) -> None:
    assert normalize_ski(text) == SKI


@pytest.mark.parametrize("text", ["", SKI[:-1], SKI + "0", SKI[:-1] + "g"])
def test_bad_ski_is_refused(text: str) -> None:
    with pytest.raises(InvalidSki):
        normalize_ski(text)


def test_identity_is_created_once_and_reloaded(tmp_path: Path) -> None:
    first = Identity.load_or_create(tmp_path, "garage")
    second = Identity.load_or_create(tmp_path, "garage")
    assert first.ski == second.ski and first.cert_pem == second.cert_pem
    assert len(first.ski) == 40
    for path in (first.key_path, first.cert_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ship").stat().st_mode) == 0o700
    other = Identity.load_or_create(tmp_path, "carport")
    assert other.ski != first.ski


def test_certificate_has_the_shape_ship_go_expects(tmp_path: Path) -> None:
    identity = Identity.load_or_create(tmp_path, "garage")
    cert = identity.certificate
    point = cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    import hashlib

    assert ski_of_certificate(cert) == hashlib.sha1(point).hexdigest() == identity.ski
    assert cert.subject == cert.issuer
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3649


def test_bad_device_id_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Identity.load_or_create(tmp_path, "../etc")


def test_corrupt_identity_is_a_clear_error(tmp_path: Path) -> None:
    identity = Identity.load_or_create(tmp_path, "garage")
    identity.cert_path.write_text("garbage")
    with pytest.raises(ConfigError, match="unreadable"):
        Identity.load_or_create(tmp_path, "garage")


def test_port_is_allocated_once_and_kept(tmp_path: Path) -> None:
    first = stable_port(tmp_path, "garage", host="127.0.0.1")
    assert stable_port(tmp_path, "garage", host="127.0.0.1") == first
    second = stable_port(tmp_path, "carport", host="127.0.0.1")
    assert second != first
    assert stable_port(tmp_path, "garage", 5000) == 5000


def test_trust_store_persists_and_reloads(tmp_path: Path) -> None:
    store = TrustStore.in_state_dir(tmp_path, static=["11" * 20])
    assert store.is_trusted("11" * 20) and not store.is_trusted(SKI)
    assert store.add(SKI.upper(), note="evcc")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600  # type: ignore[union-attr]
    other_process = TrustStore.in_state_dir(tmp_path)
    assert other_process.is_trusted(SKI)
    assert other_process.remove(format_ski_grouped(SKI))
    assert store.reload() and not store.is_trusted(SKI)
    assert [e.source for e in store.entries()] == ["config"]
    assert not store.remove("11" * 20)  # config entries are not removable from the CLI


def test_corrupt_trust_store_names_the_file(tmp_path: Path) -> None:
    store = TrustStore.in_state_dir(tmp_path)
    assert store.path is not None
    store.path.write_text("{")
    with pytest.raises(ConfigError) as info:
        store.reload()
    assert str(store.path) in str(info.value)


@pytest.mark.anyio
async def test_pairing_window_decides_and_closes_on_time(tmp_path: Path) -> None:
    clock = FakeClock()
    pairing = Pairing(TrustStore.in_state_dir(tmp_path), clock)
    assert pairing.decide(SKI) is TrustDecision.REFUSED
    denied: list[str] = []
    approved: list[bool] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(pairing.run)
        pairing.open_window(300)
        assert pairing.decide(SKI) is TrustDecision.PENDING
        pairing.add_pending(SKI, "127.0.0.1:1", "garage", lambda: approved.append(True), denied.append)
        pairing.add_pending("22" * 20, "127.0.0.1:2", "garage", lambda: approved.append(True), denied.append)
        assert pairing.accept(SKI.upper()) == 1 and approved == [True]
        assert pairing.decide(SKI) is TrustDecision.TRUSTED
        await clock.run_for(301, step=10)
        assert not pairing.window_open
        assert denied == ["pairing window closed"] and pairing.pending() == []
        tg.cancel_scope.cancel()


def test_txt_record_has_every_key_in_order() -> None:
    info = MdnsInfo(brand="Acme", model="WB1", device_type="ChargingStation", serial="0001", categories=(3,))
    txt = txt_record(info, "Acme-WB1-0001", SKI.upper())
    assert list(txt) == ["txtvers", "id", "path", "ski", "register", "brand", "model", "type", "serial", "cat"]
    assert txt["txtvers"] == "1" and txt["path"] == "/ship/" and txt["ski"] == SKI
    assert txt["register"] == "false" and txt["cat"] == "3"


def test_broken_trust_file_keeps_the_last_good_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = TrustStore.in_state_dir(tmp_path)
    store.add(SKI)
    pairing = Pairing(store, FakeClock())
    assert store.path is not None
    store.path.write_text("{ broken")
    assert pairing.decide(SKI) is TrustDecision.TRUSTED
    assert "trust store not reloaded" in caplog.text


def test_qr_text_as_ship_installation_requirements() -> None:
    from bridge.eebus.ship.mdns import qr_text

    info = MdnsInfo(brand="Acme", model="WB;1", device_type="ChargingStation", serial="0001", categories=(3,))
    assert qr_text(info, "Acme-WB1-0001", SKI.upper()) == (
        f"SHIP;SKI:{SKI};ID:Acme-WB1-0001;BRAND:Acme;TYPE:ChargingStation;MODEL:WB1;SERIAL:0001;CAT:3;ENDSHIP;"
    )
    bare = MdnsInfo(brand="", model="", device_type="", categories=())
    assert qr_text(bare, "x", SKI) == f"SHIP;SKI:{SKI};ID:x;ENDSHIP;"
