"""Find, read and validate hardware profiles; turn every problem into one clear `InputError`.

Profiles are looked up by name among the built-in ones (shipped in `builtin/`) and the user's
own (`<cache>/hw_profiles/*.yaml`, where `hwnas hw detect` writes), or read from a path.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from hwnas.errors import InputError, NotFoundError
from hwnas.hw_profiles.schema import SCHEMA_VERSION, HardwareProfile

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

SUFFIXES = (".yaml", ".yml")


def builtin_dir() -> Path:
    return Path(str(resources.files("hwnas.hw_profiles") / "builtin"))


def user_dir() -> Path:
    from hwnas.paths import sub_dir
    return sub_dir("hw_profiles")


def _profile_files() -> dict[str, Path]:
    """name -> file; a user profile of the same name as a built-in one shadows it."""
    found: dict[str, Path] = {}
    for folder in (builtin_dir(), user_dir()):
        for f in sorted(folder.glob("*")):
            if f.suffix in SUFFIXES:
                found[f.stem] = f
    return found


def profile_names() -> list[str]:
    return sorted(_profile_files())


def list_profiles() -> list[HardwareProfile]:
    return [load_profile(str(p)) for p in _profile_files().values()]


def load_profile(name_or_path: str | Path | HardwareProfile) -> HardwareProfile:
    """A profile by name (built-in or user) or by the path of a YAML file."""
    if isinstance(name_or_path, HardwareProfile):
        return name_or_path
    text = str(name_or_path)
    files = _profile_files()
    if text in files:
        return parse_profile_file(files[text])
    path = Path(text).expanduser()
    if path.suffix in SUFFIXES or path.exists():
        if not path.is_file():
            raise InputError(f"hardware profile file {path}: no such file")
        return parse_profile_file(path)
    import difflib
    close = difflib.get_close_matches(text, list(files), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise NotFoundError(f"unknown hardware profile '{text}'.{hint} Known: "
                        f"{', '.join(sorted(files))}; or give the path of a YAML profile "
                        "(see `hwnas hw detect`)")


def parse_profile_file(path: Path) -> HardwareProfile:
    from hwnas.safe_io import read_text

    text = read_text(path, "hardware profile", max_bytes=1 << 20)
    profile = parse_profile(text, source=str(path))
    if profile.name != path.stem:
        raise InputError(f"hardware profile {path}: field 'name' is '{profile.name}' but the "
                         f"file is named '{path.name}'; rename one so they match")
    return profile


def parse_profile(text: str, source: str = "hardware profile") -> HardwareProfile:
    data = _read_yaml(text, source)
    return validate_profile(data, source)


def _read_yaml(text: str, source: str) -> dict[str, object]:
    import yaml

    from hwnas.hw_profiles.strict_yaml import load_strict

    try:
        data = load_strict(text, source)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{source}: malformed YAML{where}: {problem}; fix the syntax "
                         "(see `hwnas hw show cpu-torch-fp32` for a valid profile)") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a YAML mapping of profile fields, got "
                         f"{type(data).__name__}; see `hwnas hw show cpu-torch-fp32`")
    return data


def validate_profile(data: Mapping[str, object],
                     source: str = "hardware profile") -> HardwareProfile:
    from pydantic import ValidationError

    version = data.get("schema_version")
    if version is None:
        raise InputError(f"{source}: missing field 'schema_version'; add "
                         f"'schema_version: {SCHEMA_VERSION}'")
    if version != SCHEMA_VERSION:
        raise InputError(f"{source}: field 'schema_version' is {version!r}; this hwnas reads "
                         f"schema_version {SCHEMA_VERSION}")
    try:
        return HardwareProfile.model_validate(data)
    except ValidationError as e:
        raise InputError(_format_errors(source, e)) from None


def _format_errors(source: str, err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(profile)"
        kind = item["type"]
        msg = item["msg"].removeprefix("Value error, ")
        if kind == "missing":
            lines.append(f"missing field '{field}'")
        elif kind == "extra_forbidden":
            lines.append(f"unknown field '{field}' (value {item.get('input')!r}); allowed "
                         f"fields: {', '.join(_allowed_fields(item['loc']))}")
        else:
            value = item.get("input")
            shown = "" if isinstance(value, dict) else f" = {value!r}"
            lines.append(f"field '{field}'{shown}: {msg}")
    more = f" (and {len(lines) - 3} more problems)" if len(lines) > 3 else ""
    return f"{source}: " + "; ".join(lines[:3]) + more


def _allowed_fields(loc: tuple[int | str, ...]) -> list[str]:
    from hwnas.hw_profiles import schema

    model: type[BaseModel] = HardwareProfile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        ann = model.model_fields.get(part)
        if ann is None:
            break
        subs: dict[str, type[BaseModel]] = {
            "workloads": schema.Workloads, "primary": schema.PrimaryMetric,
            "timer": schema.TimerSettings, "decode": schema.DecodeWorkload}
        sub = subs.get(part)
        if sub is None:
            break
        model = sub
    return list(model.model_fields)


def dump_profile(profile: HardwareProfile) -> str:
    import yaml

    data = profile.to_dict()
    data["workloads"]["decode"] = [{"context": w["context"]} for w in data["workloads"]["decode"]]
    return yaml.safe_dump(data, sort_keys=False)
