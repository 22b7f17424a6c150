"""Camera metadata (EXIF, GPS, maker data) of any supported file, read with ExifTool.

ExifTool reads every format the engine accepts, RAW included (CR3 boxes, RAF, stripped
ExifTool test files), and tolerates broken EXIF where decoders give up. Values are read
numerically (``-n``) and converted here, so units are fixed: degrees, metres, seconds,
millimetres. Bad or missing metadata never raises: :attr:`Metadata.warnings` says what
was wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from darkroom_imaging.exiftool import (
    ExifTool,
    ExifToolError,
    ExifToolTimeout,
    ExifToolUnavailable,
    shared_exiftool,
)

#: Tags requested from ExifTool (names as in the ExifTool tag tables; GPS ones are the
#: Composite tags, already signed by their Ref).
TAGS: tuple[str, ...] = (
    "Make",
    "Model",
    "LensModel",
    "DateTimeOriginal",
    "OffsetTimeOriginal",
    "GPSLatitude",
    "GPSLatitudeRef",
    "GPSLongitude",
    "GPSLongitudeRef",
    "GPSAltitude",
    "GPSAltitudeRef",
    "ISO",
    "FNumber",
    "ExposureTime",
    "FocalLength",
    "FocalLengthIn35mmFormat",
    "Orientation",
    "Flash",
    "WhiteBalance",
    "Artist",
    "Copyright",
    "Software",
    "ImageWidth",
    "ImageHeight",
    "FileType",
    "MIMEType",
    "Warning",
    "Error",
)

_DATETIME = re.compile(
    r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_WHITE_BALANCE = {0: "auto", 1: "manual"}


@dataclass(frozen=True, slots=True)
class Metadata:
    """Camera metadata of one file; every field None when the file does not carry it.

    Sources are EXIF 2.32 tags (via ExifTool): ``date_time_original`` is ISO 8601
    (``2024-05-07T09:33:04+08:00``, with the offset only when OffsetTimeOriginal or the
    value itself gives one) and ``date_time_original_raw``/``offset_time_original`` keep
    ExifTool's text. ``gps_latitude``/``gps_longitude`` are signed decimal degrees
    (south/west negative), ``gps_altitude`` metres (negative below sea level,
    GPSAltitudeRef = 1). ``exposure_time`` is ExifTool's fraction text (``1/250``, ``30``)
    and ``exposure_seconds`` the value in seconds; ``focal_length``/``focal_length_35mm``
    in millimetres; ``orientation`` the EXIF value 1–8 (0 or invalid → 1 with a warning);
    ``flash`` the EXIF Flash bit field (bit 0: fired). ``warnings`` lists short codes, e.g.
    ``exiftool_unavailable``, ``no_exif``, ``exiftool_warning: <text>``.
    """

    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    date_time_original: str | None = None
    date_time_original_raw: str | None = None
    offset_time_original: str | None = None
    gps_latitude: float | None = None
    gps_longitude: float | None = None
    gps_altitude: float | None = None
    iso: int | None = None
    f_number: float | None = None
    exposure_time: str | None = None
    exposure_seconds: float | None = None
    focal_length: float | None = None
    focal_length_35mm: float | None = None
    orientation: int | None = None
    flash: int | None = None
    white_balance: str | None = None
    artist: str | None = None
    copyright: str | None = None
    software: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    file_type: str | None = None
    mime_type: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def flash_fired(self) -> bool | None:
        """Bit 0 of the EXIF Flash tag, or None when the tag is absent."""
        return None if self.flash is None else bool(self.flash & 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (None kept, so the shape never changes)."""
        return asdict(self)


def read_metadata(path: Path, *, exiftool: ExifTool | None = None) -> Metadata:
    """Read the camera metadata of ``path`` with ExifTool (default: the shared process).

    Never raises for a bad file: a missing ExifTool gives a Metadata whose warnings hold
    ``exiftool_unavailable``, a hung one ``exiftool_timeout``, and broken or absent EXIF
    the warnings described on :class:`Metadata`.
    """
    tool = exiftool if exiftool is not None else shared_exiftool()
    try:
        raw = tool.read_tags(Path(path), TAGS)
    except ExifToolUnavailable:
        return Metadata(warnings=["exiftool_unavailable"])
    except ExifToolTimeout:
        return Metadata(warnings=["exiftool_timeout"])
    except ExifToolError as exc:
        return Metadata(warnings=[f"exiftool_error: {exc}"])
    return from_exiftool(raw)


def from_exiftool(raw: dict[str, Any]) -> Metadata:
    """Build a :class:`Metadata` from one ExifTool ``-json -n`` object (see :data:`TAGS`)."""
    warnings: list[str] = []
    if raw.get("Error"):
        warnings.append(f"exiftool_error: {_text(raw['Error'])}")
    if raw.get("Warning"):
        warnings.append(f"exiftool_warning: {_text(raw['Warning'])}")

    dto_raw = _text(raw.get("DateTimeOriginal"))
    offset = _text(raw.get("OffsetTimeOriginal"))
    dto = _iso_datetime(dto_raw, offset) if dto_raw else None
    if dto_raw and dto is None:
        warnings.append("invalid_date_time_original")

    lat = _signed(_number(raw.get("GPSLatitude")), raw.get("GPSLatitudeRef"), "SsWw")
    lon = _signed(_number(raw.get("GPSLongitude")), raw.get("GPSLongitudeRef"), "SsWw")
    if (lat is not None and abs(lat) > 90) or (lon is not None and abs(lon) > 180):
        warnings.append("invalid_gps")
        lat = lon = None
    alt = _number(raw.get("GPSAltitude"))
    if alt is not None:
        alt = -abs(alt) if _number(raw.get("GPSAltitudeRef")) == 1 else alt

    seconds = _number(raw.get("ExposureTime"))
    if seconds is not None and (seconds <= 0 or not math.isfinite(1 / seconds)):
        seconds = None  # 5e-324 s has no 1/N form
    orientation = _integer(raw.get("Orientation"))
    if orientation is not None and orientation not in range(1, 9):
        warnings.append(f"invalid_orientation: {orientation}")
        orientation = 1

    wb = raw.get("WhiteBalance")
    white_balance = _WHITE_BALANCE.get(wb) if isinstance(wb, int) else _text(wb)
    make = _text(raw.get("Make"))
    model = _text(raw.get("Model"))
    if make is None and model is None and dto_raw is None:
        warnings.append("no_exif")

    return Metadata(
        make=make,
        model=model,
        lens_model=_text(raw.get("LensModel")),
        date_time_original=dto,
        date_time_original_raw=dto_raw,
        offset_time_original=offset,
        gps_latitude=lat,
        gps_longitude=lon,
        gps_altitude=alt,
        iso=_integer(raw.get("ISO")),
        f_number=_positive(raw.get("FNumber")),
        exposure_time=exposure_fraction(seconds) if seconds is not None else None,
        exposure_seconds=seconds,
        focal_length=_positive(raw.get("FocalLength")),
        focal_length_35mm=_positive(raw.get("FocalLengthIn35mmFormat")),
        orientation=orientation,
        flash=_integer(raw.get("Flash")),
        white_balance=white_balance,
        artist=_text(raw.get("Artist")),
        copyright=_text(raw.get("Copyright")),
        software=_text(raw.get("Software")),
        image_width=_integer(raw.get("ImageWidth")),
        image_height=_integer(raw.get("ImageHeight")),
        file_type=_text(raw.get("FileType")),
        mime_type=_text(raw.get("MIMEType")),
        warnings=warnings,
    )


def exposure_fraction(seconds: float) -> str:
    """ExposureTime as photographers write it, by ExifTool's rule (PrintExposureTime).

    Under 0.25 s: ``1/N`` with N rounded (0.004 → ``1/250``); otherwise seconds with one
    decimal, a trailing ``.0`` dropped (30 → ``30``, 0.5 → ``0.5``).
    """
    if 0 < seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    text = f"{seconds:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _iso_datetime(value: str, offset: str | None) -> str | None:
    m = _DATETIME.match(value.strip())
    if not m:
        return None
    year, month, day, hh, mm, ss, frac, tz = m.groups()
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(year) > 0):
        return None
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        return None
    text = f"{year}-{month}-{day}T{hh}:{mm}:{ss}{frac or ''}"
    zone = tz or offset
    if zone == "Z":
        return text + "Z"
    if zone and (om := _OFFSET.match(zone.strip())):
        return f"{text}{om.group(1)}{om.group(2)}:{om.group(3)}"
    return text


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0] if value else None
        return _text(value)
    text = str(value).replace("\0", "").strip()
    return text or None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _integer(value: Any) -> int | None:
    number = _number(value)
    # EXIF integers are at most 32 bits (LONG, SLONG); 1e30 written as a DOUBLE is nonsense
    # that would not fit the events' 64-bit fields either.
    return int(number) if number is not None and -(2**31) <= number < 2**32 else None


def _signed(value: float | None, ref: Any, negative: str) -> float | None:
    if value is None:
        return None
    if isinstance(ref, str) and ref[:1] and ref[:1] in negative:
        return -abs(value)
    return value
