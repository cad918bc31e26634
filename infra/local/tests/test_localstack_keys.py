"""The local stack's event signing keys: one pair per service and the CLI, made once, trusted by all."""

from __future__ import annotations

import stat
from pathlib import Path

from cairn_bus import InMemoryPublisher
from cairn_bus.signing import KeyRing, SignaturePolicy, Signer, signer_from_env
from cairn_events import ModelPromotedV1, ModelStage
from cairn_localstack.config import StackConfig
from cairn_localstack.keys import KEY_OWNERS, ensure_keys, private_key_file, signing_env
from cairn_localstack.stack import LocalStack


def test_every_service_and_the_cli_get_a_key_pair_once(tmp_path: Path) -> None:
    trusted = ensure_keys(tmp_path)
    assert sorted(p.stem for p in trusted.glob("*.pub")) == sorted(KEY_OWNERS)
    assert {"cli", "evaluator", "inference", "safety", "audit"} <= set(KEY_OWNERS)
    private = private_key_file(trusted, "evaluator")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    before = {owner: private_key_file(trusted, owner).read_bytes() for owner in KEY_OWNERS}
    ensure_keys(tmp_path)  # a second start keeps them: no rotation by accident
    assert before == {owner: private_key_file(trusted, owner).read_bytes() for owner in KEY_OWNERS}
    ring = KeyRing.from_dir(trusted)
    for owner in KEY_OWNERS:
        key_id = Signer.from_pem(before[owner]).key_id
        assert ring.keys[key_id].owner == owner
    assert len({Signer.from_pem(pem).key_id for pem in before.values()}) == len(KEY_OWNERS)


def test_signing_env_signs_as_its_owner_and_verifies_against_the_stack(tmp_path: Path) -> None:
    env = signing_env(tmp_path, "evaluator")
    signer = signer_from_env(env)
    assert signer is not None
    promotion = ModelPromotedV1(
        model_name="cairn-qa",
        version=2,
        to_stage=ModelStage.PRODUCTION,
        promoted_by="cairn-evaluator",
        reason="gate passed",
        promoted_at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
    )
    message = InMemoryPublisher("/cairn/evaluator", signer=signer).build(promotion)
    policy = SignaturePolicy.from_env(env)
    assert policy.keyring is not None
    verified = policy.keyring.verify(promotion.event_type, message.headers, message.value)
    assert verified.owner == "evaluator"
    assert Path(signing_env(tmp_path)["CAIRN_SIGNING_KEY_FILE"]).name == "cli.pem"


def test_the_stack_env_carries_the_keys(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig.for_profile("test", root_dir=tmp_path))
    env = stack.env()
    assert env["CAIRN_TRUSTED_KEYS_DIR"] == str(tmp_path / "keys" / "trusted")
    assert env["CAIRN_SIGNING_KEY_FILE"] == str(tmp_path / "keys" / "private" / "cli.pem")
    assert "export CAIRN_TRUSTED_KEYS_DIR=" in stack.write_env_file().read_text()


class RecordingProcesses:
    """Stands in for the ProcessManager: keeps the environment each process was started with."""

    def __init__(self) -> None:
        self.envs: dict[str, dict[str, str]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.envs[name] = env


def test_each_service_process_signs_with_its_own_key(tmp_path: Path) -> None:
    from cairn_testing.processes import ServiceProcesses, service_env

    env = service_env({"CAIRN_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "postgresql://db/own", stack_dir=tmp_path)
    trusted = Path(env["CAIRN_TRUSTED_KEYS_DIR"])
    assert env["CAIRN_SIGNING_KEY_FILE"] == str(private_key_file(trusted, "cli"))  # the `cairn` CLI's
    pm = RecordingProcesses()
    processes = ServiceProcesses(
        pm,
        env,
        {"evaluator": "g1", "inference": "g2"},
        modules={  # type: ignore[arg-type]
            "evaluator": "cairn_evaluator",
            "inference": "cairn_inference",
        },
    )
    processes.start("evaluator")
    processes.start("inference#2")
    assert pm.envs["evaluator"]["CAIRN_SIGNING_KEY_FILE"] == str(private_key_file(trusted, "evaluator"))
    assert pm.envs["inference#2"]["CAIRN_SIGNING_KEY_FILE"] == str(private_key_file(trusted, "inference"))
    assert pm.envs["evaluator"]["CAIRN_TRUSTED_KEYS_DIR"] == str(trusted)
