"""docs/deploy's compose file and config say only what citewise understands: every key of the
config is a real setting, the replicas' command parses, and the services the docs name exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from agent.config import AgentConfig
from ui.cli.main import build_parser

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"


def test_the_compose_services_and_their_citewise_command_are_real() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert {"postgres", "milvus", "vllm", "citewise", "proxy"} <= set(compose["services"])
    command = compose["services"]["citewise"]["command"]
    assert command[0] == "citewise"
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.host, args.data_dir) == ("ui", "0.0.0.0", "/data")
    assert args.trusted_proxy == [compose["networks"]["default"]["ipam"]["config"][0]["subnet"]]
    mounted = compose["services"]["citewise"]["volumes"]
    assert any(m.endswith(args.config + ":ro") for m in mounted)


def test_the_replicas_config_is_valid_and_points_at_the_compose_services() -> None:
    config = AgentConfig.load(DEPLOY / "citewise.toml")
    assert config.database_url.startswith("postgresql://") and "@postgres:" in config.database_url
    assert config.store == "milvus://milvus:19530"
    assert config.lm == "http://vllm:8000/v1" and config.lm_model
    assert ":" not in config.database_url.split("//")[1].split("@")[0]  # no password in the file
