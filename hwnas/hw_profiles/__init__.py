"""What a target is: declarative hardware profiles, the schema that validates them, the
device fingerprint and `detect()`."""

from hwnas.hw_profiles.detect import detect, write_profile
from hwnas.hw_profiles.fingerprint import (
    Fingerprint,
    check_pinned,
    collect_fingerprint,
    mismatches,
)
from hwnas.hw_profiles.loader import (
    dump_profile,
    list_profiles,
    load_profile,
    parse_profile,
    profile_names,
)
from hwnas.hw_profiles.schema import (
    SCHEMA_VERSION,
    DecodeWorkload,
    HardwareProfile,
    InterferenceSettings,
    PrimaryMetric,
    TimerSettings,
    Workloads,
)

__all__ = ["SCHEMA_VERSION", "DecodeWorkload", "Fingerprint", "HardwareProfile",
           "InterferenceSettings", "PrimaryMetric", "TimerSettings", "Workloads",
           "check_pinned", "collect_fingerprint", "detect", "dump_profile", "list_profiles",
           "load_profile", "mismatches", "parse_profile", "profile_names", "write_profile"]
