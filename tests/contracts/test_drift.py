from pathlib import Path

from ssu_contracts.generate import generate

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _files(root: Path) -> dict[str, str]:
    paths = [root / "asyncapi.yaml", *sorted((root / "schemas").glob("*.json"))]
    return {p.relative_to(root).as_posix(): p.read_text(encoding="utf-8") for p in paths}


def test_committed_contracts_match_the_models(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = _files(tmp_path)
    committed = _files(CONTRACTS)
    assert sorted(committed) == sorted(fresh), "run `make contracts` and commit the result"
    drifted = [name for name in fresh if committed[name] != fresh[name]]
    assert not drifted, f"contracts drifted, run `make contracts`: {drifted}"


def test_generation_is_stable(tmp_path: Path) -> None:
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
