"""Acquisition and demographics from metadata records (DICOM headers, dataset CSVs).

Public datasets publish their scanner parameters as tables whose columns are
DICOM keywords (``EchoTime``, ``FlipAngle``...) or plain words (``sex``,
``age``). One tolerant reader turns any such record into the typed
:class:`~mskbench.types.Acquisition` and :class:`~mskbench.types.Demographics`,
so every dataset plugin reports the same fields the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mskbench.types import Acquisition, Demographics

# field -> record keys tried in order (matched case-insensitively, ignoring '_' and ' ')
_ACQUISITION_KEYS: dict[str, tuple[str, ...]] = {
    "field_strength_t": ("MagneticFieldStrength", "field_strength", "FieldStrength"),
    "vendor": ("Manufacturer", "vendor", "scanner_manufacturer"),
    "sequence": ("SequenceName", "sequence", "ScanningSequence", "SeriesDescription", "ProtocolName"),
    "te_ms": ("EchoTime", "te", "te_ms"),
    "tr_ms": ("RepetitionTime", "tr", "tr_ms"),
    "flip_angle_deg": ("FlipAngle", "flip_angle"),
    "slice_thickness_mm": ("SliceThickness", "slice_thickness"),
    "pixel_spacing_mm": ("PixelSpacing", "pixel_spacing"),
    "acquisition_type": ("MRAcquisitionType", "acquisition_type"),
}
_SEX_KEYS = ("PatientSex", "sex", "gender")
_AGE_KEYS = ("PatientAge", "age", "age_years")
_WEIGHT_KEYS = ("PatientWeight", "weight", "weight_kg")
_AGE_UNITS = {"Y": 1.0, "M": 1.0 / 12.0, "W": 7.0 / 365.25, "D": 1.0 / 365.25}


def _norm(key: str) -> str:
    return re.sub(r"[\s_\-]", "", key).lower()


def _lookup(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    normalised = {_norm(str(k)): v for k, v in record.items()}
    for key in keys:
        value = normalised.get(_norm(key))
        if not _missing(value):
            return value
    return None


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in ("", "nan", "NaN", "None", "n/a", "NA")


def _number(value: Any) -> float | None:
    """First number in a value: 3, '3.0', '[0.5, 0.5]', a pydicom MultiValue."""
    if _missing(value):
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        numbers = [_number(v) for v in value]
        numbers = [n for n in numbers if n is not None]
        return float(sum(numbers) / len(numbers)) if numbers else None
    try:
        number = float(value)
    except (TypeError, ValueError):
        match = re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", str(value))
        if not match:
            return None
        numbers = [float(m) for m in match]
        number = sum(numbers) / len(numbers)
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def parse_age(value: Any) -> float | None:
    """Age in years from a number or a DICOM age string ('045Y', '006M')."""
    if _missing(value):
        return None
    text = str(value).strip().upper()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([YMWD])?", text)
    if match:
        return float(match.group(1)) * _AGE_UNITS[match.group(2) or "Y"]
    return _number(value)


def parse_sex(value: Any) -> str | None:
    """'F' or 'M' from F/M, female/male, woman/man; anything else is unknown."""
    text = _text(value)
    if text is None:
        return None
    first = text.upper()[0]
    if text.upper() in ("F", "FEMALE", "W", "WOMAN") or first == "F":
        return "F"
    if text.upper() in ("M", "MALE", "MAN") or (first == "M" and text.upper() != "MIXED"):
        return "M"
    return None


def _acquisition_type(value: Any) -> str | None:
    text = (_text(value) or "").upper()
    return text if text in ("2D", "3D") else None


def acquisition_from_record(record: Mapping[str, Any], **overrides: Any) -> Acquisition:
    """Acquisition parameters from a header-like record; ``overrides`` win over the record."""
    values: dict[str, Any] = {}
    for field_name, keys in _ACQUISITION_KEYS.items():
        raw = _lookup(record, keys)
        if field_name in ("vendor", "sequence"):
            values[field_name] = _text(raw)
        elif field_name == "acquisition_type":
            values[field_name] = _acquisition_type(raw)
        else:
            values[field_name] = _number(raw)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Acquisition(**values)


def demographics_from_record(record: Mapping[str, Any]) -> Demographics:
    """Sex, age (years) and weight (kg) from a header-like record."""
    weight = _number(_lookup(record, _WEIGHT_KEYS))
    return Demographics(
        sex=parse_sex(_lookup(record, _SEX_KEYS)),  # type: ignore[arg-type]
        age_years=parse_age(_lookup(record, _AGE_KEYS)),
        weight_kg=weight if weight and weight > 0 else None,
    )
